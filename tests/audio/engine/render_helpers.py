"""Helpers shared by the render tests: generated sources, documents, renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from audio.engine.document import parse_document
from audio.engine.render import RenderResult, render

RATE = 48000


def noise(seconds: float, channels: int = 1, rate: int = RATE, seed: int = 0, level: float = 0.25):
    """Deterministic white noise shaped (frames, channels), float32."""
    rng = np.random.default_rng(seed)
    frames = round(seconds * rate)
    return (rng.uniform(-1.0, 1.0, (frames, channels)) * level).astype(np.float32)


def write_source(
    folder: Path, name: str, data: np.ndarray, rate: int = RATE, subtype: str = "FLOAT"
) -> str:
    """Write `data` (frames, channels) and return its file name relative to `folder`."""
    sf.write(str(folder / name), data, rate, subtype=subtype)
    return name


def clip(source: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": f"c-{source}-{fields.get('start', 0)}", "source": source}
    base.update(fields)
    return base


def track(track_id: str, clips: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": track_id, "name": track_id, "clips": clips}
    base.update(fields)
    return base


def document(tracks: list[dict[str, Any]], rate: int = RATE, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "format": "roomtone.project",
        "version": 1,
        "sample_rate": rate,
        "tempo_bpm": 120.0,
        "time_signature": [4, 4],
        "tracks": tracks,
        "master": {"gain_db": 0.0, "effects": []},
    }
    base.update(fields)
    return base


def render_doc(
    folder: Path, doc: dict[str, Any], name: str = "out.wav", **options: Any
) -> tuple[np.ndarray, RenderResult]:
    """Render into `folder` as 32-bit float unless told otherwise; returns (frames, 2) audio."""
    options.setdefault("bit_depth", "32f")
    out = folder / name
    result = render(parse_document(doc), lambda s: str(folder / s), str(out), **options)
    audio, _ = sf.read(str(out), dtype="float64", always_2d=True)
    return audio, result
