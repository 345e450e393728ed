"""Fan-out of project events to every connected client.

Only actions call this, and only through send_on_commit, so a client never hears
of a change that was rolled back.

A project event travels through the channel layer already encoded
(`event_message`): with 10 or 50 sockets on a project, each recipient sends the
same text instead of copying and re-encoding the event itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable
from copy import deepcopy
from typing import Any

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def project_group(project_id: int) -> str:
    return f"project.{project_id}"


def encode(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))


def event_message(event: dict[str, Any], *, reply_to: str | None = None) -> dict[str, Any]:
    """The channel-layer message for a project event. Consumers need only the
    event's type and sender session to decide, then send `text` as it is."""
    message = {
        "type": "project.event",
        "kind": event.get("type"),
        "session": event.get("session"),
        "text": encode(event),
    }
    if reply_to is not None:
        message["reply_to"] = reply_to
    return message


def event_of(message: dict[str, Any]) -> dict[str, Any]:
    """The event an `event_message` carries, decoded (for listeners that are
    not sockets, such as a jam room following tempo changes)."""
    event = json.loads(message["text"])
    return event if isinstance(event, dict) else {}


_server_loop: asyncio.AbstractEventLoop | None = None


def remember_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Called by the ASGI app: the loop the consumers (and the channel layer's
    queues and connections) live on."""
    global _server_loop
    _server_loop = loop


def _off_server_loop() -> asyncio.AbstractEventLoop | None:
    """The server's loop, when it runs and this thread is not running it (the
    database thread or a job thread, say)."""
    loop = _server_loop
    if loop is None or not loop.is_running():
        return None
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    return loop if running is not loop else None


class _Sender:
    """Group sends handed over from other threads, made on the server's loop
    one after another in the order they were handed over (so a project's
    events keep their revision order), without the handing thread waiting.

    Sends that queue up while one is under way go out together, in one round
    trip, on a layer that can (`collab.redislayer`'s `group_send_many`): each
    send on channels_redis's pub/sub layer is its own round trip, and the
    layer makes them one at a time. A batch that fails is lost as a whole
    (logged), as are the sends still queued when the loop shuts down (counted
    in the log): events are notifications, and clients resync after a gap
    (docs/protocol.md §4)."""

    SEND_TIMEOUT_S = 10.0
    MAX_BATCH = 256

    def __init__(self) -> None:
        self.pending: deque[tuple[Any, str, dict[str, Any]]] = deque()
        self.task: asyncio.Task[None] | None = None

    def push(self, layer: Any, group: str, message: dict[str, Any]) -> None:
        # Runs on the loop (call_soon_threadsafe).
        self.pending.append((layer, group, message))
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.task = loop.create_task(self._drain())

    def _take_batch(self) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
        """The longest run of pending sends to one layer, up to MAX_BATCH."""
        layer = self.pending[0][0]
        batch: list[tuple[str, dict[str, Any]]] = []
        while self.pending and self.pending[0][0] is layer and len(batch) < self.MAX_BATCH:
            _, group, message = self.pending.popleft()
            batch.append((group, message))
        return layer, batch

    async def _drain(self) -> None:
        batch: list[tuple[str, dict[str, Any]]] = []
        try:
            while self.pending:
                layer, batch = self._take_batch()
                many = getattr(layer, "group_send_many", None)
                if many is not None:
                    await self._send(many(batch), f"{len(batch)} event(s)")
                else:
                    while batch:
                        group, message = batch[0]
                        await self._send(layer.group_send(group, message), group)
                        batch.pop(0)
                batch = []
        except asyncio.CancelledError:
            # The loop is shutting down: say how many never went out (unless
            # a newer loop's task has taken over the queue meanwhile).
            if self.task is asyncio.current_task():
                unsent = len(batch) + len(self.pending)
                self.pending.clear()
                logger.warning("broadcast: %d event(s) not sent or not confirmed: stopping", unsent)
            raise

    async def _send(self, send: Awaitable[None], what: str) -> None:
        try:
            # A stuck layer (Redis unreachable) must not hold up every later
            # event for ever.
            await asyncio.wait_for(send, self.SEND_TIMEOUT_S)
        except Exception:
            logger.exception("broadcast to %s failed", what)


_sender = _Sender()


def send_now(project_id: int, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    group, message = project_group(project_id), event_message(event)
    try:
        loop = _off_server_loop()
        if loop is not None:
            # The layer's queues (in-memory) or connections (Redis) belong to
            # the server's loop. Handing the send over without waiting keeps
            # the database thread free for the next edit (docs/benchmarks.md).
            loop.call_soon_threadsafe(_sender.push, layer, group, message)
        else:
            async_to_sync(layer.group_send)(group, message)
    except Exception:
        # A broadcast is a notification: the change is already committed and
        # clients resync on reconnect, so a layer hiccup (or a loop closing
        # under us) must not fail the write.
        logger.exception("broadcast to project %s failed", project_id)


def send_on_commit(project_id: int, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: send_now(project_id, event))


# --- the embedded server's channel layer ------------------------------------------
# channels' in-memory layer, made cheap per message for fan-out.
#
# channels' `InMemoryChannelLayer` (4.3) scans every connection's queue and every
# group membership for expired entries on each `receive` and `group_send`, makes
# one task per recipient in `group_send`, and deep-copies the message for each.
# With 100 sockets that is most of the layer's cost at 2,000 deliveries a
# second (docs/benchmarks.md, co-editing). Here the scan runs at most once a
# second (expiry is 60 s: a second late changes nothing), a group send puts the
# message straight into each queue in membership order, and a flat message (all
# project events are: event_message above) is copied shallowly,
# which for immutable values is the same as a deep copy. Semantics are
# otherwise channels' own: capacity per channel, `ChannelFull` skipped in group
# sends, expiry, group expiry.

_SCALARS = (str, int, float, bool, type(None), bytes)


def _copy(message: dict[str, Any]) -> dict[str, Any]:
    if all(isinstance(value, _SCALARS) for value in message.values()):
        return dict(message)
    return deepcopy(message)


class FanoutInMemoryChannelLayer(InMemoryChannelLayer):
    clean_every_s = 1.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cleaned_at = float("-inf")

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._cleaned_at < self.clean_every_s:
            return
        self._cleaned_at = now
        super()._clean_expired()

    def _put(self, channel: str, message: dict[str, Any]) -> None:
        queue = self.channels.setdefault(channel, asyncio.Queue(maxsize=self.get_capacity(channel)))
        try:
            queue.put_nowait((time.time() + self.expiry, _copy(message)))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        self._put(channel, message)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        # Members were checked when they joined; a full one misses this
        # message (as in channels) and hears the next.
        for channel in list(self.groups.get(group, ())):
            with contextlib.suppress(ChannelFull):
                self._put(channel, message)
