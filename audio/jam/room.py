"""Jam rooms: WebRTC in and out, one room clock, mix-minus, recording.

Two threads share the work. The asyncio loop does the network: aiortc receives
and decrypts every participant's RTP, the room drops each packet into that
participant's inbox, and aiortc's senders encrypt and send the packets the
clock hands back. A clock thread per room does the DSP every 10 ms: it drains
the inboxes into the jitter buffers, decodes, computes all personal mixes with
one matrix product per channel, encodes one Opus packet per listener, and
passes the whole tick to the loop in one call. libopus runs without the GIL,
so the loop keeps receiving while the clock encodes, and the clock keeps time
however busy the loop is.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCSessionDescription
from aiortc.exceptions import OperationError
from aiortc.mediastreams import MediaStreamError
from av.packet import Packet

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
    DEFAULT_BITRATE,
    DEFAULT_COMPLEXITY,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    Opus10msEncoder,
    OpusDecoder,
    OpusEncoder,
    Pcm,
    use_10ms_opus,
)
from .recorder import Recorder, Take

log = logging.getLogger(__name__)

METER_FLOOR_DB = -120.0
CATCH_UP_PACE = 0.5  # fraction of a period between ticks while the clock catches up
_PLAYED_TICKS = 100  # ticks of latency telemetry kept open for late senders
STALL_S = 0.002  # a tick starting this late means the process was not scheduled
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
    """What the room clock needs from a participant's incoming audio.

    `pop` runs on the clock thread; `stats` is read from the event loop.
    """

    @property
    def last_arrival(self) -> float: ...

    def pop(self, now: float, late_by: float = 0.0) -> Pcm:
        """The next frame for the tick due at `now`, which started `late_by` late."""
        ...

    @property
    def stats(self) -> JitterStats: ...


SentCallback = Callable[[int, float], None]


class MixTrack(MediaStreamTrack):
    """A listener's personal mix: Opus packets the room clock already encoded.

    aiortc's sender passes packets (not frames) straight to the RTP packetiser,
    so the loop spends no time encoding and nothing hops to a thread pool. The
    queue is short: if the sender falls behind, the oldest packets go, since
    fresh audio matters more than complete audio in a jam.
    """

    kind = "audio"

    def __init__(self, depth: int = 3, on_sent: SentCallback | None = None) -> None:
        super().__init__()
        self._packets: asyncio.Queue[tuple[Packet[Any], int]] = asyncio.Queue(maxsize=depth)
        self.dropped = 0
        # Called as (room frame, time.monotonic()) once a packet has gone out.
        self.on_sent = on_sent
        self._in_flight: int | None = None

    def push(self, packet: Packet[Any], frame: int) -> None:
        if self._packets.full():
            self._packets.get_nowait()
            self.dropped += 1
        self._packets.put_nowait((packet, frame))

    async def recv(self) -> Any:
        # The sender asks for the next packet only after handing the previous
        # one to the socket, so now is when that one went out.
        if self._in_flight is not None:
            if self.on_sent is not None:
                self.on_sent(self._in_flight, time.monotonic())
            self._in_flight = None
        if self.readyState != "live":
            raise MediaStreamError
        packet, self._in_flight = await self._packets.get()
        return packet


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


class PacketInbox:
    """Packets received on the event loop, played by the clock thread.

    The loop only appends (a deque append is atomic), and the clock thread
    moves them into the jitter buffer at the start of its tick, so the buffer
    and its decoder are only ever touched by one thread.

    Arrival times are taken on the loop, so when the whole process was not
    scheduled for a while, the packets that queued up meanwhile are stamped
    late although they reached the machine in time. The clock knows when that
    happened (its tick started late); such a tick plays those packets but does
    not let their stamps raise the buffer's delay.
    """

    def __init__(self, buffer: JitterBuffer) -> None:
        self.buffer = buffer
        self._packets: deque[tuple[int, bytes, float, int]] = deque()

    def put(self, timestamp: int, payload: bytes, arrival: float, ssrc: int = 0) -> None:
        self._packets.append((timestamp, payload, arrival, ssrc))

    def pop(self, now: float, late_by: float = 0.0) -> Pcm:
        packets, push = self._packets, self.buffer.push
        stalled = late_by > STALL_S
        while packets:
            timestamp, payload, arrival, ssrc = packets.popleft()
            push(timestamp, payload, arrival, ssrc, learn=not (stalled and arrival > now))
        return self.buffer.pop(now)

    @property
    def last_arrival(self) -> float:
        return self.buffer.last_arrival

    @property
    def stats(self) -> JitterStats:
        return self.buffer.stats


@dataclass(frozen=True)
class TickInfo:
    """What one tick of the room clock did (for observers: tests, benchmarks)."""

    frame: int  # room-clock sample of the first sample of this tick
    time: float  # time.monotonic() (= loop.time()) the tick ran at
    participants: tuple[str, ...]
    inputs: Pcm  # (P, 480, 2) after the jitter buffers
    mixes: Pcm  # (P, 480, 2) what each participant is sent


class Participant:
    def __init__(
        self,
        participant_id: str,
        pc: Any,
        source: InputSource,
        track: MixTrack,
        encoder: OpusEncoder | None = None,
    ) -> None:
        self.id = participant_id
        self.pc = pc
        self.input = source
        self.track = track
        self.encoder = encoder or OpusEncoder()  # used by the clock thread only
        self.meter_peak = 0.0
        self.number = 0  # order of joining, for telemetry


@dataclass(frozen=True)
class _Roster:
    """Who is in the room and how they hear each other, as the clock sees it.

    The loop publishes a new roster on every change; the clock thread reads
    the current one once per tick, so a tick never sees half a change.
    """

    participants: tuple[Participant, ...] = ()
    gains: Pcm = field(default_factory=lambda: np.zeros((0, 0, CHANNELS), np.float32))
    clicks: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.participants)


@dataclass(frozen=True)
class _TickOut:
    """One tick's result, handed from the clock thread to the loop."""

    frame: int
    time: float
    lateness: float  # how long after its deadline the tick started
    roster: _Roster
    inputs: Pcm
    mixes: Pcm
    peaks: npt.NDArray[np.float32]
    packets: list[Packet[Any] | None]
    arrivals: npt.NDArray[np.float64]  # of the packet behind each input (nan: none)
    encoded: float  # when the last packet of the tick was encoded


