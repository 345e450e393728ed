from __future__ import annotations

import asyncio
import threading

from collab import broadcast
from collab.broadcast import FanoutInMemoryChannelLayer as InMemoryChannelLayer


async def test_an_event_sent_from_a_job_thread_wakes_a_waiting_consumer_at_once(monkeypatch):
    layer = InMemoryChannelLayer()
    monkeypatch.setattr(broadcast, "get_channel_layer", lambda: layer)
    broadcast.remember_server_loop(asyncio.get_running_loop())
    channel = await layer.new_channel()
    await layer.group_add(broadcast.project_group(7), channel)
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)  # let the receiver start waiting on the queue
    loop = asyncio.get_running_loop()
    job = threading.Thread(target=broadcast.send_now, args=(7, {"type": "stem.progress"}))
    started = loop.time()
    job.start()
    message = await asyncio.wait_for(waiting, timeout=5)
    # Without the hand-over to the server's loop, nothing wakes the waiter:
    # the message sits there until the loop's next timer (the 5 s timeout).
    assert loop.time() - started < 2.5
    await asyncio.get_running_loop().run_in_executor(None, job.join)
    assert message == {
        "type": "project.event",
        "kind": "stem.progress",
        "session": None,
        "text": '{"type":"stem.progress"}',
    }


async def test_events_from_another_thread_arrive_in_order_without_the_thread_waiting(monkeypatch):
    layer = InMemoryChannelLayer(capacity=1000)
    monkeypatch.setattr(broadcast, "get_channel_layer", lambda: layer)
    broadcast.remember_server_loop(asyncio.get_running_loop())
    channel = await layer.new_channel()
    await layer.group_add(broadcast.project_group(8), channel)

    def database_thread() -> None:
        for revision in range(200):
            broadcast.send_now(8, {"type": "edit", "revision": revision})

    # The loop is not free while the thread sends (this coroutine holds it
    # until the thread is done): a send that waited for the loop to run it
    # would never return, and the join below would time out.
    job = threading.Thread(target=database_thread)
    job.start()
    job.join(timeout=10)
    assert not job.is_alive()
    got = [broadcast.event_of(await layer.receive(channel))["revision"] for _ in range(200)]
    assert got == list(range(200))
