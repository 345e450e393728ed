"""Each rule of the project document (ARCHITECTURE.md §4), pinned on generated signals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from audio.engine.document import DocumentError

from .render_helpers import RATE, clip, document, noise, render_doc, track, write_source


def db(x: float) -> float:
    return 10.0 ** (x / 20.0)


def test_clip_starts_at_round_of_start_times_rate(tmp_path):
    src = noise(0.5, 2)
    name = write_source(tmp_path, "a.wav", src)
    out, _ = render_doc(tmp_path, document([track("t", [clip(name, start=0.123456)])]))
    first = round(0.123456 * RATE)  # 5926.888 -> 5927
    assert out.shape == (first + len(src), 2)
    assert not out[:first].any()
    assert_array_equal(out[first:], src)


def test_offset_skips_into_the_source(tmp_path):
    src = noise(1.0, 2)
    name = write_source(tmp_path, "a.wav", src)
    out, _ = render_doc(tmp_path, document([track("t", [clip(name, offset=0.25)])]))
    assert_array_equal(out, src[12000:])


def test_duration_cuts_the_clip_and_null_runs_to_the_source_end(tmp_path):
    src = noise(1.0, 2)
    name = write_source(tmp_path, "a.wav", src)
    cut, _ = render_doc(
        tmp_path, document([track("t", [clip(name, offset=0.1, duration=0.5)])]), "cut.wav"
    )
    assert_array_equal(cut, src[4800 : 4800 + 24000])
    full, _ = render_doc(tmp_path, document([track("t", [clip(name, duration=None)])]), "full.wav")
    assert_array_equal(full, src)


def test_fades_follow_the_afade_convention(tmp_path):
    src = np.full((RATE, 2), 0.5, dtype=np.float32)
    name = write_source(tmp_path, "dc.wav", src)
    doc = document([track("t", [clip(name, fade_in=0.01, fade_out=0.02)])])
    out, _ = render_doc(tmp_path, doc)
    n_in, n_out = 480, 960
    i = np.arange(n_in)
    assert_allclose(out[:n_in, 0], 0.5 * i / n_in, rtol=1e-6, atol=0)
    k = np.arange(n_out)
    assert_allclose(out[-n_out:, 1], 0.5 * (n_out - k) / n_out, rtol=1e-6, atol=0)
    assert_array_equal(out[n_in:-n_out], 0.5)


def test_clip_and_track_gains_multiply(tmp_path):
    src = noise(0.5, 2)
    name = write_source(tmp_path, "a.wav", src)
    doc = document([track("t", [clip(name, gain_db=-6.0)], gain_db=3.5)])
    out, _ = render_doc(tmp_path, doc)
    assert_allclose(out, src * db(-6.0) * db(3.5), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("pan", [-1.0, -0.5, 0.0, 0.3, 1.0])
def test_mono_track_pans_with_constant_power(tmp_path, pan):
    src = noise(0.3, 1)
    name = write_source(tmp_path, "m.wav", src)
    out, _ = render_doc(tmp_path, document([track("t", [clip(name)], pan=pan)]))
    theta = (pan + 1.0) * math.pi / 4.0
    assert_allclose(out[:, 0], src[:, 0] * math.cos(theta), rtol=1e-6, atol=1e-9)
    assert_allclose(out[:, 1], src[:, 0] * math.sin(theta), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("pan", [-1.0, -0.4, 0.0, 0.7, 1.0])
def test_stereo_track_pans_as_balance(tmp_path, pan):
    src = noise(0.3, 2)
    name = write_source(tmp_path, "s.wav", src)
    out, _ = render_doc(tmp_path, document([track("t", [clip(name)], pan=pan)]))
    assert_allclose(out[:, 0], src[:, 0] * min(1.0, 1.0 - pan), rtol=1e-6, atol=1e-9)
    assert_allclose(out[:, 1], src[:, 1] * min(1.0, 1.0 + pan), rtol=1e-6, atol=1e-9)


def test_mono_clip_on_stereo_track_feeds_both_channels_at_unity(tmp_path):
    mono = noise(0.3, 1, seed=1)
    stereo = noise(0.3, 2, seed=2)
    m = write_source(tmp_path, "m.wav", mono)
    s = write_source(tmp_path, "s.wav", stereo)
    doc = document([track("t", [clip(m), clip(s, start=1.0)])])
    out, _ = render_doc(tmp_path, doc)
    assert_array_equal(out[: len(mono), 0], mono[:, 0])
    assert_array_equal(out[: len(mono), 1], mono[:, 0])
    assert_array_equal(out[RATE:], stereo)


def test_track_of_mono_clips_only_is_mono(tmp_path):
    mono = noise(0.3, 1)
    m = write_source(tmp_path, "m.wav", mono)
    out, _ = render_doc(tmp_path, document([track("t", [clip(m), clip(m, start=0.5)])]))
    # Centre of the constant-power law, not unity: the track is mono.
    assert_allclose(out[: len(mono), 0], mono[:, 0] * math.sqrt(0.5), rtol=1e-6, atol=1e-9)


def test_mute_silences_but_keeps_the_song_length(tmp_path):
    a = write_source(tmp_path, "a.wav", noise(1.0, 2, seed=1))
    b = write_source(tmp_path, "b.wav", noise(1.0, 2, seed=2))
    doc = document([track("a", [clip(a)]), track("b", [clip(b, start=2.0)], mute=True)])
    out, result = render_doc(tmp_path, doc)
    assert out.shape[0] == 3 * RATE
    assert result.duration_s == 3.0
    assert not out[RATE:].any()


def test_any_solo_leaves_only_soloed_tracks(tmp_path):
    sources = [write_source(tmp_path, f"{i}.wav", noise(0.5, 2, seed=i)) for i in range(3)]
    data = [noise(0.5, 2, seed=i) for i in range(3)]
    doc = document(
        [
            track("a", [clip(sources[0])], solo=True),
            track("b", [clip(sources[1])]),
            track("c", [clip(sources[2])], solo=True, mute=True),
        ]
    )
    out, _ = render_doc(tmp_path, doc)
    # Mute wins over solo: only "a" sounds.
    assert_array_equal(out, data[0])


def test_master_gain_scales_the_sum(tmp_path):
    a = write_source(tmp_path, "a.wav", noise(0.5, 2, seed=1))
    b = write_source(tmp_path, "b.wav", noise(0.5, 2, seed=2))
    doc = document([track("a", [clip(a)]), track("b", [clip(b)])])
    doc["master"] = {"gain_db": -7.0, "effects": []}
    out, _ = render_doc(tmp_path, doc)
    expected = (noise(0.5, 2, seed=1) + noise(0.5, 2, seed=2)) * np.float32(db(-7.0))
    assert_allclose(out, expected, rtol=1e-6, atol=1e-9)


def test_no_tail_without_time_based_effects(tmp_path):
    a = write_source(tmp_path, "a.wav", noise(1.0, 2))
    fx = [{"type": "highpass", "cutoff_hz": 100.0}, {"type": "compressor", "ratio": 4.0}]
    out, _ = render_doc(tmp_path, document([track("a", [clip(a, start=0.5)], effects=fx)]))
    assert out.shape[0] == round(1.5 * RATE)


def test_reverb_tail_runs_until_below_minus_90_dbfs(tmp_path):
    a = write_source(tmp_path, "a.wav", noise(0.5, 2))
    fx = [{"type": "reverb", "room_size": 0.8}]
    out, result = render_doc(tmp_path, document([track("a", [clip(a)], effects=fx)]))
    content = round(0.5 * RATE)
    assert content < out.shape[0] <= content + 10 * RATE
    floor = 10 ** (-90 / 20)
    # The last sample kept is the last one at or above the floor.
    assert np.abs(out[-1]).max() >= floor * (1 - 1e-6)
    assert result.frames == out.shape[0]


def test_tail_stops_at_ten_seconds(tmp_path):
    a = write_source(tmp_path, "a.wav", noise(0.5, 2))
    fx = [{"type": "delay", "delay_ms": 1000.0, "feedback": 0.95, "mix": 0.5}]
    out, _ = render_doc(tmp_path, document([track("a", [clip(a)], effects=fx)]))
    assert out.shape[0] == round(0.5 * RATE) + 10 * RATE


def test_source_at_44k1_is_resampled_to_the_project_rate(tmp_path):
    t = np.arange(44100) / 44100
    tone = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)[:, None]
    name = write_source(tmp_path, "s.wav", tone, rate=44100)
    out, _ = render_doc(tmp_path, document([track("t", [clip(name, start=0.5)])]))
    assert out.shape[0] == round(0.5 * RATE) + RATE
    head = round(0.5 * RATE)
    ref = 0.5 * np.sin(2 * np.pi * 1000.0 * np.arange(RATE) / RATE) * math.sqrt(0.5)
    # Away from the clip's edges (the filter sees silence beyond them) the
    # resampled tone matches the ideal one in amplitude and phase.
    assert_allclose(out[head + 500 : -500, 0], ref[500:-500], atol=5e-5)


def test_offset_into_a_resampled_source_is_in_project_samples(tmp_path):
    t = np.arange(44100) / 44100
    tone = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)[:, None]
    name = write_source(tmp_path, "s.wav", tone, rate=44100)
    out, _ = render_doc(tmp_path, document([track("t", [clip(name, offset=0.25)])]))
    ref = 0.5 * np.sin(2 * np.pi * 440.0 * (np.arange(RATE) + 12000) / RATE) * math.sqrt(0.5)
    assert out.shape[0] == RATE - 12000
    assert_allclose(out[:-500, 0], ref[: RATE - 12000 - 500], atol=5e-5)


def test_source_with_three_channels_is_refused(tmp_path):
    name = write_source(tmp_path, "three.wav", noise(0.2, 3))
    with pytest.raises(DocumentError, match=r"tracks\[0\]\.clips\[0\]\.source: .*3 channels"):
        render_doc(tmp_path, document([track("t", [clip(name)])]))
