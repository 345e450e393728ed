"""Jam server benchmark: server-added latency, CPU per participant, recovery.

The server (a JamRoom) runs in this process; the bots run in a child process
so the CPU figures are the server's alone. Everything is on 127.0.0.1.

Latency is measured inside the server, per source packet: from the moment the
RTP packet is handed over by SRTP (arrival) to the moment the mixed packet
carrying that audio has been encoded for each listener (just before it is
encrypted and sent). The same bots and the same mixer are also run with
aiortc's stock receive path (RTCRtpReceiver jitter buffer + decoder thread +
track.recv()) feeding the room clock through a FIFO.

    .venv/bin/python bench/bench_jam.py            # full run
    .venv/bin/python bench/bench_jam.py --quick    # smaller, shorter
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing as mp
import os
import sys
import time
from collections import deque
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from audio.jam import JamRoom, JitterStats  # noqa: E402
from audio.jam.bot import Bot  # noqa: E402
from audio.jam.opus import CHANNELS, FRAME_SAMPLES, frame_to_pcm  # noqa: E402

N = FRAME_SAMPLES


# -- aiortc's stock receive path, for comparison ----------------------------------


class _StockInput:
    """Frames from aiortc's RemoteStreamTrack, played first-in first-out."""

    def __init__(self, receiver: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.last_arrival = math.nan
        self._stats = JitterStats()
        self._fifo: deque[tuple[Any, float]] = deque()
        self._arrivals: dict[int, float] = {}
        self._first: int | None = None
        buffer = receiver._RTCRtpReceiver__jitter_buffer
        add = buffer.add

        def timed_add(packet: Any) -> Any:
            if self._first is None:
                self._first = packet.timestamp
            self._arrivals[(packet.timestamp - self._first) & 0xFFFFFFFF] = loop.time()
            return add(packet)

        buffer.add = timed_add
        self._receiver = receiver
        self.task = loop.create_task(self._pull())

    async def _pull(self) -> None:
        track = self._receiver.track
        while True:
            frame = await track.recv()
            arrival = self._arrivals.pop(int(frame.pts), math.nan)
            self._fifo.append((frame_to_pcm(frame), arrival))

    @property
    def stats(self) -> JitterStats:
        self._stats.delay_ms = len(self._fifo) * 10.0
        return self._stats

    def pop(self, now: float) -> Any:
        if not self._fifo:
            self.last_arrival = math.nan
            return np.zeros((N, CHANNELS), np.float32)
        pcm, self.last_arrival = self._fifo.popleft()
        if len(pcm) != N:  # 20 ms from the decoder: keep it simple, play the head
            pcm = pcm[:N]
        return pcm


class StockRoom(JamRoom):
    def _attach_input(self, receiver: Any) -> Any:
        source = _StockInput(receiver, asyncio.get_running_loop())
        self._stock_tasks = [*getattr(self, "_stock_tasks", []), source.task]
        return source

    async def close(self) -> None:
        for task in getattr(self, "_stock_tasks", []):
            task.cancel()
        await super().close()


# -- bots, in their own process ------------------------------------------------------


def _tone(k: int) -> Any:
    t = (np.arange(N) + k * N) / 48000
    x = (0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    return np.stack([x, x], axis=1)


def bot_process(conn: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        bots: list[Bot] = []
        while True:
            cmd, *args = await loop.run_in_executor(None, conn.recv)
            if cmd == "start":
                count, loss, seed = args
                bots = [
                    Bot(f"bot{i}", _tone, decode=False, loss=loss, seed=seed + i)
                    for i in range(count)
                ]
                conn.send([await b.offer() for b in bots])
                answers = await loop.run_in_executor(None, conn.recv)
                await asyncio.gather(*(b.accept(a) for b, a in zip(bots, answers, strict=True)))
                for b in bots:
                    b.start_clock()
                conn.send("running")
            elif cmd == "drop":
                bots[0].drop(args[0])
                conn.send("ok")
            elif cmd == "stall":
                bots[0].stall(args[0])
                conn.send("ok")
            elif cmd == "stop":
                for b in bots:
                    await b.close()
                bots = []
                conn.send("stopped")
            elif cmd == "exit":
                return

    asyncio.run(main())


# -- server side --------------------------------------------------------------------


async def call(conn: Any, *msg: Any) -> Any:
    conn.send(msg)
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


async def scenario(
    conn: Any, path: str, players: int, loss: float, seconds: float, burst: bool
) -> dict[str, Any]:
    room = (JamRoom if path == "jam" else StockRoom)("bench", 120.0, max_participants=players)
    offers = await call(conn, "start", players, loss, 7)
    answers = [await room.add_participant(f"p{i}", o) for i, o in enumerate(offers)]
    conn.send(answers)
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    await asyncio.sleep(1.5)  # warm-up: connections settle, buffers adapt
    room.reset_latency_stats()
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)  # the measurement window
    cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    stats = room.stats()
    result: dict[str, Any] = {
        "path": path,
        "players": players,
        "loss": loss,
        "p50": stats["server_latency_ms"]["p50"],
        "p99": stats["server_latency_ms"]["p99"],
        "cpu_per_player": 100.0 * cpu / players,
        "cpu_total": 100.0 * cpu,
        "tick_late_p99": stats["tick_lateness_ms"]["p99"],
    }
    if burst:
        for kind in ("drop", "stall"):
            result[f"recover_{kind}"] = await recovery(conn, room, kind)
    await call(conn, "stop")
    await room.close()
    return result


async def recovery(conn: Any, room: JamRoom, kind: str) -> float:
    """Seconds after a 100 ms burst until latency from player 0 is back to normal."""
    samples = room.latency_samples()
    baseline = float(np.percentile([x for _, x in samples], 50))
    loop = asyncio.get_running_loop()
    await call(conn, kind, 10)
    burst_at = loop.time()
    await asyncio.sleep(6.0)
    later = [(t, x) for t, x in room.latency_samples() if t > burst_at]
    # 200 ms bins of median latency; recovered at the first bin that starts a
    # run of three (600 ms) within 10 ms of the pre-burst median. A stray slow
    # bin later on (a busy machine) is not the burst's doing.
    bins: dict[int, list[float]] = {}
    for t, x in later:
        bins.setdefault(int((t - burst_at) / 0.2), []).append(x)
    good = [b in bins and np.median(bins[b]) <= baseline + 0.010 for b in range(30)]
    for b in range(28):
        if good[b] and good[b + 1] and good[b + 2]:
            return b * 0.2
    return math.inf


def fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"


async def run(args: argparse.Namespace) -> None:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=bot_process, args=(child,), daemon=True)
    proc.start()
    sizes = [2, 8] if args.quick else [2, 4, 8, 16]
    seconds = 3.0 if args.quick else 8.0
    rows = []
    try:
        for players in sizes:
            for loss in (0.0, 0.02):
                for path in ("jam", "aiortc"):
                    burst = loss == 0.0 and players == 4 or (args.quick and players == 2)
                    burst = burst and loss == 0.0
                    r = await scenario(parent, path, players, loss, seconds, burst)
                    rows.append(r)
                    print(
                        f"{path:6} players={players:2} loss={loss:.0%} "
                        f"p50={fmt(r['p50'])}ms p99={fmt(r['p99'])}ms "
                        f"cpu/player={r['cpu_per_player']:.1f}% total={r['cpu_total']:.0f}% "
                        f"tick-late-p99={fmt(r['tick_late_p99'])}ms"
                        + (
                            f" recover(drop)={r['recover_drop']:.1f}s"
                            f" recover(stall)={r['recover_stall']:.1f}s"
                            if "recover_drop" in r
                            else ""
                        ),
                        flush=True,
                    )
    finally:
        parent.send(("exit",))
        proc.join(5)
    print()
    print("| path | players | loss | p50 ms | p99 ms | CPU/player % | CPU total % |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['path']} | {r['players']} | {r['loss']:.0%} | {fmt(r['p50'])} | "
            f"{fmt(r['p99'])} | {r['cpu_per_player']:.1f} | {r['cpu_total']:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 and 8 players, 3 s each")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
