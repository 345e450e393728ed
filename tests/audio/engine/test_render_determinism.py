"""Same document and sources -> same bytes, whatever the block size or thread count."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio.engine.document import parse_document
from audio.engine.render import RenderCancelled, render

from .render_helpers import clip, document, noise, render_doc, track, write_source


def file_sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def project(tmp_path):
    write_source(tmp_path, "a.flac", noise(3.0, 2, seed=1), subtype="PCM_24")
    write_source(tmp_path, "b.wav", noise(2.0, 1, seed=2), rate=44100)
    write_source(tmp_path, "c.mp3", noise(2.0, 2, seed=3), subtype="MPEG_LAYER_III")
    fx = [
        {"type": "highpass", "cutoff_hz": 90.0},
        {"type": "peak", "cutoff_hz": 1200.0, "gain_db": 3.0, "q": 1.2},
        {"type": "compressor", "threshold_db": -20.0, "ratio": 3.0},
    ]
    doc = document(
        [
            track(
                "a", [clip("a.flac", start=0.01, fade_in=0.3, fade_out=0.2)], effects=fx, pan=0.2
            ),
            track(
                "b",
                [clip("b.wav", start=0.5, offset=0.1)],
                effects=[{"type": "chorus"}, {"type": "reverb", "room_size": 0.6}],
                pan=-0.4,
            ),
            track(
                "c",
                [clip("c.mp3", start=1.0, duration=1.2, gain_db=-4.0)],
                effects=[{"type": "delay", "delay_ms": 120.0, "feedback": 0.3}],
            ),
        ]
    )
    doc["master"] = {
        "gain_db": -1.0,
        "effects": [
            {"type": "low_shelf", "cutoff_hz": 120.0, "gain_db": 2.0},
            {"type": "limiter", "threshold_db": -3.0},
        ],
    }
    return tmp_path, doc


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("mix.wav", {"bit_depth": "24"}),
        ("mix.flac", {"bit_depth": "16", "dither": True, "dither_seed": 7}),
        ("mix.mp3", {"mp3_quality": "320"}),
        ("mix.mp3", {"mp3_quality": "V2"}),
        ("mix.wav", {"bit_depth": "32f"}),
    ],
)
def test_same_bytes_for_any_block_size_and_thread_count(project, name, options):
    folder, doc = project
    shas, pcm = set(), set()
    for i, (block, threads) in enumerate([(8192, 1), (1000, 2), (4096, 3), (20000, 1)]):
        out = folder / f"{i}-{name}"
        result = render(
            parse_document(doc),
            lambda s: str(folder / s),
            str(out),
            block_frames=block,
            threads=threads,
            **options,
        )
        shas.add(file_sha(out))
        pcm.add(result.pcm_sha256)
    assert len(pcm) == 1, pcm
    assert len(shas) == 1


def test_pcm_sha256_hashes_the_samples_as_written(project):
    folder, doc = project
    _, result = render_doc(folder, doc, "mix.wav", bit_depth="16")
    data, _ = sf.read(str(folder / "mix.wav"), dtype="int16")
    assert hashlib.sha256(data.astype("<i2").tobytes()).hexdigest() == result.pcm_sha256


def test_dither_is_seeded_and_only_when_asked(project):
    folder, doc = project
    _, plain = render_doc(folder, doc, "p.wav", bit_depth="16")
    _, d1 = render_doc(folder, doc, "d1.wav", bit_depth="16", dither=True, dither_seed=1)
    _, d1b = render_doc(folder, doc, "d1b.wav", bit_depth="16", dither=True, dither_seed=1)
    _, d2 = render_doc(folder, doc, "d2.wav", bit_depth="16", dither=True, dither_seed=2)
    assert d1.pcm_sha256 == d1b.pcm_sha256
    assert len({plain.pcm_sha256, d1.pcm_sha256, d2.pcm_sha256}) == 3


def test_stems_sum_to_the_mix_before_the_master(tmp_path):
    a = noise(1.0, 2, seed=1)
    b = noise(1.0, 1, seed=2)
    write_source(tmp_path, "a.wav", a)
    write_source(tmp_path, "b.wav", b)
    doc = document(
        [
            track("drums", [clip("a.wav")], pan=0.5, effects=[{"type": "lowpass"}]),
            track("bass", [clip("b.wav", start=0.5)], gain_db=-3.0),
            track("muted", [clip("b.wav")], mute=True),
        ]
    )
    stems_dir = tmp_path / "stems"
    mix, result = render_doc(tmp_path, doc, stems_dir=str(stems_dir))
    assert sorted(result.stems) == ["bass", "drums", "muted"]
    total = np.zeros_like(mix)
    for stem in result.stems.values():
        data, _ = sf.read(stem.path, dtype="float64", always_2d=True)
        assert data.shape == mix.shape
        total += data
    np.testing.assert_allclose(total, mix, atol=1e-6)
    muted, _ = sf.read(result.stems["muted"].path)
    assert not muted.any()


def test_progress_rises_to_one_and_cancel_removes_the_partial_file(project):
    folder, doc = project
    seen: list[float] = []
    render_doc(folder, doc, "p.wav", progress=seen.append, block_frames=2048)
    assert seen == sorted(seen)
    assert seen[-1] == 1.0
    assert len(seen) > 10

    calls = iter(range(100))

    def cancel() -> bool:
        return next(calls) >= 3

    with pytest.raises(RenderCancelled):
        render_doc(folder, doc, "c.wav", cancel=cancel, block_frames=2048)
    assert not (folder / "c.wav").exists()


def test_cancel_with_a_thread_pool_removes_the_partial_file(project):
    # With a pool the next block's tracks are already being rendered when the
    # cancel hook fires; that work is dropped and the partial file removed.
    folder, doc = project
    calls = iter(range(100))

    def cancel() -> bool:
        return next(calls) >= 3

    with pytest.raises(RenderCancelled):
        render_doc(folder, doc, "c2.wav", cancel=cancel, block_frames=2048, threads=2)
    assert not (folder / "c2.wav").exists()


def test_stems_are_identical_whatever_the_thread_count(project):
    folder, doc = project
    hashes = []
    for i, (block, threads) in enumerate([(8192, 1), (4096, 2), (12288, 3)]):
        _, result = render_doc(
            folder,
            doc,
            f"s{i}.wav",
            stems_dir=str(folder / f"stems{i}"),
            block_frames=block,
            threads=threads,
        )
        hashes.append(
            (result.pcm_sha256, {k: file_sha(Path(s.path)) for k, s in result.stems.items()})
        )
    assert hashes[0] == hashes[1] == hashes[2]


def test_faded_clip_with_gain_is_identical_for_any_block_size(tmp_path):
    # Regression: the fade envelope used to be applied per block in float64 to
    # the whole block once any of it was in a fade, so samples next to a fade
    # were rounded differently depending on where the blocks fell.
    write_source(tmp_path, "a.flac", noise(3.0, 2, seed=4), subtype="PCM_24")
    doc = document(
        [
            track(
                "a",
                [clip("a.flac", offset=0.2, fade_in=0.4, fade_out=0.9, gain_db=-2.5)],
                gain_db=-1.0,
            ),
            track("b", [clip("a.flac", start=0.5, fade_in=1.5, fade_out=1.4, gain_db=1.5)]),
        ]
    )
    shas = set()
    for i, (block, threads) in enumerate([(4096, 1), (8192, 2), (20000, 1), (65536, 3)]):
        _, result = render_doc(tmp_path, doc, f"f{i}.wav", block_frames=block, threads=threads)
        shas.add(result.pcm_sha256)
    assert len(shas) == 1
