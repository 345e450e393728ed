"""One-pass ingest analysis: loudness, peaks, preview and progress together."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from audio.engine.analysis import analyse
from audio.engine.codecs import AudioFormatError, AudioInfo, probe
from audio.engine.loudness import measure
from audio.engine.peaks import PeaksBuilder


def song(seconds: float, rate: int) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(5)
    t = np.arange(round(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 196 * t)[:, None] + 0.05 * rng.standard_normal((len(t), 2))
    x *= (0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * t) ** 2)[:, None]
    return x.astype(np.float32)


@pytest.fixture
def flac(tmp_path: Path) -> tuple[Path, npt.NDArray[np.float32]]:
    x = song(6.0, 44100)
    path = tmp_path / "song.flac"
    sf.write(path, x, 44100, subtype="PCM_24")
    decoded, _ = sf.read(path, dtype="float32", always_2d=True)
    return path, decoded


def test_analysis_matches_the_individual_measurements(
    flac: tuple[Path, npt.NDArray[np.float32]],
) -> None:
    path, decoded = flac
    result = analyse(path, block_frames=10000)
    expected = measure(decoded, 44100)
    assert result.info == AudioInfo("flac", "PCM_24", 44100, 2, len(decoded))
    assert result.integrated_lufs == pytest.approx(expected.integrated_lufs, abs=1e-9)
    assert result.true_peak_dbtp == pytest.approx(expected.true_peak_dbtp, abs=1e-6)
    assert result.sample_peak_dbfs == expected.sample_peak_dbfs
    peaks = PeaksBuilder(44100, 2)
    peaks.process(decoded)
    assert result.peaks == peaks.result()
    assert sorted(result.peaks) == [256, 1024, 4096, 16384]


def test_analysis_writes_the_preview_in_the_same_pass(
    tmp_path: Path, flac: tuple[Path, npt.NDArray[np.float32]]
) -> None:
    path, decoded = flac
    preview = tmp_path / "preview.ogg"
    analyse(path, preview_path=preview)
    info = probe(preview)
    assert (info.format, info.sample_rate, info.channels, info.frames) == (
        "ogg",
        44100,
        2,
        len(decoded),
    )


def test_progress_is_reported_at_most_twenty_times_and_ends_at_one(
    flac: tuple[Path, npt.NDArray[np.float32]],
) -> None:
    path, _ = flac
    seen: list[float] = []
    analyse(path, progress=seen.append, block_frames=1000)
    assert len(seen) <= 20
    assert seen == sorted(seen)
    assert seen[0] == pytest.approx(0.05)
    assert seen[-1] == 1.0


def test_a_corrupt_file_raises_and_leaves_no_preview(
    tmp_path: Path, flac: tuple[Path, npt.NDArray[np.float32]]
) -> None:
    path, _ = flac
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    preview = tmp_path / "preview.ogg"
    with pytest.raises(AudioFormatError, match="at frame"):
        analyse(path, preview_path=preview)
    assert not preview.exists()


def test_silence_reads_minus_infinity(tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros((48000, 1), dtype=np.float32), 48000, subtype="PCM_16")
    result = analyse(path)
    assert result.integrated_lufs == float("-inf")
    assert result.true_peak_dbtp == float("-inf")
    assert result.peaks[256]["data"][:4] == [0, 0, 0, 0]
