"""Render benchmarks: the engine against ffmpeg and sox, side by side in one run.

W1 plain mix: 16 stereo 24-bit FLAC stems at 48 kHz, gain and pan only, 24-bit
   WAV out. Wall and CPU time of `python -m audio.render` (1 and 2 threads)
   against `ffmpeg ... amix=normalize=0` and `sox -m`, plus the null residual
   against each reference. sox has no per-input pan inside `-m`, so it is
   compared on a gains-only variant of the same project (the engine renders
   that variant too, for a like-for-like time).
W2 full render: W1 plus highpass, low shelf, peak EQ and compressor on every
   track, reverb on two, master compressor and limiter. Realtime factor on 1
   and 2 threads; peak memory (the engine's own VmHWM) for a 2-minute and a
   20-minute song.

Every tool runs as a child process so wall, CPU and peak memory are measured
the same way. Data is generated once into bench/_data/ (gitignored).

    .venv/bin/python bench/bench_render.py            # 4-minute stems
    .venv/bin/python bench/bench_render.py --quick    # 30-second stems
    .venv/bin/python bench/bench_render.py --repeat 3 # fastest of 3 interleaved rounds
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy.signal import lfilter

ROOT = Path(__file__).resolve().parents[1]
RATE = 48000
TRACKS = 16


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_stems(folder: Path, seconds: int) -> list[str]:
    """Deterministic music-like stems: filtered noise plus a few tones, -18 dBFS-ish."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(TRACKS):
        name = f"stem{i:02d}-{seconds}s.flac"
        names.append(name)
        path = folder / name
        if path.exists():
            continue
        rng = np.random.default_rng(i)
        frames = seconds * RATE
        with sf.SoundFile(str(path), "w", RATE, 2, "PCM_24", format="FLAC") as f:
            state = np.zeros((1, 2))
            for start in range(0, frames, RATE * 10):
                n = min(RATE * 10, frames - start)
                white = rng.standard_normal((n, 2))
                pink, state = lfilter([1.0], [1.0, -0.9], white, axis=0, zi=state)
                t = (start + np.arange(n)) / RATE
                tone = sum(np.sin(2 * np.pi * f0 * t) for f0 in (55.0 * (i + 1), 440.0 + 17 * i))
                f.write((0.02 * pink + 0.05 * tone[:, None]).astype(np.float32))
    return names


def gains_and_pans(with_pan: bool) -> list[tuple[float, float]]:
    return [
        (-3.0 - (i % 5), (((i * 7) % 11) / 5.0 - 1.0) if with_pan else 0.0) for i in range(TRACKS)
    ]


def document(
    names: list[str], song_s: int, stem_s: int, full: bool, with_pan: bool = True
) -> dict[str, Any]:
    tracks = []
    for i, (name, (gain, pan)) in enumerate(zip(names, gains_and_pans(with_pan), strict=True)):
        clips = []
        start = 0
        while start < song_s:
            clips.append(
                {
                    "id": f"c{start}",
                    "source": name,
                    "start": float(start),
                    "duration": float(min(stem_s, song_s - start)),
                }
            )
            start += stem_s
        effects: list[dict[str, Any]] = []
        if full:
            effects = [
                {"type": "highpass", "cutoff_hz": 40.0 + 5 * i},
                {"type": "low_shelf", "cutoff_hz": 150.0, "gain_db": 2.0},
                {"type": "peak", "cutoff_hz": 900.0 + 100 * i, "gain_db": -2.5, "q": 1.1},
                {"type": "compressor", "threshold_db": -24.0, "ratio": 3.0, "attack_ms": 5.0},
            ]
            if i in (3, 9):
                effects.append({"type": "reverb", "room_size": 0.6, "wet_level": 0.25})
        tracks.append(
            {"id": f"t{i}", "gain_db": gain, "pan": pan, "clips": clips, "effects": effects}
        )
    master_fx: list[dict[str, Any]] = []
    if full:
        master_fx = [
            {"type": "compressor", "threshold_db": -12.0, "ratio": 2.0, "attack_ms": 10.0},
            {"type": "limiter", "threshold_db": -1.0, "release_ms": 80.0},
        ]
    return {
        "format": "roomtone.project",
        "version": 1,
        "sample_rate": RATE,
        "tracks": tracks,
        "master": {"gain_db": -6.0, "effects": master_fx},
    }


# The engine runs through this wrapper so that its peak memory is its own
# VmHWM: ru_maxrss of a child also counts the benchmark parent's pages that the
# child carried between fork and exec (that read ~154 MB whatever the song).
_ENGINE_WRAPPER = """
import atexit, runpy, sys
def _hwm():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                sys.stderr.write("VmHWM_KB " + line.split()[1] + "\\n")
atexit.register(_hwm)
sys.argv[0] = "audio.render"
runpy.run_module("audio.render", run_name="__main__", alter_sys=True)
"""


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(cmd: list[str]) -> dict[str, float]:
    """Run a child; wall time, its CPU time (user+sys) and its peak RSS."""
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - began
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd[0]} failed: {err.strip()[-500:]}")
    rss_kb = float(usage.ru_maxrss)
    for line in err.splitlines():
        if line.startswith("VmHWM_KB "):
            rss_kb = float(line.split()[1])
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": rss_kb / 1024,
        "stdout": out,  # type: ignore[dict-item]
        "stderr": err,  # type: ignore[dict-item]
    }


