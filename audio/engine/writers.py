"""Output files: WAV/FLAC through libsndfile, MP3 through pedalboard's LAME writer.

Every writer re-chunks its input into fixed-size pieces before quantising,
dithering or encoding, so the bytes depend only on the PCM stream and never on
the caller's block size. It also hashes the PCM exactly as written:
interleaved little-endian int16 (16-bit), int32 holding the sign-extended
24-bit value (24-bit), or float32 (32-bit float and MP3, whose encoder input is
float).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
import soundfile as sf
from numpy.typing import NDArray
from pedalboard.io import WriteableAudioFile

__all__ = ["BIT_DEPTHS", "MP3_QUALITIES", "OutputFormat", "Writer", "output_format"]

BIT_DEPTHS = ("16", "24", "32f")
MP3_QUALITIES = ("320", "V2")
_CHUNK = 8192
_SFC_SET_ADD_PEAK_CHUNK = 0x1050
_SUBTYPES = {"16": "PCM_16", "24": "PCM_24", "32f": "FLOAT"}


@dataclass(frozen=True)
class OutputFormat:
    container: str  # "wav", "flac" or "mp3"
    bit_depth: str = "24"  # "16", "24" or "32f"; ignored for MP3
    mp3_quality: str = "320"  # "320" (CBR kbps) or "V2" (LAME VBR preset)
    dither: bool = False  # seeded TPDF, only meaningful for 16-bit
    dither_seed: int = 0

    @property
    def extension(self) -> str:
        return self.container


def output_format(
    path: str,
    bit_depth: str = "24",
    mp3_quality: str = "320",
    dither: bool = False,
    dither_seed: int = 0,
) -> OutputFormat:
    """Format from the file extension, with the options validated against it."""
    container = os.path.splitext(path)[1].lower().lstrip(".")
    if container not in ("wav", "flac", "mp3"):
        raise ValueError(f"{path}: output must end in .wav, .flac or .mp3")
    if bit_depth not in BIT_DEPTHS:
        raise ValueError(f"bit depth must be one of {', '.join(BIT_DEPTHS)}")
    if container == "flac" and bit_depth == "32f":
        raise ValueError("FLAC stores 16 or 24-bit integers, not 32-bit float")
    if mp3_quality not in MP3_QUALITIES:
        raise ValueError(f"MP3 quality must be one of {', '.join(MP3_QUALITIES)}")
    return OutputFormat(container, bit_depth, mp3_quality, dither, dither_seed)


class Writer:
    """Streams float32 (channels, frames) blocks into one output file."""

    def __init__(self, path: str, fmt: OutputFormat, sample_rate: int, channels: int) -> None:
        self.path = path
        self.frames = 0
        self.peak = 0.0
        self._fmt = fmt
        self._channels = channels
        self._hash = hashlib.sha256()
        self._buffer = np.zeros((channels, _CHUNK), dtype=np.float32)
        self._fill = 0
        self._rng = np.random.default_rng(fmt.dither_seed)
        self._mp3: WriteableAudioFile | None = None
        self._sf: sf.SoundFile | None = None
        if fmt.container == "mp3":
            quality = "320 kbps" if fmt.mp3_quality == "320" else "V2"
            self._mp3 = WriteableAudioFile(path, sample_rate, channels, quality=quality)
        else:
            self._sf = sf.SoundFile(
                path,
                "w",
                samplerate=sample_rate,
                channels=channels,
                subtype=_SUBTYPES[fmt.bit_depth],
                format=fmt.container.upper(),
            )
            if fmt.bit_depth == "32f":
                # libsndfile stamps float WAVs with a PEAK chunk holding the
                # wall-clock time; without it the bytes depend only on the PCM.
                sf._snd.sf_command(self._sf._file, _SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0)

    def write(self, block: NDArray[np.float32]) -> None:
        done = 0
        frames = block.shape[1]
        while done < frames:
            take = min(_CHUNK - self._fill, frames - done)
            self._buffer[:, self._fill : self._fill + take] = block[:, done : done + take]
            self._fill += take
            done += take
            if self._fill == _CHUNK:
                self._flush()

    def _flush(self) -> None:
        if not self._fill:
            return
        chunk = self._buffer[:, : self._fill]
        self.frames += self._fill
        self._fill = 0
        if self._mp3 is not None:
            self._emit_float(chunk)
            self._mp3.write(chunk)
            return
        assert self._sf is not None
        if self._fmt.bit_depth == "32f":
            self._sf.write(self._emit_float(chunk))
            return
        bits = 16 if self._fmt.bit_depth == "16" else 24
        scale = float(1 << (bits - 1))
        if self._fmt.dither:
            scaled = chunk.T.astype(np.float64, order="C") * scale
            # TPDF: difference of two uniforms, +-1 LSB peak, from a seeded stream
            # consumed in fixed chunks, so reruns produce identical files.
            shape = scaled.shape
            scaled += self._rng.random(shape) - self._rng.random(shape)
        else:
            # Without dither float32 gives the same integers as float64: scaling
            # by a power of two is exact, and so are rint and the clip bounds
            # (|values| < 2**24), so the extra precision would change nothing.
            scaled = np.multiply(chunk.T, np.float32(scale), order="C")
        np.rint(scaled, out=scaled)
        np.clip(scaled, -scale, scale - 1, out=scaled)
        ints = scaled.astype("<i4")
        if ints.size:
            self.peak = max(self.peak, max(float(ints.max()), -float(ints.min())) / scale)
        if bits == 16:
            pcm16 = ints.astype("<i2")
            self._hash.update(pcm16.data)
            self._sf.write(pcm16)
        else:
            self._hash.update(ints.data)
            # libsndfile takes the top 24 bits of int32 samples for PCM_24.
            np.left_shift(ints, 8, out=ints)
            self._sf.write(ints)

    def _emit_float(self, chunk: NDArray[np.float32]) -> NDArray[np.float32]:
        interleaved = np.ascontiguousarray(chunk.T, dtype="<f4")
        self._hash.update(interleaved.tobytes())
        if interleaved.size:
            self.peak = max(self.peak, float(np.max(np.abs(interleaved))))
        return interleaved

    def close(self) -> str:
        """Finish the file; returns the SHA-256 of the PCM written."""
        self._flush()
        if self._mp3 is not None:
            self._mp3.close()
        if self._sf is not None:
            self._sf.close()
        return self._hash.hexdigest()

    def abort(self) -> None:
        """Close and delete a partial file (cancelled or failed render)."""
        try:
            if self._mp3 is not None:
                self._mp3.close()
            if self._sf is not None:
                self._sf.close()
        finally:
            if os.path.exists(self.path):
                os.remove(self.path)
