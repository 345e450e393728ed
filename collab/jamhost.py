"""The owner of jam rooms: a JamServer answering requests over the channel layer.

One code path for both ways to run (ARCHITECTURE.md §3): a `JamHost` listens
on a channel for `jam.request` messages from project consumers (collab/jam.py)
and answers each consumer on its own channel with `jam.message`. Embedded, one
host per server process is created on first use, on the server's event loop;
scaled out, `manage.py jamworker` runs one host per worker process, and rooms
are claimed in Redis so a room lives on exactly one worker.

A room's host also joins the project's group, through a channel of the room's
own, so it hears tempo changes (edits of the project settings) and deletion.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import secrets
import shutil
import signal
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiortc import RTCIceServer
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from audio.jam import IceConfig, JamError, JamServer, RoomFull, ServerFull, Take
from audio.jam import UnknownParticipant as UnknownPlayer
from audio.jam.room import JamRoom
from studio.errors import StudioError
from studio.jam_actions import JamTake, do_save_jam_takes

from .broadcast import event_message, event_of, project_group

log = logging.getLogger(__name__)

REQUEST = "jam.request"  # consumer -> host
REPLY = "jam.message"  # host -> consumer (ProjectConsumer.jam_message)
METER_PERIOD_S = 0.1  # jam.meters at most 10 a second
HEARTBEAT_S = 2.0
CLAIM_TTL_MS = 10_000  # a dead worker's rooms are free again after this
WORKER_STALE_S = 3 * HEARTBEAT_S
GROUP_REFRESH_S = 60.0  # layers expire group membership (a day by default)
MAX_FORWARDS = 3
STOP_TIMEOUT_S = 300.0  # saving a long recording to object storage takes a while
LOOPS_STOP_TIMEOUT_S = 5.0
SLOW_STOP_REPORT_S = 10.0
EDITOR_ROLES = ("owner", "editor")


class HostError(Exception):
    """A request the host refuses; `code` and `message` go to the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def ice_config() -> IceConfig:
    """The jam's ICE set-up from settings: explicit servers, pinned host addresses."""
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in settings.ROOMTONE_ICE_SERVERS
    ]
    hosts = list(settings.ROOMTONE_JAM_HOST_ADDRESSES)
    if hosts == ["*"]:
        return IceConfig(ice_servers=servers, host_addresses=None, loopback_only=False)
    loopback = all(ipaddress.ip_address(a).is_loopback for a in hosts)
    return IceConfig(ice_servers=servers, host_addresses=tuple(hosts), loopback_only=loopback)


def state_event(
    participants: list[dict[str, Any]] | None = None,
    recording: dict[str, Any] | None = None,
    saving: bool = False,
    tempo: tuple[float, int] | None = None,
) -> dict[str, Any]:
    """The `jam.state` answer: what a page needs before joining."""
    return {
        "type": "jam.state",
        "ice_servers": settings.ROOMTONE_ICE_SERVERS,
        "max_players": settings.ROOMTONE_JAM_MAX_PLAYERS,
        "participants": participants or [],
        "recording": recording,
        "saving": saving,
        "tempo_bpm": tempo[0] if tempo else None,
        "beats_per_bar": tempo[1] if tempo else None,
    }


# --- room claims (scale-out) -------------------------------------------------------


@dataclass(frozen=True)
class WorkerInfo:
    channel: str
    rooms: int
    max_rooms: int
    seen: float


