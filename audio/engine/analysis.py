"""Ingest analysis: one streaming decode feeding every measurement.

Reading the file once and handing each block to the loudness meter, the peaks
builder and (optionally) the preview encoder keeps ingest cost close to the
cost of decoding, and memory independent of the file's length.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from audio.engine.codecs import AudioInfo, iter_blocks, probe
from audio.engine.loudness import LoudnessMeter
from audio.engine.peaks import PeaksBuilder
from audio.engine.preview import PreviewWriter

__all__ = ["Analysis", "analyse"]

T = TypeVar("T")

# Progress is reported each time another 5 % is decoded: at most 20 calls.
_PROGRESS_STEPS = 20


@dataclass(frozen=True)
class Analysis:
    """What ingest learns about a source. Silence reads as float('-inf')."""

    info: AudioInfo
    integrated_lufs: float
    true_peak_dbtp: float
    sample_peak_dbfs: float
    peaks: dict[int, dict[str, Any]]
    loudness_range_lu: float = 0.0
    momentary_max_lufs: float = float("-inf")


def analyse(
    path: str | os.PathLike[str],
    preview_path: str | os.PathLike[str] | None = None,
    progress: Callable[[float], None] | None = None,
    block_frames: int = 65536,
) -> Analysis:
    """Decode `path` once; measure loudness and peaks, and write a preview if asked.

    Raises `AudioFormatError` for unusable, truncated or corrupt files (no
    preview is left behind then). `progress` receives the decoded fraction,
    ending with 1.0.
    """
    info = probe(path)
    meter = LoudnessMeter(info.sample_rate, info.channels)
    peaks = PeaksBuilder(info.sample_rate, info.channels)
    writer = PreviewWriter(preview_path, info.sample_rate, info.channels) if preview_path else None
    reported = 0
    decoded = 0
    try:
        for block in _read_ahead(iter_blocks(path, block_frames=block_frames)):
            if writer is not None:
                # Queued first so the encoder thread works while we measure.
                writer.write(block)
            meter.process(block)
            peaks.process(block)
            decoded += block.shape[0]
            step = decoded * _PROGRESS_STEPS // info.frames
            if progress is not None and step > reported and step < _PROGRESS_STEPS:
                reported = step
                progress(step / _PROGRESS_STEPS)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
    if progress is not None:
        progress(1.0)
    return Analysis(
        info=info,
        integrated_lufs=meter.integrated_lufs(),
        true_peak_dbtp=meter.true_peak_dbtp(),
        sample_peak_dbfs=meter.sample_peak_dbfs(),
        peaks=peaks.result(),
        loudness_range_lu=meter.loudness_range_lu(),
        momentary_max_lufs=meter.momentary_max_lufs(),
    )


def _read_ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Pull `items` on a helper thread, up to `depth` ahead of the consumer.

    libsndfile releases the GIL while decoding, so decoding the next block
    overlaps with the numpy/scipy work on the current one (a second core is
    otherwise idle). Errors from `items` are re-raised here, in order.
    """
    slots: queue.Queue[tuple[bool, Any]] = queue.Queue(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                slots.put((True, item))
            slots.put((False, None))
        except BaseException as error:
            slots.put((False, error))

    thread = threading.Thread(target=produce, name="decode-ahead", daemon=True)
    thread.start()
    try:
        while True:
            ok, value = slots.get()
            if ok:
                yield value
            elif value is None:
                return
            else:
                raise value
    finally:
        # The consumer may stop early: unblock the producer, then wait for it
        # so the file is closed before we return.
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                slots.get(timeout=0.05)
        thread.join()
