"""BS.1770-4 / EBU R 128 meter: conformance signals, streaming, ffmpeg cross-check."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
from scipy import signal

from audio.engine.loudness import LoudnessMeter, k_weighting_sos, measure

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def stereo_sine(
    level_db: float, seconds: float, rate: int, freq: float = 1000.0, phase_deg: float = 0.0
) -> npt.NDArray[np.float64]:
    """Both channels the same sine; `level_db` is its peak in dBFS per channel."""
    t = np.arange(round(seconds * rate)) / rate
    x = 10 ** (level_db / 20) * np.sin(2 * np.pi * freq * t + np.deg2rad(phase_deg))
    return np.stack([x, x], axis=1)


def sequence(parts: list[tuple[float, float]], rate: int) -> npt.NDArray[np.float64]:
    return np.concatenate([stereo_sine(db, seconds, rate) for db, seconds in parts])


def music_like(seconds: float, rate: int, seed: int = 1) -> npt.NDArray[np.float32]:
    """Tilted noise plus a few tones under a slow envelope, with a quiet passage."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    t = np.arange(n) / rate
    white = rng.standard_normal((n, 2))
    # A one-pole low-pass tilts the spectrum towards low frequencies, as music's is.
    warm = signal.lfilter([0.05], [1.0, -0.95], white, axis=0)
    tones = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((110, 220, 440, 1760), 1))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 0.25 * t) ** 2
    x = (0.03 * white + 0.3 * warm + 0.15 * tones[:, None]) * envelope[:, None]
    x[int(n * 0.4) : int(n * 0.5)] *= 0.05  # a quiet passage for the gates to act on
    return x.astype(np.float32)


def test_k_weighting_at_48k_reproduces_the_bs1770_table() -> None:
    expected = np.array(
        [
            [1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241,
             0.73248077421585],
            [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621],
        ]
    )  # fmt: skip
    np.testing.assert_allclose(k_weighting_sos(48000), expected, atol=1e-8)


# EBU Tech 3341 table 1, cases 1-5: stereo 1 kHz sines, (level dBFS, seconds).
TECH_3341_CASES = {
    1: ([(-23.0, 20.0)], -23.0),
    2: ([(-33.0, 20.0)], -33.0),
    3: ([(-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0)], -23.0),
    4: ([(-72.0, 10.0), (-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0), (-72.0, 10.0)], -23.0),
    5: ([(-26.0, 20.0), (-20.0, 20.1), (-26.0, 20.0)], -23.0),
}


@pytest.mark.parametrize("rate", [48000, 44100])
@pytest.mark.parametrize("case", sorted(TECH_3341_CASES))
def test_tech_3341_integrated_loudness_cases(case: int, rate: int) -> None:
    parts, expected = TECH_3341_CASES[case]
    result = measure(sequence(parts, rate), rate)
    assert result.integrated_lufs == pytest.approx(expected, abs=0.1)


# EBU Tech 3341 cases 15-19 at 48 kHz: (frequency, peak amplitude, phase, expected dBTP).
TRUE_PEAK_CASES = {
    15: (12000.0, 0.5, 0.0, -6.0),
    16: (12000.0, 0.5, 45.0, -6.0),
    17: (8000.0, 0.5, 60.0, -6.0),
    18: (6000.0, 0.5, 67.5, -6.0),
    19: (12000.0, 1.41, 45.0, 3.0),
}


@pytest.mark.parametrize("case", sorted(TRUE_PEAK_CASES))
def test_tech_3341_true_peak_cases(case: int) -> None:
    freq, amplitude, phase, expected = TRUE_PEAK_CASES[case]
    signal = stereo_sine(20 * np.log10(amplitude), 2.0, 48000, freq, phase)
    true_peak = measure(signal.astype(np.float32), 48000).true_peak_dbtp
    assert expected - 0.4 <= true_peak <= expected + 0.2


def test_true_peak_finds_the_intersample_peak_the_samples_miss() -> None:
    # fs/4 at 45 degrees: every sample sits 3 dB below the waveform's crest.
    result = measure(stereo_sine(-6.0206, 1.0, 48000, 12000.0, 45.0), 48000)
    assert result.sample_peak_dbfs == pytest.approx(-9.03, abs=0.01)
    assert result.true_peak_dbtp == pytest.approx(-6.02, abs=0.02)


