"""The room clock thread: DSP off the event loop, real time kept, telemetry."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from audio.jam import JamRoom, TickInfo
from audio.jam.bot import Bot, join
from audio.jam.room import CATCH_UP_PACE, LATENCY_COLUMNS, _LatencyLog, _Played, next_tick_at

from .conftest import drive, ticks, until

N = 480
PERIOD = N / 48000
MakeBot = Callable[..., Bot]


async def test_mixes_are_encoded_on_the_clock_thread_not_the_event_loop(
    room: JamRoom, make_bot: MakeBot
) -> None:
    a, b = make_bot("a"), make_bot("b")
    await join(room, "a", a)
    await join(room, "b", b)
    threads: set[int] = set()
    participant = room._participants["a"]
    encode = participant.encoder

    def spy(pcm: Any, pts: int) -> Any:
        threads.add(threading.get_native_id())
        return encode(pcm, pts)

    participant.encoder = spy  # type: ignore[assignment]
    drive(room, [a, b])
    await a.wait_heard(30)
    assert threads == {room.clock_thread_id}
    assert threading.get_native_id() not in threads


async def test_the_clock_keeps_time_while_the_event_loop_is_blocked(
    room: JamRoom, make_bot: MakeBot
) -> None:
    a = make_bot("a")
    await join(room, "a", a)
    await ticks(room, 5)
    seen: list[TickInfo] = []
    room.add_tick_listener(seen.append)
    blocked_at = time.monotonic()
    time.sleep(0.2)  # the stimulus: a loop that is busy for 200 ms
    unblocked_at = time.monotonic()
    await ticks(room, 3)
    during = [t for t in seen if blocked_at <= t.time < unblocked_at]
    # 20 ticks are due meanwhile; the old loop-driven clock ran none of them.
    assert len(during) >= 10
    frames = [t.frame for t in seen]
    assert frames == list(range(frames[0], frames[-1] + N, N))  # none lost


async def test_a_stalled_clock_catches_up_at_twice_real_time_without_losing_frames(
    room: JamRoom, make_bot: MakeBot
) -> None:
    a = make_bot("a")
    await join(room, "a", a)
    await ticks(room, 5)
    seen: list[TickInfo] = []
    room.add_tick_listener(seen.append)
    with room._lock:  # the clock thread cannot start a tick meanwhile
        time.sleep(0.1)
    await ticks(room, 30)
    frames = [t.frame for t in seen]
    assert frames == list(range(frames[0], frames[-1] + N, N))
    starts = np.array([t.time for t in seen])
    # Never back to back: at least half a period between tick starts...
    assert np.diff(starts).min() >= CATCH_UP_PACE * PERIOD - 1e-4
    # ...and after catching up, back on the 10 ms grid it was on before.
    behind = starts[-1] - (starts[0] + (frames[-1] - frames[0]) / 48000)
    assert behind < 0.1


def test_next_tick_is_on_time_or_paced_while_catching_up() -> None:
    assert next_tick_at(1.0, 0.99, PERIOD) == 1.0  # on schedule: the deadline
    assert next_tick_at(1.0, 1.04, PERIOD) == pytest.approx(1.04 + CATCH_UP_PACE * PERIOD)


async def test_close_stops_and_joins_the_clock_thread(make_bot: MakeBot) -> None:
    room = JamRoom("r", 120.0)
    await join(room, "a", make_bot("a"))
    native = room.clock_thread_id
    assert native in {t.native_id for t in threading.enumerate()}
    await room.close()
    assert room.clock_thread_id is None
    assert native not in {t.native_id for t in threading.enumerate()}


async def test_latency_is_reported_per_source_and_split_into_parts(
    room: JamRoom, make_bot: MakeBot
) -> None:
    a, b, c = make_bot("a"), make_bot("b"), make_bot("c")
    for name, bot in (("a", a), ("b", b), ("c", c)):
        await join(room, name, bot)
    drive(room, [a, b, c])
    await until(room, lambda _: room.stats()["server_latency_ms"]["n"] >= 300)
    stats = room.stats()
    every = room.latency_samples()
    per_source = {s: room.latency_samples(s) for s in ("a", "b", "c")}
    assert sum(len(v) for v in per_source.values()) == len(every)
    assert all(per_source.values())
    assert room.latency_samples("nobody") == []
    # each source is heard by the two others, one row per listener
    parts = stats["server_latency_parts_ms"]
    assert set(parts) == {"wait", "mix", "send"}
    for part in parts.values():
        assert part["n"] == stats["server_latency_ms"]["n"] and part["p50"] >= 0.0
    # the parts add up to the total, row by row
    rows = room._latency_rows()
    np.testing.assert_allclose(rows[:, 2] + rows[:, 3] + rows[:, 4], rows[:, 1], atol=1e-9)


async def test_set_tempo_starts_a_new_grid_at_the_next_tick_and_can_change_the_bar(
    room: JamRoom, make_bot: MakeBot
) -> None:
    await join(room, "a", make_bot("a"))
    await ticks(room, 3)
    room.set_tempo(90.0, beats_per_bar=3)
    m = room.metronome
    assert (m.tempo_bpm, m.beats_per_bar) == (90.0, 3)
    assert m.origin % N == 0 and m.origin >= room.frame - N
    room.set_tempo(100.0)
    assert (room.metronome.tempo_bpm, room.metronome.beats_per_bar) == (100.0, 3)


def test_opus_complexity_is_checked() -> None:
    with pytest.raises(ValueError, match="complexity"):
        JamRoom("r", 120.0, opus_complexity=11)


def test_latency_log_keeps_the_newest_rows_oldest_first() -> None:
    log = _LatencyLog(5)

    def block(values: list[float]) -> np.ndarray:
        return np.repeat(np.array(values)[:, None], LATENCY_COLUMNS, axis=1)

    for k in range(4):  # 12 rows through a ring of 5
        log.add(block([3.0 * k, 3.0 * k + 1, 3.0 * k + 2]))
    np.testing.assert_array_equal(log.rows()[:, 1], [7.0, 8.0, 9.0, 10.0, 11.0])
    log.add(block([float(v) for v in range(7)]))  # more than fits at once
    np.testing.assert_array_equal(log.rows()[:, 1], [2.0, 3.0, 4.0, 5.0, 6.0])
    log.clear()
    assert len(log.rows()) == 0


def test_a_ticks_latency_rows_pair_each_sent_packet_with_the_others_inputs() -> None:
    played = _Played(
        ids=("a", "b", "c"),
        numbers=np.array([1, 2, 3]),
        arrivals=np.array([10.000, 10.002, np.nan]),  # c's input was concealed
        time=10.005,
        encoded=10.006,
        sent=np.array([10.008, np.nan, 10.009]),  # b's packet has not gone out yet
    )
    rows = played.rows()
    # a hears b; c hears a and b; nobody hears themselves or the concealed c
    assert sorted(zip(rows[:, 0], rows[:, 5], strict=True)) == [
        (10.008, 2.0),
        (10.009, 1.0),
        (10.009, 2.0),
    ]
    heard_a_by_c = rows[(rows[:, 0] == 10.009) & (rows[:, 5] == 1.0)][0]
    np.testing.assert_allclose(heard_a_by_c[1:5], [0.009, 0.005, 0.001, 0.003], atol=1e-9)
