"""The engine and an equivalent ffmpeg filter graph null each other (no effects)."""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from .render_helpers import RATE, clip, document, noise, render_doc, track, write_source

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def ffmpeg_chain(spec: dict, source_frames: int, channels: int, track_spec: dict) -> str:
    """atrim/afade/volume/pan/adelay for one clip, mirroring §4 sample for sample."""
    start = round(spec.get("start", 0.0) * RATE)
    offset = round(spec.get("offset", 0.0) * RATE)
    length = source_frames - offset
    if spec.get("duration") is not None:
        length = min(length, round(spec["duration"] * RATE))
    steps = [f"atrim=start_sample={offset}:end_sample={offset + length}", "asetpts=PTS-STARTPTS"]
    fade_in = round(spec.get("fade_in", 0.0) * RATE)
    fade_out = round(spec.get("fade_out", 0.0) * RATE)
    if fade_in:
        steps.append(f"afade=t=in:start_sample=0:nb_samples={fade_in}")
    if fade_out:
        steps.append(f"afade=t=out:start_sample={length - fade_out}:nb_samples={fade_out}")
    gain = 10 ** (spec.get("gain_db", 0.0) / 20) * 10 ** (track_spec.get("gain_db", 0.0) / 20)
    steps.append(f"volume={gain!r}")
    pan = track_spec.get("pan", 0.0)
    if channels == 1:
        theta = (pan + 1) * math.pi / 4
        steps.append(f"pan=stereo|c0={math.cos(theta)!r}*c0|c1={math.sin(theta)!r}*c0")
    else:
        left, right = min(1.0, 1.0 - pan), min(1.0, 1.0 + pan)
        steps.append(f"pan=stereo|c0={left!r}*c0|c1={right!r}*c1")
    if start:
        steps.append(f"adelay=delays={start}S:all=1")
    return ",".join(steps)


def test_engine_nulls_against_ffmpeg_below_minus_120_dbfs(tmp_path):
    sources = {
        "a.wav": noise(2.0, 2, seed=1),
        "b.wav": noise(1.5, 1, seed=2),
        "c.wav": noise(1.0, 2, seed=3, level=0.1),
    }
    for name, data in sources.items():
        write_source(tmp_path, name, data)
    tracks = [
        track(
            "a",
            [
                clip(
                    "a.wav",
                    id="a1",
                    start=0.1,
                    offset=0.2,
                    duration=1.0,
                    gain_db=-3.0,
                    fade_in=0.05,
                    fade_out=0.1,
                ),
                clip("a.wav", id="a2", start=1.5, fade_in=0.2, fade_out=0.0123),
            ],
            gain_db=-2.0,
            pan=0.3,
        ),
        track(
            "b",
            [clip("b.wav", start=0.3, offset=0.5, duration=0.8, gain_db=2.0, fade_out=0.3)],
            pan=-0.6,
        ),
        track("c", [clip("c.wav", start=0.0, gain_db=1.0, fade_in=0.5)], pan=-1.0),
    ]
    doc = document(tracks)
    doc["master"] = {"gain_db": -1.5, "effects": []}
    ours, _ = render_doc(tmp_path, doc, "engine.wav")

    inputs, chains = [], []
    for t in tracks:
        for c in t["clips"]:
            data = sources[c["source"]]
            chains.append(
                f"[{len(inputs) // 2}:a]{ffmpeg_chain(c, len(data), data.shape[1], t)}[s{len(chains)}]"
            )
            inputs += ["-i", str(tmp_path / c["source"])]
    labels = "".join(f"[s{i}]" for i in range(len(chains)))
    master = 10 ** (-1.5 / 20)
    graph = ";".join(chains) + (
        f";{labels}amix=inputs={len(chains)}:normalize=0:duration=longest,volume={master!r}[out]"
    )
    ref_path = tmp_path / "ffmpeg.wav"
    subprocess.run(
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
            "[out]",
            "-c:a",
            "pcm_f32le",
            str(ref_path),
        ],
        check=True,
        timeout=120,
    )
    ref, rate = sf.read(str(ref_path), dtype="float64", always_2d=True)
    assert rate == RATE
    assert ref.shape == ours.shape
    residual = np.abs(ours - ref).max()
    assert 20 * math.log10(max(residual, 1e-300)) < -120.0
    # And the comparison is not vacuous.
    assert np.abs(ours).max() > 0.1
