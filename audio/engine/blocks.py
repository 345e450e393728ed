"""Shared handling of the (frames, channels) blocks the engine streams."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def planar(block: npt.NDArray[np.floating[Any]], channels: int) -> npt.NDArray[np.floating[Any]]:
    """A block shaped (n, channels) (1-D accepted for mono) as a contiguous
    (channels, n) array: reductions and filters along a contiguous axis are
    several times faster than along axis 0 of (n, channels)."""
    if block.ndim == 1 and channels == 1:
        block = block[:, np.newaxis]
    if block.ndim != 2 or block.shape[1] != channels:
        raise ValueError(f"expected a block shaped (n, {channels}), got {tuple(block.shape)}")
    return np.ascontiguousarray(block.T)
