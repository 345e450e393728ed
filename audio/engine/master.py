"""Mastering a rendered mix to a loudness target with a true-peak ceiling.

The renderer first writes the unmastered mix to a temporary float file while
measuring it. Here each pass streams that file back through a gain and a
true-peak-aware look-ahead limiter, writes the output and measures it with the
project's BS.1770 meter. Limiting lowers loudness (a lot on dense material),
so the gain is corrected and the pass repeated until the result lands on
target; the ceiling is likewise tightened if the meter still sees an overshoot.

The limiter is computed per sample in the dB domain without Python loops:
the gain reduction a sample needs (from a 4x-oversampled peak estimate) is
spread over a symmetric window around it (a running maximum, then a moving
average of the same reach, so the reduction is complete exactly at the peak)
and released at a fixed dB/s rate, via a running maximum of the reduction plus
a ramp.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soundfile as sf
from numpy.typing import NDArray
from scipy.ndimage import maximum_filter1d, uniform_filter1d
from scipy.signal import resample_poly

from audio.engine.loudness import LoudnessMeter
from audio.engine.writers import OutputFormat, Writer

__all__ = ["PRESETS", "MasterResult", "MasterTarget", "master_file", "resolve_target"]


@dataclass(frozen=True)
class MasterTarget:
    name: str
    lufs: float
    ceiling_dbtp: float = -1.0


PRESETS: dict[str, MasterTarget] = {
    "streaming": MasterTarget("streaming", -14.0, -1.0),
    "apple": MasterTarget("apple", -16.0, -1.0),
    "ebu": MasterTarget("ebu", -23.0, -1.0),
}


@dataclass(frozen=True)
class MasterResult:
    pcm_sha256: str
    peak: float  # linear sample peak as written
    lufs: float
    true_peak_dbtp: float
    gain_db: float
    passes: int


def resolve_target(spec: object) -> MasterTarget:
    """A preset name, a LUFS number (as number or string) or a MasterTarget."""
    if isinstance(spec, MasterTarget):
        target = spec
    elif isinstance(spec, str) and spec in PRESETS:
        target = PRESETS[spec]
    else:
        try:
            lufs = float(spec)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            names = ", ".join(PRESETS)
            raise ValueError(f"master target must be {names} or a LUFS value") from None
        target = MasterTarget("custom", lufs, -1.0)
    if not -60.0 <= target.lufs <= 0.0 or not math.isfinite(target.lufs):
        raise ValueError("master target must be between -60 and 0 LUFS")
    if not -20.0 <= target.ceiling_dbtp <= 0.0:
        raise ValueError("master ceiling must be between -20 and 0 dBTP")
    return target


_CHUNK = 65536
_LOOKAHEAD_S = 0.002
_RELEASE_DB_PER_S = 150.0
_OVERSAMPLE = 4
# Headroom below the ceiling for the difference between this estimate of the
# true peak and the meter's; corrected from the measurement if not enough.
_FIRST_MARGIN_DB = 0.2
_TOLERANCE_LU = 0.2
_MAX_PASSES = 10
_MAX_GAIN_DB = 60.0


class _Limiter:
    def __init__(self, sample_rate: int, ceiling_db: float) -> None:
        self.reach = max(1, round(_LOOKAHEAD_S * sample_rate))
        self.release = _RELEASE_DB_PER_S / sample_rate
        self.ceiling_db = ceiling_db
        # Context either side of a chunk: the windows plus the oversampler's filter.
        self.context = 3 * self.reach + 16
        self._held = 0.0  # gain reduction (dB) at the previous sample

    def reduction(self, x: NDArray[np.float64], first: int, count: int) -> NDArray[np.float64]:
        """Gain reduction in dB for x[first:first + count]; x holds context around it."""
        over = resample_poly(x, _OVERSAMPLE, 1, axis=0)
        peaks = np.abs(over).reshape(x.shape[0], _OVERSAMPLE * x.shape[1]).max(axis=1)
        peaks = np.maximum(peaks, np.abs(x).max(axis=1))
        with np.errstate(divide="ignore"):
            need = np.maximum(0.0, 20.0 * np.log10(peaks) - self.ceiling_db)
        spread = maximum_filter1d(need, size=2 * self.reach + 1)
        smooth = uniform_filter1d(spread, size=2 * self.reach + 1)[first : first + count]
        # Release: reduction[k] = max over j <= k of smooth[j] - rate * (k - j),
        # seeded with the held value from the previous chunk.
        ramp = self.release * np.arange(1, count + 1)
        held = np.maximum.accumulate(np.maximum(smooth + ramp, self._held))
        out: NDArray[np.float64] = np.maximum(held - ramp, smooth)
        self._held = float(out[-1]) if count else self._held
        return out


def _read(f: sf.SoundFile, begin: int, end: int) -> NDArray[np.float64]:
    out = np.zeros((end - begin, f.channels), dtype=np.float64)
    lo, hi = max(0, begin), min(end, f.frames)
    if hi > lo:
        f.seek(lo)
        out[lo - begin : hi - begin] = f.read(hi - lo, dtype="float64", always_2d=True)
    return out


def _pass(
    src_path: str,
    writer: Writer,
    meter: LoudnessMeter,
    gain_db: float,
    ceiling_db: float,
    sample_rate: int,
    progress: Callable[[float], None] | None,
    cancel: Callable[[], bool] | None,
) -> None:
    from audio.engine.render import RenderCancelled

    limiter = _Limiter(sample_rate, ceiling_db)
    gain = 10.0 ** (gain_db / 20.0)
    pad = limiter.context
    with sf.SoundFile(src_path) as f:
        total = f.frames
        for start in range(0, total, _CHUNK):
            if cancel is not None and cancel():
                raise RenderCancelled("render cancelled")
            count = min(_CHUNK, total - start)
            x = _read(f, start - pad, start + count + pad) * gain
            reduction = limiter.reduction(x, pad, count)
            y = x[pad : pad + count] * (10.0 ** (-reduction / 20.0))[:, None]
            block = np.ascontiguousarray(y.T, dtype=np.float32)
            writer.write(block)
            meter.process(block.T)
            if progress is not None:
                progress((start + count) / total)


def master_file(
    src_path: str,
    out_path: str,
    fmt: OutputFormat,
    sample_rate: int,
    measured_lufs: float,
    target: MasterTarget,
    progress: Callable[[float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> MasterResult:
    """Master the float mix at `src_path` (measured at `measured_lufs`) into `out_path`."""
    gain_db = 0.0
    if math.isfinite(measured_lufs):
        gain_db = min(_MAX_GAIN_DB, target.lufs - measured_lufs)
    ceiling_db = target.ceiling_dbtp - _FIRST_MARGIN_DB
    result: MasterResult | None = None
    previous: tuple[float, float] | None = None  # (gain_db, lufs) of the last pass
    for attempt in range(_MAX_PASSES):
        writer = Writer(out_path, fmt, sample_rate, 2)
        meter = LoudnessMeter(sample_rate, 2)
        stage = None
        if progress is not None:

            def stage(
                f: float, attempt: int = attempt, outer: Callable[[float], None] = progress
            ) -> None:
                outer(min(1.0, (attempt + f) / 2.0))

        try:
            _pass(src_path, writer, meter, gain_db, ceiling_db, sample_rate, stage, cancel)
        except BaseException:
            writer.abort()
            raise
        sha = writer.close()
        lufs, true_peak = meter.integrated_lufs(), meter.true_peak_dbtp()
        result = MasterResult(sha, writer.peak, lufs, true_peak, gain_db, attempt + 1)
        peak_ok = true_peak <= target.ceiling_dbtp
        if not math.isfinite(lufs) or (abs(lufs - target.lufs) <= _TOLERANCE_LU and peak_ok):
            break
        if not peak_ok:
            ceiling_db -= true_peak - target.ceiling_dbtp + 0.05
        # Under heavy limiting a dB of gain buys much less than a LU; the slope
        # seen between the last two passes (secant step) corrects for that.
        slope = 1.0
        if previous is not None and gain_db != previous[0]:
            slope = min(1.0, max(0.05, (lufs - previous[1]) / (gain_db - previous[0])))
        previous = (gain_db, lufs)
        gain_db = min(_MAX_GAIN_DB, gain_db + (target.lufs - lufs) / slope)
    assert result is not None
    return result