_REFRESH = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class RoomClaims:
    """Which worker owns which room, and which workers are alive, in Redis.

    A claim is a key set only if absent (so two workers can never both own a
    room) with a short expiry the owner keeps renewing: if a worker dies, its
    rooms can be opened elsewhere a few seconds later.
    """

    def __init__(self, url: str, prefix: str | None = None) -> None:
        import redis.asyncio as aioredis

        self.redis: Any = aioredis.from_url(url)
        self.prefix = settings.ROOMTONE_JAM_KEY_PREFIX if prefix is None else prefix
        self.workers_key = f"{self.prefix}workers"

    def room_key(self, project_id: int) -> str:
        return f"{self.prefix}room:{project_id}"

    async def owner(self, project_id: int) -> str | None:
        value = await self.redis.get(self.room_key(project_id))
        return value.decode() if value else None

    async def claim(self, project_id: int, channel: str) -> str | None:
        """Claim the room for `channel`; returns whoever owns it now."""
        key = self.room_key(project_id)
        if await self.redis.set(key, channel, nx=True, px=CLAIM_TTL_MS):
            return channel
        return await self.owner(project_id)

    async def refresh(self, project_id: int, channel: str) -> bool:
        key = self.room_key(project_id)
        return bool(await self.redis.eval(_REFRESH, 1, key, channel, CLAIM_TTL_MS))

    async def release(self, project_id: int, channel: str) -> None:
        await self.redis.eval(_RELEASE, 1, self.room_key(project_id), channel)

    async def register(self, channel: str, rooms: int, max_rooms: int) -> None:
        info = {"rooms": rooms, "max_rooms": max_rooms, "seen": time.time()}
        await self.redis.hset(self.workers_key, channel, json.dumps(info))

    async def deregister(self, channel: str) -> None:
        await self.redis.hdel(self.workers_key, channel)

    async def workers(self) -> list[WorkerInfo]:
        raw = await self.redis.hgetall(self.workers_key)
        now = time.time()
        live: list[WorkerInfo] = []
        stale: list[WorkerInfo] = []
        for key, value in raw.items():
            info = json.loads(value)
            worker = WorkerInfo(key.decode(), info["rooms"], info["max_rooms"], info["seen"])
            (live if now - worker.seen < WORKER_STALE_S else stale).append(worker)
        if stale:
            await self.redis.hdel(self.workers_key, *[w.channel for w in stale])
        return live

    async def pick_worker(self) -> str:
        """The least busy live worker with room for another room."""
        live = await self.workers()
        if not live:
            raise HostError(
                "jam_failed", "no jam worker is running (start one with `manage.py jamworker`)"
            )
        free = [w for w in live if w.rooms < w.max_rooms]
        if not free:
            raise HostError(
                "server_full",
                f"every jam worker is at its capacity ({max(w.max_rooms for w in live)} rooms "
                "each); try again when a jam ends",
            )
        return min(free, key=lambda w: (w.rooms / w.max_rooms, w.rooms)).channel

    async def close(self) -> None:
        await self.redis.aclose()


_claims: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RoomClaims] = (
    weakref.WeakKeyDictionary()
)


def claims() -> RoomClaims:
    """This event loop's Redis client for claims (clients are bound to a loop)."""
    loop = asyncio.get_running_loop()
    found = _claims.get(loop)
    if found is None:
        found = _claims[loop] = RoomClaims(settings.REDIS_URL)
    return found


# --- the host --------------------------------------------------------------------------


@dataclass
class Player:
    participant: str
    user: dict[str, Any]  # {id, name, colour}
    reply_to: str
    gains: dict[str, dict[str, float]] = field(default_factory=dict)
    self_monitor: dict[str, Any] = field(default_factory=lambda: {"on": False, "gain_db": 0.0})
    metronome: bool = False


@dataclass
class Recording:
    by: dict[str, Any]
    directory: Path
    start_frame: int
    count_in_bars: int
    started_at: Any
    names: dict[str, str]  # everyone who played during the take


@dataclass
class RoomState:
    project_id: int
    room: JamRoom
    events_channel: str
    players: dict[str, Player] = field(default_factory=dict)
    recording: Recording | None = None
    saving: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed: bool = False
    events_task: asyncio.Task[None] | None = None


