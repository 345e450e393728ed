"""Jam rooms: WebRTC in and out, one room clock, mix-minus, recording.

Everything runs on the asyncio loop that owns the room. Per 10 ms tick the
clock pulls one frame from every participant's jitter buffer and computes all
personal mixes with one tensor operation; that is a few hundred microseconds
of numpy, cheaper than a hop to another thread, and a room that outgrows one
core belongs in its own worker process, not in a thread pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCSessionDescription
from aiortc.exceptions import OperationError
from aiortc.mediastreams import MediaStreamError

from .ice import (
    IceConfig,
    add_ptime,
    filter_remote_candidates,
    make_peer_connection,
    set_local_description,
)
from .jitter import JitterBuffer, JitterConfig, JitterStats
from .mixer import Metronome, db_to_gain, gain_vector, mix, soft_clip
from .opus import (
    CHANNELS,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    Opus10msEncoder,
    OpusDecoder,
    Pcm,
    pcm_to_frame,
    use_10ms_opus,
)
from .recorder import Recorder, Take

log = logging.getLogger(__name__)

METER_FLOOR_DB = -120.0
_METER_FALL_DB_PER_S = 20.0


class JamError(Exception):
    """A jam request that cannot be honoured; the message is user-facing."""


class RoomFull(JamError):
    pass


class ServerFull(JamError):
    pass


class UnknownParticipant(JamError):
    pass


class InputSource(Protocol):
    """What the room clock needs from a participant's incoming audio."""

    last_arrival: float

    def pop(self, now: float) -> Pcm: ...

    @property
    def stats(self) -> JitterStats: ...


class MixTrack(MediaStreamTrack):
    """A listener's personal mix, one 10 ms frame per room tick.

    recv() just waits for the room clock, so the sender is paced by the room
    and not by a timer of its own. If the sender falls behind, the oldest
    frames go: fresh audio matters more than complete audio in a jam.
    """

    kind = "audio"

    def __init__(self, depth: int = 3) -> None:
        super().__init__()
        self._frames: asyncio.Queue[Any] = asyncio.Queue(maxsize=depth)
        self.dropped = 0

    def push(self, pcm: Pcm, pts: int) -> None:
        if self._frames.full():
            self._frames.get_nowait()
            self.dropped += 1
        self._frames.put_nowait(pcm_to_frame(pcm, pts))

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        return await self._frames.get()


class _RtpTap:
    """Stands in for an RTCRtpReceiver's jitter buffer and forwards raw packets.

    aiortc's audio jitter buffer waits for missing packets and never shrinks
    again. Taking its place keeps everything else the receiver does (SRTP,
    RTCP reports, RTX unwrapping) and hands us every packet on arrival.
    """

    def __init__(self, on_packet: Callable[[Any], None]) -> None:
        self._on_packet = on_packet

    def add(self, packet: Any) -> tuple[bool, None]:
        self._on_packet(packet)
        return False, None


def tap_receiver(receiver: RTCRtpReceiver, on_packet: Callable[[Any], None]) -> None:
    """Route `receiver`'s RTP packets to `on_packet` instead of aiortc's decoder."""
    slot = "_RTCRtpReceiver__jitter_buffer"
    if not hasattr(receiver, slot):
        raise RuntimeError("aiortc RTCRtpReceiver has no jitter buffer slot; check the version")
    setattr(receiver, slot, _RtpTap(on_packet))


@dataclass(frozen=True)
class TickInfo:
    """What one tick of the room clock did (for observers: tests, benchmarks)."""

    frame: int  # room-clock sample of the first sample of this tick
    time: float  # loop time the tick ran at
    participants: tuple[str, ...]
    inputs: Pcm  # (P, 480, 2) after the jitter buffers
    mixes: Pcm  # (P, 480, 2) what each participant is sent


class Participant:
    def __init__(self, participant_id: str, pc: Any, source: InputSource, track: MixTrack) -> None:
        self.id = participant_id
        self.pc = pc
        self.input = source
        self.track = track
        self.meter_peak = 0.0


