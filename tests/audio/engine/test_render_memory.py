"""Peak memory stays flat as songs get longer (streaming, not whole-song arrays)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .render_helpers import noise, write_source

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
import json, sys
from audio.engine.document import parse_document
from audio.engine.render import render
folder, minutes = sys.argv[1], float(sys.argv[2])
loops = round(minutes * 6)  # the source is 10 s long
fx = [{"type": "highpass", "cutoff_hz": 80.0}, {"type": "compressor", "ratio": 3.0}]
tracks = [
    {"id": f"t{t}", "pan": 0.5 - t * 0.5, "effects": fx if t == 0 else [{"type": "reverb"}],
     "clips": [{"id": f"c{i}", "source": "loop.flac", "start": 10.0 * i, "fade_in": 0.01}
               for i in range(loops)]}
    for t in range(3)
]
doc = parse_document({"format": "roomtone.project", "version": 1, "sample_rate": 48000,
                      "tracks": tracks})
result = render(doc, lambda s: f"{folder}/{s}", f"{folder}/out-{minutes}.flac", threads=2)
# VmHWM, not ru_maxrss: the latter inherits the (large) pytest parent's peak
# across fork and exec, which would hide the render's own footprint.
status = open("/proc/self/status").read()
hwm = int(status.split("VmHWM:")[1].split()[0])
print(json.dumps({"rss_kb": hwm, "duration_s": result.duration_s}))
"""


def peak_rss_kb(folder: Path, minutes: float) -> tuple[int, float]:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder), str(minutes)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    report = json.loads(proc.stdout)
    return report["rss_kb"], report["duration_s"]


@pytest.mark.slow
def test_twenty_minute_render_peaks_like_a_two_minute_one(tmp_path):
    write_source(tmp_path, "loop.flac", noise(10.0, 2), subtype="PCM_24")
    short, short_len = peak_rss_kb(tmp_path, 2)
    long, long_len = peak_rss_kb(tmp_path, 20)
    assert short_len >= 120 and long_len >= 1200
    assert abs(long - short) < 8 * 1024, (short, long)
