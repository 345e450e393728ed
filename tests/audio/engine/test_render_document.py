"""Bad documents are refused with a message naming the path; the CLI maps that to exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from audio.engine.document import DocumentError, parse_document

from .render_helpers import clip, document, noise, render_doc, track, write_source

ROOT = Path(__file__).resolve().parents[3]


def good() -> dict:
    return document([track("t", [clip("a.wav")])])


def test_good_document_parses_into_typed_dataclasses():
    doc = parse_document(good())
    assert doc.sample_rate == 48000
    assert doc.tracks[0].clips[0].source == "a.wav"
    assert doc.tracks[0].clips[0].duration is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["tracks"][0].update(effects=[{"type": "flanger"}]),
            "tracks[0].effects[0].type: unknown effect type 'flanger'",
        ),
        (
            lambda d: d["tracks"][0].update(effects=[{"type": "reverb", "size": 1}]),
            "tracks[0].effects[0].size: unknown parameter 'size' for reverb",
        ),
        (
            lambda d: d["tracks"][0].update(effects=[{"type": "compressor", "ratio": 0.5}]),
            "tracks[0].effects[0].ratio: must be between 1 and 100",
        ),
        (
            lambda d: d["tracks"][0].update(effects=[{"type": "lowpass", "cutoff_hz": "x"}]),
            "tracks[0].effects[0].cutoff_hz: must be a number",
        ),
        (
            lambda d: d["tracks"][0].update(effects=[{"type": "lowpass", "cutoff_hz": 30000.0}]),
            "tracks[0].effects[0].cutoff_hz: must be below half the sample rate",
        ),
        (
            lambda d: d["master"].update(effects=[{"type": "gain", "gain": 1}]),
            "master.effects[0].gain: unknown parameter",
        ),
        (lambda d: d["tracks"][0].update(pan=1.5), "tracks[0].pan: must be <= 1"),
        (
            lambda d: d["tracks"][0]["clips"][0].update(fade_in=-0.1),
            "tracks[0].clips[0].fade_in: must be >= 0",
        ),
        (
            lambda d: d["tracks"][0]["clips"][0].update(fade_out=-1),
            "tracks[0].clips[0].fade_out: must be >= 0",
        ),
        (lambda d: d.update(colour="red"), "colour: unknown field"),
        (lambda d: d["tracks"][0].update(volume=1), "tracks[0].volume: unknown field"),
        (
            lambda d: d["tracks"][0]["clips"][0].update(start=True),
            "tracks[0].clips[0].start: must be a number",
        ),
        (lambda d: d.update(version=2), "version: must be 1"),
        (lambda d: d.update(sample_rate=44100.0), "sample_rate: must be an integer"),
        (lambda d: d["tracks"].append(track("t", [])), "tracks[1].id: duplicate track id"),
        (lambda d: d["tracks"][0].update(mute="yes"), "tracks[0].mute: must be true or false"),
        (lambda d: d["tracks"][0]["clips"][0].pop("source"), "tracks[0].clips[0].source: required"),
    ],
)
def test_bad_document_is_refused_naming_the_path(change, message):
    doc = good()
    change(doc)
    with pytest.raises(DocumentError) as info:
        parse_document(doc)
    assert message in str(info.value)


def test_missing_source_is_refused_naming_the_clip(tmp_path):
    with pytest.raises(DocumentError, match=r"tracks\[0\]\.clips\[0\]\.source: source not found"):
        render_doc(tmp_path, good())
    assert not (tmp_path / "out.wav").exists()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audio.render", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_prints_one_json_line_on_success(tmp_path):
    write_source(tmp_path, "a.wav", noise(1.0, 2))
    doc_path = tmp_path / "song.json"
    doc_path.write_text(json.dumps(good()))
    out = tmp_path / "mix.flac"
    proc = run_cli(str(doc_path), "-o", str(out), "--bit-depth", "16", "--threads", "2")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert set(report) == {
        "duration_s",
        "sample_rate",
        "peak_dbfs",
        "lufs",
        "true_peak_dbtp",
        "pcm_sha256",
        "seconds",
    }
    assert report["duration_s"] == 1.0
    assert report["sample_rate"] == 48000
    assert len(report["pcm_sha256"]) == 64
    assert out.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            {
                "format": "roomtone.project",
                "version": 1,
                "sample_rate": 48000,
                "tracks": [],
                "extra": 1,
            },
            "extra: unknown field",
        ),
        (None, "source not found: a.wav"),
        ("{not json", "error:"),
    ],
)
def test_cli_exits_2_with_one_line_on_bad_input(tmp_path, content, message):
    doc_path = tmp_path / "song.json"
    if content is None:
        content = good()
    doc_path.write_text(content if isinstance(content, str) else json.dumps(content))
    proc = run_cli(str(doc_path), "-o", str(tmp_path / "mix.wav"))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert message in proc.stderr


def test_cli_refuses_a_three_channel_source(tmp_path):
    write_source(tmp_path, "a.wav", noise(0.2, 3))
    doc_path = tmp_path / "song.json"
    doc_path.write_text(json.dumps(good()))
    proc = run_cli(str(doc_path), "-o", str(tmp_path / "mix.wav"))
    assert proc.returncode == 2
    assert "3 channels" in proc.stderr
