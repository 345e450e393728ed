"""Sequential, seeking readers for clip sources, resampled to the project rate.

A reader starts at a position expressed in project-rate samples and hands out
consecutive frames as float32 arrays shaped (channels, frames). Reading is
sample-accurate through libsndfile (also for MP3), so memory stays bounded by
one chunk however long the source is.
"""

from __future__ import annotations

from functools import lru_cache
from math import gcd
from typing import Protocol

import numpy as np
import soundfile as sf
from numpy.typing import NDArray

__all__ = ["SourceReader", "open_reader", "resampled_length"]

Audio = NDArray[np.float32]

# Source frames per resampling chunk (rounded to whole resampling periods).
_RESAMPLE_CHUNK = 16384
# Anti-aliasing filter reach in input-or-output periods either side, and its
# Kaiser beta: about -100 dB of error in the passband, against scipy's default
# (10, 5.0) at about -60 dB.
_FILTER_REACH = 24
_FILTER_BETA = 9.0


@lru_cache(maxsize=16)
def _filter(up: int, down: int) -> NDArray[np.float64]:
    from scipy.signal import firwin  # slow import, only needed when resampling

    taps = 2 * _FILTER_REACH * max(up, down) + 1
    h: NDArray[np.float64] = firwin(taps, 1.0 / max(up, down), window=("kaiser", _FILTER_BETA))
    return h


class SourceReader(Protocol):
    channels: int

    def read(self, frames: int) -> Audio: ...

    def close(self) -> None: ...


def resampled_length(frames: int, source_rate: int, sample_rate: int) -> int:
    """Length of a source in project samples: round(duration * sample_rate)."""
    if source_rate == sample_rate:
        return frames
    return round(frames * sample_rate / source_rate)


class _DirectReader:
    """Source already at the project rate: seek once, then read on."""

    def __init__(self, path: str, start: int) -> None:
        self._file = sf.SoundFile(path)
        self.channels = int(self._file.channels)
        if start:
            self._file.seek(min(start, self._file.frames))

    def read(self, frames: int) -> Audio:
        data = np.empty((frames, self.channels), dtype=np.float32)
        # Straight to libsndfile: SoundFile.read() re-seeks to the current
        # position after every call, which makes the FLAC decoder re-sync and
        # costs about a fifth of the decode time on a plain mix. cffi releases
        # the GIL for the call, so other threads run while libFLAC decodes.
        pointer = sf._ffi.cast("float *", data.ctypes.data)
        got = max(0, int(sf._snd.sf_readf_float(self._file._file, pointer, frames)))
        if got < frames:
            data[got:] = 0.0
        return data.T

    def close(self) -> None:
        self._file.close()


class _ResampledReader:
    """Polyphase resampling in fixed chunks aligned on absolute source positions.

    Chunk k always covers the same source span with the same margins, so a
    resampled sample has one value whatever the clip offset or render block
    size: output is deterministic and block-size independent.
    """

    def __init__(self, path: str, source_rate: int, sample_rate: int, start: int) -> None:
        self._file = sf.SoundFile(path)
        self.channels = int(self._file.channels)
        self._frames = int(self._file.frames)
        g = gcd(source_rate, sample_rate)
        self._up = sample_rate // g
        self._down = source_rate // g
        periods = max(1, _RESAMPLE_CHUNK // self._down)
        self._chunk_in = periods * self._down
        self._chunk_out = periods * self._up
        # The filter spans _FILTER_REACH * max(up, down) taps on the upsampled
        # grid either side; the margin covers that, in whole periods so chunk
        # edges stay on the output grid.
        support = _FILTER_REACH * max(self._up, self._down) // self._up + 2
        self._margin = -(-support // self._down) * self._down
        self._chunk = start // self._chunk_out
        self._pending = self._resample_chunk(self._chunk)[
            :, start - self._chunk * self._chunk_out :
        ]

    def _source(self, begin: int, end: int) -> NDArray[np.float32]:
        out = np.zeros((end - begin, self.channels), dtype=np.float32)
        lo, hi = max(begin, 0), min(end, self._frames)
        if hi > lo:
            self._file.seek(lo)
            out[lo - begin : hi - begin] = self._file.read(hi - lo, dtype="float32", always_2d=True)
        return out

    def _resample_chunk(self, k: int) -> Audio:
        begin = k * self._chunk_in - self._margin
        block = self._source(begin, (k + 1) * self._chunk_in + self._margin)
        from scipy.signal import resample_poly

        out = resample_poly(
            block, self._up, self._down, axis=0, window=_filter(self._up, self._down)
        )
        skip = self._margin * self._up // self._down
        return np.ascontiguousarray(out[skip : skip + self._chunk_out].T, dtype=np.float32)

    def read(self, frames: int) -> Audio:
        parts = [self._pending]
        have = self._pending.shape[1]
        while have < frames:
            self._chunk += 1
            chunk = self._resample_chunk(self._chunk)
            parts.append(chunk)
            have += chunk.shape[1]
        joined = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
        self._pending = joined[:, frames:]
        return joined[:, :frames]

    def close(self) -> None:
        self._file.close()


def open_reader(path: str, source_rate: int, sample_rate: int, start: int) -> SourceReader:
    """Reader positioned `start` project-rate samples into the source."""
    if source_rate == sample_rate:
        return _DirectReader(path, start)
    return _ResampledReader(path, source_rate, sample_rate, start)
