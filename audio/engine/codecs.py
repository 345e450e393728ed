"""Probing, validating and stream-decoding uploaded audio files.

Everything goes through libsndfile (via soundfile), which detects the container by
content rather than by file name and decodes MP3 through mpg123 with gapless
support, so decoded MP3 is sample-aligned with the original.

Errors a user can cause (a wrong file, a damaged upload, an unsupported layout)
raise `AudioFormatError`, whose message is meant to be shown to them as is.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import soundfile as sf

__all__ = [
    "SUPPORTED_FORMATS",
    "SUPPORTED_RATES",
    "AudioFormatError",
    "AudioInfo",
    "iter_blocks",
    "probe",
    "validate",
]

SUPPORTED_FORMATS = ("wav", "aiff", "flac", "ogg", "mp3")
SUPPORTED_RATES = (22050, 24000, 32000, 44100, 48000, 88200, 96000)

# libsndfile's major format names -> ours. WAVEX and RF64 are WAV variants
# (multichannel masks, files over 4 GiB) that tools write without asking.
_FORMAT_NAMES = {
    "WAV": "wav",
    "WAVEX": "wav",
    "RF64": "wav",
    "AIFF": "aiff",
    "FLAC": "flac",
    "OGG": "ogg",
    "MP3": "mp3",
}

# Float files can carry NaN/inf, which would silently poison every measurement.
_FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})


class AudioFormatError(ValueError):
    """The file is not audio we can use; the message is meant for the user."""


@dataclass(frozen=True)
class AudioInfo:
    format: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


def probe(path: str | os.PathLike[str]) -> AudioInfo:
    """Read the header only and check the file is audio we support.

    Raises AudioFormatError for anything that is not usable audio. Data errors
    further into the file are only found by decoding: see `validate`.
    """
    fspath = os.fspath(path)
    if os.path.getsize(fspath) == 0:
        raise AudioFormatError("not an audio file (the file is empty)")
    try:
        with sf.SoundFile(fspath) as f:
            sf_format, subtype = f.format, f.subtype
            sample_rate, channels, frames = f.samplerate, f.channels, f.frames
    except sf.LibsndfileError:
        raise AudioFormatError("not an audio file (unrecognised format)") from None

    fmt = _FORMAT_NAMES.get(sf_format)
    if fmt is None:
        raise AudioFormatError(
            f"unsupported audio format {sf_format} (supported: {', '.join(SUPPORTED_FORMATS)})"
        )
    if channels > 2:
        raise AudioFormatError(f"{channels} channels: only mono and stereo are supported")
    if sample_rate not in SUPPORTED_RATES:
        supported = ", ".join(str(r) for r in SUPPORTED_RATES)
        raise AudioFormatError(f"unsupported sample rate {sample_rate} Hz (supported: {supported})")
    if frames <= 0:
        raise AudioFormatError("empty audio (0 frames)")

    # libsndfile clamps a WAV/AIFF whose header claims more data than the file
    # holds and reports the clamped length without complaint, so the truncation
    # is only visible by reading the header ourselves.
    declared = _declared_pcm_frames(fspath, fmt)
    if declared is not None and declared > frames:
        raise AudioFormatError(_truncated_message(declared, frames))

    return AudioInfo(
        format=fmt,
        subtype=subtype,
        sample_rate=sample_rate,
        channels=channels,
        frames=frames,
    )


def iter_blocks(
    path: str | os.PathLike[str],
    block_frames: int = 65536,
    start: int = 0,
    frames: int | None = None,
) -> Iterator[npt.NDArray[np.float32]]:
    """Decode `frames` frames from `start` as float32 blocks shaped (n, channels).

    The header is checked immediately (so a bad file raises at the call, not at
    the first `next`). `frames=None` means to the end; a range past the end is
    cut at the end. Raises AudioFormatError while iterating if the data turns
    out to be corrupt or shorter than the header declares.
    """
    if block_frames <= 0:
        raise ValueError(f"block_frames must be positive, got {block_frames}")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    if frames is not None and frames < 0:
        raise ValueError(f"frames must be >= 0, got {frames}")
    info = probe(path)
    end = info.frames if frames is None else min(info.frames, start + frames)
    return _decode(os.fspath(path), info, block_frames, min(start, end), end)


def validate(path: str | os.PathLike[str], max_duration_s: float | None = None) -> AudioInfo:
    """Probe, enforce the duration limit, then decode the whole file once.

    The decode pass does no DSP; it exists so that truncated or corrupt data is
    refused at upload time rather than in the middle of a render.
    """
    info = probe(path)
    if max_duration_s is not None and info.duration_s > max_duration_s:
        raise AudioFormatError(
            f"audio is too long: {_format_duration(info.duration_s)} "
            f"(the limit is {_format_duration(max_duration_s)})"
        )
    for _ in iter_blocks(path, block_frames=1 << 17):
        pass
    return info


def _decode(
    path: str, info: AudioInfo, block_frames: int, start: int, end: int
) -> Iterator[npt.NDArray[np.float32]]:
    check_finite = info.subtype in _FLOAT_SUBTYPES
    with sf.SoundFile(path) as f:
        pos = start
        if start:
            f.seek(start)
        while pos < end:
            try:
                block = f.read(min(block_frames, end - pos), dtype="float32", always_2d=True)
            except sf.LibsndfileError:
                raise AudioFormatError(f"corrupt or truncated audio data at frame {pos}") from None
            if len(block) == 0:
                raise AudioFormatError(_truncated_message(info.frames, pos))
            if check_finite and not np.isfinite(block).all():
                bad = pos + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
                raise AudioFormatError(f"corrupt audio data at frame {bad} (not a number)")
            pos += len(block)
            yield block


def _truncated_message(declared: int, present: int) -> str:
    return f"file is truncated: header declares {declared} frames but only {present} are present"


def _format_duration(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    frac = f"{seconds - whole:.1f}"[1:]
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}{frac}"
    return f"{minutes}:{secs:02d}{frac}"


def _declared_pcm_frames(path: str, fmt: str) -> int | None:
    """Frames the WAV/AIFF header promises, or None when it cannot tell."""
    try:
        with open(path, "rb") as f:
            if fmt == "wav":
                return _riff_declared_frames(f, os.fstat(f.fileno()).st_size)
            if fmt == "aiff":
                return _aiff_declared_frames(f)
    except (OSError, struct.error):
        return None
    return None


def _riff_declared_frames(f: BinaryIO, file_size: int) -> int | None:
    if f.read(4) != b"RIFF":
        return None  # RF64 and friends carry their sizes elsewhere; trust libsndfile
    f.read(8)  # RIFF size, "WAVE"
    block_align = 0
    pos = 12
    while pos + 8 <= file_size:
        f.seek(pos)
        chunk_id, size = struct.unpack("<4sI", f.read(8))
        if chunk_id == b"fmt ":
            _tag, _channels, _rate, _byte_rate, block_align = struct.unpack("<HHIIH", f.read(14))
        elif chunk_id == b"data":
            # Streaming writers that cannot seek back leave 0 or 0xFFFFFFFF here
            # meaning "until end of file"; that is not truncation.
            if block_align <= 0 or size in (0, 0xFFFFFFFF):
                return None
            return int(size) // int(block_align)
        pos += 8 + size + (size & 1)
    return None


def _aiff_declared_frames(f: BinaryIO) -> int | None:
    if f.read(4) != b"FORM":
        return None
    f.read(8)  # FORM size, "AIFF"/"AIFC"
    while True:
        header = f.read(8)
        if len(header) < 8:
            return None
        chunk_id, size = struct.unpack(">4sI", header)
        if chunk_id == b"COMM":
            _channels, frames = struct.unpack(">hI", f.read(6))
            return int(frames)
        f.seek(size + (size & 1), os.SEEK_CUR)