class JamHost:
    def __init__(
        self,
        layer: Any,
        channel: str,
        *,
        room_claims: RoomClaims | None = None,
        max_rooms: int | None = None,
        max_players: int | None = None,
        ice: IceConfig | None = None,
        registry: bool = True,
    ) -> None:
        self.layer = layer
        self.channel = channel
        self.claims = room_claims
        # Jam workers list themselves for web processes to pick; an embedded
        # host only claims the rooms its own clients open.
        self.registry = registry and room_claims is not None
        self.max_rooms = max_rooms or settings.ROOMTONE_JAM_ROOMS_PER_WORKER
        self.max_players = max_players or settings.ROOMTONE_JAM_MAX_PLAYERS
        self.server = JamServer(
            max_rooms=self.max_rooms,
            max_participants=self.max_rooms * self.max_players,
            max_participants_per_room=self.max_players,
            ice=ice or ice_config(),
        )
        self.rooms: dict[int, RoomState] = {}
        self.takes_dir = Path(settings.VAR_DIR) / "jam"
        self._open_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = False
        self._saves: set[asyncio.Task[None]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._loops = [
            self.loop.create_task(self._receive_loop()),
            self.loop.create_task(self._housekeeping()),
        ]
        await self._register()

    async def stop(self) -> None:
        """Close every room, saving recordings in progress, and let go of claims."""
        self._stopping = True  # no new requests, even from a loop that will not stop
        for task in self._loops:
            task.cancel()
        if self._loops:
            # A cancelled receive unsubscribes on the layer's connection:
            # bounded, so a stuck one cannot keep the rooms (and their takes)
            # from closing.
            done, stuck = await asyncio.wait(self._loops, timeout=LOOPS_STOP_TIMEOUT_S)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error("jam: a request loop had failed", exc_info=task.exception())
            for task in stuck:
                log.warning("jam: still waiting at %s; closing rooms anyway", awaiting(task))
        for project_id in list(self.rooms):
            await self._close_room(project_id, reason="the jam server is shutting down")
        if self._saves:
            await asyncio.gather(*self._saves, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        if self.registry and self.claims is not None:
            await self.claims.deregister(self.channel)
        await self.server.close()

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _receive_loop(self) -> None:
        while True:
            message = await self.layer.receive(self.channel)
            if message.get("type") == REQUEST and not self._stopping:
                self._spawn(self._handle(message))

    # -- talking to consumers ---------------------------------------------------------

    async def _send(self, channel: str, event: dict[str, Any]) -> None:
        try:
            await self.layer.send(channel, {"type": REPLY, "event": event, "owner": self.channel})
        except Exception:
            # The consumer is gone or its channel is full: a notification lost,
            # which the room's own state (and the next roster) repairs.
            log.debug("jam: could not reach %s", channel, exc_info=True)

    async def _broadcast(self, project_id: int, event: dict[str, Any]) -> None:
        try:
            await self.layer.group_send(project_group(project_id), event_message(event))
        except Exception:
            log.exception("jam: broadcast to project %s failed", project_id)

    async def _error(self, message: dict[str, Any], code: str, text: str) -> None:
        await self._send(
            message["reply_to"],
            {
                "type": "error",
                "code": code,
                "message": text,
                "request": f"jam.{message.get('action')}",
            },
        )

    def _roster(self, state: RoomState) -> dict[str, Any]:
        metronome = state.room.metronome
        return {
            "type": "jam.roster",
            "participants": [
                {"participant": p.participant, "user": p.user} for p in state.players.values()
            ],
            "recording": self._recording_info(state),
            "saving": state.saving is not None,
            "tempo_bpm": metronome.tempo_bpm,
            "beats_per_bar": metronome.beats_per_bar,
            "max_players": self.max_players,
        }

    @staticmethod
    def _recording_info(state: RoomState) -> dict[str, Any] | None:
        rec = state.recording
        if rec is None:
            return None
        return {"by": rec.by, "count_in_bars": rec.count_in_bars}

    async def _broadcast_roster(self, state: RoomState) -> None:
        await self._broadcast(state.project_id, self._roster(state))

    # -- requests ---------------------------------------------------------------------

    async def _handle(self, message: dict[str, Any]) -> None:
        action = message.get("action")
        handlers: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
            "state": self._state,
            "join": self._join,
            "leave": self._leave,
            "mix": self._mix,
            "record.start": self._record_start,
            "record.stop": self._record_stop,
        }
        handler = handlers.get(str(action))
        if handler is None or "reply_to" not in message:
            log.warning("jam: malformed request %r", action)
            return
        try:
            await handler(message)
        except HostError as exc:
            await self._error(message, exc.code, exc.message)
        except RoomFull as exc:
            await self._error(message, "room_full", f"The jam room is full: {exc}.")
        except ServerFull as exc:
            await self._error(message, "server_full", f"The jam server is full: {exc}.")
        except UnknownPlayer:
            await self._error(message, "not_found", "that player is not in the jam any more")
        except JamError as exc:
            await self._error(message, "jam_failed", str(exc))
        except Exception:
            log.exception("jam: %s for project %s failed", action, message.get("project_id"))
            await self._error(message, "jam_failed", "the jam server failed; try again")

    async def _state(self, message: dict[str, Any]) -> None:
        state = self.rooms.get(int(message["project_id"]))
        if state is None:
            await self._send(message["reply_to"], state_event())
            return
        roster = self._roster(state)
        await self._send(
            message["reply_to"],
            state_event(
                roster["participants"],
                roster["recording"],
                roster["saving"],
                (roster["tempo_bpm"], roster["beats_per_bar"]),
            ),
        )

    async def _forward(self, owner: str, message: dict[str, Any]) -> None:
        hops = int(message.get("hops", 0)) + 1
        if hops > MAX_FORWARDS:
            raise HostError("jam_failed", "could not reach the jam worker that runs this room")
        await self.layer.send(owner, {**message, "hops": hops})

    async def _open_room(self, message: dict[str, Any]) -> RoomState | None:
        """This project's room, opened here if no one runs it; None if forwarded."""
        project_id = int(message["project_id"])
        async with self._open_lock:
            state = self.rooms.get(project_id)
            if state is not None:
                return state
            if self.claims is not None:
                owner = await self.claims.owner(project_id)
                if owner is not None and owner != self.channel:
                    await self._forward(owner, message)
                    return None
            if len(self.server.rooms) >= self.max_rooms:
                raise ServerFull(
                    f"it already runs {self.max_rooms} rooms, its capacity; "
                    "try again when a jam ends"
                )
            if self.claims is not None:
                owner = await self.claims.claim(project_id, self.channel)
                if owner != self.channel:
                    if owner is None:
                        raise HostError("jam_failed", "could not claim the jam room; try again")
                    await self._forward(owner, message)
                    return None
            try:
                data = message["data"]
                tempo, beats = float(data["tempo_bpm"]), int(data["beats_per_bar"])
                room = self.server.open_room(str(project_id), tempo)
                room.set_tempo(tempo, beats_per_bar=beats)
                events = await self.layer.new_channel("jam.room.")
                await self.layer.group_add(project_group(project_id), events)
            except BaseException:
                await self.server.close_room(str(project_id))
                if self.claims is not None:
                    await self.claims.release(project_id, self.channel)
                raise
            state = RoomState(project_id, room, events)
            state.events_task = asyncio.get_running_loop().create_task(self._room_events(state))
            self.rooms[project_id] = state
            await self._register()
            log.info("jam: opened room for project %s", project_id)
            return state

    async def _join(self, message: dict[str, Any]) -> None:
        participant = str(message["participant"])
        for _ in range(3):
            state = await self._open_room(message)
            if state is None:
                return  # another worker runs this room and will answer
            try:
                async with state.lock:
                    if state.closed:
                        continue  # closed while we waited: open it again
                    # Straight to the room: the server's total of players is
                    # rooms x players per room, so only the room's limit binds.
                    answer = await state.room.add_participant(
                        participant, str(message["data"]["offer"])
                    )
                    user = dict(message["user"])
                    state.players[participant] = Player(participant, user, message["reply_to"])
                    if state.recording is not None:
                        state.recording.names[participant] = str(user.get("name", "Player"))
            finally:
                # A failed first join leaves an empty room behind.
                await self._close_if_empty(state)
            await self._send(
                message["reply_to"],
                {"type": "jam.answer", "sdp": answer, "participant": participant},
            )
            await self._broadcast_roster(state)
            return
        raise HostError("jam_failed", "the jam room kept closing; try again")

    def _player(self, message: dict[str, Any]) -> tuple[RoomState, Player]:
        state = self.rooms.get(int(message["project_id"]))
        player = state.players.get(str(message["participant"])) if state else None
        if state is None or player is None:
            raise HostError("not_joined", "join the jam first")
        return state, player

    async def _leave(self, message: dict[str, Any]) -> None:
        state, player = self._player(message)
        async with state.lock:
            # Out of the roster first, so housekeeping never mistakes this for
            # a lost connection.
            state.players.pop(player.participant, None)
            with contextlib.suppress(UnknownPlayer):
                await state.room.remove_participant(player.participant)
        await self._send(
            player.reply_to,
            {"type": "jam.left", "participant": player.participant, "reason": "left"},
        )
        await self._broadcast_roster(state)
        await self._close_if_empty(state)

    async def _mix(self, message: dict[str, Any]) -> None:
        state, player = self._player(message)
        data = message["data"]
        me = player.participant
        if data.get("source") is not None:
            source = str(data["source"])
            if source == me:
                raise HostError("bad_message", "to hear yourself, use self_monitor")
            if source not in state.players:
                raise HostError("not_found", "that player is not in the jam any more")
            gain_db, pan = float(data.get("gain_db", 0.0)), float(data.get("pan", 0.0))
            state.room.set_gain(me, source, gain_db, pan)
            player.gains[source] = {"gain_db": gain_db, "pan": pan}
        elif data.get("self_monitor") is not None:
            on, gain_db = bool(data["self_monitor"]), float(data.get("gain_db", 0.0))
            state.room.set_self_monitor(me, on, gain_db)
            player.self_monitor = {"on": on, "gain_db": gain_db}
        elif data.get("metronome") is not None:
            state.room.set_metronome(me, bool(data["metronome"]))
            player.metronome = bool(data["metronome"])
        await self._send(
            player.reply_to,
            {
                "type": "jam.mix",
                "gains": {k: v for k, v in player.gains.items() if k in state.players},
                "self_monitor": player.self_monitor,
                "metronome": player.metronome,
            },
        )

    @staticmethod
    def _require_editor(message: dict[str, Any]) -> None:
        if message.get("role") not in EDITOR_ROLES:
            raise HostError("forbidden", "only editors and owners can record")

    async def _record_start(self, message: dict[str, Any]) -> None:
        self._require_editor(message)
        state, player = self._player(message)
        bars = int(message["data"].get("count_in_bars", 0))
        async with state.lock:
            if state.recording is not None:
                raise HostError("jam_failed", "already recording")
            if state.saving is not None:
                raise HostError("jam_failed", "the last recording is still being saved")
            directory = self.takes_dir / f"{state.project_id}-{secrets.token_hex(6)}"
            start = state.room.start_recording(directory, count_in_bars=bars, fmt="WAV")
            state.recording = Recording(
                by=player.user,
                directory=directory,
                start_frame=start,
                count_in_bars=bars,
                started_at=timezone.now(),
                names={
                    p.participant: str(p.user.get("name", "Player")) for p in state.players.values()
                },
            )
            starts_in = max(0, start - state.room.frame) / state.room.sample_rate
        await self._broadcast(
            state.project_id,
            {
                "type": "jam.recording",
                "state": "recording",
                "by": player.user,
                "count_in_bars": bars,
                "starts_in_s": round(starts_in, 3),
            },
        )

    async def _record_stop(self, message: dict[str, Any]) -> None:
        self._require_editor(message)
        state, player = self._player(message)
        async with state.lock:
            if state.recording is None:
                raise HostError("jam_failed", "nothing is being recorded")
            await self._stop_recording(state, player.user)

    async def _stop_recording(self, state: RoomState, by: dict[str, Any]) -> None:
        """Stop the takes and save them in the background (holding state.lock)."""
        rec, state.recording = state.recording, None
        assert rec is not None
        takes = await state.room.stop_recording()
        task = asyncio.get_running_loop().create_task(self._save(state, rec, takes, by))
        state.saving = task
        self._saves.add(task)
        task.add_done_callback(self._saves.discard)
        await self._broadcast(
            state.project_id, {"type": "jam.recording", "state": "saving", "by": by}
        )

    async def _save(
        self, state: RoomState, rec: Recording, takes: list[Take], by: dict[str, Any]
    ) -> None:
        project_id = state.project_id
        ordered = sorted(takes, key=lambda t: (t.start_frame, rec.names.get(t.participant_id, "")))
        jam_takes = [
            JamTake(
                path=str(t.path),
                player=rec.names.get(t.participant_id, "Player"),
                # Exact: both are room-clock sample counts at the take's rate.
                start_s=(t.start_frame - rec.start_frame) / t.sample_rate,
            )
            for t in ordered
            if t.frames > 0
        ]
        event: dict[str, Any]
        try:
            saved = await database_sync_to_async(do_save_jam_takes)(
                int(by["id"]), project_id, jam_takes, recorded_at=rec.started_at
            )
        except Exception as exc:
            if isinstance(exc, StudioError):
                reason = exc.message
            else:
                log.exception("jam: saving the takes of project %s failed", project_id)
                reason = "the server failed"
            event = {
                "type": "jam.recording",
                "state": "failed",
                "by": by,
                "message": f"The takes could not be saved: {reason}. "
                f"They are kept on the jam server in {rec.directory}.",
            }
        else:
            event = {
                "type": "jam.recording",
                "state": "saved",
                "by": by,
                "stems": saved.stems,
                "tracks": saved.tracks,
                "clips": saved.clips,
                "revision": saved.revision,
            }
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: shutil.rmtree(rec.directory, ignore_errors=True)
            )
        finally:
            state.saving = None
        await self._broadcast(project_id, event)
        if not state.closed:
            await self._broadcast_roster(state)

    # -- room life ------------------------------------------------------------------

    async def _close_if_empty(self, state: RoomState) -> None:
        if not state.players and not state.closed and not state.lock.locked():
            await self._close_room(state.project_id, reason=None)

    async def _close_room(self, project_id: int, *, reason: str | None, save: bool = True) -> None:
        state = self.rooms.get(project_id)
        if state is None:
            return
        async with state.lock:
            if state.closed or (reason is None and state.players):
                return  # someone joined meanwhile
            state.closed = True
            self.rooms.pop(project_id, None)
            if state.recording is not None:
                if save:
                    await self._stop_recording(state, state.recording.by)
                else:
                    rec, state.recording = state.recording, None
                    await state.room.stop_recording()
                    shutil.rmtree(rec.directory, ignore_errors=True)
            players = list(state.players.values())
            state.players.clear()
            await self.server.close_room(str(project_id))
            if state.events_task is not None:
                state.events_task.cancel()
            with contextlib.suppress(Exception):
                await self.layer.group_discard(project_group(project_id), state.events_channel)
            if self.claims is not None:
                # Capacity first, then the claim: once the room is free, a
                # new owner's count must not be overwritten by this one.
                await self._register()
                await self.claims.release(project_id, self.channel)
        log.info("jam: closed room for project %s", project_id)
        for player in players:
            await self._send(
                player.reply_to,
                {"type": "jam.left", "participant": player.participant, "reason": reason},
            )
        if reason is not None or players:
            await self._broadcast_roster(state)

    async def _room_events(self, state: RoomState) -> None:
        """Project events for one room: tempo changes and deletion."""
        while True:
            message = await self.layer.receive(state.events_channel)
            kind = message.get("kind")
            if kind not in ("edit", "project.deleted"):
                continue
            event = event_of(message)
            if kind == "edit":
                for op in event.get("ops") or []:
                    if op.get("kind") == "project" and op.get("op") == "set":
                        self._apply_settings(state, op.get("props") or {})
            else:
                self._spawn(
                    self._close_room(state.project_id, reason="the project was deleted", save=False)
                )
                return

    def _apply_settings(self, state: RoomState, props: dict[str, Any]) -> None:
        room = state.room
        old = room.metronome
        tempo = float(props.get("tempo_bpm", old.tempo_bpm))
        signature = props.get("time_signature")
        beats = (
            int(signature[0]) if isinstance(signature, list) and signature else old.beats_per_bar
        )
        if tempo == old.tempo_bpm and beats == old.beats_per_bar:
            return
        # Under the room's lock, so the new grid starts exactly on a tick.
        room.set_tempo(tempo, beats_per_bar=beats)
        self._spawn(self._broadcast_roster(state))

    async def _housekeeping(self) -> None:
        """Meters ten times a second; notice lost connections; renew claims."""
        loop = asyncio.get_running_loop()
        next_heartbeat = loop.time() + HEARTBEAT_S
        next_group_refresh = loop.time() + GROUP_REFRESH_S
        while True:
            await asyncio.sleep(METER_PERIOD_S)
            for state in list(self.rooms.values()):
                try:
                    await self._tend(state)
                except Exception:
                    log.exception("jam: housekeeping of project %s failed", state.project_id)
            now = loop.time()
            if now >= next_heartbeat:
                next_heartbeat = now + HEARTBEAT_S
                try:
                    await self._heartbeat(refresh_groups=now >= next_group_refresh)
                except Exception:
                    log.exception("jam: heartbeat failed")
                if now >= next_group_refresh:
                    next_group_refresh = now + GROUP_REFRESH_S

    async def _tend(self, state: RoomState) -> None:
        if state.closed or state.lock.locked():
            return
        present = set(state.room.participants)
        lost = [p for p in state.players.values() if p.participant not in present]
        for player in lost:
            # The room dropped a connection that failed or closed.
            state.players.pop(player.participant, None)
            await self._send(
                player.reply_to,
                {
                    "type": "jam.left",
                    "participant": player.participant,
                    "reason": "the audio connection was lost",
                },
            )
        if lost:
            await self._broadcast_roster(state)
            if not state.players:
                await self._close_if_empty(state)
                return
        levels = state.room.meters()
        event = {
            "type": "jam.meters",
            "levels": {p: round(levels.get(p, -120.0), 1) for p in state.players},
        }
        for player in list(state.players.values()):
            await self._send(player.reply_to, event)

    async def _register(self) -> None:
        if self.registry and self.claims is not None:
            await self.claims.register(self.channel, len(self.rooms), self.max_rooms)

    async def _heartbeat(self, refresh_groups: bool) -> None:
        if refresh_groups:
            for state in list(self.rooms.values()):
                await self.layer.group_add(project_group(state.project_id), state.events_channel)
        if self.claims is None:
            return
        await self._register()
        for project_id in list(self.rooms):
            if not await self.claims.refresh(project_id, self.channel):
                # Expired (a long stall): take it back unless someone else did.
                owner = await self.claims.claim(project_id, self.channel)
                if owner != self.channel:
                    log.error("jam: room of project %s is now claimed by %s", project_id, owner)


