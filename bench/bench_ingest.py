"""Ingest analysis benchmark: `audio.engine.analysis.analyse` against ffmpeg's ebur128.

    .venv/bin/python bench/bench_ingest.py [--reps 5] [--long-minutes 50]

Generates (once, cached in bench/_data/, which is git-ignored) a 5-minute and a
long stereo 48 kHz 24-bit FLAC of music-like material, then on the 5-minute file
times, in the same run and interleaved:

- ours: analyse() = decode + integrated loudness + true peak + waveform peaks,
- ours with the Ogg Vorbis preview written as well,
- ffmpeg -nostats -i F -af ebur128=peak=true -f null -  (decode + loudness +
  true peak; its true peak resamples to 192 kHz),
- the same ffmpeg command also encoding libvorbis -q:a 5, to compare with ours
  plus preview.

Peak memory (ru_maxrss of a fresh child process) is measured for analyse() on
both file lengths, to show it does not grow with the file.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "_data"
RATE = 48000


def music_like(path: Path, minutes: float, seed: int = 7) -> None:
    """Write a deterministic song-ish signal: chords, bass, drums, dynamics, panning."""
    if path.exists():
        return
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    beat = RATE * 60 // 120  # 120 bpm
    bar = 4 * beat
    total = int(minutes * 60 * RATE)
    roots = [110.0, 146.83, 130.81, 98.0]  # A2 D3 C3 G2
    tmp = path.with_suffix(".part.flac")
    with sf.SoundFile(tmp, "w", RATE, 2, format="FLAC", subtype="PCM_24") as out:
        for start in range(0, total, bar):
            n = min(bar, total - start)
            t = (start + np.arange(n)) / RATE
            bar_index = start // bar
            root = roots[bar_index % len(roots)]
            # Sections of 8 bars alternate quiet verse and loud chorus.
            level = 0.18 if (bar_index // 8) % 2 == 0 else 0.4
            left = np.zeros(n)
            right = np.zeros(n)
            for ratio, pan in ((1.0, 0.3), (1.26, 0.6), (1.5, 0.45), (2.0, 0.7)):
                f = root * 2 * ratio
                voice = sum(np.sin(2 * np.pi * f * h * t) / h**1.5 for h in (1, 2, 3, 4))
                left += voice * (1 - pan) * 0.25
                right += voice * pan * 0.25
            bass = np.sin(2 * np.pi * root / 2 * t) * 0.5
            left += bass
            right += bass
            pos = np.arange(n) % beat
            kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-pos / 800)) * pos / RATE)
            kick *= np.exp(-pos / 3000)
            hat_env = np.exp(-((np.arange(n) % (beat // 2)) / 400))
            hats = rng.standard_normal(n) * hat_env * 0.15
            hats = np.diff(hats, prepend=0.0)  # crude high-pass
            left += kick + hats * 0.8
            right += kick + hats * 1.2
            noise = rng.standard_normal((n, 2)) * 0.01
            block = np.stack([left, right], axis=1) * level + noise
            out.write(np.clip(block, -1.0, 1.0).astype(np.float32))
    tmp.rename(path)


def time_ours(path: Path, preview: Path | None) -> float:
    from audio.engine.analysis import analyse

    start = time.perf_counter()
    analyse(path, preview_path=preview)
    return time.perf_counter() - start


def time_ffmpeg(path: Path, preview: Path | None = None) -> tuple[float, str]:
    cmd = ["ffmpeg", "-nostats", "-y", "-i", str(path), "-af", "ebur128=peak=true"]
    if preview is None:
        cmd += ["-f", "null", "-"]
    else:
        # The same libvorbis at the same quality as our preview, for comparison.
        cmd += ["-c:a", "libvorbis", "-q:a", "5", str(preview)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stderr


# Peak RSS is read from VmHWM, which belongs to the process image: ru_maxrss
# survives fork/exec on Linux and would report this (larger) parent instead.
_PRINT_HWM = (
    "import re\n"
    "status = open('/proc/self/status').read()\n"
    "print(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1))\n"
)


def child_peak_rss(path: Path, what: str) -> int:
    """Peak RSS in KiB of a fresh interpreter that runs `what` on `path`."""
    code = (
        "import sys\n"
        "from audio.engine.analysis import analyse\n"
        f"if {what!r} == 'analyse': analyse(sys.argv[1])\n" + _PRINT_HWM
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return int(done.stdout.strip())


def ffmpeg_peak_rss(path: Path) -> int:
    """Peak RSS in KiB of ffmpeg, as GNU-time-style accounting of a lone child."""
    code = (
        "import os, sys\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    fd = os.open(os.devnull, os.O_WRONLY)\n"
        "    os.dup2(fd, 1); os.dup2(fd, 2)\n"
        "    os.execvp(sys.argv[1], sys.argv[1:])\n"
        "_, status, usage = os.wait4(pid, 0)\n"
        "print(usage.ru_maxrss)\n"
    )
    cmd = ["ffmpeg", "-nostats", "-i", str(path), "-af", "ebur128=peak=true", "-f", "null", "-"]
    done = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True)
    return int(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--long-minutes", type=float, default=50.0)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    short = DATA / "music_5min.flac"
    long = DATA / f"music_{args.long_minutes:g}min.flac"
    t0 = time.perf_counter()
    music_like(short, 5)
    music_like(long, args.long_minutes)
    print(f"test files ready ({time.perf_counter() - t0:.1f} s)")

    from audio.engine.analysis import analyse
    from audio.engine.loudness import LoudnessMeter  # noqa: F401 - warm imports

    ours: list[float] = []
    ours_preview: list[float] = []
    ffmpeg: list[float] = []
    ffmpeg_preview: list[float] = []
    preview = DATA / "preview.ogg"
    stderr = ""
    for _ in range(args.reps):
        ours.append(time_ours(short, None))
        ours_preview.append(time_ours(short, preview))
        elapsed, stderr = time_ffmpeg(short)
        ffmpeg.append(elapsed)
        ffmpeg_preview.append(time_ffmpeg(short, DATA / "ffmpeg-preview.ogg")[0])

    result = analyse(short)
    ff_i = re.findall(r"I:\s+(-?[\d.]+) LUFS", stderr)[-1]
    ff_tp = re.findall(r"Peak:\s+(-?[\d.]+) dBFS", stderr)[-1]
    print(f"\nfile: {short.name}, {result.info.duration_s:.0f} s, {result.info.subtype}")
    print(f"ours:   I = {result.integrated_lufs:.2f} LUFS, TP = {result.true_peak_dbtp:.2f} dBTP")
    print(f"ffmpeg: I = {ff_i} LUFS, TP = {ff_tp} dBTP")
    print(f"\nwall time over {args.reps} runs (min / median, seconds):")
    rows = [
        ("analyse (loudness + true peak + peaks)", ours),
        ("analyse + Ogg Vorbis preview", ours_preview),
        ("ffmpeg ebur128=peak=true", ffmpeg),
        ("ffmpeg ebur128 + libvorbis -q:a 5", ffmpeg_preview),
    ]
    for name, times in rows:
        print(f"  {name:40s} {min(times):6.2f} / {statistics.median(times):6.2f}")
    print(
        f"  ratio ours/ffmpeg (median): {statistics.median(ours) / statistics.median(ffmpeg):.2f}"
        f"  with preview (vs ffmpeg with libvorbis): "
        f"{statistics.median(ours_preview) / statistics.median(ffmpeg_preview):.2f}"
    )

    start = time.perf_counter()
    analyse(long)
    long_time = time.perf_counter() - start
    print(f"\nanalyse on {long.name}: {long_time:.2f} s")

    print("\npeak RSS of a fresh process (MiB):")
    baseline = child_peak_rss(short, "import")
    print(f"  interpreter + imports only      {baseline / 1024:7.1f}")
    for path in (short, long):
        print(f"  analyse {path.name:24s}{child_peak_rss(path, 'analyse') / 1024:7.1f}")
    for path in (short, long):
        print(f"  ffmpeg ebur128 {path.name:17s}{ffmpeg_peak_rss(path) / 1024:7.1f}")


if __name__ == "__main__":
    main()
