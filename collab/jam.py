"""Jam signalling over the project WebSocket (docs/protocol.md, "Jam").

The consumer hands every `jam.*` message here. Each is parsed into a typed
message (unknown fields refused), checked against the member's role, and sent
as a `jam.request` to the host that owns the project's room: this process's
embedded host, or, scaled out, the jam worker that claimed the room (found in
Redis). The host answers on this consumer's channel with `jam.message`, whose
`event` goes to the browser as it is.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from channels.db import database_sync_to_async
from django.conf import settings
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from studio.errors import StudioError
from studio.jam_actions import jam_room_settings

from . import jamhost

log = logging.getLogger(__name__)

ParticipantId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
GainDb = Annotated[float, Field(ge=-60.0, le=12.0)]
EDITOR_ROLES = ("owner", "editor")


class _Jam(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class JamState(_Jam):
    type: Literal["jam.state"]


class JamJoin(_Jam):
    type: Literal["jam.join"]
    # A complete (non-trickle) SDP offer: wait for ICE gathering to finish.
    offer: Annotated[str, StringConstraints(min_length=10, max_length=60_000, pattern=r"^v=0")]


class JamLeave(_Jam):
    type: Literal["jam.leave"]


class JamMix(_Jam):
    """One change to the sender's own mix: a source's level and pan, hearing
    oneself, or the metronome."""

    type: Literal["jam.mix"]
    source: ParticipantId | None = None
    self_monitor: bool | None = None
    metronome: bool | None = None
    gain_db: GainDb | None = None
    pan: Annotated[float, Field(ge=-1.0, le=1.0)] | None = None

    @model_validator(mode="after")
    def one_change(self) -> JamMix:
        given = [k for k in ("source", "self_monitor", "metronome") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("send exactly one of source, self_monitor or metronome")
        if self.pan is not None and self.source is None:
            raise ValueError("pan goes with source")
        if self.gain_db is not None and self.metronome is not None:
            raise ValueError("gain_db goes with source or self_monitor")
        return self


class JamRecordStart(_Jam):
    type: Literal["jam.record.start"]
    count_in_bars: Annotated[int, Field(ge=0, le=8)] = 0


class JamRecordStop(_Jam):
    type: Literal["jam.record.stop"]


class JamPing(_Jam):
    type: Literal["jam.ping"]
    t: float


JamMessage = Annotated[
    JamState | JamJoin | JamLeave | JamMix | JamRecordStart | JamRecordStop | JamPing,
    Field(discriminator="type"),
]
_adapter: TypeAdapter[Any] = TypeAdapter(JamMessage)
TYPES = frozenset(
    (
        "jam.state",
        "jam.join",
        "jam.leave",
        "jam.mix",
        "jam.record.start",
        "jam.record.stop",
        "jam.ping",
    )
)


def parse(data: dict[str, Any]) -> Any:
    """A `jam.*` message into its typed form; raises ValueError with a clear text."""
    try:
        return _adapter.validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"][1:]]  # the first element is the union tag
        where = ".".join(loc) or "message"
        text = str(err["msg"]).removeprefix("Value error, ")
        raise ValueError(f"{where}: {text}") from None


class JamSignalling:
    """One project socket's side of the jam: routing and the member's checks."""

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer
        self.joined = False
        self.owner: str | None = None  # the host channel that runs our room

    @property
    def participant(self) -> str:
        # One participant per connection: two tabs of one user are two players.
        return str(self.consumer.session)

    async def handle(self, data: dict[str, Any]) -> None:
        kind = data["type"]
        if kind not in TYPES:
            await self._error(kind, "unknown_type", f"unknown message type {kind!r}")
            return
        try:
            msg = parse(data)
        except ValueError as exc:
            await self._error(kind, "bad_message", str(exc))
            return
        try:
            await self._dispatch(msg)
        except jamhost.HostError as exc:
            await self._error(kind, exc.code, exc.message)
        except StudioError as exc:
            await self._error(kind, exc.code, exc.message)
        except Exception:
            log.exception("project %s: %s failed", self.consumer.project_id, kind)
            await self._error(kind, "jam_failed", "the jam server failed; try again")

    async def _dispatch(self, msg: Any) -> None:
        if isinstance(msg, JamPing):
            await self.consumer.send_json({"type": "jam.pong", "t": msg.t})
        elif isinstance(msg, JamState):
            owner = await self._owner_if_running()
            if owner is None:
                await self.consumer.send_json(jamhost.state_event())
            else:
                await self._request(owner, "state", {})
        elif isinstance(msg, JamJoin):
            tempo, beats = await database_sync_to_async(jam_room_settings)(self.consumer.project_id)
            owner = await self._owner_for_join()
            data = {"offer": msg.offer, "tempo_bpm": tempo, "beats_per_bar": beats}
            await self._request(owner, "join", data)
        else:
            records = isinstance(msg, JamRecordStart | JamRecordStop)
            if records and self.consumer.role not in EDITOR_ROLES:
                raise jamhost.HostError("forbidden", "only editors and owners can record")
            if not self.joined or self.owner is None:
                raise jamhost.HostError("not_joined", "join the jam first")
            if isinstance(msg, JamLeave):
                await self._request(self.owner, "leave", {})
            elif isinstance(msg, JamMix):
                await self._request(
                    self.owner, "mix", msg.model_dump(exclude={"type"}, exclude_none=True)
                )
            elif isinstance(msg, JamRecordStart):
                await self._request(
                    self.owner, "record.start", {"count_in_bars": msg.count_in_bars}
                )
            elif isinstance(msg, JamRecordStop):
                await self._request(self.owner, "record.stop", {})

    # -- routing ----------------------------------------------------------------------

    async def _owner_if_running(self) -> str | None:
        if not settings.REDIS_URL:
            return (await jamhost.embedded_host()).channel
        return await jamhost.claims().owner(self.consumer.project_id)

    async def _owner_for_join(self) -> str:
        if not settings.REDIS_URL:
            return (await jamhost.embedded_host()).channel
        # Rooms are claimed in Redis: go to the owner if there is one. A host
        # that finds the room claimed meanwhile passes the join on.
        owner = await jamhost.claims().owner(self.consumer.project_id)
        if owner is not None:
            return owner
        if settings.ROOMTONE_JAM_WORKERS == "channel":
            return await jamhost.claims().pick_worker()
        return (await jamhost.embedded_host()).channel

    async def _request(self, owner: str, action: str, data: dict[str, Any]) -> None:
        c = self.consumer
        await c.channel_layer.send(
            owner,
            {
                "type": jamhost.REQUEST,
                "action": action,
                "project_id": c.project_id,
                "participant": self.participant,
                "reply_to": c.channel_name,
                "user": c.me,
                "role": c.role,
                "data": data,
            },
        )

    # -- from the host --------------------------------------------------------------------

    async def on_channel_message(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if kind == "jam.answer":
            self.joined = True
            self.owner = message.get("owner")
        elif kind == "jam.left" and event.get("participant") == self.participant:
            self.joined = False
            self.owner = None
        await self.consumer.send_json(event)

    async def close(self) -> None:
        """The socket closed: leave the room (the browser's audio goes with it)."""
        if self.joined and self.owner is not None:
            self.joined = False
            try:
                await self._request(self.owner, "leave", {})
            except Exception:
                # The room notices the dead connection by itself soon enough.
                log.debug("jam: leave on disconnect failed", exc_info=True)

    async def _error(self, request: str, code: str, text: str) -> None:
        await self.consumer.send_json(
            {"type": "error", "code": code, "message": text, "request": request}
        )
