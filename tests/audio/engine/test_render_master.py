"""Mastering lands on the loudness target with the true peak under the ceiling."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import lfilter

from audio.engine.loudness import measure
from audio.engine.master import PRESETS, MasterTarget, resolve_target

from .render_helpers import RATE, clip, document, render_doc, track, write_source


def pinkish(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    white = rng.standard_normal((round(seconds * RATE), 2))
    return lfilter([1.0], [1.0, -0.95], white, axis=0)


def quiet(seconds: float) -> np.ndarray:
    x = pinkish(seconds, 1)
    return (x / np.abs(x).max() * 0.01).astype(np.float32)


def dense(seconds: float) -> np.ndarray:
    # Saturated noise plus a square bass: loud, flat envelope, little crest.
    x = np.tanh(pinkish(seconds, 2) * 3.0)
    t = np.arange(x.shape[0]) / RATE
    x += 0.5 * np.sign(np.sin(2 * np.pi * 55 * t))[:, None]
    return (x / np.abs(x).max() * 0.99).astype(np.float32)


def dynamic(seconds: float) -> np.ndarray:
    # A third near silence (-50 dBFS), a third sparse full-scale hits over a
    # -30 dBFS bed, a third loud noise peaking at 0 dBFS: about 50 dB of range.
    x = pinkish(seconds, 3)
    x = x / np.abs(x).max()
    third = x.shape[0] // 3
    x[:third] *= 10 ** (-50 / 20)
    x[third : 2 * third] *= 10 ** (-30 / 20)
    hit = np.exp(-np.arange(2400) / 300.0)[:, None] * pinkish(0.05, 4)
    hit = hit / np.abs(hit).max()
    for start in range(third, 2 * third - 2400, RATE // 2):
        x[start : start + 2400] += hit
    return (x / np.abs(x).max()).astype(np.float32)


MATERIALS = {"quiet": quiet, "dense": dense, "dynamic": dynamic}


@pytest.mark.parametrize("material", sorted(MATERIALS))
@pytest.mark.parametrize("target", ["streaming", "ebu", "-10"])
def test_master_meets_loudness_and_true_peak(tmp_path, material, target):
    write_source(tmp_path, "src.wav", MATERIALS[material](12.0))
    doc = document([track("t", [clip("src.wav")])])
    out, result = render_doc(tmp_path, doc, "m.wav", master=target)
    goal = resolve_target(target)
    measured = measure(out.astype(np.float32), RATE)
    assert abs(measured.integrated_lufs - goal.lufs) <= 0.5
    assert measured.true_peak_dbtp <= goal.ceiling_dbtp
    assert abs(result.lufs - measured.integrated_lufs) < 0.05
    assert out.shape[0] == 12 * RATE


def test_master_to_24_bit_file_is_deterministic(tmp_path):
    write_source(tmp_path, "src.wav", dynamic(6.0))
    doc = document([track("t", [clip("src.wav")])])
    _, a = render_doc(tmp_path, doc, "a.wav", bit_depth="24", master="apple")
    _, b = render_doc(tmp_path, doc, "b.wav", bit_depth="24", master="apple", block_frames=3000)
    assert a.pcm_sha256 == b.pcm_sha256
    data, _ = sf.read(str(tmp_path / "a.wav"), dtype="float32")
    assert abs(measure(data, RATE).integrated_lufs - PRESETS["apple"].lufs) <= 0.5


def test_master_target_parsing():
    assert resolve_target("streaming") == MasterTarget("streaming", -14.0, -1.0)
    assert resolve_target(-12).lufs == -12.0
    with pytest.raises(ValueError, match="master target"):
        resolve_target("loud")
