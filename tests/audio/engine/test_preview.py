"""Browser preview: Ogg Vorbis, same rate, channels and length as the source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from audio.engine.codecs import iter_blocks, probe
from audio.engine.preview import PreviewWriter, write_preview


def chord(seconds: float, rate: int, channels: int = 2) -> npt.NDArray[np.float32]:
    t = np.arange(round(seconds * rate)) / rate
    x = 0.2 * (np.sin(2 * np.pi * 220 * t) + np.sin(2 * np.pi * 330 * t))
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


@pytest.mark.parametrize(("rate", "channels"), [(48000, 2), (44100, 1), (96000, 2), (22050, 1)])
def test_preview_of_a_file_is_vorbis_with_the_source_layout_and_length(
    tmp_path: Path, rate: int, channels: int
) -> None:
    source = tmp_path / "src.flac"
    sf.write(source, chord(2.0, rate, channels), rate, subtype="PCM_24")
    out = tmp_path / "preview.ogg"
    write_preview(source, out)
    info = probe(out)
    assert (info.format, info.subtype) == ("ogg", "VORBIS")
    assert (info.sample_rate, info.channels, info.frames) == (rate, channels, 2 * rate)


def test_preview_is_aligned_and_close_to_the_source(tmp_path: Path) -> None:
    original = chord(2.0, 48000)
    out = tmp_path / "preview.ogg"
    write_preview(iter([original[:30000], original[30000:]]), out, 48000, 2)
    decoded = np.concatenate(list(iter_blocks(out)))
    # Lossy, but sample-aligned: the residual is small without any shift.
    residual = decoded[1000:-1000] - original[1000:-1000]
    assert np.sqrt(np.mean(residual**2)) < 0.01


def test_blocks_need_their_rate_and_channels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sample_rate and channels are required"):
        write_preview(iter([chord(0.1, 48000)]), tmp_path / "p.ogg")


def test_a_failed_preview_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "preview.ogg"
    with pytest.raises(RuntimeError, match="decode failed"), PreviewWriter(out, 48000, 2) as writer:
        writer.write(chord(0.5, 48000))
        raise RuntimeError("decode failed")
    assert not out.exists()


def test_writer_refuses_blocks_of_the_wrong_shape(tmp_path: Path) -> None:
    with PreviewWriter(tmp_path / "p.ogg", 48000, 2) as writer:
        with pytest.raises(ValueError, match=r"expected a block shaped \(n, 2\)"):
            writer.write(chord(0.1, 48000, channels=1))
        writer.write(chord(0.1, 48000))