LATENCY_COLUMNS = 6  # sent, total, wait, mix, send (seconds), source (join number)


@dataclass(frozen=True)
class _Played:
    """Latency telemetry of one tick: the packet behind each input, and when
    each listener's packet of the tick went out (filled in as it goes)."""

    ids: tuple[str, ...]
    numbers: npt.NDArray[np.int64]
    arrivals: npt.NDArray[np.float64]  # nan: that input was concealed
    time: float
    encoded: float
    sent: npt.NDArray[np.float64]  # per listener, nan until sent

    def rows(self) -> npt.NDArray[np.float64]:
        """One row per (listener, source) pair that was heard, self excluded."""
        heard = np.isfinite(self.sent)[:, None] & np.isfinite(self.arrivals)[None, :]
        np.fill_diagonal(heard, False)
        listener, source = np.nonzero(heard)
        sent, arrival = self.sent[listener], self.arrivals[source]
        rows = np.empty((len(listener), LATENCY_COLUMNS), np.float64)
        rows[:, 0] = sent
        rows[:, 1] = sent - arrival
        rows[:, 2] = self.time - arrival
        rows[:, 3] = self.encoded - self.time
        rows[:, 4] = sent - self.encoded
        rows[:, 5] = self.numbers[source]
        return rows


class _LatencyLog:
    """A ring of latency rows (see `LATENCY_COLUMNS`), one per (source packet,
    listener) pair: 240 rows a tick at 16 players, so numpy."""

    def __init__(self, capacity: int) -> None:
        self._rows = np.zeros((max(1, capacity), LATENCY_COLUMNS), np.float64)
        self._next = 0
        self._count = 0

    def add(self, block: npt.NDArray[np.float64]) -> None:
        cap = len(self._rows)
        if len(block) == 0:
            return
        block = block[-cap:]
        k = len(block)
        first = min(k, cap - self._next)
        self._rows[self._next : self._next + first] = block[:first]
        self._rows[: k - first] = block[first:]
        self._next = (self._next + k) % cap
        self._count = min(cap, self._count + k)

    def rows(self) -> npt.NDArray[np.float64]:
        """All rows, oldest first."""
        if self._count < len(self._rows):
            return self._rows[: self._count].copy()
        return np.concatenate([self._rows[self._next :], self._rows[: self._next]])

    def clear(self) -> None:
        self._next = self._count = 0


