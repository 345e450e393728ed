"""Streams each participant's pre-mix input to its own file, on the room clock.

The room clock hands over one (P, n, 2) block per tick; a writer thread does
the file I/O so a slow disk can never delay the mix. Every take of one
recording starts at the same room-clock sample (or at the sample its
participant joined), so takes line up without any post-processing.
"""

from __future__ import annotations

import queue
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .opus import CHANNELS, SAMPLE_RATE, Pcm


@dataclass(frozen=True)
class Take:
    participant_id: str
    path: Path
    start_frame: int  # room-clock sample of the take's first sample
    frames: int
    sample_rate: int = SAMPLE_RATE


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class _Writer:
    def __init__(self, path: Path, fmt: str, sample_rate: int) -> None:
        subtype = "PCM_24" if fmt in ("FLAC", "WAV") else None
        self.file = sf.SoundFile(
            str(path), "w", samplerate=sample_rate, channels=CHANNELS, format=fmt, subtype=subtype
        )
        self.frames = 0


class Recorder:
    def __init__(
        self,
        directory: Path,
        start_frame: int,
        fmt: str = "FLAC",
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.start_frame = start_frame
        self.format = fmt.upper()
        self.sample_rate = sample_rate
        self._starts: dict[str, int] = {}
        self._frames: dict[str, int] = {}
        self._paths: dict[str, Path] = {}
        self._queue: queue.Queue[tuple[str, Pcm] | None] = queue.Queue()
        self._writers: dict[str, _Writer] = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="jam-recorder", daemon=True)
        self._thread.start()

    def write(self, room_frame: int, participants: list[str], block: Pcm) -> None:
        """Queue one tick: `block[i]` is `participants[i]`'s input at `room_frame`."""
        n = block.shape[1]
        if room_frame + n <= self.start_frame:
            return  # still counting in
        skip = max(0, self.start_frame - room_frame)
        room_frame += skip
        for i, pid in enumerate(participants):
            pcm = block[i, skip:]
            if pid not in self._starts:
                self._starts[pid] = room_frame
                self._frames[pid] = 0
                ext = "flac" if self.format == "FLAC" else "wav"
                name = f"{_SAFE.sub('_', pid)}-{room_frame}.{ext}"
                self._paths[pid] = self.directory / name
            missing = room_frame - (self._starts[pid] + self._frames[pid])
            if missing > 0:
                # The participant left and came back: keep the take on the clock.
                self._queue.put((pid, np.zeros((missing, CHANNELS), np.float32)))
                self._frames[pid] += missing
            self._frames[pid] += len(pcm)
            self._queue.put((pid, pcm.copy()))  # the writer runs later

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            pid, pcm = item
            if self._error is not None:
                continue
            try:
                writer = self._writers.get(pid)
                if writer is None:
                    writer = _Writer(self._paths[pid], self.format, self.sample_rate)
                    self._writers[pid] = writer
                writer.file.write(pcm)
                writer.frames += len(pcm)
            except BaseException as exc:  # reported by close()
                self._error = exc
        for writer in self._writers.values():
            writer.file.close()

    def close(self) -> list[Take]:
        """Flush and close every file (blocking; call from an executor)."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise RuntimeError(f"recording failed: {self._error}") from self._error
        return [
            Take(pid, self._paths[pid], self._starts[pid], self._frames[pid], self.sample_rate)
            for pid in self._starts
        ]