@pytest.mark.parametrize("block", [1, 37, 4800, 65536])
def test_meter_results_do_not_depend_on_block_size(block: int) -> None:
    rate = 44100
    x = music_like(1.5 if block == 1 else 6.0, rate)
    whole = LoudnessMeter(rate, 2)
    whole.process(x)
    cut = LoudnessMeter(rate, 2)
    for start in range(0, len(x), block):
        cut.process(x[start : start + block])
    assert cut.integrated_lufs() == pytest.approx(whole.integrated_lufs(), abs=1e-9)
    assert cut.true_peak_dbtp() == pytest.approx(whole.true_peak_dbtp(), abs=1e-5)
    assert cut.sample_peak_dbfs() == whole.sample_peak_dbfs()


def test_silence_reads_minus_infinity() -> None:
    result = measure(np.zeros((48000 * 2, 2), dtype=np.float32), 48000)
    assert result.integrated_lufs == float("-inf")
    assert result.true_peak_dbtp == float("-inf")
    assert result.sample_peak_dbfs == float("-inf")


def test_signal_below_the_absolute_gate_reads_minus_infinity() -> None:
    assert measure(stereo_sine(-75.0, 5.0, 48000), 48000).integrated_lufs == float("-inf")


def test_less_than_one_gating_block_reads_minus_infinity() -> None:
    assert measure(stereo_sine(-20.0, 0.35, 48000), 48000).integrated_lufs == float("-inf")


def test_mono_input_is_one_channel_at_unit_weight() -> None:
    # One channel of a stereo pair carries half the power: 3.01 LU less.
    stereo = measure(stereo_sine(-20.0, 10.0, 48000), 48000).integrated_lufs
    mono = measure(stereo_sine(-20.0, 10.0, 48000)[:, 0], 48000).integrated_lufs
    assert stereo - mono == pytest.approx(3.01, abs=0.01)


def test_momentary_max_and_loudness_range_of_a_two_level_sequence() -> None:
    meter = LoudnessMeter(48000, 2)
    meter.process(sequence([(-30.0, 20.0), (-20.0, 20.0)], 48000))
    assert meter.momentary_max_lufs() == pytest.approx(-20.0, abs=0.05)
    # Tech 3342 style: the 10th/95th percentiles of short-term loudness sit
    # on the two plateaus.
    assert meter.loudness_range_lu() == pytest.approx(10.0, abs=0.2)


def _ffmpeg_ebur128(path: Path) -> dict[str, float]:
    done = subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-nostats", "-i", str(path),
            "-af", "ebur128=metadata=1:peak=true,ametadata=mode=print:file=-",
            "-f", "null", "-",
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    values = dict(re.findall(r"lavfi\.r128\.(\w+)=(-?[\d.]+|-?inf)", done.stdout))
    return {key: float(value) for key, value in values.items()}


@needs_ffmpeg
@pytest.mark.parametrize("rate", [48000, 44100])
def test_integrated_loudness_matches_ffmpeg_ebur128(tmp_path: Path, rate: int) -> None:
    x = music_like(20.0, rate)
    path = tmp_path / "music.wav"
    sf.write(path, x, rate, subtype="FLOAT")
    ours = measure(x, rate)
    theirs = _ffmpeg_ebur128(path)
    assert ours.integrated_lufs == pytest.approx(theirs["I"], abs=0.1)
    # ffmpeg's true peak resamples with libswresample: a different filter,
    # so only broadly comparable.
    assert ours.true_peak_dbtp == pytest.approx(20 * np.log10(theirs["true_peak"]), abs=0.2)


@pytest.mark.parametrize("use_kernel", [True, False])
def test_k_weighting_matches_scipy_sosfilt_bit_for_bit(monkeypatch, use_kernel):
    # The meter calls scipy's compiled biquad kernel directly (to avoid
    # importing scipy.signal); both it and the fallback must give exactly
    # what scipy.signal.sosfilt gives, state carried across blocks included.
    from audio.engine import loudness

    if use_kernel:
        assert loudness._sos_kernel() is not None  # the fast path is really taken
    else:
        monkeypatch.setattr(loudness, "_sos_kernel", lambda: None)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 30000))
    sos = loudness.k_weighting_sos(44100)
    expected, _ = signal.sosfilt(sos, x, axis=-1, zi=np.zeros((2, 2, 2)))
    state = np.zeros((2, 2, 2))
    pieces = []
    for start, stop in [(0, 1), (1, 4096), (4096, 30000)]:
        part = np.array(x[:, start:stop])
        loudness._sosfilt(sos, part, state)
        pieces.append(part)
    assert np.array_equal(np.concatenate(pieces, axis=1), expected)


def test_importing_the_renderer_does_not_import_scipy_signal():
    import sys

    root = Path(__file__).resolve().parents[3]
    code = "import sys, audio.engine.render; print('scipy.signal' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "False"