def engine(doc_path: Path, out: Path, threads: int) -> dict[str, float]:
    return timed(
        [
            sys.executable,
            "-c",
            _ENGINE_WRAPPER,
            str(doc_path),
            "-o",
            str(out),
            "--threads",
            str(threads),
            # render()'s default (what the studio uses); the CLI defaults to 8192.
            "--block-frames",
            "32768",
        ]
    )


def ffmpeg_mix(folder: Path, names: list[str], out: Path, song_s: int) -> dict[str, float]:
    inputs, chains = [], []
    master = 10 ** (-6.0 / 20)
    for i, (name, (gain, pan)) in enumerate(zip(names, gains_and_pans(True), strict=True)):
        inputs += ["-i", str(folder / name)]
        left, right = min(1.0, 1.0 - pan), min(1.0, 1.0 + pan)
        g = 10 ** (gain / 20)
        chains.append(
            f"[{i}:a]atrim=end_sample={song_s * RATE},volume={g!r},"
            f"pan=stereo|c0={left!r}*c0|c1={right!r}*c1[s{i}]"
        )
    labels = "".join(f"[s{i}]" for i in range(len(names)))
    graph = ";".join(chains) + f";{labels}amix=inputs={len(names)}:normalize=0,volume={master!r}[o]"
    return timed(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            *inputs,
            "-filter_complex",
            graph,
            "-map",
            "[o]",
            "-c:a",
            "pcm_s24le",
            str(out),
        ]
    )


def sox_mix(folder: Path, names: list[str], out: Path) -> dict[str, float]:
    args: list[str] = []
    master = 10 ** (-6.0 / 20)
    for name, (gain, _) in zip(names, gains_and_pans(False), strict=True):
        args += ["-v", repr(10 ** (gain / 20) * master), str(folder / name)]
    # -D: no dither, so the residual shows the mixing arithmetic only.
    return timed(["sox", "-D", "-m", *args, "-b", "24", str(out)])


def residual_db(a: Path, b: Path) -> float:
    worst = 0.0
    with sf.SoundFile(str(a)) as fa, sf.SoundFile(str(b)) as fb:
        if fa.frames != fb.frames:
            log(f"  length differs: {a.name} {fa.frames} vs {b.name} {fb.frames}")
        while True:
            x = fa.read(RATE * 10, dtype="float64", always_2d=True)
            y = fb.read(RATE * 10, dtype="float64", always_2d=True)
            n = min(len(x), len(y))
            if n == 0:
                break
            worst = max(worst, float(np.abs(x[:n] - y[:n]).max()))
    return 20 * math.log10(worst) if worst > 0 else -math.inf