# --- embedded: one host per server process (per event loop) -------------------------------

_embedded: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[JamHost]] = (
    weakref.WeakKeyDictionary()
)


async def embedded_host() -> JamHost:
    """The process's jam host, started on first use on the running loop."""
    loop = asyncio.get_running_loop()
    task = _embedded.get(loop)
    if task is None:

        async def make() -> JamHost:
            layer = get_channel_layer()
            # Several web processes on one Redis: rooms are claimed there, so
            # each lives in one process and the others route to it.
            room_claims = claims() if settings.REDIS_URL else None
            host = JamHost(
                layer, await layer.new_channel("jam.host."), room_claims=room_claims, registry=False
            )
            await host.start()
            return host

        task = _embedded[loop] = loop.create_task(make())
    return await task


async def shutdown_embedded() -> None:
    """Stop this loop's embedded host (tests; a server process just exits)."""
    task = _embedded.pop(asyncio.get_running_loop(), None)
    if task is not None:
        await (await task).stop()


def current_embedded_host() -> JamHost | None:
    """This loop's embedded host if it is running (for tests and diagnostics)."""
    with contextlib.suppress(RuntimeError):
        task = _embedded.get(asyncio.get_running_loop())
        if task is not None and task.done() and not task.cancelled():
            return task.result()
    return None


