"""collab.consumers.dispatch_in_turn: the consumers' message loop."""

from __future__ import annotations

import asyncio

import pytest
from channels.exceptions import StopConsumer

from collab.consumers import dispatch_in_turn


def test_one_dispatch_at_a_time_each_source_in_order_until_stopped():
    async def main():
        socket, layer = asyncio.Queue(), asyncio.Queue()
        seen, running, most = [], 0, 0

        async def dispatch(message):
            nonlocal running, most
            if message["type"] == "stop":
                raise StopConsumer
            running += 1
            most = max(most, running)
            if message["n"] % 3 == 0:
                # A handler that waits (an edit on the database thread): the
                # other source's messages must wait for it.
                await asyncio.sleep(0.001)
            seen.append((message["type"], message["n"]))
            running -= 1

        for n in range(30):
            socket.put_nowait({"type": "socket", "n": n})
            layer.put_nowait({"type": "layer", "n": n})
        socket.put_nowait({"type": "stop", "n": -1})
        with pytest.raises(StopConsumer):
            await asyncio.wait_for(dispatch_in_turn([socket.get, layer.get], dispatch), 10)
        # The loop is over: nothing reads the layer's queue any more.
        layer.put_nowait({"type": "layer", "n": 99})
        await asyncio.sleep(0.01)
        return seen, most, layer.qsize()

    seen, most, left = asyncio.run(main())
    assert most == 1
    assert [n for kind, n in seen if kind == "socket"] == list(range(30))
    # The layer's messages that arrived before the stop are all handled, in order.
    layer_seen = [n for kind, n in seen if kind == "layer"]
    assert layer_seen == list(range(len(layer_seen))) and len(layer_seen) >= 20
    assert left >= 1


def test_a_failing_handler_ends_the_loop_with_its_error():
    async def main():
        socket, layer = asyncio.Queue(), asyncio.Queue()

        async def dispatch(message):
            if message["type"] == "boom":
                raise RuntimeError("handler failed")

        socket.put_nowait({"type": "ok"})
        socket.put_nowait({"type": "boom"})
        with pytest.raises(RuntimeError, match="handler failed"):
            await asyncio.wait_for(dispatch_in_turn([socket.get, layer.get], dispatch), 10)
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    assert asyncio.run(main()) == []


def test_nothing_is_dispatched_after_the_socket_closed():
    """A layer message held while the disconnect handler runs (it waits on the
    database thread) must not be handled after it: a newcomer's presence
    answered after our presence.leave would leave a ghost in their list."""

    async def main():
        socket, layer = asyncio.Queue(), asyncio.Queue()
        handled = []

        async def dispatch(message):
            if message["type"] == "websocket.disconnect":
                layer.put_nowait({"type": "presence", "n": 1})
                await asyncio.sleep(0.01)  # the hop to the database thread
                raise StopConsumer
            handled.append(message["type"])

        socket.put_nowait({"type": "websocket.disconnect"})
        with pytest.raises(StopConsumer):
            await asyncio.wait_for(dispatch_in_turn([socket.get, layer.get], dispatch), 10)
        return handled

    assert asyncio.run(main()) == []


def test_a_source_that_ends_ends_the_loop():
    async def main():
        socket = asyncio.Queue()

        async def gone():
            raise asyncio.CancelledError

        async def dispatch(message):
            pass

        await asyncio.wait_for(dispatch_in_turn([socket.get, gone], dispatch), 10)
        return True

    assert asyncio.run(main())
