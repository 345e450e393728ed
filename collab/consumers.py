"""The project WebSocket: authenticate, check membership, parse typed messages,
call one studio action each, relay project events (docs/protocol.md).

Thin by design: every change goes through studio.editing or studio.actions,
which broadcast after commit. Presence and gestures are ephemeral and never
touch the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from studio import actions, docstate, editing
from studio.errors import StudioError

from . import messages as m
from .broadcast import encode, event_message, project_group

logger = logging.getLogger(__name__)

# WebSocket close codes in the 4000-4999 application range.
CLOSE_NOT_ALLOWED = 4403
MAX_MESSAGE_BYTES = 64 * 1024
# Sustained messages per second and burst, per connection (protocol §8).
RATE_PER_S = 30.0
RATE_BURST = 60.0
# Live gestures and presence, each per connection (protocol §3, §6).
EPHEMERAL_PER_S = 20.0
# Resyncs read the whole log or document: a client needs one now and then.
SYNC_PER_S, SYNC_BURST = 2.0, 10.0
# Membership is re-read at least this often, in case a `members.changed`
# event was lost (the channel layer delivers at most once). Each socket picks
# its own time within the second half of that interval: sockets that connected
# together (a server restart, a benchmark) would otherwise all queue their
# database read on the same thread in the same moment, every interval.
RECHECK_EVERY_S = 30.0


def _recheck_delay() -> float:
    return RECHECK_EVERY_S * random.uniform(0.5, 1.0)


PALETTE = (
    "#e4572e",
    "#17bebb",
    "#ffc914",
    "#76b041",
    "#7b5ea7",
    "#f25f5c",
    "#247ba0",
    "#ff8c42",
    "#2ec4b6",
    "#c3423f",
    "#9bc53d",
    "#5bc0eb",
)


def colour_for(user_id: int) -> str:
    return PALETTE[user_id % len(PALETTE)]


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


_project_threads: list[ThreadPoolExecutor] = []
_project_threads_lock = threading.Lock()


def on_project_thread(project_id: int, func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """`func` as a coroutine on the database thread that serves this project.

    channels runs every database call of a process on one shared thread, so
    one project's edit waited for every other project's round trips to the
    database. Projects are spread over `editing.writer_threads()` threads by
    id (several on PostgreSQL, one on SQLite, where everything stays on
    channels' thread): each project's writes stay on one thread, in order (its
    broadcasts keep revision order), while other projects' writes wait on the
    database at the same time."""
    threads = editing.writer_threads()
    if threads <= 1:
        return database_sync_to_async(func)  # type: ignore[no-any-return]
    with _project_threads_lock:
        while len(_project_threads) < threads:
            _project_threads.append(
                ThreadPoolExecutor(1, thread_name_prefix=f"project-db-{len(_project_threads)}")
            )
    executor = _project_threads[project_id % threads]
    # channels' wrapper closes obsolete connections around every call;
    # on_writer_thread marks this thread's as kept, so it stays open.
    return database_sync_to_async(  # type: ignore[no-any-return]
        editing.on_writer_thread(func), thread_sensitive=False, executor=executor
    )


async def dispatch_in_turn(
    sources: list[Callable[[], Awaitable[dict[str, Any]]]],
    dispatch: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """Dispatch messages from several sources one at a time, each source's in
    its order, until a dispatch raises (StopConsumer when the socket closes)
    or a source ends; the error, if any, is raised here.

    What channels' `await_many_dispatch` does, for a fraction of its cost per
    message: it makes a new task per message and an `asyncio.wait` over all
    sources per message (about a tenth of a server's event loop at 2,000
    deliveries a second, docs/benchmarks.md); here each source has one
    long-lived task and a lock takes turns. Once a dispatch has raised,
    nothing more is dispatched (a message another source was holding is
    dropped, as channels drops it)."""
    turn = asyncio.Lock()
    stopped = False

    async def pump(source: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        nonlocal stopped
        while True:
            message = await source()
            async with turn:
                if stopped:
                    return
                try:
                    await dispatch(message)
                except BaseException:
                    stopped = True
                    raise

    tasks = [asyncio.ensure_future(pump(source)) for source in sources]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for outcome in outcomes:  # in source order: the socket's first
        if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
            raise outcome


class ProjectConsumer(AsyncWebsocketConsumer):
    project_id: int
    role: str
    group: str
    session: str

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """channels' `AsyncConsumer.__call__`, with `dispatch_in_turn` for its loop."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.base_send = send
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
            sources.append(self.channel_receive)
        with contextlib.suppress(StopConsumer):
            await dispatch_in_turn(sources, self.dispatch)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """As channels does, minus its hop to the shared database thread to
        close old connections before every message (each group event too):
        every database call here goes through database_sync_to_async, which
        does that itself, and the hop queued deliveries behind running edits
        (docs/benchmarks.md, co-editing)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self.project_id = int(self.scope["url_route"]["kwargs"]["project_id"])
        user = self.scope.get("user")
        try:
            access = await database_sync_to_async(actions.access_project)(user, self.project_id)
        except StudioError:
            # Accept, then close: a close before accepting reaches a browser as
            # a bare handshake failure, and the client could not tell "not
            # allowed" (stop retrying) from a network error (retry).
            await self.accept()
            await self.close(code=CLOSE_NOT_ALLOWED)
            return
        assert user is not None
        self.role = access.role
        self.group = project_group(self.project_id)
        self.session = secrets.token_hex(6)
        self.me = {"id": user.pk, "name": user.get_username(), "colour": colour_for(user.pk)}
        self.presence: dict[str, Any] = {"selection": [], "playhead": None}
        self.bucket = TokenBucket(RATE_PER_S, RATE_BURST)
        self.gestures = TokenBucket(EPHEMERAL_PER_S, EPHEMERAL_PER_S)
        self.presence_bucket = TokenBucket(EPHEMERAL_PER_S, EPHEMERAL_PER_S)
        self.syncs = TokenBucket(SYNC_PER_S, SYNC_BURST)
        self.limited_until = 0.0
        self.recheck_at = time.monotonic() + _recheck_delay()
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(
            {
                "type": "hello",
                "project_id": self.project_id,
                "role": self.role,
                "revision": access.project.revision,
                "session": self.session,
                "user": self.me,
            }
        )
        # Everyone else learns of us, and answers with their own presence.
        await self.channel_layer.group_send(
            self.group, event_message(self._presence_event(), reply_to=self.channel_name)
        )

    def _jam(self) -> Any:
        """Jam signalling (collab.jam), created on first use."""
        if getattr(self, "jam", None) is None:
            from .jam import JamSignalling

            self.jam = JamSignalling(self)
        return self.jam

    async def jam_message(self, message: dict[str, Any]) -> None:
        """Channel-layer messages from a jam room's owner (embedded or a jam worker)."""
        await self._jam().on_channel_message(message)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "jam", None) is not None:
            await self.jam.close()
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await self._group_event({"type": "presence.leave", "session": self.session})

    # --- receiving ------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not await self._recheck():
            return
        limited = not self.bucket.take()
        if text_data is None or len(text_data.encode()) > MAX_MESSAGE_BYTES:
            if not limited:
                await self.send_error("bad_message", "send JSON text messages of at most 64 KiB")
            return
        try:
            data = json.loads(text_data)
        except (json.JSONDecodeError, RecursionError):
            # RecursionError: absurdly deep nesting is not JSON we take either.
            if not limited:
                await self.send_error("bad_json", "message is not valid JSON")
            return
        if limited:
            await self._rate_limited(data)
            return
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            await self.send_error("bad_message", "message must be an object with a 'type'")
            return
        if data["type"].startswith("jam."):
            await self._jam().handle(data)
            return
        if data["type"] not in m.TYPES:
            await self.send_error("unknown_type", f"unknown message type {data['type']!r}")
            return
        op_id = data.get("client_op_id") if isinstance(data.get("client_op_id"), str) else None
        try:
            message = m.parse_message(data)
        except m.MessageError as exc:
            await self.send_error("bad_message", exc.message, op_id)
            return
        try:
            await self._dispatch(message)
        except StudioError as exc:
            await self.send_error(exc.code, exc.message, op_id)
        except Exception:
            logger.exception("project %s: %s message failed", self.project_id, data["type"])
            await self.send_error("server_error", "the server failed; try again", op_id)

    async def _dispatch(self, msg: Any) -> None:
        user = self.scope["user"]
        if isinstance(msg, m.Ping):
            await self.send_json({"type": "pong", "id": msg.id})
        elif isinstance(msg, m.Sync):
            if not self.syncs.take():
                await self.send_error(
                    "rate_limited",
                    f"at most {SYNC_PER_S:g} syncs a second: wait, then sync once",
                )
                return
            reply = await on_project_thread(self.project_id, editing.sync_reply)(
                user, self.project_id, msg.since
            )
            await self.send_json(reply)
        elif isinstance(msg, m.EditMessage):
            result = await on_project_thread(self.project_id, editing.do_edit)(
                user,
                self.project_id,
                msg.ops,
                client_op_id=msg.client_op_id,
                base_revision=msg.base_revision,
                on_socket=True,
            )
            await self._ack(msg.client_op_id, result)
        elif isinstance(msg, m.Undo | m.Redo):
            action = editing.do_undo if isinstance(msg, m.Undo) else editing.do_redo
            result = await on_project_thread(self.project_id, action)(
                user, self.project_id, msg.client_op_id, on_socket=True
            )
            await self._ack(msg.client_op_id, result)
        elif isinstance(msg, m.Restore):
            result = await on_project_thread(self.project_id, editing.do_restore)(
                user, self.project_id, msg.version, msg.client_op_id, on_socket=True
            )
            await self._ack(msg.client_op_id, result)
        elif isinstance(msg, m.SaveVersion):
            version = await on_project_thread(self.project_id, editing.do_save_version)(
                user, self.project_id, msg.name
            )
            await self.send_json(
                {"type": "ack", "client_op_id": msg.client_op_id, "version": version.id}
            )
        elif isinstance(msg, m.Gesture):
            await self._gesture(msg)
        elif isinstance(msg, m.Presence):
            if not self.presence_bucket.take():
                return
            if msg.selection is not None:
                self.presence["selection"] = msg.selection
            if msg.playhead is not None:
                self.presence["playhead"] = msg.playhead
            await self._group_event(self._presence_event())

    async def _ack(self, client_op_id: str, result: editing.EditResult) -> None:
        await self.send_json(
            {
                "type": "ack",
                "client_op_id": client_op_id,
                "revision": result.revision,
                "duplicate": result.duplicate,
            }
        )

    async def _gesture(self, msg: m.Gesture) -> None:
        if self.role == "viewer":
            await self.send_error("forbidden", "viewers can comment but not edit")
            return
        if not self.gestures.take():
            return  # over 20 a second: dropped, the committing edit follows anyway
        props = {}
        if not msg.end:
            try:
                props = docstate.validate_partial(msg.kind, msg.props)
            except docstate.OpError as exc:
                await self.send_error(exc.code, exc.message)
                return
        await self._group_event(
            {
                "type": "gesture",
                "session": self.session,
                "user": self.me,
                "kind": msg.kind,
                "id": msg.id,
                "props": props,
                "end": msg.end,
            }
        )

    async def _rate_limited(self, data: Any) -> None:
        """Refuse a message over the rate. A refused edit (undo, restore...) is
        named, so its client knows to send it again; other refusals are
        reported at most once a second."""
        op_id = data.get("client_op_id") if isinstance(data, dict) else None
        if isinstance(op_id, str):
            await self.send_error(
                "rate_limited", "too many messages: send this again in a moment", op_id
            )
            return
        now = time.monotonic()
        if now >= self.limited_until:
            self.limited_until = now + 1.0
            await self.send_error(
                "rate_limited",
                f"too many messages: at most {RATE_PER_S:g} a second (bursts of {RATE_BURST:g})",
            )

    # --- events from the group --------------------------------------------------------

    def _presence_event(self) -> dict[str, Any]:
        return {"type": "presence", "session": self.session, "user": self.me, **self.presence}

    async def _group_event(self, event: dict[str, Any]) -> None:
        await self.channel_layer.group_send(self.group, event_message(event))

    async def _recheck(self) -> bool:
        """Re-read membership now and then; False (and closed) if it is gone."""
        if not hasattr(self, "recheck_at"):
            return False  # never joined (refused at connect)
        now = time.monotonic()
        if now < self.recheck_at:
            return True
        self.recheck_at = now + _recheck_delay()
        if await self._still_member():
            return True
        await self.close(code=CLOSE_NOT_ALLOWED)
        return False

    async def project_event(self, message: dict[str, Any]) -> None:
        """A project event from the group (see collab.broadcast.event_message):
        sent on as the text it arrived in."""
        if not await self._recheck():
            return
        kind = message.get("kind")
        if kind in ("presence", "presence.leave", "gesture"):
            if message.get("session") == self.session:
                return
            reply_to = message.get("reply_to")
            if reply_to:
                # A newcomer: tell them we are here.
                await self.channel_layer.send(reply_to, event_message(self._presence_event()))
            await self.send(text_data=message["text"])
            return
        if kind == "project.deleted":
            await self.send(text_data=message["text"])
            await self.close(code=CLOSE_NOT_ALLOWED)
            return
        if kind == "members.changed" and not await self._still_member():
            await self.close(code=CLOSE_NOT_ALLOWED)
            return
        await self.send(text_data=message["text"])

    async def _still_member(self) -> bool:
        """Roles change while sockets are open: someone removed stops hearing
        the project at once, and a changed role is what later messages see."""
        try:
            access = await database_sync_to_async(actions.access_project)(
                self.scope.get("user"), self.project_id
            )
        except StudioError:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            return False
        self.role = access.role
        return True

    async def send_error(self, code: str, text: str, client_op_id: str | None = None) -> None:
        error: dict[str, Any] = {"type": "error", "code": code, "message": text}
        if client_op_id is not None:
            error["client_op_id"] = client_op_id
        await self.send_json(error)

    async def send_json(self, data: dict[str, Any]) -> None:
        await self.send(text_data=encode(data))
