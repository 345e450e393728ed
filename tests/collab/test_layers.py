"""The embedded channel layer keeps channels' in-memory semantics while
fanning out cheaply (collab.broadcast.FanoutInMemoryChannelLayer); the
scale-out layer publishes several group sends in one round trip
(collab.redislayer.BatchingPubSubChannelLayer)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
from typing import Any

import pytest
from channels.exceptions import ChannelFull
from redis.asyncio.client import Pipeline

from collab import broadcast
from collab.broadcast import FanoutInMemoryChannelLayer, event_message, event_of
from collab.redislayer import BatchingPubSubChannelLayer
from tests.conftest import port_open, require_service


async def test_a_group_send_reaches_every_member_in_order_and_skips_a_full_one():
    layer = FanoutInMemoryChannelLayer(capacity=3)
    members = [await layer.new_channel() for _ in range(4)]
    for channel in members:
        await layer.group_add("project.1", channel)
    await layer.send(members[0], {"type": "x", "n": -1})
    await layer.send(members[0], {"type": "x", "n": -2})
    for n in range(3):
        await layer.group_send("project.1", {"type": "x", "n": n})
    with pytest.raises(ChannelFull):
        await layer.send(members[0], {"type": "x", "n": 99})
    # members[0] was full for the last group send: it missed it, the others did not.
    assert [(await layer.receive(members[0]))["n"] for _ in range(3)] == [-1, -2, 0]
    for channel in members[1:]:
        assert [(await layer.receive(channel))["n"] for _ in range(3)] == [0, 1, 2]


async def test_each_recipient_gets_its_own_copy():
    layer = FanoutInMemoryChannelLayer()
    a, b = await layer.new_channel(), await layer.new_channel()
    for channel in (a, b):
        await layer.group_add("project.2", channel)
    flat = event_message({"type": "edit", "revision": 1})
    nested = {"type": "jam.message", "event": {"players": ["x"]}}
    await layer.group_send("project.2", flat)
    await layer.group_send("project.2", nested)
    first, second = await layer.receive(a), await layer.receive(b)
    first["text"] = "changed"
    assert second["text"] == flat["text"] and flat["text"] != "changed"
    first, second = await layer.receive(a), await layer.receive(b)
    first["event"]["players"].append("y")
    assert second["event"]["players"] == ["x"] and nested["event"]["players"] == ["x"]


async def test_expired_messages_still_drop_their_channel_from_groups(monkeypatch):
    layer = FanoutInMemoryChannelLayer(expiry=0)
    layer.clean_every_s = 0.0
    stale, live = await layer.new_channel(), await layer.new_channel()
    for channel in (stale, live):
        await layer.group_add("project.3", channel)
    await layer.send(stale, {"type": "x"})  # expires at once, never read
    await layer.group_send("project.3", {"type": "y"})  # the clean runs first
    assert set(layer.groups["project.3"]) == {live}


# --- the scale-out layer (Redis) -----------------------------------------------------


@pytest.fixture
async def redis_layers():
    """Two BatchingPubSubChannelLayers on one real Redis: a sender and a receiver, as
    two server processes would have."""
    require_service("Redis", port_open("127.0.0.1", 6379), "127.0.0.1:6379")
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
    layers = [BatchingPubSubChannelLayer(hosts=[url]) for _ in range(2)]
    yield layers
    for layer in layers:
        await layer.flush()


def hand_over(project_id: int, count: int) -> None:
    """Edits 0..count-1 broadcast from another thread, as the database threads
    do. The loop is held meanwhile (this call blocks it), so all of them are
    pending when the sender first runs."""

    def database_thread() -> None:
        for revision in range(count):
            broadcast.send_now(project_id, {"type": "edit", "revision": revision})

    job = threading.Thread(target=database_thread)
    job.start()
    job.join(timeout=10)
    assert not job.is_alive()


async def received(layer: Any, channel: str, count: int) -> list[int]:
    """The revisions of the next `count` events on a channel."""
    return [
        event_of(await asyncio.wait_for(layer.receive(channel), timeout=5))["revision"]
        for _ in range(count)
    ]


@pytest.mark.redis
async def test_group_sends_in_one_round_trip_reach_other_processes_in_order(
    redis_layers, monkeypatch
):
    sender, receiver = redis_layers
    round_trips = []
    execute = Pipeline.execute

    async def counted(pipe: Pipeline, *args: Any, **kwargs: Any) -> Any:
        round_trips.append(len(pipe.command_stack))
        return await execute(pipe, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", counted)
    # Pub/sub channels are shared by every Redis database: names of our own.
    groups = [f"project.{secrets.randbelow(10**12)}" for _ in range(2)]
    members = [await receiver.new_channel() for _ in range(3)]
    await receiver.group_add(groups[0], members[0])
    await receiver.group_add(groups[0], members[1])
    await receiver.group_add(groups[1], members[2])
    sends = [(groups[n % 2], event_message({"type": "edit", "revision": n})) for n in range(40)]
    await sender.group_send_many(sends)
    assert round_trips == [40]
    # A plain group send after the batch arrives after it.
    await sender.group_send(groups[0], event_message({"type": "edit", "revision": 40}))
    even = list(range(0, 41, 2))
    assert await received(receiver, members[0], len(even)) == even
    assert await received(receiver, members[1], len(even)) == even
    assert await received(receiver, members[2], 20) == list(range(1, 40, 2))


@pytest.mark.redis
async def test_events_handed_over_together_go_out_in_batches_in_order(redis_layers, monkeypatch):
    sender, receiver = redis_layers
    monkeypatch.setattr(broadcast, "get_channel_layer", lambda: sender)
    broadcast.remember_server_loop(asyncio.get_running_loop())
    project_id = secrets.randbelow(10**12)
    member = await receiver.new_channel()
    await receiver.group_add(broadcast.project_group(project_id), member)
    batches: list[int] = []
    send_many = sender.group_send_many

    async def counted(sends: list) -> None:
        batches.append(len(sends))
        await send_many(sends)

    monkeypatch.setattr(sender, "group_send_many", counted)

    hand_over(project_id, 300)
    assert await received(receiver, member, 300) == list(range(300))
    # 300 pending sends: two round trips of at most MAX_BATCH, not 300.
    assert batches == [broadcast._Sender.MAX_BATCH, 300 - broadcast._Sender.MAX_BATCH]


@pytest.mark.redis
async def test_a_failed_batch_is_logged_and_later_events_still_go_out(
    redis_layers, monkeypatch, caplog
):
    good, receiver = redis_layers
    # Nothing listens on port 1: connecting is refused at once.
    bad = BatchingPubSubChannelLayer(hosts=["redis://127.0.0.1:1/0"])
    broadcast.remember_server_loop(asyncio.get_running_loop())
    project_id = secrets.randbelow(10**12)
    member = await receiver.new_channel()
    await receiver.group_add(broadcast.project_group(project_id), member)
    layers = iter([bad, bad, good, good])
    monkeypatch.setattr(broadcast, "get_channel_layer", lambda: next(layers))

    hand_over(project_id, 4)
    # The first two went to the failing layer together and are lost as one
    # batch; the next batch, on the working layer, arrives whole and in order.
    assert await received(receiver, member, 2) == [2, 3]
    assert [r.getMessage() for r in caplog.records if r.name == "collab.broadcast"] == [
        "broadcast to 2 event(s) failed"
    ]
    await bad.flush()


async def test_events_still_queued_when_the_loop_stops_are_counted_in_the_log(caplog):
    entered = asyncio.Event()

    class StuckLayer:
        async def group_send(self, group: str, message: dict[str, Any]) -> None:
            entered.set()
            await asyncio.Event().wait()  # a send that never completes

    sender = broadcast._Sender()
    layer = StuckLayer()
    for revision in range(5):
        sender.push(layer, "project.1", event_message({"type": "edit", "revision": revision}))
    await asyncio.wait_for(entered.wait(), 5)
    assert sender.task is not None
    sender.task.cancel()  # what the loop's shutdown does to pending tasks
    with contextlib.suppress(asyncio.CancelledError):
        await sender.task
    assert not sender.pending
    assert [r.getMessage() for r in caplog.records if r.name == "collab.broadcast"] == [
        "broadcast: 5 event(s) not sent or not confirmed: stopping"
    ]
