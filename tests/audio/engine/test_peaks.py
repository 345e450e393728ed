"""Waveform peaks in the audiowaveform v2 JSON layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audio.engine.peaks import PeaksBuilder


def test_layout_follows_audiowaveform_v2_with_channels_interleaved_per_pixel() -> None:
    # Pixel 0: left rises 0 -> 0.5, right is a constant -0.25.
    # Pixel 1: left is a constant 1.0, right falls -1.0 -> 0.
    left = np.concatenate([np.linspace(0.0, 0.5, 4), np.full(4, 1.0)])
    right = np.concatenate([np.full(4, -0.25), np.linspace(-1.0, 0.0, 4)])
    builder = PeaksBuilder(48000, 2, levels=(4, 8))
    builder.process(np.stack([left, right], axis=1).astype(np.float32))
    result = builder.result()
    assert result[4] == {
        "version": 2,
        "channels": 2,
        "sample_rate": 48000,
        "samples_per_pixel": 4,
        "bits": 8,
        "length": 2,
        "data": [0, 64, -32, -32, 127, 127, -128, 0],
    }
    assert result[8]["length"] == 1
    assert result[8]["data"] == [0, 127, -128, 0]
    json.dumps(result[4])  # plain ints, serialisable as is


def test_last_partial_pixel_is_kept() -> None:
    builder = PeaksBuilder(44100, 1, levels=(256, 1024))
    builder.process(np.full((1025, 1), 0.5, dtype=np.float32))
    result = builder.result()
    assert result[256]["length"] == 5
    assert result[1024]["length"] == 2
    assert result[1024]["data"] == [64, 64, 64, 64]


def test_coarse_levels_equal_peaks_computed_directly_at_that_level() -> None:
    x = np.random.default_rng(0).uniform(-1, 1, (100_003, 2)).astype(np.float32)
    x *= np.linspace(0.05, 1.0, len(x), dtype=np.float32)[:, None]
    derived = PeaksBuilder(48000, 2, levels=(256, 1024, 4096))
    derived.process(x)
    for level in (1024, 4096):
        direct = PeaksBuilder(48000, 2, levels=(level,))
        direct.process(x)
        assert derived.result()[level] == direct.result()[level]


@pytest.mark.parametrize("block", [1, 100, 256, 257, 65536])
def test_peaks_do_not_depend_on_block_size(block: int) -> None:
    x = np.random.default_rng(1).uniform(-1, 1, (5000 if block == 1 else 30_000, 2))
    whole = PeaksBuilder(48000, 2)
    whole.process(x)
    cut = PeaksBuilder(48000, 2)
    for start in range(0, len(x), block):
        cut.process(x[start : start + block])
    assert cut.result() == whole.result()


def test_values_use_the_full_8_bit_range_and_silence_is_zero() -> None:
    builder = PeaksBuilder(48000, 1, levels=(2,))
    builder.process(np.array([-1.0, 1.0, 0.0, 0.0, -2.0, 2.0], dtype=np.float32))
    assert builder.result()[2]["data"] == [-128, 127, 0, 0, -128, 127]


def test_empty_stream_has_no_pixels() -> None:
    result = PeaksBuilder(48000, 2).result()
    assert {level: r["length"] for level, r in result.items()} == {
        256: 0,
        1024: 0,
        4096: 0,
        16384: 0,
    }
    assert result[256]["data"] == []


def test_levels_must_be_multiples_of_the_finest() -> None:
    with pytest.raises(ValueError, match="multiple of the finest"):
        PeaksBuilder(48000, 2, levels=(256, 1000))