# --- scale-out: the worker process ----------------------------------------------------------


async def stop_reporting(stopping: Awaitable[None], timeout: float, report_every: float) -> None:
    """Await `stopping` for at most `timeout` s (then it is cancelled and
    TimeoutError raised, as with wait_for); every `report_every` s meanwhile,
    log what each task of the loop is waiting on, so an admin (or a test) can
    see what holds it up."""

    async def report() -> None:
        while True:
            await asyncio.sleep(report_every)
            me = asyncio.current_task()
            waiting = "\n  ".join(awaiting(t) for t in asyncio.all_tasks() if t is not me)
            log.warning("jam: still stopping; tasks waiting:\n  %s", waiting)

    reporter = asyncio.ensure_future(report())
    try:
        await asyncio.wait_for(stopping, timeout)
    finally:
        reporter.cancel()


def awaiting(task: asyncio.Task[Any]) -> str:
    """Where a task is suspended: its chain of awaits, outermost first."""
    chain = []
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            name = Path(frame.f_code.co_filename).name
            chain.append(f"{frame.f_code.co_name} ({name}:{frame.f_lineno})")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return " > ".join(chain) or repr(task)


async def run_worker(max_rooms: int | None = None, stop: asyncio.Event | None = None) -> None:
    """Serve jam rooms from this process until SIGTERM/SIGINT (or `stop`)."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    room_claims = RoomClaims(settings.REDIS_URL)
    host = JamHost(
        layer, await layer.new_channel("jamworker."), room_claims=room_claims, max_rooms=max_rooms
    )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await host.start()
    log.info("jam worker %s serving up to %d rooms", host.channel, host.max_rooms)
    try:
        await stop.wait()
    finally:
        log.info("jam worker %s stopping", host.channel)
        try:
            # Recordings in progress are saved first; a peer connection that
            # will not close must not keep the process from exiting.
            await stop_reporting(host.stop(), STOP_TIMEOUT_S, SLOW_STOP_REPORT_S)
        except TimeoutError:
            log.error("jam worker %s: shutdown timed out", host.channel)
        await room_claims.close()