def _percentiles(values: Any) -> dict[str, float]:
    if len(values) == 0:
        return {"p50": math.nan, "p99": math.nan, "n": 0}
    arr = np.asarray(values, dtype=np.float64)
    return {
        "p50": float(np.percentile(arr, 50)),
        "p99": float(np.percentile(arr, 99)),
        "n": int(arr.size),
    }


class JamRoom:
    """One live jam: participants, their personal mixes, metronome, recorder.

    Signalling is the caller's job: hand `add_participant` the browser's full
    (non-trickle) offer and send back the answer it returns.
    """

    def __init__(
        self,
        room_id: str,
        tempo_bpm: float,
        sample_rate: int = SAMPLE_RATE,
        *,
        beats_per_bar: int = 4,
        max_participants: int = 16,
        ice: IceConfig | None = None,
        jitter: JitterConfig | None = None,
        metronome_gain_db: float = -6.0,
    ) -> None:
        if sample_rate != SAMPLE_RATE:
            raise ValueError("jam rooms run at 48000 Hz (Opus)")
        self.room_id = room_id
        self.sample_rate = sample_rate
        self.max_participants = max_participants
        self.ice = ice or IceConfig()
        self.jitter_config = jitter or JitterConfig()
        self.frame_samples = FRAME_SAMPLES
        self.max_catch_up_s = 0.25
        self.metronome = Metronome(tempo_bpm, beats_per_bar, sample_rate)
        self.metronome_gain = db_to_gain(metronome_gain_db)
        self._participants: dict[str, Participant] = {}
        self._pending: set[str] = set()
        self._gains: dict[tuple[str, str], tuple[float, float]] = {}
        self._self_monitor: dict[str, float] = {}
        self._metronome_on: set[str] = set()
        self._gain_tensor: Pcm | None = None
        self._frame = 0  # room clock, in samples
        self._clock: asyncio.Task[None] | None = None
        self._recorder: Recorder | None = None
        self._count_in_until = -1
        self._listeners: list[Callable[[TickInfo], None]] = []
        self._late_ticks = 0
        self._tick_lateness: deque[float] = deque(maxlen=6000)
        self._tick_cost: deque[float] = deque(maxlen=6000)
        # Latency telemetry: which packet each tick played, matched later with
        # the time each listener's encoder produced that tick's packet.
        self._arrivals: dict[int, tuple[tuple[str, ...], list[float]]] = {}
        self._encoded: deque[tuple[str, int, float]] = deque(maxlen=10000)
        self._latency: deque[tuple[float, float]] = deque(maxlen=20000)  # (sent, latency)
        self._closed = False

    # -- participants --------------------------------------------------------

    @property
    def participants(self) -> list[str]:
        return list(self._participants)

    @property
    def frame(self) -> int:
        """The room-clock sample the next tick will produce."""
        return self._frame

    def reserve(self, participant_id: str) -> None:
        """Hold a seat while a connection is negotiated; raises RoomFull."""
        if self._closed:
            raise JamError(f"room {self.room_id} is closed")
        seated = set(self._participants) | self._pending
        if participant_id not in seated and len(seated) >= self.max_participants:
            raise RoomFull(f"room {self.room_id} is full ({self.max_participants} players)")
        self._pending.add(participant_id)

    async def add_participant(self, participant_id: str, offer_sdp: str) -> str:
        """Connect a participant from their SDP offer; returns the SDP answer.

        Joining again with an id that is already in the room replaces the old
        connection (a browser reload rejoins).
        """
        self.reserve(participant_id)
        pc = make_peer_connection(self.ice)
        try:
            # The transceiver must exist before the offer is applied: aiortc
            # settles the codec list while applying it, and we want Opus only.
            track = MixTrack()
            transceiver = pc.addTransceiver(track, direction="sendrecv")
            caps = RTCRtpReceiver.getCapabilities("audio")
            assert caps is not None
            transceiver.setCodecPreferences(
                [c for c in caps.codecs if c.mimeType.lower() == "audio/opus"]
            )
            sdp = filter_remote_candidates(offer_sdp, self.ice.loopback_only)
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            except (OperationError, ValueError) as exc:
                raise JamError(f"cannot use this offer: {exc}") from exc
            if transceiver.mid is None:
                raise JamError("the offer has no audio")
            source = self._attach_input(transceiver.receiver)
            answer = await pc.createAnswer()
            await set_local_description(pc, answer, self.ice)
            encoder = Opus10msEncoder(
                on_encoded=lambda pts, t: self._encoded.append((participant_id, pts, t))
            )
            use_10ms_opus(transceiver.sender, encoder)
        except BaseException:
            self._pending.discard(participant_id)
            await pc.close()
            raise
        old = self._participants.pop(participant_id, None)
        self._participants[participant_id] = Participant(participant_id, pc, source, track)
        self._pending.discard(participant_id)
        self._gain_tensor = None
        if old is not None:
            await self._close_participant(old)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                current = self._participants.get(participant_id)
                if current is not None and current.pc is pc:
                    await self.remove_participant(participant_id)

        self._ensure_clock()
        return add_ptime(pc.localDescription.sdp)

    def _attach_input(self, receiver: RTCRtpReceiver) -> InputSource:
        """Feed the receiver's packets to a fresh jitter buffer (benchmarks override)."""
        buffer = JitterBuffer(OpusDecoder(), self.jitter_config)
        loop = asyncio.get_running_loop()

        def on_packet(packet: Any) -> None:
            buffer.push(packet.timestamp, packet.payload, loop.time(), packet.ssrc)

        tap_receiver(receiver, on_packet)
        return buffer

    async def remove_participant(self, participant_id: str) -> None:
        participant = self._participants.pop(participant_id, None)
        if participant is None:
            raise UnknownParticipant(f"{participant_id} is not in room {self.room_id}")
        self._gain_tensor = None
        await self._close_participant(participant)

    async def _close_participant(self, participant: Participant) -> None:
        participant.track.stop()
        await participant.pc.close()

    # -- personal mixes --------------------------------------------------------

    def _require(self, *ids: str) -> None:
        for pid in ids:
            if pid not in self._participants:
                raise UnknownParticipant(f"{pid} is not in room {self.room_id}")

    def set_gain(self, listener: str, source: str, gain_db: float, pan: float = 0.0) -> None:
        """How loud (and where) `source` sits in `listener`'s mix."""
        self._require(listener, source)
        if not -1.0 <= pan <= 1.0:
            raise JamError("pan must be between -1 and 1")
        self._gains[(listener, source)] = (gain_db, pan)
        self._gain_tensor = None

    def set_self_monitor(self, listener: str, on: bool, gain_db: float = 0.0) -> None:
        """Let a listener hear themselves (through the server, with its latency)."""
        self._require(listener)
        if on:
            self._self_monitor[listener] = gain_db
        else:
            self._self_monitor.pop(listener, None)
        self._gain_tensor = None

    def set_metronome(self, listener: str, on: bool) -> None:
        self._require(listener)
        if on:
            self._metronome_on.add(listener)
        else:
            self._metronome_on.discard(listener)

    def set_tempo(self, tempo_bpm: float) -> None:
        """Change tempo; the new beat grid starts at the next tick."""
        origin = self._frame
        self.metronome = Metronome(
            tempo_bpm, self.metronome.beats_per_bar, self.sample_rate, origin=origin
        )

    def gain_tensor(self) -> Pcm:
        """(listeners, sources, 2) gains in participant order."""
        if self._gain_tensor is None:
            ids = list(self._participants)
            g = np.zeros((len(ids), len(ids), CHANNELS), np.float32)
            for li, listener in enumerate(ids):
                for si, source in enumerate(ids):
                    if li == si:
                        if listener in self._self_monitor:
                            g[li, si] = gain_vector(self._self_monitor[listener], 0.0)
                        continue
                    gain_db, pan = self._gains.get((listener, source), (0.0, 0.0))
                    g[li, si] = gain_vector(gain_db, pan)
            self._gain_tensor = g
        return self._gain_tensor

    # -- recording ---------------------------------------------------------------

    @property
    def recording(self) -> bool:
        return self._recorder is not None

    def start_recording(
        self, directory: str | Path, count_in_bars: int = 0, fmt: str = "FLAC"
    ) -> int:
        """Start recording every participant's input; returns the take start frame.

        With a count-in, the metronome restarts on a downbeat at the next tick
        and every participant hears `count_in_bars` bars before the takes
        begin, on the next downbeat.
        """
        if self._recorder is not None:
            raise JamError("already recording")
        start = self._frame
        if count_in_bars > 0:
            m = self.metronome
            self.metronome = Metronome(m.tempo_bpm, m.beats_per_bar, self.sample_rate, origin=start)
            start = self.metronome.beat_start(count_in_bars * m.beats_per_bar)
            self._count_in_until = start
        self._recorder = Recorder(Path(directory), start, fmt, self.sample_rate)
        return start

    async def stop_recording(self) -> list[Take]:
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            raise JamError("not recording")
        self._count_in_until = -1
        return await asyncio.get_running_loop().run_in_executor(None, recorder.close)

    # -- the room clock ------------------------------------------------------------

    def add_tick_listener(self, callback: Callable[[TickInfo], None]) -> Callable[[], None]:
        """Call `callback` after every tick; returns a function that unsubscribes."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def _ensure_clock(self) -> None:
        if self._clock is None:
            self._clock = asyncio.get_running_loop().create_task(self._run_clock())

    async def _run_clock(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.frame_samples / self.sample_rate
        deadline = loop.time()
        while True:
            # Deadlines advance by exactly one period, so sleep overshoot never
            # accumulates into drift.
            deadline += period
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > self.max_catch_up_s:
                # Far behind (machine suspended): skip ahead rather than burst.
                behind = int(-delay // period)
                deadline += behind * period
                self._frame += behind * self.frame_samples
                self._late_ticks += behind
            else:
                # A little behind (busy loop, loaded machine): catch up tick by
                # tick so no frame of the timeline is lost, letting packet I/O
                # in between.
                await asyncio.sleep(0)
            now = loop.time()
            self._tick_lateness.append(now - deadline)
            try:
                self._tick(deadline)
            except Exception:
                log.exception("jam room %s: tick failed", self.room_id)
            self._tick_cost.append(loop.time() - now)

    def _tick(self, now: float) -> None:
        """One room-clock period; `now` is the nominal tick time, not when it ran,
        so the jitter buffers see a steady schedule even when the loop is busy."""
        n = self.frame_samples
        frame = self._frame
        self._frame += n
        parts = list(self._participants.values())
        ids = tuple(p.id for p in parts)
        if parts:
            inputs = np.stack([p.input.pop(now) for p in parts])
        else:
            inputs = np.zeros((0, n, CHANNELS), np.float32)
        mixes = mix(inputs, self.gain_tensor())
        counting_in = frame < self._count_in_until
        if counting_in or self._metronome_on:
            click = self.metronome.render(frame, n) * self.metronome_gain
            for i, pid in enumerate(ids):
                if counting_in or pid in self._metronome_on:
                    mixes[i] += click
        mixes = soft_clip(mixes)
        for i, p in enumerate(parts):
            p.track.push(mixes[i], frame)
        if parts:
            self._meter(parts, inputs)
            self._arrivals[frame] = (ids, [p.input.last_arrival for p in parts])
            self._arrivals.pop(frame - 50 * n, None)
            self._collect_latency()
        if self._recorder is not None:
            self._recorder.write(frame, list(ids), inputs)
        if self._listeners:
            info = TickInfo(frame, now, ids, inputs, mixes)
            for callback in list(self._listeners):
                callback(info)

    def _meter(self, parts: list[Participant], inputs: Pcm) -> None:
        peaks = np.abs(inputs).max(axis=(1, 2))
        fall = 10.0 ** (-_METER_FALL_DB_PER_S * self.frame_samples / self.sample_rate / 20.0)
        for p, peak in zip(parts, peaks, strict=True):
            p.meter_peak = max(float(peak), p.meter_peak * fall)

    def _collect_latency(self) -> None:
        while self._encoded:
            listener, pts, done = self._encoded.popleft()
            entry = self._arrivals.get(pts)
            if entry is None:
                continue
            ids, arrivals = entry
            for pid, arrival in zip(ids, arrivals, strict=True):
                if pid != listener and not math.isnan(arrival):
                    self._latency.append((done, done - arrival))

    # -- observation -----------------------------------------------------------------

    def meters(self) -> dict[str, float]:
        """Input peak level per participant in dBFS (peak hold, 20 dB/s fall)."""
        return {
            pid: max(METER_FLOOR_DB, 20.0 * math.log10(p.meter_peak))
            if p.meter_peak > 0
            else METER_FLOOR_DB
            for pid, p in self._participants.items()
        }

    def stats(self) -> dict[str, Any]:
        ms = 1000.0
        return {
            "room_id": self.room_id,
            "frame": self._frame,
            "recording": self.recording,
            "late_ticks": self._late_ticks,
            "tick_lateness_ms": _percentiles([x * ms for x in self._tick_lateness]),
            "tick_cost_ms": _percentiles([x * ms for x in self._tick_cost]),
            "server_latency_ms": _percentiles([x * ms for _, x in self._latency]),
            "participants": {
                pid: {
                    **{k: v for k, v in asdict(p.input.stats).items() if k != "extra"},
                    "out_dropped": p.track.dropped,
                }
                for pid, p in self._participants.items()
            },
        }

    def latency_samples(self) -> list[tuple[float, float]]:
        """Recent (packet sent at, seconds from the source packet's arrival) pairs."""
        return list(self._latency)

    def reset_latency_stats(self) -> None:
        self._latency.clear()
        self._tick_lateness.clear()
        self._tick_cost.clear()

    async def close(self) -> None:
        self._closed = True
        if self._clock is not None:
            self._clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock
            self._clock = None
        if self._recorder is not None:
            await self.stop_recording()
        while self._participants:
            _, participant = self._participants.popitem()
            await self._close_participant(participant)


class JamServer:
    """Registry of rooms with a capacity for rooms and for players in total."""

    def __init__(
        self,
        max_rooms: int = 8,
        max_participants: int = 64,
        max_participants_per_room: int = 16,
        ice: IceConfig | None = None,
        jitter: JitterConfig | None = None,
    ) -> None:
        self.max_rooms = max_rooms
        self.max_participants = max_participants
        self.max_participants_per_room = max_participants_per_room
        self.ice = ice or IceConfig()
        self.jitter = jitter
        self.rooms: dict[str, JamRoom] = {}

    def open_room(self, room_id: str, tempo_bpm: float = 120.0) -> JamRoom:
        """The room with this id, created if needed; raises ServerFull."""
        room = self.rooms.get(room_id)
        if room is not None:
            return room
        if len(self.rooms) >= self.max_rooms:
            raise ServerFull(f"the jam server already runs {self.max_rooms} rooms")
        room = JamRoom(
            room_id,
            tempo_bpm,
            max_participants=self.max_participants_per_room,
            ice=self.ice,
            jitter=self.jitter,
        )
        self.rooms[room_id] = room
        return room

    def room(self, room_id: str) -> JamRoom:
        try:
            return self.rooms[room_id]
        except KeyError:
            raise JamError(f"no jam room {room_id}") from None

    @property
    def participant_count(self) -> int:
        return sum(len(r.participants) + len(r._pending) for r in self.rooms.values())

    async def join(self, room_id: str, participant_id: str, offer_sdp: str) -> str:
        """Add a participant to a room; raises RoomFull or ServerFull."""
        room = self.room(room_id)
        rejoin = participant_id in room.participants
        if not rejoin and self.participant_count >= self.max_participants:
            raise ServerFull(f"the jam server is full ({self.max_participants} players)")
        return await room.add_participant(participant_id, offer_sdp)

    async def close_room(self, room_id: str) -> None:
        room = self.rooms.pop(room_id, None)
        if room is not None:
            await room.close()

    async def close(self) -> None:
        for room_id in list(self.rooms):
            await self.close_room(room_id)