def _percentiles(values: Any, scale: float = 1.0) -> dict[str, float]:
    if len(values) == 0:
        return {"p50": math.nan, "p99": math.nan, "n": 0}
    p50, p99 = np.percentile(np.asarray(values, dtype=np.float64), [50, 99])
    return {"p50": float(p50) * scale, "p99": float(p99) * scale, "n": len(values)}


def next_tick_at(deadline: float, last_start: float, period: float) -> float:
    """When the tick due at `deadline` may start: on time, or, while the clock
    is catching up, no sooner than `CATCH_UP_PACE` periods after the last one."""
    return max(deadline, last_start + period * CATCH_UP_PACE)


class _RoomClock:
    """The thread that runs a room's ticks on absolute 10 ms deadlines."""

    def __init__(self, room: JamRoom, loop: asyncio.AbstractEventLoop) -> None:
        self._room = room
        self._loop = loop
        self._stop = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"jam-clock-{room.room_id}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        room = self._room
        period = room.frame_samples / room.sample_rate
        deadline = time.monotonic()
        started = -math.inf
        while not self._stop.is_set():
            # Deadlines advance by exactly one period, so wake-up overshoot
            # never accumulates into drift.
            deadline += period
            if time.monotonic() - deadline > room.max_catch_up_s:
                # Far behind (machine suspended): skip ahead rather than burst.
                behind = int((time.monotonic() - deadline) // period)
                deadline += behind * period
                room._skip(behind)
            # A little behind (the process was not scheduled for a while):
            # catch up at twice the real rate, not back to back, so the loop
            # gets to read the packets that queued up meanwhile before their
            # ticks come round. No frame of the timeline is lost.
            delay = next_tick_at(deadline, started, period) - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            started = time.monotonic()
            try:
                out = room._tick(deadline, started)
            except Exception:
                log.exception("jam room %s: tick failed", room.room_id)
                continue
            try:
                self._loop.call_soon_threadsafe(room._deliver, out)
            except RuntimeError:  # the loop is closed
                break


class JamRoom:
    """One live jam: participants, their personal mixes, metronome, recorder.

    Signalling is the caller's job: hand `add_participant` the browser's full
    (non-trickle) offer and send back the answer it returns. All methods are
    called from the event loop that owns the room.
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
        opus_bitrate: int = DEFAULT_BITRATE,
        opus_complexity: int = DEFAULT_COMPLEXITY,
        latency_log_size: int = 65536,
    ) -> None:
        if sample_rate != SAMPLE_RATE:
            raise ValueError("jam rooms run at 48000 Hz (Opus)")
        if not 0 <= opus_complexity <= 10:
            raise ValueError("Opus complexity is 0..10")
        self.room_id = room_id
        self.sample_rate = sample_rate
        self.max_participants = max_participants
        self.ice = ice or IceConfig()
        self.jitter_config = jitter or JitterConfig()
        self.opus_bitrate = opus_bitrate
        self.opus_complexity = opus_complexity
        self.frame_samples = FRAME_SAMPLES
        self.max_catch_up_s = 0.25
        # The clock thread reads the metronome, the count-in and the frame
        # counter under this lock, so a change made on the loop lands on a
        # tick boundary.
        self._lock = threading.Lock()
        self.metronome = Metronome(tempo_bpm, beats_per_bar, sample_rate)
        self.metronome_gain = db_to_gain(metronome_gain_db)
        self._participants: dict[str, Participant] = {}
        self._pending: set[str] = set()
        self._gains: dict[tuple[str, str], tuple[float, float]] = {}
        self._self_monitor: dict[str, float] = {}
        self._metronome_on: set[str] = set()
        self._gain_tensor: Pcm | None = None
        self._roster = _Roster()
        self._frame = 0  # room clock, in samples
        self._clock: _RoomClock | None = None
        self._recorder: Recorder | None = None
        self._count_in_until = -1
        self._listeners: list[Callable[[TickInfo], None]] = []
        self._late_ticks = 0
        self._tick_lateness: deque[float] = deque(maxlen=6000)
        self._tick_cost: deque[float] = deque(maxlen=6000)
        # Latency telemetry: which packet each tick played, matched with the
        # moment each listener's packet of that tick went out. A tick stays
        # open for a second, then its rows go to the log.
        self._played: dict[int, _Played] = {}
        self._latency = _LatencyLog(latency_log_size)
        self._joins = 0
        self._numbers: dict[str, int] = {}
        self._closed = False

    # -- participants --------------------------------------------------------

    @property
    def participants(self) -> list[str]:
        return list(self._participants)

    @property
    def frame(self) -> int:
        """The room-clock sample the next tick will produce."""
        return self._frame

    @property
    def clock_thread_id(self) -> int | None:
        """Native id of the clock thread (for per-thread CPU accounting), if running."""
        return None if self._clock is None else self._clock.thread.native_id

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
            track = MixTrack(on_sent=lambda frame, t: self._on_sent(participant_id, frame, t))
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
            # The clock encodes; the sender only packetises (Opus10msEncoder.pack).
            use_10ms_opus(transceiver.sender, Opus10msEncoder())
            encoder = OpusEncoder(self.opus_bitrate, self.opus_complexity)
        except BaseException:
            self._pending.discard(participant_id)
            await pc.close()
            raise
        old = self._participants.pop(participant_id, None)
        participant = Participant(participant_id, pc, source, track, encoder)
        self._joins += 1
        participant.number = self._numbers[participant_id] = self._joins
        self._participants[participant_id] = participant
        self._pending.discard(participant_id)
        self._gain_tensor = None
        self._publish()
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
        inbox = PacketInbox(JitterBuffer(OpusDecoder(), self.jitter_config))
        put = inbox.put
        clock = time.monotonic

        def on_packet(packet: Any) -> None:
            put(packet.timestamp, packet.payload, clock(), packet.ssrc)

        tap_receiver(receiver, on_packet)
        return inbox

    async def remove_participant(self, participant_id: str) -> None:
        participant = self._participants.pop(participant_id, None)
        if participant is None:
            raise UnknownParticipant(f"{participant_id} is not in room {self.room_id}")
        self._gain_tensor = None
        self._publish()
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
        self._publish()

    def set_self_monitor(self, listener: str, on: bool, gain_db: float = 0.0) -> None:
        """Let a listener hear themselves (through the server, with its latency)."""
        self._require(listener)
        if on:
            self._self_monitor[listener] = gain_db
        else:
            self._self_monitor.pop(listener, None)
        self._gain_tensor = None
        self._publish()

    def set_metronome(self, listener: str, on: bool) -> None:
        self._require(listener)
        if on:
            self._metronome_on.add(listener)
        else:
            self._metronome_on.discard(listener)
        self._publish()

    def set_tempo(self, tempo_bpm: float, beats_per_bar: int | None = None) -> None:
        """Change tempo (and optionally the bar); the new beat grid starts at the next tick."""
        with self._lock:
            self.metronome = Metronome(
                tempo_bpm,
                beats_per_bar or self.metronome.beats_per_bar,
                self.sample_rate,
                origin=self._frame,
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

    def _publish(self) -> None:
        """Hand the clock thread a new roster (an atomic attribute swap)."""
        parts = tuple(self._participants.values())
        self._roster = _Roster(
            parts,
            self.gain_tensor(),
            np.array([p.id in self._metronome_on for p in parts], np.bool_),
        )

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
        with self._lock:
            start = self._frame
            if count_in_bars > 0:
                m = self.metronome
                self.metronome = Metronome(
                    m.tempo_bpm, m.beats_per_bar, self.sample_rate, origin=start
                )
                start = self.metronome.beat_start(count_in_bars * m.beats_per_bar)
                self._count_in_until = start
        self._recorder = Recorder(Path(directory), start, fmt, self.sample_rate)
        return start

    async def stop_recording(self) -> list[Take]:
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            raise JamError("not recording")
        with self._lock:
            self._count_in_until = -1
        return await asyncio.get_running_loop().run_in_executor(None, recorder.close)

    # -- the room clock ------------------------------------------------------------

    def add_tick_listener(self, callback: Callable[[TickInfo], None]) -> Callable[[], None]:
        """Call `callback` on the loop after every tick; returns a function that unsubscribes."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def _ensure_clock(self) -> None:
        if self._clock is None:
            self._clock = _RoomClock(self, asyncio.get_running_loop())
            self._clock.start()

    def _skip(self, ticks: int) -> None:
        """Clock thread: drop `ticks` ticks from the timeline (after a suspend)."""
        with self._lock:
            self._frame += ticks * self.frame_samples
            self._late_ticks += ticks

    def _tick(self, deadline: float, started: float) -> _TickOut:
        """Clock thread: one room-clock period, from inboxes to encoded packets.

        The jitter buffers play on the nominal schedule (`deadline`), so a
        tick that starts a little late does not shift their timing; packets
        that came by the time it started are still played."""
        n = self.frame_samples
        with self._lock:
            frame = self._frame
            self._frame += n
            roster = self._roster
            metronome = self.metronome
            counting_in = frame < self._count_in_until
        parts = roster.participants
        if parts:
            late_by = started - deadline
            inputs = np.stack([p.input.pop(deadline, late_by) for p in parts])
        else:
            inputs = np.zeros((0, n, CHANNELS), np.float32)
        mixes = mix(inputs, roster.gains)
        if counting_in or roster.clicks.any():
            click = metronome.render(frame, n) * self.metronome_gain
            if counting_in:
                mixes += click
            else:
                mixes[roster.clicks] += click
        mixes = soft_clip(mixes)
        packets = [p.encoder(mixes[i], frame) for i, p in enumerate(parts)]
        return _TickOut(
            frame=frame,
            time=started,
            lateness=started - deadline,
            roster=roster,
            inputs=inputs,
            mixes=mixes,
            peaks=np.abs(inputs).max(axis=(1, 2)) if parts else np.zeros(0, np.float32),
            packets=packets,
            arrivals=np.array([p.input.last_arrival for p in parts], np.float64),
            encoded=time.monotonic(),
        )

    def _deliver(self, out: _TickOut) -> None:
        """Loop: send a tick's packets, then meters, telemetry, recorder, listeners."""
        if self._closed:
            return
        parts = out.roster.participants
        fall = 10.0 ** (-_METER_FALL_DB_PER_S * self.frame_samples / self.sample_rate / 20.0)
        for p, packet, peak in zip(parts, out.packets, out.peaks, strict=True):
            if packet is not None and self._participants.get(p.id) is p:
                p.track.push(packet, out.frame)
            p.meter_peak = max(float(peak), p.meter_peak * fall)
        self._tick_lateness.append(out.lateness)
        self._tick_cost.append(out.encoded - out.time)
        ids = out.roster.ids
        if parts:
            self._played[out.frame] = _Played(
                ids,
                np.array([p.number for p in parts], np.int64),
                out.arrivals,
                out.time,
                out.encoded,
                np.full(len(parts), np.nan),
            )
            while len(self._played) > _PLAYED_TICKS:
                oldest = next(iter(self._played))  # dicts keep insertion order
                self._latency.add(self._played.pop(oldest).rows())
        if self._recorder is not None:
            self._recorder.write(out.frame, list(ids), out.inputs)
        if self._listeners:
            info = TickInfo(out.frame, out.time, ids, out.inputs, out.mixes)
            for callback in list(self._listeners):
                callback(info)

    def _on_sent(self, listener: str, frame: int, sent: float) -> None:
        """Loop: `listener`'s packet of tick `frame` went out at `sent`."""
        played = self._played.get(frame)
        if played is not None and listener in played.ids:
            played.sent[played.ids.index(listener)] = sent

    def _latency_rows(self) -> npt.NDArray[np.float64]:
        return np.concatenate([self._latency.rows(), *(p.rows() for p in self._played.values())])

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
        """Counters and timings. `server_latency_ms` runs from a packet's arrival
        (decrypted, handed over by aiortc) to the moment each listener's mixed
        packet carrying it has gone to the socket; its parts are the wait for
        the tick (`wait`, jitter buffer included), the tick's DSP (`mix`) and
        the hop back to the loop and out (`send`). Sorting the latency log
        takes a few ms per 64k rows on the loop: call it now and then, not
        every tick."""
        ms = 1000.0
        rows = self._latency_rows()
        return {
            "room_id": self.room_id,
            "frame": self._frame,
            "recording": self.recording,
            "late_ticks": self._late_ticks,
            "tick_lateness_ms": _percentiles(list(self._tick_lateness), ms),
            "tick_cost_ms": _percentiles(list(self._tick_cost), ms),
            "server_latency_ms": _percentiles(rows[:, 1], ms),
            "server_latency_parts_ms": {
                "wait": _percentiles(rows[:, 2], ms),
                "mix": _percentiles(rows[:, 3], ms),
                "send": _percentiles(rows[:, 4], ms),
            },
            "participants": {
                pid: {
                    **{k: v for k, v in asdict(p.input.stats).items() if k != "extra"},
                    "out_dropped": p.track.dropped,
                }
                for pid, p in self._participants.items()
            },
        }

    def latency_samples(self, source: str | None = None) -> list[tuple[float, float]]:
        """Recent (packet sent at, seconds from the source packet's arrival) pairs,
        of every source or of one participant's packets only."""
        rows = self._latency_rows()
        if source is not None:
            rows = rows[rows[:, 5] == self._numbers.get(source, -1)]
        return list(zip(rows[:, 0].tolist(), rows[:, 1].tolist(), strict=True))

    def reset_latency_stats(self) -> None:
        self._latency.clear()
        self._played.clear()
        self._tick_lateness.clear()
        self._tick_cost.clear()

    async def close(self) -> None:
        self._closed = True
        if self._clock is not None:
            clock, self._clock = self._clock, None
            clock.stop()
            await asyncio.to_thread(clock.thread.join)
        if self._recorder is not None:
            await self.stop_recording()
        while self._participants:
            _, participant = self._participants.popitem()
            await self._close_participant(participant)
        self._publish()


class JamServer:
    """Registry of rooms with a capacity for rooms and for players in total."""

    def __init__(
        self,
        max_rooms: int = 8,
        max_participants: int = 64,
        max_participants_per_room: int = 16,
        ice: IceConfig | None = None,
        jitter: JitterConfig | None = None,
        opus_bitrate: int = DEFAULT_BITRATE,
        opus_complexity: int = DEFAULT_COMPLEXITY,
    ) -> None:
        self.max_rooms = max_rooms
        self.max_participants = max_participants
        self.max_participants_per_room = max_participants_per_room
        self.ice = ice or IceConfig()
        self.jitter = jitter
        self.opus_bitrate = opus_bitrate
        self.opus_complexity = opus_complexity
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
            opus_bitrate=self.opus_bitrate,
            opus_complexity=self.opus_complexity,
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
