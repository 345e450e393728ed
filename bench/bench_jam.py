"""Jam server benchmark: server-added latency, CPU per participant, recovery.

Three processes, all on 127.0.0.1:

- the *server* runs one JamRoom (its event loop and its clock thread) and
  nothing else, pinned to one core (`--server-cpus`, default 0) so "carries N
  players on one core" is what is measured;
- the *bots* (N aiortc peers, each encoding 10 ms Opus from its own drift-free
  clock, loss injected in their senders) run in a second process on the other
  core(s), so their Opus and WebRTC work never counts against the server;
- this *orchestrator* only passes SDP and commands and reads CPU times with
  psutil.

Latency is measured inside the server, per (source packet, listener) pair: from
the moment aiortc hands the decrypted RTP packet over (arrival) to the moment
the listener's mixed packet carrying that audio has been handed to the socket.
It is split into `wait` (arrival to the start of the tick that plays it:
jitter buffer and clock phase), `mix` (the tick's decode + mix + encode on the
clock thread) and `send` (clock thread to event loop, RTP/SRTP, sendto).

Each case runs twice with the same bots: `jam` (our receive path) and `aiortc`
(aiortc's stock RTCRtpReceiver jitter buffer + decoder thread + track.recv(),
feeding the same room clock through a FIFO). Recovery: after the measurement
window, player 0 loses 10 packets in a row (`drop`) or has 10 held and
released at once (`stall`, a 100 ms hiccup); recovery is the time until
player 0's latency, in 200 ms bins, is back within 5 ms of its median of the
second before the burst for three bins in a row.

On a shared machine the figures ride on its scheduling noise, so every case
also reports how late the room clock's ticks started, how late the server's
event loop ran a 5 ms timer, how late the bots sent, and how late this
machine wakes an idle process from a 5 ms sleep. The bots run at nice -10 by
default: they stand in for remote machines and should not add this host's
noise to the server's input. `--wait-quiet S` waits before each case until
the machine is idle.

    .venv/bin/python bench/bench_jam.py --wait-quiet 300   # 2, 4, 8, 16 players; 0, 2 % loss
    .venv/bin/python bench/bench_jam.py --quick            # 2 and 8 players, shorter
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import os
import random
import sys
import threading
import time
from collections import deque
from typing import Any

import numpy as np
import psutil

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from audio.jam import JamRoom, JitterStats  # noqa: E402
from audio.jam.bot import Bot  # noqa: E402
from audio.jam.opus import CHANNELS, DEFAULT_COMPLEXITY, FRAME_SAMPLES, frame_to_pcm  # noqa: E402

N = FRAME_SAMPLES
RECOVERY_BIN_S = 0.2
RECOVERY_MARGIN_S = 0.005
RECOVERY_WINDOW_DEFAULT = 6.0


# -- aiortc's stock receive path, for comparison ----------------------------------


class _StockInput:
    """Frames from aiortc's RemoteStreamTrack, played first-in first-out.

    `pop` runs on the room's clock thread; the FIFO is filled by a task on
    the event loop (deque appends and pops are atomic).
    """

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
            self._arrivals[(packet.timestamp - self._first) & 0xFFFFFFFF] = time.monotonic()
            return add(packet)

        buffer.add = timed_add
        self._receiver = receiver
        self.task = loop.create_task(self._pull())

    async def _pull(self) -> None:
        track = self._receiver.track
        while True:
            frame = await track.recv()
            arrival = self._arrivals.pop(int(frame.pts), math.nan)
            pcm = frame_to_pcm(frame)
            # aiortc decodes whole packets; hand the clock 10 ms at a time.
            for start in range(0, len(pcm), N):
                self._fifo.append((pcm[start : start + N], arrival))

    @property
    def stats(self) -> JitterStats:
        self._stats.delay_ms = len(self._fifo) * 10.0
        return self._stats

    def pop(self, now: float, late_by: float = 0.0) -> Any:
        if not self._fifo:
            self.last_arrival = math.nan
            return np.zeros((N, CHANNELS), np.float32)
        pcm, self.last_arrival = self._fifo.popleft()
        if len(pcm) < N:
            pcm = np.concatenate([pcm, np.zeros((N - len(pcm), CHANNELS), np.float32)])
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


def renice(niceness: int) -> str:
    """Set this process's nice value; returns what happened, for the report."""
    if niceness == 0:
        return "nice 0"
    try:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    except OSError as exc:
        return f"nice 0 (could not renice: {exc.strerror})"
    return f"nice {niceness}"


