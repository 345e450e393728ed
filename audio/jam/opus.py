"""Opus in 10 ms frames, for both directions of a jam connection.

aiortc packs 20 ms of audio per packet and has no setting for it, so the jam
server brings its own encoder and decoder. Frames are 48 kHz stereo, 480
samples, float32 in [-1, 1] on the numpy side.
"""

from __future__ import annotations

import fractions
import time
from collections.abc import Callable
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from aiortc.codecs.base import Encoder
from av.frame import Frame
from av.packet import Packet

SAMPLE_RATE = 48000
FRAME_SAMPLES = 480  # 10 ms
CHANNELS = 2
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
# Restricted low-delay (CELT only) has 2.5 ms of lookahead instead of 6.5 ms;
# a constant we need to know to align recordings with what was played.
CODEC_DELAY_SAMPLES = 120
DEFAULT_BITRATE = 128000
# Every listener needs their own encoder, so this is the per-player cost that
# grows with the room. Complexity 5 encodes a 10 ms stereo frame in about two
# thirds of the time of 10 (83 vs 123 us here); 8 and above add analysis that
# spends more bits (157 vs 133 kb/s VBR) for 2 dB more segmental SNR.
DEFAULT_COMPLEXITY = 5

Pcm = npt.NDArray[np.float32]
EncodedCallback = Callable[[int, float], None]


def pcm_to_frame(pcm: Pcm, pts: int) -> av.AudioFrame:
    """A (480, 2) float block as the s16 stereo AudioFrame aiortc expects."""
    ints = np.clip(np.rint(pcm * 32767.0), -32768, 32767).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(ints.reshape(1, -1), format="s16", layout="stereo")
    frame.sample_rate = SAMPLE_RATE
    frame.pts = pts
    frame.time_base = TIME_BASE
    return frame


def frame_to_pcm(frame: av.AudioFrame) -> Pcm:
    """A decoded frame (s16 or float, packed, mono or stereo) as a (n, 2) float block."""
    channels = len(frame.layout.channels)
    if frame.format.name == "flt":  # what OpusDecoder asks for: one copy, no conversion
        data: Any = np.frombuffer(memoryview(frame.planes[0]), np.float32, frame.samples * channels)
    else:
        data = frame.to_ndarray()
    data = data.reshape(-1, channels)
    pcm: Pcm = data.astype(np.float32) / 32768.0 if data.dtype == np.int16 else data.copy()
    if pcm.shape[1] == 1:
        pcm = np.repeat(pcm, 2, axis=1)
    return pcm


class OpusDecoder:
    """Decodes RTP Opus payloads in the order the jitter buffer plays them.

    Opus decoding is stateful, so packets must be decoded in playout order,
    never on arrival (which may be reordered). libopus decodes straight to
    float, so no integer round trip.
    """

    def __init__(self) -> None:
        self._codec: Any = av.CodecContext.create("libopus", "r")
        self._codec.layout = "stereo"
        self._codec.sample_rate = SAMPLE_RATE
        self._codec.options = {"request_sample_fmt": "flt"}

    def __call__(self, payload: bytes) -> Pcm:
        blocks = [frame_to_pcm(f) for f in self._codec.decode(av.Packet(payload))]
        if not blocks:
            return np.zeros((0, CHANNELS), np.float32)
        return np.concatenate(blocks) if len(blocks) > 1 else blocks[0]


