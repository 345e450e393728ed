"""A headless jam participant over real WebRTC, for tests, load tests and benchmarks.

It sends 10 ms Opus frames it is handed (or that its own clock generates) and
decodes the personal mix it receives packet by packet, without aiortc's jitter
buffer, so what it hears is exactly what the server sent.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from aiortc import MediaStreamTrack, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from .ice import IceConfig, make_peer_connection, set_local_description
from .opus import (
    CHANNELS,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    OpusDecoder,
    OpusEncoder,
    Pcm,
    use_10ms_opus,
)
from .room import tap_receiver

Signal = Callable[[int], Pcm]


def silence(_: int) -> Pcm:
    return np.zeros((FRAME_SAMPLES, CHANNELS), np.float32)


def tone(amplitude: float = 0.25, hz: float = 441.0) -> Signal:
    """A continuous sine, the same on both channels: frame k is samples
    k*480 .. k*480+479 of it."""

    def signal(k: int) -> Pcm:
        t = (np.arange(FRAME_SAMPLES) + k * FRAME_SAMPLES) / SAMPLE_RATE
        x = (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)
        return np.stack([x, x], axis=1)

    return signal


class _OutTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        return await self.queue.get()


class Bot:
    """One participant. Frames go out in order, frame k carrying pts k * 480."""

    def __init__(
        self,
        name: str,
        signal: Signal = silence,
        ice: IceConfig | None = None,
        decode: bool = True,
        loss: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.name = name
        self.signal = signal
        self.ice = ice or IceConfig()
        self.sent = 0  # frames handed to the encoder
        self.heard: list[Pcm] = []
        self.heard_timestamps: list[int] = []
        self.packets_in = 0
        self.loss = loss
        self.dropped = 0
        self._decode = decode
        self._decoder = OpusDecoder()
        self._random = random.Random(seed)
        self._drop_next = 0
        self._hold_next = 0
        self._held: list[bytes] = []
        self._pc = make_peer_connection(self.ice)
        self._track = _OutTrack()
        self._transceiver = self._pc.addTransceiver(self._track, direction="sendrecv")
        self._encoder = OpusEncoder()
        # The sender only packetises what `send` encoded; its encoder's `pack`
        # keeps our timestamps.
        use_10ms_opus(self._transceiver.sender)
        tap_receiver(self._transceiver.receiver, self._on_packet)
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.connected = asyncio.Event()
        self._clock: asyncio.Task[None] | None = None
        # How late (s) each frame of `start_clock` left, for judging a benchmark's bots.
        self.send_lateness: deque[float] = deque(maxlen=3000)

        @self._pc.on("connectionstatechange")
        async def on_state() -> None:
            if self._pc.connectionState == "connected":
                self.connected.set()

    # -- signalling ----------------------------------------------------------------

    async def offer(self) -> str:
        await set_local_description(self._pc, await self._pc.createOffer(), self.ice)
        return str(self._pc.localDescription.sdp)

    async def accept(self, answer_sdp: str, timeout: float = 10.0) -> None:
        await self._pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        await asyncio.wait_for(self.connected.wait(), timeout)
        self._wrap_transport()

    async def close(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
        self._track.stop()
        await self._pc.close()

    # -- sending -------------------------------------------------------------------

    def send(self, pcm: Pcm | None = None) -> None:
        """Encode and queue the next frame (default: from the signal).

        Encoding here rather than in aiortc's executor keeps the moment a frame
        leaves deterministic: the packet is on the wire within this loop turn.
        """
        if pcm is None:
            pcm = self.signal(self.sent)
        packet = self._encoder(pcm, self.sent * FRAME_SAMPLES)
        if packet is not None:
            self._track.queue.put_nowait(packet)
        self.sent += 1

    def start_clock(self, phase_s: float = 0.0) -> None:
        """Send from the bot's own drift-free 10 ms clock, its first frame
        `phase_s` from now (independent players tick at unrelated phases)."""

        async def run() -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + phase_s - FRAME_SAMPLES / SAMPLE_RATE
            while True:
                deadline += FRAME_SAMPLES / SAMPLE_RATE
                await asyncio.sleep(max(0.0, deadline - loop.time()))
                self.send_lateness.append(loop.time() - deadline)
                self.send()

        self._clock = asyncio.get_running_loop().create_task(run())

    def drop(self, packets: int) -> None:
        """Lose the next `packets` RTP packets on the way out."""
        self._drop_next += packets

    def stall(self, packets: int) -> None:
        """Hold the next `packets` RTP packets and release them with the one after.

        Like a network hiccup: the first held packet arrives `packets` x 10 ms late.
        """
        self._hold_next += packets

    def _wrap_transport(self) -> None:
        transport = self._transceiver.sender.transport
        send_rtp = transport._send_rtp

        async def lossy_send(data: bytes) -> None:
            if len(data) > 1 and 192 <= data[1] <= 223:  # RTCP (RFC 5761): never lost
                await send_rtp(data)
                return
            if self._drop_next > 0:
                self._drop_next -= 1
                self.dropped += 1
                return
            if self.loss and self._random.random() < self.loss:
                self.dropped += 1
                return
            if self._hold_next > 0:
                self._hold_next -= 1
                self._held.append(data)
                return
            held, self._held = self._held, []
            for packet in [*held, data]:
                await send_rtp(packet)

        transport._send_rtp = lossy_send  # type: ignore[method-assign]

    # -- receiving -----------------------------------------------------------------

    def _on_packet(self, packet: Any) -> None:
        self.packets_in += 1
        if self._decode:
            self.heard.append(self._decoder(packet.payload))
            self.heard_timestamps.append(packet.timestamp)
        count = len(self.heard) if self._decode else self.packets_in
        for item in list(self._waiters):
            if count >= item[0] and not item[1].done():
                item[1].set_result(None)
                self._waiters.remove(item)

    async def wait_heard(self, count: int, timeout: float = 10.0) -> None:
        """Wait until `count` packets of mix have arrived in total."""
        have = len(self.heard) if self._decode else self.packets_in
        if have >= count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((count, future))
        await asyncio.wait_for(future, timeout)


async def join(room: Any, participant_id: str, bot: Bot) -> None:
    """Connect `bot` to `room` (a JamRoom or anything with add_participant)."""
    answer = await room.add_participant(participant_id, await bot.offer())
    await bot.accept(answer)
