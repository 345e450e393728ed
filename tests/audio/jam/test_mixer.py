"""Mix-minus maths and metronome timing (no network)."""

from __future__ import annotations

import numpy as np
import pytest

from audio.jam.mixer import Metronome, balance, gain_vector, mix, soft_clip

N = 480


def constant_inputs(values: list[float]) -> np.ndarray:
    return np.stack([np.full((N, 2), v, np.float32) for v in values])


def mix_minus_gains(p: int) -> np.ndarray:
    g = np.ones((p, p, 2), np.float32)
    g[np.arange(p), np.arange(p)] = 0.0
    return g


def test_each_listener_hears_everyone_but_themselves() -> None:
    out = mix(constant_inputs([0.1, 0.02, 0.003]), mix_minus_gains(3))
    np.testing.assert_allclose(out[:, 0, 0], [0.023, 0.103, 0.12], rtol=1e-6)
    assert out.shape == (3, N, 2)


def test_personal_gain_minus_12_db_scales_only_that_source_for_that_listener() -> None:
    g = mix_minus_gains(3)
    g[1, 0] = gain_vector(-12.0, 0.0)  # listener 1 turns source 0 down
    out = mix(constant_inputs([0.1, 0.0, 0.0]), g)
    assert 20 * np.log10(out[1, 0, 0] / 0.1) == pytest.approx(-12.0, abs=1e-4)
    assert out[2, 0, 0] == pytest.approx(0.1)  # listener 2 unaffected


def test_pan_is_balance_with_unity_at_centre() -> None:
    assert balance(0.0) == (1.0, 1.0)
    assert balance(-1.0) == (1.0, 0.0)
    assert balance(0.5) == (0.5, 1.0)
    g = mix_minus_gains(2)
    g[1, 0] = gain_vector(0.0, -0.5)
    out = mix(constant_inputs([0.2, 0.0]), g)
    np.testing.assert_allclose(out[1, 0], [0.2, 0.1], rtol=1e-6)


def test_self_monitor_is_just_a_diagonal_gain() -> None:
    g = mix_minus_gains(2)
    g[0, 0] = gain_vector(-6.0, 0.0)
    out = mix(constant_inputs([0.2, 0.0]), g)
    assert out[0, 0, 0] == pytest.approx(0.2 * 10 ** (-6 / 20), rel=1e-6)


def test_soft_clip_is_transparent_below_threshold_and_bounded_above() -> None:
    quiet = np.linspace(-0.8, 0.8, 1001, dtype=np.float32)
    np.testing.assert_array_equal(soft_clip(quiet), quiet)
    loud = np.linspace(-20, 20, 1001, dtype=np.float32)
    clipped = soft_clip(loud)
    assert np.all(np.abs(clipped) <= 1.0)
    assert np.all(np.diff(clipped) >= 0)  # monotonic: no fold-over


@pytest.mark.parametrize("players", [1, 2, 7, 16])
def test_mix_is_the_gain_weighted_sum_for_any_room_size(players: int) -> None:
    rng = np.random.default_rng(players)
    inputs = rng.uniform(-0.5, 0.5, (players, N, 2)).astype(np.float32)
    gains = rng.uniform(0.0, 1.0, (players, players, 2)).astype(np.float32)
    out = mix(inputs, gains)
    expected = np.zeros((players, N, 2), np.float64)
    for listener in range(players):
        for source in range(players):
            expected[listener] += gains[listener, source] * inputs[source].astype(np.float64)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_soft_clip_leaves_listeners_below_threshold_bit_identical() -> None:
    mixes = np.zeros((3, N, 2), np.float32)
    mixes[0] = 0.5
    mixes[1] = np.linspace(-3.0, 3.0, N, dtype=np.float32)[:, None]  # a pile-up
    mixes[2] = -0.79
    out = soft_clip(mixes)
    np.testing.assert_array_equal(out[[0, 2]], mixes[[0, 2]])
    np.testing.assert_array_equal(out[1], soft_clip(mixes[1]))
    assert np.all(np.abs(out[1]) <= 1.0) and np.abs(out[1]).max() > 0.95
    assert mixes[1].max() == 3.0  # the input is not modified in place


@pytest.mark.parametrize("bpm", [120.0, 100.0, 97.0, 173.5])
def test_metronome_clicks_start_on_the_tempo_grid(bpm: float) -> None:
    m = Metronome(bpm, beats_per_bar=4, origin=1000)
    total = 48000 * 4
    audio = np.concatenate([m.render(s, N) for s in range(0, total, N)])
    onsets = np.flatnonzero((np.abs(audio[:, 0]) > 0) & (np.abs(np.roll(audio[:, 0], 1)) == 0))
    expected = [1000 + round(k * 60.0 / bpm * 48000) for k in range(20)]
    expected = [e for e in expected if e < total]
    # The click is a sine starting at phase 0: its first sample is 0, so the
    # first non-zero sample is one after the beat.
    np.testing.assert_array_equal(onsets - 1, expected)


def test_metronome_render_is_the_same_in_any_block_size() -> None:
    m = Metronome(133.0)
    whole = m.render(0, 48000)
    pieces = np.concatenate([m.render(s, 480) for s in range(0, 48000, 480)])
    odd = np.concatenate([m.render(s, 77) for s in range(0, 48048, 77)])[:48000]
    np.testing.assert_array_equal(pieces, whole)
    np.testing.assert_array_equal(odd, whole)


def test_metronome_accents_the_downbeat() -> None:
    m = Metronome(120.0, beats_per_bar=3)
    beat = 24000
    spectra = [np.abs(np.fft.rfft(m.render(k * beat, 960)[:, 0])) for k in range(4)]
    peak_hz = [np.argmax(s) * 48000 / 960 for s in spectra]
    assert peak_hz == [1500.0, 1000.0, 1000.0, 1500.0]