class OpusEncoder:
    """Encodes (480, 2) float frames into 10 ms Opus packets (the room's mixes).

    CELT only (restricted low delay), no FEC (CELT has none), VBR. `complexity`
    trades CPU for quality; every listener needs an encoder of their own, so
    this is the one per-player cost that grows with the room.
    """

    def __init__(
        self, bitrate: int = DEFAULT_BITRATE, complexity: int = DEFAULT_COMPLEXITY
    ) -> None:
        if not 0 <= complexity <= 10:
            raise ValueError("Opus complexity is 0..10")
        self._codec: Any = av.CodecContext.create("libopus", "w")
        self._codec.bit_rate = bitrate
        self._codec.format = "flt"
        self._codec.layout = "stereo"
        self._codec.sample_rate = SAMPLE_RATE
        self._codec.time_base = TIME_BASE
        self._codec.options = {
            "application": "lowdelay",
            "frame_duration": "10",
            "compression_level": str(complexity),
        }

    def __call__(self, pcm: Pcm, pts: int) -> Packet[Any] | None:
        """The packet for one frame, its pts set to `pts` (None if the codec held it)."""
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(pcm, dtype=np.float32).reshape(1, -1),
            format="flt",
            layout="stereo",
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = pts
        frame.time_base = TIME_BASE
        packets = self._codec.encode(frame)
        if not packets:
            return None
        packet: Packet[Any] = packets[0]
        packet.pts = pts  # libopus shifts pts by its lookahead; keep the room frame
        return packet


class Opus10msEncoder(Encoder):
    """aiortc Encoder producing one 10 ms Opus packet per 480-sample frame.

    Installed on an RTCRtpSender with `use_10ms_opus`. RTP timestamps come
    from the frames' pts, so a frame dropped before encoding shows up as a gap
    to the receiver rather than as time running backwards.
    """

    def __init__(self, bitrate: int = 128000, on_encoded: EncodedCallback | None = None) -> None:
        self._codec: Any = av.CodecContext.create("libopus", "w")
        self._codec.bit_rate = bitrate
        self._codec.format = "s16"
        self._codec.layout = "stereo"
        self._codec.sample_rate = SAMPLE_RATE
        self._codec.time_base = TIME_BASE
        self._codec.options = {"application": "lowdelay", "frame_duration": "10"}
        # Other producers (bots, tests) may hand us frames of any size.
        self._resampler = av.AudioResampler(
            format="s16", layout="stereo", rate=SAMPLE_RATE, frame_size=FRAME_SAMPLES
        )
        self._first_pts: int | None = None
        # Called from the encoding thread as (frame pts, time.monotonic()) once
        # a frame's packet exists; used to measure server-added latency.
        self.on_encoded = on_encoded

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        assert isinstance(frame, av.AudioFrame)
        if (
            frame.samples == FRAME_SAMPLES
            and frame.sample_rate == SAMPLE_RATE
            and frame.format.name == "s16"
            and frame.layout.name == "stereo"
        ):
            frames = [frame]
        else:
            frames = list(self._resampler.resample(frame))
        packets = []
        for f in frames:
            packets += self._codec.encode(f)
        if not packets:
            return [], 0
        if self._first_pts is None:
            self._first_pts = int(packets[0].pts)
        if self.on_encoded is not None and frame.pts is not None:
            self.on_encoded(int(frame.pts), time.monotonic())
        return [bytes(p) for p in packets], int(packets[0].pts) - self._first_pts

    def pack(self, packet: Packet[Any]) -> tuple[list[bytes], int]:
        return [bytes(packet)], int(packet.pts or 0)


def use_10ms_opus(sender: Any, encoder: Opus10msEncoder | None = None) -> Opus10msEncoder:
    """Make an RTCRtpSender encode with `Opus10msEncoder`.

    aiortc picks its 20 ms encoder lazily on the first frame and offers no hook,
    so we fill its (name-mangled) encoder slot before media starts. Fails loudly
    if an aiortc upgrade renames the slot, rather than silently sending 20 ms.
    """
    slot = "_RTCRtpSender__encoder"
    if not hasattr(sender, slot):
        raise RuntimeError("aiortc RTCRtpSender has no encoder slot; check the aiortc version")
    if getattr(sender, slot) is not None:
        raise RuntimeError("sender already encoding; install the 10 ms encoder before media flows")
    enc = encoder or Opus10msEncoder()
    setattr(sender, slot, enc)
    return enc
