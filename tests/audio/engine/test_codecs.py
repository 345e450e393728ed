"""Probing, validation and streaming decode of every supported format."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from audio.engine.codecs import (
    SUPPORTED_FORMATS,
    AudioFormatError,
    AudioInfo,
    iter_blocks,
    probe,
    validate,
)

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")

RATE = 48000


def tone(seconds: float, rate: int = RATE, channels: int = 2) -> npt.NDArray[np.float32]:
    t = np.arange(round(seconds * rate)) / rate
    chans = [0.4 * np.sin(2 * np.pi * (220.0 * (c + 1)) * t) for c in range(channels)]
    return np.stack(chans, axis=1).astype(np.float32)


def click_track(seconds: float, rate: int = RATE) -> npt.NDArray[np.float32]:
    """Short decaying 2 kHz bursts every 0.25 s (with irregular offsets), stereo."""
    x = np.zeros(round(seconds * rate))
    burst = np.sin(2 * np.pi * 2000 * np.arange(480) / rate) * np.exp(-np.arange(480) / 80)
    rng = np.random.default_rng(3)
    for start in range(rate // 10, len(x) - 1000, rate // 4):
        offset = start + int(rng.integers(0, 200))
        x[offset : offset + 480] += 0.8 * burst
    return np.stack([x, 0.5 * x], axis=1).astype(np.float32)


def write(path: Path, data: npt.NDArray[np.float32], rate: int = RATE, **kwargs: str) -> Path:
    sf.write(path, data, rate, **kwargs)
    return path


def ffmpeg_encode(src: Path, dst: Path, *args: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), *args, str(dst)],
        check=True,
    )
    return dst


def decode_all(path: Path, **kwargs: int) -> npt.NDArray[np.float32]:
    return np.concatenate(list(iter_blocks(path, **kwargs)))


# --- formats -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kwargs", "expected_format", "exact"),
    [
        ("a.wav", {"subtype": "PCM_24"}, "wav", True),
        ("a.aiff", {"subtype": "PCM_16"}, "aiff", False),
        ("a.flac", {"subtype": "PCM_24"}, "flac", True),
        ("a.ogg", {"format": "OGG", "subtype": "VORBIS"}, "ogg", False),
    ],
)
def test_each_libsndfile_format_decodes_with_its_rate_channels_and_length(
    tmp_path: Path, name: str, kwargs: dict[str, str], expected_format: str, exact: bool
) -> None:
    original = tone(1.5, rate=44100)
    path = write(tmp_path / name, original, 44100, **kwargs)
    info = probe(path)
    assert (info.format, info.sample_rate, info.channels, info.frames) == (
        expected_format,
        44100,
        2,
        len(original),
    )
    decoded = decode_all(path)
    assert decoded.dtype == np.float32
    assert decoded.shape == original.shape
    tolerance = 1e-5 if exact else 0.05
    np.testing.assert_allclose(decoded, original, atol=tolerance)


@needs_ffmpeg
def test_mp3_decodes_sample_aligned_with_the_original(tmp_path: Path) -> None:
    original = click_track(4.0)
    source = write(tmp_path / "clicks.wav", original, subtype="PCM_16")
    mp3 = ffmpeg_encode(source, tmp_path / "clicks.mp3", "-c:a", "libmp3lame", "-b:a", "192k")
    info = probe(mp3)
    assert (info.format, info.sample_rate, info.channels) == ("mp3", RATE, 2)
    assert abs(info.frames - len(original)) <= 1152  # within one MP3 frame
    decoded = decode_all(mp3)
    assert len(decoded) == info.frames
    n = min(len(decoded), len(original))
    a, b = original[:n, 0].astype(np.float64), decoded[:n, 0].astype(np.float64)
    lags = np.arange(-2000, 2001)
    spectrum = np.fft.irfft(np.fft.rfft(b, 2 * n) * np.conj(np.fft.rfft(a, 2 * n)))
    xcorr = np.concatenate([spectrum[-2000:], spectrum[:2001]])
    assert lags[np.argmax(xcorr)] == 0


@needs_ffmpeg
def test_mp3_mono_at_44100_reports_its_layout(tmp_path: Path) -> None:
    source = write(tmp_path / "m.wav", tone(1.0, 44100, 1), 44100, subtype="PCM_16")
    mp3 = ffmpeg_encode(source, tmp_path / "m.mp3", "-c:a", "libmp3lame", "-b:a", "128k")
    info = probe(mp3)
    assert (info.format, info.sample_rate, info.channels) == ("mp3", 44100, 1)
    assert decode_all(mp3).shape == (info.frames, 1)


def test_format_is_detected_by_content_not_extension(tmp_path: Path) -> None:
    path = write(tmp_path / "really-flac.wav", tone(0.5), format="FLAC")
    assert probe(path).format == "flac"


def test_supported_formats_are_the_five_upload_formats() -> None:
    assert SUPPORTED_FORMATS == ("wav", "aiff", "flac", "ogg", "mp3")


def test_info_reports_duration_in_seconds() -> None:
    info = AudioInfo(format="wav", subtype="PCM_16", sample_rate=48000, channels=2, frames=72000)
    assert info.duration_s == 1.5


# --- streaming ---------------------------------------------------------------


def test_blocks_are_two_dimensional_float32_even_for_mono(tmp_path: Path) -> None:
    path = write(tmp_path / "mono.wav", tone(1.0, channels=1), subtype="PCM_16")
    blocks = list(iter_blocks(path, block_frames=10000))
    assert [b.shape for b in blocks] == [(10000, 1)] * 4 + [(8000, 1)]
    assert all(b.dtype == np.float32 for b in blocks)


def test_blocks_cover_exactly_the_requested_range(tmp_path: Path) -> None:
    original = tone(1.0)
    path = write(tmp_path / "a.flac", original, subtype="PCM_24")
    part = decode_all(path, block_frames=999, start=12345, frames=20000)
    np.testing.assert_allclose(part, original[12345:32345], atol=1e-6)


def test_a_range_past_the_end_stops_at_the_end(tmp_path: Path) -> None:
    path = write(tmp_path / "a.wav", tone(1.0), subtype="FLOAT")
    assert len(decode_all(path, start=47000, frames=5000)) == 1000


def test_bad_block_arguments_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "a.wav", tone(0.1), subtype="FLOAT")
    with pytest.raises(ValueError, match="block_frames"):
        iter_blocks(path, block_frames=0)
    with pytest.raises(ValueError, match="start"):
        iter_blocks(path, start=-1)


# --- refusals ----------------------------------------------------------------


def test_text_file_renamed_wav_is_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("These are my lyrics, not a song.\n" * 50)
    with pytest.raises(AudioFormatError, match=r"not an audio file \(unrecognised format\)"):
        probe(path)


def test_random_bytes_are_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp3"
    path.write_bytes(np.random.default_rng(0).bytes(20000))
    with pytest.raises(AudioFormatError, match="not an audio file"):
        probe(path)


def test_zero_length_file_is_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioFormatError, match="the file is empty"):
        probe(path)


def test_wav_with_no_frames_is_empty_audio(tmp_path: Path) -> None:
    path = tmp_path / "none.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
    with pytest.raises(AudioFormatError, match=r"empty audio \(0 frames\)"):
        probe(path)


def test_three_channels_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "three.wav", tone(0.2, channels=3), subtype="PCM_16")
    with pytest.raises(AudioFormatError, match="3 channels: only mono and stereo are supported"):
        probe(path)


def test_unsupported_sample_rate_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "phone.wav", tone(0.2, rate=8000), 8000, subtype="PCM_16")
    with pytest.raises(
        AudioFormatError, match=r"unsupported sample rate 8000 Hz \(supported: 22050"
    ):
        probe(path)


def test_unsupported_container_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "sun.au", tone(0.2), format="AU", subtype="PCM_16")
    with pytest.raises(AudioFormatError, match="unsupported audio format AU"):
        probe(path)


def _truncate(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    out = path.with_name("cut-" + path.name)
    out.write_bytes(data[: int(len(data) * keep)])
    return out


def test_truncated_wav_is_refused_at_probe(tmp_path: Path) -> None:
    path = _truncate(write(tmp_path / "a.wav", tone(2.0), subtype="PCM_16"), 0.25)
    # 96000 frames declared; 4-byte frames after a 44-byte header.
    present = (len(path.read_bytes()) - 44) // 4
    with pytest.raises(
        AudioFormatError,
        match=f"file is truncated: header declares 96000 frames but only {present} are present",
    ):
        probe(path)


def test_truncated_aiff_is_refused_at_probe(tmp_path: Path) -> None:
    path = _truncate(write(tmp_path / "a.aiff", tone(2.0), subtype="PCM_16"), 0.5)
    with pytest.raises(AudioFormatError, match="file is truncated: header declares 96000 frames"):
        probe(path)


def test_truncated_flac_is_refused_by_validate(tmp_path: Path) -> None:
    path = _truncate(write(tmp_path / "a.flac", tone(2.0), subtype="PCM_16"), 0.5)
    probe(path)  # FLAC's header is intact; only decoding reveals the cut
    with pytest.raises(AudioFormatError, match="truncated audio data at frame"):
        validate(path)


@needs_ffmpeg
def test_truncated_mp3_is_refused_by_validate(tmp_path: Path) -> None:
    source = write(tmp_path / "a.wav", tone(4.0), subtype="PCM_16")
    mp3 = ffmpeg_encode(source, tmp_path / "a.mp3", "-c:a", "libmp3lame", "-b:a", "192k")
    with pytest.raises(AudioFormatError, match="file is truncated: header declares 192000 frames"):
        validate(_truncate(mp3, 0.5))


def test_corrupt_flac_data_is_refused_with_its_position(tmp_path: Path) -> None:
    path = write(tmp_path / "a.flac", tone(3.0), subtype="PCM_16")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = bytes(b ^ 0x5A for b in data[middle : middle + 2000])
    path.write_bytes(bytes(data))
    with pytest.raises(AudioFormatError, match=r"corrupt or truncated audio data at frame \d+"):
        validate(path)


def test_float_wav_holding_nan_is_corrupt(tmp_path: Path) -> None:
    x = tone(1.0)
    x[30000, 1] = np.nan
    path = write(tmp_path / "nan.wav", x, subtype="FLOAT")
    with pytest.raises(AudioFormatError, match="corrupt audio data at frame 30000"):
        validate(path)


def test_validate_enforces_the_duration_limit(tmp_path: Path) -> None:
    path = write(tmp_path / "long.flac", tone(3.0, rate=22050), 22050, subtype="PCM_16")
    with pytest.raises(
        AudioFormatError, match=r"audio is too long: 0:03.0 \(the limit is 0:02.5\)"
    ):
        validate(path, max_duration_s=2.5)


def test_validate_returns_the_info_of_a_good_file(tmp_path: Path) -> None:
    path = write(tmp_path / "ok.wav", tone(1.0, rate=96000), 96000, subtype="PCM_24")
    assert validate(path, max_duration_s=60.0) == AudioInfo("wav", "PCM_24", 96000, 2, 96000)
