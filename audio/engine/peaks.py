"""Multi-resolution waveform peaks in the BBC audiowaveform JSON layout (v2, 8-bit).

Each level maps to a dict the browser can use as is::

    {"version": 2, "channels": C, "sample_rate": R, "samples_per_pixel": N,
     "bits": 8, "length": L, "data": [min, max, ...]}

`data` holds, pixel by pixel, each channel's minimum then maximum:
ch0 min, ch0 max, ch1 min, ch1 max, then the next pixel. Pixel i covers
samples [i*N, (i+1)*N); the last pixel may be partial, so L = ceil(frames / N).

Values are 8-bit: round(x * 128) clipped to -128..127, so full scale maps to
the full range and silence to 0. Only the finest level is built from samples;
coarser levels merge its pixels, which is exact because min/max compose and
the 8-bit mapping is monotonic.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .blocks import planar as as_planar

__all__ = ["DEFAULT_LEVELS", "PeaksBuilder"]

DEFAULT_LEVELS = (256, 1024, 4096, 16384)


class PeaksBuilder:
    """Streaming min/max per pixel for several zoom levels."""

    def __init__(
        self, sample_rate: int, channels: int, levels: tuple[int, ...] = DEFAULT_LEVELS
    ) -> None:
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        if not levels or min(levels) <= 0:
            raise ValueError(f"levels must be positive samples-per-pixel values, got {levels}")
        finest = min(levels)
        if any(level % finest for level in levels):
            raise ValueError(f"every level must be a multiple of the finest ({finest}): {levels}")
        self.sample_rate = sample_rate
        self.channels = channels
        self.levels = tuple(sorted(set(levels)))
        self._finest = finest
        # Finished finest-level pixels, as (pixels, channels, 2) int8 chunks.
        self._chunks: list[npt.NDArray[np.int8]] = []
        # The pixel being filled: running min/max per channel and its fill.
        self._partial_min = np.zeros(channels, dtype=np.float32)
        self._partial_max = np.zeros(channels, dtype=np.float32)
        self._partial_count = 0

    def process(self, block: npt.NDArray[np.floating[Any]]) -> None:
        """Add a block shaped (n, channels) (1-D accepted for mono)."""
        planar = as_planar(block, self.channels)
        if planar.shape[1] == 0:
            return
        n, spp, i = planar.shape[1], self._finest, 0
        if self._partial_count:
            take = min(spp - self._partial_count, n)
            head = planar[:, :take]
            np.minimum(self._partial_min, head.min(axis=1), out=self._partial_min)
            np.maximum(self._partial_max, head.max(axis=1), out=self._partial_max)
            self._partial_count += take
            i = take
            if self._partial_count == spp:
                self._chunks.append(_quantise(self._partial_min, self._partial_max)[np.newaxis])
                self._partial_count = 0
        whole = (n - i) // spp
        if whole:
            pixels = planar[:, i : i + whole * spp].reshape(self.channels, whole, spp)
            self._chunks.append(_quantise(pixels.min(axis=2).T, pixels.max(axis=2).T))
            i += whole * spp
        if i < n:
            tail = planar[:, i:]
            self._partial_min[:] = tail.min(axis=1)
            self._partial_max[:] = tail.max(axis=1)
            self._partial_count = n - i

    def result(self) -> dict[int, dict[str, Any]]:
        """samples_per_pixel -> audiowaveform JSON dict. Does not end the stream."""
        chunks = list(self._chunks)
        if self._partial_count:
            chunks.append(_quantise(self._partial_min, self._partial_max)[np.newaxis])
        finest = (
            np.concatenate(chunks) if chunks else np.zeros((0, self.channels, 2), dtype=np.int8)
        )
        out: dict[int, dict[str, Any]] = {}
        for level in self.levels:
            pixels = _merge(finest, level // self._finest)
            out[level] = {
                "version": 2,
                "channels": self.channels,
                "sample_rate": self.sample_rate,
                "samples_per_pixel": level,
                "bits": 8,
                "length": int(pixels.shape[0]),
                "data": _int_list(pixels.reshape(-1)),
            }
        return out


# CPython shares the int objects 0..256 but allocates every negative int below
# -5 anew: a plain tolist() of 50 minutes of peaks costs ~100 MB. Going through
# non-negative offsets and a table of shared objects keeps it at the 8 bytes of
# the list slot per value.
_INT8_OBJECTS = list(range(-128, 128))


def _int_list(values: npt.NDArray[np.int8]) -> list[int]:
    out: list[int] = []
    # In slices, so the temporary list of offsets stays small.
    for start in range(0, values.size, 1 << 16):
        offsets = (values[start : start + (1 << 16)].astype(np.int16) + 128).tolist()
        out.extend(map(_INT8_OBJECTS.__getitem__, offsets))
    return out


def _quantise(
    low: npt.NDArray[np.floating[Any]], high: npt.NDArray[np.floating[Any]]
) -> npt.NDArray[np.int8]:
    """Stack per-channel min and max as 8-bit values: (..., channels, 2)."""
    pair = np.stack([low, high], axis=-1)
    return np.clip(np.rint(pair * 128.0), -128, 127).astype(np.int8)


def _merge(pixels: npt.NDArray[np.int8], factor: int) -> npt.NDArray[np.int8]:
    """Merge every `factor` consecutive pixels (the last group may be short)."""
    if factor == 1 or pixels.shape[0] == 0:
        return pixels
    groups = -(-pixels.shape[0] // factor)
    pad = groups * factor - pixels.shape[0]
    if pad:
        # Pad with a copy of the last pixel: it changes neither min nor max.
        pixels = np.concatenate([pixels, np.repeat(pixels[-1:], pad, axis=0)])
    grouped = pixels.reshape(groups, factor, *pixels.shape[1:])
    merged = np.empty((groups, *pixels.shape[1:]), dtype=np.int8)
    merged[..., 0] = grouped[..., 0].min(axis=1)
    merged[..., 1] = grouped[..., 1].max(axis=1)
    return merged