def fmt_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="30-second stems, shorter songs")
    parser.add_argument("--data", default=str(ROOT / "bench" / "_data"))
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of the timed W1/W2 runs, interleaved; the fastest of each is kept",
    )
    args = parser.parse_args()
    stem_s = 30 if args.quick else 240
    long_s = 150 if args.quick else 1200
    short_s = 30 if args.quick else 120
    data = Path(args.data)
    log(f"generating {TRACKS} stems of {stem_s} s in {data} (cached) ...")
    names = make_stems(data, stem_s)
    work = data / "work"
    work.mkdir(exist_ok=True)

    def write_doc(name: str, doc: dict[str, Any]) -> Path:
        path = data / name  # sources resolve relative to the document's folder
        path.write_text(json.dumps(doc))
        return path

    lines: list[str] = []
    seconds_of_audio = float(stem_s)

    # W1
    w1 = write_doc("w1.json", document(names, stem_s, stem_s, full=False))
    w1_gains = write_doc(
        "w1-gains.json", document(names, stem_s, stem_s, full=False, with_pan=False)
    )
    runs: dict[str, dict[str, float]] = {}

    def keep(name: str, run: dict[str, float]) -> None:
        if name not in runs or run["wall"] < runs[name]["wall"]:
            runs[name] = run

    load_before = load_average()
    log(f"W1: engine / ffmpeg / sox ... (load average {load_before})")
    for _ in range(max(1, args.repeat)):
        keep("engine 1 thread", engine(w1, work / "w1-e1.wav", 1))
        keep("engine 2 threads", engine(w1, work / "w1-e2.wav", 2))
        keep("ffmpeg amix", ffmpeg_mix(data, names, work / "w1-ffmpeg.wav", stem_s))
        keep("engine 2 threads, gains only", engine(w1_gains, work / "w1-eg.wav", 2))
        keep("sox -m, gains only", sox_mix(data, names, work / "w1-sox.wav"))
    ref = runs["ffmpeg amix"]
    res_ff = residual_db(work / "w1-e1.wav", work / "w1-ffmpeg.wav")
    res_sox = residual_db(work / "w1-eg.wav", work / "w1-sox.wav")
    lines.append(
        f"### W1 plain mix: {TRACKS} stereo 24-bit FLAC stems x {stem_s} s, 24-bit WAV out\n"
    )
    lines.append(
        fmt_row(
            [
                "run",
                "wall s",
                "CPU s",
                "x realtime",
                "wall / ffmpeg",
                "CPU / ffmpeg",
                "wall / sox",
                "peak MB",
            ]
        )
    )
    lines.append(fmt_row(["---"] * 8))
    sox = runs["sox -m, gains only"]
    for name, run in runs.items():
        lines.append(
            fmt_row(
                [
                    name,
                    f"{run['wall']:.2f}",
                    f"{run['cpu']:.2f}",
                    f"{seconds_of_audio / run['wall']:.1f}",
                    f"{run['wall'] / ref['wall']:.2f}",
                    f"{run['cpu'] / ref['cpu']:.2f}",
                    f"{run['wall'] / sox['wall']:.2f}",
                    f"{run['rss_mb']:.0f}" if name.startswith("engine") else "-",
                ]
            )
        )
    lines.append("")
    lines.append(f"Null residual, engine vs ffmpeg (gain+pan): {res_ff:.1f} dBFS")
    lines.append(f"Null residual, engine vs sox -m (gains only): {res_sox:.1f} dBFS")
    lines.append(
        f"Rounds: {max(1, args.repeat)} (fastest kept); "
        f"load average (1/5/15 min) before {load_before}, after {load_average()}\n"
    )
    log("\n".join(lines))

    # W2
    log("W2: full render ...")
    w2 = write_doc("w2.json", document(names, stem_s, stem_s, full=True))
    w2_short = write_doc("w2-short.json", document(names, short_s, stem_s, full=True))
    w2_long = write_doc("w2-long.json", document(names, long_s, stem_s, full=True))
    w2_load = load_average()
    r1: dict[str, float] = {}
    r2: dict[str, float] = {}
    for _ in range(max(1, args.repeat)):
        run = engine(w2, work / "w2-1.wav", 1)
        r1 = run if not r1 or run["wall"] < r1["wall"] else r1
        run = engine(w2, work / "w2-2.wav", 2)
        r2 = run if not r2 or run["wall"] < r2["wall"] else r2
    m_short = engine(w2_short, work / "w2-short.wav", 2)
    m_long = engine(w2_long, work / "w2-long.wav", 2)
    same = json.loads(r1["stdout"])["pcm_sha256"] == json.loads(r2["stdout"])["pcm_sha256"]  # type: ignore[arg-type]
    w2_lines = [
        "### W2 full render: W1 + per-track EQ/compressor, reverb on 2 tracks, master compressor + limiter\n",
        fmt_row(["run", "wall s", "CPU s", "x realtime", "peak MB"]),
        fmt_row(["---"] * 5),
        fmt_row(
            [
                "1 thread",
                f"{r1['wall']:.2f}",
                f"{r1['cpu']:.2f}",
                f"{seconds_of_audio / r1['wall']:.1f}",
                f"{r1['rss_mb']:.0f}",
            ]
        ),
        fmt_row(
            [
                "2 threads",
                f"{r2['wall']:.2f}",
                f"{r2['cpu']:.2f}",
                f"{seconds_of_audio / r2['wall']:.1f}",
                f"{r2['rss_mb']:.0f}",
            ]
        ),
        fmt_row(
            [
                f"{short_s} s song, 2 threads",
                f"{m_short['wall']:.2f}",
                f"{m_short['cpu']:.2f}",
                f"{short_s / m_short['wall']:.1f}",
                f"{m_short['rss_mb']:.0f}",
            ]
        ),
        fmt_row(
            [
                f"{long_s} s song, 2 threads",
                f"{m_long['wall']:.2f}",
                f"{m_long['cpu']:.2f}",
                f"{long_s / m_long['wall']:.1f}",
                f"{m_long['rss_mb']:.0f}",
            ]
        ),
        "",
        f"Speed-up 1 -> 2 threads: {r1['wall'] / r2['wall']:.2f}x; identical PCM on 1 and 2 threads: {same}",
        f"Peak memory {short_s} s vs {long_s} s song: {m_short['rss_mb']:.0f} MB vs {m_long['rss_mb']:.0f} MB",
        f"Load average (1/5/15 min) before W2 {w2_load}, after {load_average()}",
    ]
    log("\n".join(w2_lines))
    print("\n".join(lines + w2_lines))


if __name__ == "__main__":
    main()
