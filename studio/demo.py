"""Generated demo material: a short groove of drums, bass and keys, so a new
install shows a working studio without shipping any audio."""

from __future__ import annotations

import numpy as np
import soundfile as sf

RATE = 48000


def _env(n: int, decay_s: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (decay_s * RATE))


def drums(seconds: float, bpm: float) -> np.ndarray:
    n = int(seconds * RATE)
    out = np.zeros((n, 2))
    beat = int(round(60.0 / bpm * RATE))
    rng = np.random.default_rng(7)
    kick_len = int(0.25 * RATE)
    t = np.arange(kick_len) / RATE
    kick = np.sin(2 * np.pi * (50 + 80 * np.exp(-t * 30)) * t) * _env(kick_len, 0.08)
    snare_len = int(0.2 * RATE)
    snare = rng.standard_normal(snare_len) * _env(snare_len, 0.05) * 0.5
    hat_len = int(0.05 * RATE)
    hat = rng.standard_normal(hat_len) * _env(hat_len, 0.01) * 0.25
    for i, start in enumerate(range(0, n, beat)):
        seg = min(kick_len, n - start)
        if i % 2 == 0:
            out[start : start + seg] += kick[:seg, None] * 0.8
        else:
            seg = min(snare_len, n - start)
            out[start : start + seg] += snare[:seg, None] * [0.9, 0.7]
        for h in (0, beat // 2):
            s = start + h
            seg = min(hat_len, n - s)
            if seg > 0:
                out[s : s + seg] += hat[:seg, None] * [0.5, 0.9]
    return out * 0.5  # headroom: about -6 dBFS peaks, like a tracked stem


def bass(seconds: float, bpm: float) -> np.ndarray:
    n = int(seconds * RATE)
    beat = 60.0 / bpm
    notes = [41.2, 41.2, 55.0, 49.0]  # E1 E1 A1 G1, one per bar
    t = np.arange(n) / RATE
    bar = (t // (4 * beat)).astype(int) % len(notes)
    freq = np.asarray(notes)[bar]
    phase = 2 * np.pi * np.cumsum(freq) / RATE
    note_pos = (t % beat) / beat
    return (np.tanh(2.5 * np.sin(phase)) * 0.35 * np.exp(-note_pos * 2.0))[:, None]


def keys(seconds: float, bpm: float) -> np.ndarray:
    n = int(seconds * RATE)
    beat = 60.0 / bpm
    chords = [
        (329.6, 415.3, 493.9),
        (329.6, 415.3, 493.9),
        (440.0, 554.4, 659.3),
        (392.0, 493.9, 587.3),
    ]
    t = np.arange(n) / RATE
    bar = (t // (4 * beat)).astype(int) % len(chords)
    out = np.zeros((n, 2))
    pos = (t % (2 * beat)) / (2 * beat)
    env = np.exp(-pos * 3.0) * 0.12
    for voice, pan in zip(range(3), (0.3, 0.5, 0.7), strict=True):
        freq = np.asarray([c[voice] for c in chords])[bar]
        phase = 2 * np.pi * np.cumsum(freq) / RATE
        tone = (np.sin(phase) + 0.3 * np.sin(2 * phase)) * env
        out[:, 0] += tone * np.cos(pan * np.pi / 2)
        out[:, 1] += tone * np.sin(pan * np.pi / 2)
    return out


DEMO_STEMS = {"Drums": drums, "Bass": bass, "Keys": keys}


def write_demo_stem(path: str, name: str, seconds: float = 16.0, bpm: float = 120.0) -> None:
    data = DEMO_STEMS[name](seconds, bpm)
    sf.write(
        path, np.clip(data, -1.0, 1.0).astype(np.float32), RATE, subtype="PCM_24", format="FLAC"
    )
