"""Shared fixtures: users and projects in each role, generated audio, and the
rule for tests that need a real service (skip outside CI, fail inside it)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_service(name: str, available: bool, detail: str = "") -> None:
    """Skip when a real service is missing, except in CI where it must be there."""
    if available:
        return
    message = f"{name} is not available{': ' + detail if detail else ''}"
    if IN_CI:
        pytest.fail(f"{message} (required in CI)")
    pytest.skip(message)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def write_audio(
    path: Path,
    seconds: float = 1.0,
    rate: int = 48000,
    channels: int = 2,
    freq: float = 440.0,
    level_db: float = -12.0,
    fmt: str | None = None,
    subtype: str | None = None,
) -> Path:
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    tone = np.sin(2 * np.pi * freq * t) * 10 ** (level_db / 20)
    data = np.repeat(tone[:, None], channels, axis=1).astype(np.float32)
    sf.write(str(path), data, rate, format=fmt, subtype=subtype)
    return path


@pytest.fixture
def audio_file(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(10_000))

    def make(name: str | None = None, **kwargs: object) -> Path:
        name = name or f"tone{next(counter)}.wav"
        return write_audio(tmp_path / name, **kwargs)  # type: ignore[arg-type]

    return make
