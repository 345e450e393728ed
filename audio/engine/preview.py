"""Browser previews of uploaded audio.

The preview is Ogg Vorbis at libsndfile's compression level 0.5 (Vorbis VBR
quality 5, about 160 kbit/s for stereo music), at the source's own rate and
channel count. Why Vorbis rather than MP3:

- Chromium and Firefox play Ogg Vorbis natively (`<audio>` and
  `decodeAudioData`).
- Vorbis is gapless by construction (granule positions give the exact length),
  so the preview lines up sample for sample with the source on the timeline.
  An MP3 preview starts with encoder delay unless the player honours the LAME
  header.
- Vorbis accepts every supported rate (22.05 to 96 kHz); MP3 stops at 48 kHz
  and would need resampling first.
- libsndfile's Vorbis encoder is about four times faster than its LAME one.

Encoding runs on a background thread (libsndfile releases the GIL), so in
`analysis.analyse` it overlaps with the measurements instead of adding to them.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf

from audio.engine.codecs import iter_blocks, probe

__all__ = ["PREVIEW_EXTENSION", "PREVIEW_MIME_TYPE", "PreviewWriter", "write_preview"]

PREVIEW_EXTENSION = ".ogg"
PREVIEW_MIME_TYPE = "audio/ogg"
_COMPRESSION_LEVEL = 0.5
# Blocks waiting for the encoder; bounds memory if encoding falls behind.
_QUEUE_DEPTH = 4


class PreviewWriter:
    """Streams float blocks shaped (n, channels) into an Ogg Vorbis file.

    Use as a context manager: on a clean exit the file is finished, on an
    exception it is removed, so a half-written preview is never left behind.
    """

    def __init__(self, out_path: str | os.PathLike[str], sample_rate: int, channels: int) -> None:
        if channels not in (1, 2):
            raise ValueError(f"previews are mono or stereo, got {channels} channels")
        self._path = os.fspath(out_path)
        self.channels = channels
        self._file = sf.SoundFile(
            self._path,
            "w",
            samplerate=sample_rate,
            channels=channels,
            format="OGG",
            subtype="VORBIS",
            compression_level=_COMPRESSION_LEVEL,
        )
        self._queue: queue.Queue[npt.NDArray[np.float32] | None] = queue.Queue(_QUEUE_DEPTH)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._encode, name="preview-encoder", daemon=True)
        self._thread.start()

    def write(self, block: npt.NDArray[np.floating[Any]]) -> None:
        if self._closed:
            raise ValueError("preview writer is closed")
        if self._error is not None:
            raise self._error
        if block.ndim == 1 and self.channels == 1:
            block = block[:, np.newaxis]
        if block.ndim != 2 or block.shape[1] != self.channels:
            raise ValueError(
                f"expected a block shaped (n, {self.channels}), got {tuple(block.shape)}"
            )
        # A private copy: the caller may reuse its buffer before we encode it.
        self._queue.put(np.array(block, dtype=np.float32, order="C", copy=True))

    def close(self) -> None:
        """Finish the file; raises if encoding failed."""
        if self._closed:
            return
        self._finish()
        if self._error is not None:
            _remove(self._path)
            raise self._error

    def abort(self) -> None:
        """Stop and delete the partial file."""
        if not self._closed:
            self._finish()
        _remove(self._path)

    def __enter__(self) -> PreviewWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _finish(self) -> None:
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        try:
            self._file.close()
        except Exception as error:  # reported through close()
            self._error = self._error or error

    def _encode(self) -> None:
        # Keeps draining after a failure so that `write` never blocks forever
        # on a full queue; the error surfaces at the next write or at close.
        while (block := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._file.write(block)
                except BaseException as error:  # re-raised in the caller's thread
                    self._error = error


def write_preview(
    source: str | os.PathLike[str] | Iterable[npt.NDArray[np.floating[Any]]],
    out_path: str | os.PathLike[str],
    sample_rate: int | None = None,
    channels: int | None = None,
) -> None:
    """Write a browser preview of a file, or of an iterable of (n, channels) blocks.

    For a path, `sample_rate` and `channels` default to the file's own. For
    blocks they are required.
    """
    blocks: Iterable[npt.NDArray[np.floating[Any]]]
    if isinstance(source, (str, os.PathLike)):
        info = probe(source)
        sample_rate = sample_rate or info.sample_rate
        channels = channels or info.channels
        if (sample_rate, channels) != (info.sample_rate, info.channels):
            raise ValueError("a preview keeps the source's sample rate and channel count")
        blocks = iter_blocks(source)
    else:
        if sample_rate is None or channels is None:
            raise ValueError("sample_rate and channels are required when writing blocks")
        blocks = source
    with PreviewWriter(out_path, sample_rate, channels) as writer:
        for block in blocks:
            writer.write(block)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
