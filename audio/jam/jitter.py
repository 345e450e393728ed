"""Per-participant adaptive jitter buffer, played by the room clock.

Packets are keyed by RTP timestamp and played in timestamp order, one 10 ms
frame per room tick. A packet that is not there when its turn comes is
concealed and, if it turns up later, dropped: the buffer never waits. Its delay
follows measured jitter instead of losses: each packet's transit
(arrival - timestamp/rate) is compared with the playout schedule, the delay
grows by one frame when a recent packet would have been (nearly) late, and
shrinks by one frame when every packet of the last `window_s` seconds would
still have been early enough. Pure losses therefore cost no delay at all, and a
burst of late packets raises the delay only until the window forgets it.

One exception: if the delay has to grow again soon after a shrink, by no more
than the frame the shrink took away, the shrink was a mistake (typically a
sender whose packets land just before the room's tick, so a millisecond of
jitter makes them late). Flapping like that costs a glitch each way, so the
grown delay is then held for `flap_hold_s`; a burst can still raise it and
fall back to it as fast as ever.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .opus import CHANNELS, FRAME_SAMPLES, SAMPLE_RATE, Pcm

Decode = Callable[[bytes], Pcm]


@dataclass(frozen=True)
class JitterConfig:
    min_frames: int = 1
    max_delay_ms: float = 60.0  # hard cap on the delay the buffer will add
    # A floor under the adaptive delay (like Jamulus's manual buffer size): a
    # fixed safety margin for a link, or a server, known to stall now and then.
    min_delay_ms: float = 0.0
    guard_ms: float = 1.0  # a packet arriving closer than this to its slot counts as late
    late_fraction: float = 0.01  # share of packets we let be late rather than add a frame
    shrink_margin_ms: float = 2.0  # hysteresis so the delay does not flap
    window_s: float = 1.0  # how long a late packet keeps the delay up
    shrink_every_s: float = 0.1  # at most one frame removed per this interval
    flap_window_s: float = 2.0  # growing this soon after a shrink means the shrink was wrong
    flap_hold_s: float = 10.0  # ...so hold the grown delay this long
    resync_ms: float = 250.0  # a timeline jump bigger than this restarts the buffer
    fade_in_samples: int = 48  # 1 ms fade back in after a concealed gap


@dataclass
class JitterStats:
    received: int = 0
    played: int = 0
    late: int = 0
    duplicate: int = 0
    concealed: int = 0
    stretched: int = 0
    skipped: int = 0
    resyncs: int = 0
    holds: int = 0  # times a flapping delay was held up
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    buffered_frames: int = 0
    extra: dict[str, float] = field(default_factory=dict)


class JitterBuffer:
    def __init__(
        self,
        decode: Decode,
        config: JitterConfig | None = None,
        frame_samples: int = FRAME_SAMPLES,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        self.config = config or JitterConfig()
        self._decode = decode
        self._n = frame_samples
        self._rate = float(sample_rate)
        self._frame_s = frame_samples / sample_rate
        self._packets: dict[int, tuple[bytes, float]] = {}
        self._ext: int | None = None  # last unwrapped RTP timestamp seen
        self._ssrc: int | None = None
        self._playout: int | None = None  # timestamp of the next sample to play
        self._offset = 0.0  # playout schedule: play time of ts = offset + ts / rate
        self._leftover: Pcm | None = None  # tail of a packet longer than one frame
        self._leftover_arrival = math.nan
        self._window: deque[tuple[float, float]] = deque()  # (arrival, transit)
        # The same transits, kept sorted as they come and go: the room clock
        # needs their spread every tick for every participant.
        self._sorted: list[float] = []
        self._last_adjust = -math.inf
        self._last_shrink = -math.inf
        self._hold_until = -math.inf
        self._hold_delay = 0.0  # no shrinking below this delay until _hold_until
        self._last: Pcm = np.zeros((frame_samples, CHANNELS), np.float32)
        self._gap = 0  # consecutive concealed frames
        self._fade_out = np.linspace(1.0, 0.0, frame_samples, dtype=np.float32)[:, None]
        fi = self.config.fade_in_samples
        self._fade_in = np.linspace(0.0, 1.0, fi, endpoint=False, dtype=np.float32)[:, None]
        self.stats = JitterStats()
        # Arrival time of the packet behind the last popped frame (nan if concealed).
        self.last_arrival = math.nan
        # Timestamp of the last popped frame (None before the first packet).
        self.last_timestamp: int | None = None

    # -- input -------------------------------------------------------------

    def _unwrap(self, ts: int) -> int:
        if self._ext is None:
            self._ext = ts
            return ts
        diff = (ts - self._ext) & 0xFFFFFFFF
        if diff >= 0x80000000:
            diff -= 0x100000000
        ext = self._ext + diff
        self._ext = max(self._ext, ext)
        return ext

    def reset(self) -> None:
        self._packets.clear()
        self._ext = None
        self._playout = None
        self._leftover = None
        self._window.clear()
        self._sorted.clear()
        self._last_adjust = -math.inf
        self._last_shrink = self._hold_until = -math.inf

    def push(
        self, timestamp: int, payload: bytes, arrival: float, ssrc: int = 0, learn: bool = True
    ) -> None:
        """Add one RTP packet (timestamp in samples, arrival on the room's clock).

        With `learn=False` the packet is played but its arrival time does not
        count towards the delay (it is known to be wrong, see PacketInbox)."""
        if ssrc != self._ssrc:
            if self._ssrc is not None:
                self.stats.resyncs += 1
            self.reset()
            self._ssrc = ssrc
        ts = self._unwrap(timestamp)
        self.stats.received += 1
        transit = arrival - ts / self._rate
        if self._playout is not None:
            margin = self._offset - transit  # > 0: early by that much
            resync = self.config.resync_ms / 1000.0
            if margin < -resync or margin > self.config.max_delay_ms / 1000.0 + resync:
                # The sender's timeline jumped (restart, long pause): start over.
                self.stats.resyncs += 1
                self.reset()
                self._ssrc = ssrc
                ts = self._unwrap(timestamp)
            else:
                if learn:
                    self._window.append((arrival, transit))
                    insort(self._sorted, transit)
                if ts < self._playout:
                    self.stats.late += 1
                    return
        if ts in self._packets:
            self.stats.duplicate += 1
            return
        self._packets[ts] = (payload, arrival)

    # -- output ------------------------------------------------------------

    def pop(self, now: float) -> Pcm:
        """The next 10 ms frame, at room-clock time `now`. Never blocks."""
        if self._playout is None:
            if not self._packets:
                self.last_arrival = math.nan
                return self._conceal(count=False)
            self._playout = min(self._packets)
        self._offset = now - self._playout / self._rate
        self._forget(now)
        if self._adapt(now):
            self.stats.stretched += 1
            self.last_arrival = math.nan
            return self._conceal()
        frame = self._take()
        self.last_timestamp = self._playout
        self._playout += self._n
        self.stats.buffered_frames = len(self._packets)
        return frame

    def _forget(self, now: float) -> None:
        horizon = now - self.config.window_s
        window, ordered = self._window, self._sorted
        while window and window[0][0] < horizon:
            _, transit = window.popleft()
            del ordered[bisect_left(ordered, transit)]

    def _adapt(self, now: float) -> bool:
        """Skip a frame if the buffer is deeper than needed; True = insert one."""
        if not self._window:
            return False
        cfg = self.config
        transits = self._sorted
        best = transits[0]
        # Cover all but the latest `late_fraction` of recent packets: one
        # straggler a second should cost a concealed frame, not 10 ms for everyone.
        worst = transits[int((len(transits) - 1) * (1.0 - cfg.late_fraction))]
        self.stats.jitter_ms = (worst - best) * 1000.0
        self.stats.delay_ms = (self._offset - best) * 1000.0
        over_cap = self._offset - best - cfg.max_delay_ms / 1000.0
        if over_cap > 1e-9 and self._leftover is None:
            # e.g. after the room clock skipped ahead: drop straight back to the cap
            assert self._playout is not None
            frames = math.ceil(over_cap / self._frame_s)
            for _ in range(frames):
                self._packets.pop(self._playout, None)
                self._playout += self._n
            self._offset -= frames * self._frame_s
            self.stats.skipped += frames
            self.stats.delay_ms = (self._offset - best) * 1000.0
            self._last_adjust = now
            return False
        need = max(worst + cfg.guard_ms / 1000.0, best + cfg.min_delay_ms / 1000.0) - self._offset
        delay = self._offset - best
        if need > 0:
            if delay + self._frame_s <= cfg.max_delay_ms / 1000.0 + 1e-9:
                # The first growth since a recent shrink, and the frame that
                # shrink removed would have been enough: the shrink was wrong.
                # (Needing more than that is a burst, not a flap.)
                flap = (
                    self._last_adjust == self._last_shrink
                    and now - self._last_shrink < cfg.flap_window_s
                    and need <= self._frame_s
                )
                if flap and cfg.flap_hold_s > 0:
                    self._hold_delay = delay + self._frame_s
                    self._hold_until = now + cfg.flap_hold_s
                    self.stats.holds += 1
                self._last_adjust = now
                return True
            return False
        spare = -need - self._frame_s - cfg.shrink_margin_ms / 1000.0
        too_deep = delay > max(cfg.min_frames, 1) * self._frame_s
        held = now < self._hold_until and delay - self._frame_s < self._hold_delay - 0.001
        if (
            spare > 0
            and too_deep
            and not held
            and now - self._last_adjust >= cfg.shrink_every_s
            and self._leftover is None
        ):
            assert self._playout is not None
            self._packets.pop(self._playout, None)
            self._playout += self._n
            self._offset -= self._frame_s
            self._last_adjust = self._last_shrink = now
            self.stats.skipped += 1
        return False

    def _take(self) -> Pcm:
        assert self._playout is not None
        # Anything older than the playout point can never be played.
        for ts in [t for t in self._packets if t < self._playout]:
            del self._packets[ts]
        if self._leftover is not None:
            block, arrival = self._leftover, self._leftover_arrival
            self._leftover = None
        elif self._playout in self._packets:
            payload, arrival = self._packets.pop(self._playout)
            try:
                block = self._decode(payload)
            except Exception:  # a corrupt packet is just a lost one
                block = np.zeros((0, CHANNELS), np.float32)
        else:
            self.last_arrival = math.nan
            return self._conceal()
        if len(block) < self._n:
            block = np.concatenate([block, np.zeros((self._n - len(block), CHANNELS), np.float32)])
        elif len(block) > self._n:
            self._leftover, self._leftover_arrival = block[self._n :], arrival
            block = block[: self._n]
        if self._gap:
            block = block.copy()
            k = len(self._fade_in)
            block[:k] *= self._fade_in
        self._gap = 0
        self._last = block
        self.last_arrival = arrival
        self.stats.played += 1
        return block

    def _conceal(self, count: bool = True) -> Pcm:
        """Fade the last frame out once, then silence."""
        if count:
            self.stats.concealed += 1
        self._gap += 1
        if self._gap == 1:
            return self._last * self._fade_out
        return np.zeros((self._n, CHANNELS), np.float32)