def bot_process(conn: Any, niceness: int = 0) -> None:
    conn.send(renice(niceness))

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
            elif cmd == "answers":
                await asyncio.gather(*(b.accept(a) for b, a in zip(bots, args[0], strict=True)))
                # Each player's clock at its own phase to the room's, as for
                # real players (and so the bots do not all encode at once).
                phases = random.Random(len(bots)).sample(range(N), len(bots))
                for b, phase in zip(bots, phases, strict=True):
                    b.start_clock(phase / 48000)
                conn.send("running")
            elif cmd == "reset":
                for b in bots:
                    b.send_lateness.clear()
                conn.send("ok")
            elif cmd == "lateness":
                late = [x for b in bots for x in b.send_lateness]
                conn.send(1000.0 * float(np.percentile(late, 99)) if late else math.nan)
            elif cmd in ("drop", "stall"):
                getattr(bots[0], cmd)(args[0])
                conn.send(time.monotonic())
            elif cmd == "stop":
                for b in bots:
                    await b.close()
                bots = []
                conn.send("stopped")
            elif cmd == "exit":
                return

    asyncio.run(main())


# -- the server, in its own process --------------------------------------------------


def server_process(conn: Any, niceness: int = 0, switch_interval: float | None = None) -> None:
    priority = renice(niceness)
    if switch_interval:
        sys.setswitchinterval(switch_interval)

    async def probe(lags: deque[float]) -> None:
        """How late the event loop runs a 5 ms timer: its responsiveness."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + 0.005
            await asyncio.sleep(0.005)
            lags.append(loop.time() - due)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        room: JamRoom | None = None
        lags: deque[float] = deque(maxlen=4000)
        prober = loop.create_task(probe(lags))
        conn.send(
            {"pid": os.getpid(), "loop_thread": threading.get_native_id(), "priority": priority}
        )
        while True:
            cmd, *args = await loop.run_in_executor(None, conn.recv)
            if cmd == "open":
                path, players, complexity = args
                cls = JamRoom if path == "jam" else StockRoom
                room = cls(
                    "bench",
                    120.0,
                    max_participants=players,
                    opus_complexity=complexity,
                    latency_log_size=1 << 19,
                )
                conn.send("ok")
            elif cmd == "join":
                assert room is not None
                conn.send([await room.add_participant(f"p{i}", o) for i, o in enumerate(args[0])])
            elif cmd == "reset":
                assert room is not None
                room.reset_latency_stats()
                lags.clear()
                conn.send("ok")
            elif cmd == "stats":
                assert room is not None
                stats = room.stats()
                stats["clock_thread"] = room.clock_thread_id
                stats["loop_lag_p99_ms"] = 1000.0 * float(np.percentile(list(lags), 99))
                conn.send(stats)
            elif cmd == "samples":
                assert room is not None
                source, since = args
                conn.send([s for s in room.latency_samples(source) if s[0] >= since])
            elif cmd == "close":
                if room is not None:
                    await room.close()
                room = None
                conn.send("closed")
            elif cmd == "exit":
                prober.cancel()
                return

    asyncio.run(main())


# -- the orchestrator ----------------------------------------------------------------


def ask(conn: Any, *msg: Any) -> Any:
    conn.send(msg)
    return conn.recv()


def thread_cpu(proc: psutil.Process) -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in proc.threads()}


def total_cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def recovery(server: Any, bots: Any, kind: str, window_s: float) -> dict[str, float]:
    """Seconds after a 100 ms burst on player 0 until its latency is back."""
    burst_at = ask(bots, kind, 10)
    time.sleep(window_s)
    samples = ask(server, "samples", "p0", burst_at - 1.0)
    before = [x for t, x in samples if t < burst_at]
    after = [(t - burst_at, x) for t, x in samples if t >= burst_at]
    if not before:
        return {"recovery_s": math.nan, "worst_ms": math.nan}
    baseline = float(np.median(before))
    bins: dict[int, list[float]] = {}
    for dt, x in after:
        bins.setdefault(int(dt / RECOVERY_BIN_S), []).append(x)
    count = int(window_s / RECOVERY_BIN_S)
    good = [b in bins and np.median(bins[b]) <= baseline + RECOVERY_MARGIN_S for b in range(count)]
    recovered = math.inf
    for b in range(count - 2):
        if good[b] and good[b + 1] and good[b + 2]:
            recovered = b * RECOVERY_BIN_S
            break
    worst = max((float(np.median(v)) for v in bins.values()), default=math.nan)
    return {"recovery_s": recovered, "worst_ms": 1000.0 * worst, "baseline_ms": 1000 * baseline}


class SleepProbe:
    """How late this machine wakes an idle process from a 5 ms sleep: the
    scheduling noise every figure of a case sits on, whatever the server does."""

    def __init__(self) -> None:
        self.lates: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            due = time.monotonic() + 0.005
            time.sleep(0.005)
            self.lates.append(time.monotonic() - due)

    def stop(self) -> float:
        """p99 lateness in ms."""
        self._stop.set()
        self._thread.join()
        return 1000.0 * float(np.percentile(self.lates, 99)) if self.lates else math.nan


def wait_for_quiet(max_wait_s: float, busy_limit: float = 0.3) -> float:
    """Wait (at most `max_wait_s`) until the machine has been less than
    `busy_limit` busy for three seconds running; returns how busy it was."""
    deadline = time.monotonic() + max_wait_s
    quiet = 0
    busy = psutil.cpu_percent(interval=1.0) / 100.0
    while time.monotonic() < deadline:
        quiet = quiet + 1 if busy < busy_limit else 0
        if quiet >= 3:
            break
        busy = psutil.cpu_percent(interval=1.0) / 100.0
    return float(busy)


def run_case(
    server: Any,
    bots: Any,
    procs: dict[str, psutil.Process],
    loop_thread: int,
    path: str,
    players: int,
    loss: float,
    args: argparse.Namespace,
    burst: bool,
) -> dict[str, Any]:
    busy_before = wait_for_quiet(args.wait_quiet) if args.wait_quiet else math.nan
    ask(server, "open", path, players, args.complexity)
    offers = ask(bots, "start", players, loss, 7)
    answers = ask(server, "join", offers)
    ask(bots, "answers", answers)
    time.sleep(args.warmup)  # connections settle, buffers adapt
    ask(server, "reset")
    ask(bots, "reset")
    load0 = os.getloadavg()[0]
    psutil.cpu_percent()  # start the machine-wide busy counter
    cpu0 = {k: total_cpu(p) for k, p in procs.items()}
    threads0 = thread_cpu(procs["server"])
    probe = SleepProbe()
    wall0 = time.monotonic()
    time.sleep(args.seconds)
    wall = time.monotonic() - wall0
    machine_late = probe.stop()
    cpu = {k: (total_cpu(p) - cpu0[k]) / wall for k, p in procs.items()}
    threads1 = thread_cpu(procs["server"])
    machine = psutil.cpu_percent() / 100.0 * psutil.cpu_count()
    stats = ask(server, "stats")
    bots_late = ask(bots, "lateness")
    per_thread = {tid: (threads1[tid] - threads0.get(tid, 0.0)) / wall for tid in threads1}
    loop_cpu = per_thread.get(loop_thread, 0.0)
    clock_cpu = per_thread.get(stats["clock_thread"], 0.0)
    parts = stats["server_latency_parts_ms"]
    jb = list(stats["participants"].values())
    result: dict[str, Any] = {
        "path": path,
        "players": players,
        "loss": loss,
        "p50": stats["server_latency_ms"]["p50"],
        "p99": stats["server_latency_ms"]["p99"],
        "wait_p50": parts["wait"]["p50"],
        "mix_p50": parts["mix"]["p50"],
        "send_p50": parts["send"]["p50"],
        "wait_p99": parts["wait"]["p99"],
        "mix_p99": parts["mix"]["p99"],
        "send_p99": parts["send"]["p99"],
        "tick_late_p99": stats["tick_lateness_ms"]["p99"],
        "loop_lag_p99": stats["loop_lag_p99_ms"],
        "bots_late_p99": bots_late,
        "tick_cost_p50": stats["tick_cost_ms"]["p50"],
        "tick_cost_p99": stats["tick_cost_ms"]["p99"],
        "cpu_total": 100.0 * cpu["server"],
        "cpu_per_player": 100.0 * cpu["server"] / players,
        "cpu_loop": 100.0 * loop_cpu,
        "cpu_clock": 100.0 * clock_cpu,
        "cpu_bots": 100.0 * cpu["bots"],
        "machine_busy_cores": machine,
        "machine_busy_before": busy_before,
        "machine_wake_late_p99": machine_late,
        "load": (load0 + os.getloadavg()[0]) / 2,
        "concealed": sum(p["concealed"] for p in jb),
        "stretched": sum(p["stretched"] for p in jb),
        "skipped": sum(p["skipped"] for p in jb),
        "late": sum(p["late"] for p in jb),
        "holds": sum(p.get("holds", 0) for p in jb),
        "played": sum(p["played"] for p in jb),
        "out_dropped": sum(p["out_dropped"] for p in jb),
    }
    if burst:
        # Reading the stats of a big room blocks the server's loop for a few
        # ms; let the buffers settle before measuring the baseline.
        time.sleep(2.0)
        for kind in ("drop", "stall"):
            r = recovery(server, bots, kind, args.recovery_window)
            result[f"recover_{kind}"] = r["recovery_s"]
            result[f"worst_{kind}_ms"] = r["worst_ms"]
    ask(bots, "stop")
    ask(server, "close")
    return result


def fmt(x: Any, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def secs(x: float) -> str:
    return "not within the window" if math.isinf(x) else f"{fmt(x)} s"


def print_tables(rows: list[dict[str, Any]]) -> None:
    print()
    print(
        "| path | players | loss | p50 ms | p99 ms | wait / mix / send p50 ms "
        "| tick late p99 ms | server CPU % of a core (per player) | loop / clock thread % "
        "| bots CPU % | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['path']} | {r['players']} | {r['loss']:.0%} | {fmt(r['p50'])} | "
            f"{fmt(r['p99'])} | {fmt(r['wait_p50'])} / {fmt(r['mix_p50'])} / "
            f"{fmt(r['send_p50'])} | {fmt(r['tick_late_p99'])} | "
            f"{r['cpu_total']:.0f} ({r['cpu_per_player']:.1f}) | "
            f"{r['cpu_loop']:.0f} / {r['cpu_clock']:.0f} | {r['cpu_bots']:.0f} | "
            f"{r['load']:.1f} |"
        )
    bursts = [r for r in rows if "recover_drop" in r]
    if bursts:
        print()
        print("| path | players | recovery after 10 lost | after a 100 ms stall | worst bin ms |")
        print("|---|---|---|---|---|")
        for r in bursts:
            print(
                f"| {r['path']} | {r['players']} | {secs(r['recover_drop'])} | "
                f"{secs(r['recover_stall'])} | {fmt(r['worst_drop_ms'])} / "
                f"{fmt(r['worst_stall_ms'])} |"
            )


def spawn(ctx: Any, target: Any, cpus: set[int] | None, *args: Any) -> tuple[Any, Any]:
    """Start `target(conn)` in a fresh process pinned to `cpus` from its first
    instruction (the affinity is inherited), so libraries that size thread
    pools by the CPUs they see get it right."""
    parent, child = ctx.Pipe()
    mine = os.sched_getaffinity(0)
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        proc = ctx.Process(target=target, args=(child, *args), daemon=True)
        proc.start()
    finally:
        os.sched_setaffinity(0, mine)
    return proc, parent


def main() -> None:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 and 8 players, 4 s each")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--losses", type=float, nargs="+", default=[0.0, 0.02])
    parser.add_argument("--paths", nargs="+", default=["jam", "aiortc"])
    parser.add_argument("--seconds", type=float, default=8.0, help="measurement window")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--recovery-window", type=float, default=RECOVERY_WINDOW_DEFAULT)
    parser.add_argument("--no-bursts", action="store_true")
    parser.add_argument("--complexity", type=int, default=DEFAULT_COMPLEXITY)
    parser.add_argument("--server-cpus", type=int, nargs="*", default=[0])
    parser.add_argument("--bot-cpus", type=int, nargs="*", default=None)
    parser.add_argument("--no-pin", action="store_true", help="let the OS place everything")
    parser.add_argument(
        "--bots-nice",
        type=int,
        default=-10,
        help="the bots stand in for remote machines: keep a busy host from delaying them",
    )
    parser.add_argument("--server-nice", type=int, default=0)
    parser.add_argument(
        "--switch-interval", type=float, default=None, help="sys.setswitchinterval for the server"
    )
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each case, wait up to S seconds for the machine to be < 30%% busy",
    )
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.seconds = [2, 8], 4.0

    all_cpus = sorted(os.sched_getaffinity(0))
    server_cpus = None if args.no_pin else set(args.server_cpus)
    bot_cpus = None
    if not args.no_pin:
        bot_cpus = set(args.bot_cpus or [c for c in all_cpus if c not in args.server_cpus])
        bot_cpus = bot_cpus or set(all_cpus)
    ctx = mp.get_context("spawn")
    server_proc, server = spawn(
        ctx, server_process, server_cpus, args.server_nice, args.switch_interval
    )
    bots_proc, bots = spawn(ctx, bot_process, bot_cpus, args.bots_nice)
    hello = server.recv()
    bots_priority = bots.recv()
    procs = {"server": psutil.Process(hello["pid"]), "bots": psutil.Process(bots_proc.pid)}
    print(
        f"server pid {hello['pid']} on CPUs {sorted(server_cpus or all_cpus)} "
        f"({hello['priority']}), bots pid {bots_proc.pid} on CPUs "
        f"{sorted(bot_cpus or all_cpus)} ({bots_priority}); {psutil.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    rows = []
    try:
        for players in args.sizes:
            for loss in args.losses:
                for path in args.paths:
                    burst = loss == 0.0 and not args.no_bursts
                    r = run_case(
                        server, bots, procs, hello["loop_thread"], path, players, loss, args, burst
                    )
                    rows.append(r)
                    print(
                        f"{path:6} players={players:2} loss={loss:.0%} "
                        f"p50={fmt(r['p50'])} p99={fmt(r['p99'])} ms "
                        f"(wait {fmt(r['wait_p50'])} mix {fmt(r['mix_p50'])} "
                        f"send {fmt(r['send_p50'])}) tick-late-p99={fmt(r['tick_late_p99'])} "
                        f"loop-lag-p99={fmt(r['loop_lag_p99'])} "
                        f"bots-late-p99={fmt(r['bots_late_p99'])} "
                        f"cpu={r['cpu_total']:.0f}% ({r['cpu_per_player']:.1f}/player, "
                        f"loop {r['cpu_loop']:.0f} clock {r['cpu_clock']:.0f}) "
                        f"bots={r['cpu_bots']:.0f}% load={r['load']:.1f} "
                        f"machine-wake-late-p99={fmt(r['machine_wake_late_p99'])} "
                        f"concealed={r['concealed']}/{r['played'] + r['concealed']} "
                        f"(late {r['late']}, stretched {r['stretched']}, skipped {r['skipped']}, "
                        f"holds {r['holds']})"
                        + (
                            f" recover drop={secs(r['recover_drop'])}"
                            f" stall={secs(r['recover_stall'])}"
                            if "recover_drop" in r
                            else ""
                        ),
                        flush=True,
                    )
    finally:
        for conn, proc in ((server, server_proc), (bots, bots_proc)):
            conn.send(("exit",))
            proc.join(10)
    print_tables(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1, default=str)


if __name__ == "__main__":
    main()
