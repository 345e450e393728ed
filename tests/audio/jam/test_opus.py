"""10 ms Opus in both directions (no network)."""

from __future__ import annotations

import av
import numpy as np
import pytest

from audio.jam.opus import (
    CODEC_DELAY_SAMPLES,
    OpusDecoder,
    OpusEncoder,
    frame_to_pcm,
    pcm_to_frame,
)

N = 480


def tone(frames: int, hz: float = 441.0, amplitude: float = 0.25) -> np.ndarray:
    t = np.arange(frames * N) / 48000
    x = (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    return np.stack([x, 0.5 * x], axis=1)


@pytest.mark.parametrize("complexity", [0, 5, 10])
def test_encoder_makes_one_10ms_packet_per_frame_that_decodes_to_the_input(
    complexity: int,
) -> None:
    audio = tone(50)
    encoder, decoder = OpusEncoder(complexity=complexity), OpusDecoder()
    decoded = []
    for k in range(50):
        packet = encoder(audio[k * N : (k + 1) * N], 1000 + k * N)
        assert packet is not None and packet.pts == 1000 + k * N
        block = decoder(bytes(packet))
        assert block.shape == (N, 2) and block.dtype == np.float32
        decoded.append(block)
    out = np.concatenate(decoded)[CODEC_DELAY_SAMPLES:]
    ref = audio[: len(out)]
    for ch in (0, 1):
        level = 20 * np.log10(
            np.sqrt(np.mean(out[N:, ch] ** 2)) / np.sqrt(np.mean(ref[N:, ch] ** 2))
        )
        assert level == pytest.approx(0.0, abs=0.5)
    assert np.corrcoef(out[N:, 0], ref[N:, 0])[0, 1] > 0.99


def test_complexity_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="complexity"):
        OpusEncoder(complexity=11)


def test_frame_to_pcm_reads_float_and_int16_frames_alike() -> None:
    pcm = tone(1)
    as_float = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="flt", layout="stereo")
    as_int = pcm_to_frame(pcm, 0)
    np.testing.assert_array_equal(frame_to_pcm(as_float), pcm)
    np.testing.assert_allclose(frame_to_pcm(as_int), pcm, atol=1.0 / 32768)
    mono = av.AudioFrame.from_ndarray(pcm[:, :1].reshape(1, -1).copy(), format="flt", layout="mono")
    np.testing.assert_array_equal(frame_to_pcm(mono), np.repeat(pcm[:, :1], 2, axis=1))
