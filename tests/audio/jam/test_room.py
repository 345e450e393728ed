"""A real jam room over loopback WebRTC, with aiortc bots in this process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio.jam import IceConfig, JamRoom, JamServer, RoomFull, ServerFull, TickInfo
from audio.jam.bot import Bot, join, tone
from audio.jam.opus import CODEC_DELAY_SAMPLES

from .conftest import drive, ticks, until

N = 480
MakeBot = Callable[..., Bot]


def clicks(at: dict[int, int], amplitude: float = 0.8) -> Callable[[int], np.ndarray]:
    """Frame index -> sample offset of a one-sample click in that frame."""

    def signal(k: int) -> np.ndarray:
        out = np.zeros((N, 2), np.float32)
        if k in at:
            out[at[k]] = amplitude
        return out

    return signal


def level_db(frames: list[np.ndarray]) -> float:
    """Median per-frame RMS: a frame concealed on a busy machine does not move it."""
    rms = [np.sqrt(np.mean(f**2)) for f in frames]
    return float(20 * np.log10(np.median(rms) + 1e-12))


def peak(frames: list[np.ndarray]) -> float:
    return float(np.abs(np.concatenate(frames)).max()) if frames else 0.0


async def test_offers_and_answers_use_only_loopback_candidates(
    room: JamRoom, make_bot: MakeBot
) -> None:
    bot = make_bot("a")
    offer = await bot.offer()
    answer = await room.add_participant("a", offer)
    for sdp in (offer, answer):
        hosts = [line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:")]
        assert hosts and set(hosts) == {"127.0.0.1"}
    assert "opus/48000/2" in answer and "a=ptime:10" in answer
    assert "PCMU" not in answer
    await bot.accept(answer)


async def test_a_click_reaches_b_but_not_a_own_mix(room: JamRoom, make_bot: MakeBot) -> None:
    a = make_bot("a", signal=clicks({k: 100 for k in range(50, 150, 10)}))
    b = make_bot("b")
    await join(room, "a", a)
    await join(room, "b", b)
    drive(room, [a, b])
    await b.wait_heard(200)
    await a.wait_heard(200)
    assert {len(f) for f in b.heard} == {N}  # 10 ms packets
    assert peak(b.heard) > 0.3
    assert peak(a.heard) < 1e-3


async def test_personal_gain_lowers_one_source_by_12_db(room: JamRoom, make_bot: MakeBot) -> None:
    a = make_bot("a", signal=tone())
    b = make_bot("b")
    c = make_bot("c")
    for name, bot in (("a", a), ("b", b), ("c", c)):
        await join(room, name, bot)
    drive(room, [a, b, c])
    await b.wait_heard(100)
    before = len(b.heard)
    await b.wait_heard(before + 50)
    loud = level_db(b.heard[before : before + 50])
    room.set_gain("b", "a", -12.0)
    changed = len(b.heard)
    # a few frames are still in flight (queue + encoder): skip them
    await b.wait_heard(changed + 70)
    quiet = level_db(b.heard[changed + 20 : changed + 70])
    assert loud - quiet == pytest.approx(12.0, abs=0.5)
    await c.wait_heard(changed + 70)
    assert level_db(c.heard[-50:]) == pytest.approx(loud, abs=0.5)  # c's mix untouched


async def test_pan_moves_a_source_in_one_listeners_mix(room: JamRoom, make_bot: MakeBot) -> None:
    a = make_bot("a", signal=tone())
    b = make_bot("b")
    await join(room, "a", a)
    await join(room, "b", b)
    room.set_gain("b", "a", 0.0, pan=-1.0)
    drive(room, [a, b])
    await b.wait_heard(100)
    right = np.concatenate(b.heard[-50:])
    assert np.abs(right[:, 1]).max() < 0.01 < np.abs(right[:, 0]).max()


async def test_player_leaves_and_rejoins(room: JamRoom, make_bot: MakeBot) -> None:
    a = make_bot("a", signal=tone())
    b = make_bot("b")
    await join(room, "a", a)
    await join(room, "b", b)
    bots = [a, b]
    drive(room, bots)
    await b.wait_heard(60)
    await room.remove_participant("a")
    bots.remove(a)
    assert room.participants == ["b"]
    gone = len(b.heard)
    await b.wait_heard(gone + 60)
    assert peak(b.heard[gone + 10 :]) < 1e-3  # a's fade-out is over, silence
    a2 = make_bot("a2", signal=tone())
    await join(room, "a", a2)
    bots.append(a2)
    back = len(b.heard)
    await b.wait_heard(back + 80)
    assert level_db(b.heard[-40:]) == pytest.approx(level_db(b.heard[: gone - 10][-40:]), abs=1.0)


async def test_buffer_delay_returns_down_after_loss_and_a_stall(
    default_room: JamRoom, make_bot: MakeBot
) -> None:
    room = default_room
    a = make_bot("a", signal=tone())
    b = make_bot("b")
    await join(room, "a", a)
    await join(room, "b", b)
    drive(room, [a, b])
    await ticks(room, 150)

    def jb() -> dict[str, float]:
        return dict(room.stats()["participants"]["a"])

    before = jb()
    a.drop(20)  # 200 ms of pure loss: concealed, never waited for
    await ticks(room, 60)
    after = jb()
    assert (after["concealed"] + after["skipped"]) - (before["concealed"] + before["skipped"]) >= 20
    # (the 2 s recovery bound is pinned on a virtual clock in test_jitter.py;
    # here the machine's own scheduling jitter adds to the network's)
    await until(room, lambda _: jb()["delay_ms"] <= before["delay_ms"] + 10.5, timeout=20)

    level = jb()
    a.stall(6)  # a 60 ms hiccup: late packets make the buffer grow...
    await until(room, lambda _: jb()["stretched"] > level["stretched"])
    assert jb()["delay_ms"] <= 61.0
    # ...and shrinks back once packets flow on time again
    await until(room, lambda _: jb()["delay_ms"] <= level["delay_ms"] + 10.5, timeout=20)


async def record_clicks(
    room: JamRoom, a: Bot, b: Bot, directory: Path
) -> tuple[int, int, int, dict[str, int]] | None:
    """Start a recording and send one click from each bot, k frames apart.

    Returns the take start, the frames that carried the clicks and the room
    frame each was heard at; None (recording stopped) if a click frame came too
    late for its tick and was concealed, which a stalled loop can cause.
    """
    start = room.start_recording(directory)
    sent_a, sent_b = a.sent + 20, b.sent + 27
    a.signal = clicks({sent_a: 123})
    b.signal = clicks({sent_b: 123})
    click_frames = {"a": (a, sent_a), "b": (b, sent_b)}
    # Each bot's concealed + skipped frames just before its click frame goes
    # out and WINDOW ticks later: the click plays in between.
    window = 20
    lost: dict[str, list[int]] = {}
    give_up = room.frame + 80 * N
    clicked: dict[str, int] = {}

    def lost_so_far(pid: str) -> int:
        jb = room.stats()["participants"][pid]
        return int(jb["concealed"] + jb["skipped"])

    def heard_click_or_gone(info: TickInfo) -> bool:
        for i, pid in enumerate(info.participants):
            if np.abs(info.inputs[i]).max() > 0.2:
                clicked.setdefault(pid, info.frame)
        for pid, (bot, k) in click_frames.items():
            if pid not in lost and bot.sent >= k:  # frame k goes out at the next tick
                lost[pid] = [info.frame, lost_so_far(pid)]
            elif len(lost.get(pid, ())) == 2 and info.frame >= lost[pid][0] + window * N:
                lost[pid].append(lost_so_far(pid))
        return len(clicked) == 2 or info.frame >= give_up

    await until(room, heard_click_or_gone)
    if len(clicked) == 2:
        return start, sent_a, sent_b, clicked
    await room.stop_recording()
    for pid in {"a", "b"} - set(clicked):
        # a click may only go missing with a frame concealed around its time
        _, before, after = lost[pid]
        assert after > before, f"{pid}'s click vanished with no frame concealed"
    return None


async def test_recorded_takes_line_up_with_what_was_sent(
    room: JamRoom, make_bot: MakeBot, tmp_path: Path
) -> None:
    # Both bots send in lockstep with the room clock, frame k right after tick k.
    a = make_bot("a")
    b = make_bot("b")
    await join(room, "a", a)
    await join(room, "b", b)
    drive(room, [a, b])
    await ticks(room, 100)
    played: list[TickInfo] = []
    room.add_tick_listener(played.append)
    for attempt in range(3):
        played.clear()
        heard = await record_clicks(room, a, b, tmp_path / str(attempt))
        if heard is not None:
            break
    else:
        pytest.fail("a click frame was concealed in three takes running")
    start, sent_a, sent_b, clicked = heard
    await ticks(room, 5)
    takes = {t.participant_id: t for t in await room.stop_recording()}
    assert set(takes) == {"a", "b"}
    positions = {}
    for pid, take in takes.items():
        audio, rate = sf.read(take.path, dtype="float32")
        assert rate == 48000 and audio.shape == (take.frames, 2)
        assert take.start_frame == start  # one shared timeline
        # the take is exactly what the room played, sample for sample
        i = played[0].participants.index(pid)
        live = np.concatenate([t.inputs[i] for t in played if t.frame >= start])
        np.testing.assert_allclose(audio, live[: len(audio)], atol=2.0**-22)
        positions[pid] = take.start_frame + int(np.argmax(np.abs(audio[:, 0])))
        # the click sits where the room clock played the frame that carried it
        assert positions[pid] == clicked[pid] + 123 + CODEC_DELAY_SAMPLES
    # k frames apart when sent, k frames apart in the takes, unless one
    # player's buffer ran a frame deeper at that moment (then exactly one frame)
    skew = positions["b"] - positions["a"] - (sent_b - sent_a) * N
    assert skew in (-N, 0, N)


async def test_count_in_clicks_for_everyone_then_takes_start_on_the_downbeat(
    room: JamRoom, make_bot: MakeBot, tmp_path: Path
) -> None:
    a = make_bot("a")
    await join(room, "a", a)
    drive(room, [a])
    await ticks(room, 10)
    origin = room.frame
    start = room.start_recording(tmp_path, count_in_bars=1)
    assert start == origin + 4 * 24000  # 4 beats at 120 bpm
    onsets: list[int] = []

    def collect(info: object) -> bool:
        mixes = getattr(info, "mixes")  # noqa: B009
        frame = getattr(info, "frame")  # noqa: B009
        nz = np.flatnonzero(np.abs(mixes[0, :, 0]) > 0)
        if len(nz) and (not onsets or frame + nz[0] > onsets[-1] + 4800):
            onsets.append(frame + int(nz[0]) - 1)
        return bool(frame > start + 24000)

    await until(room, collect)
    assert onsets == [origin + k * 24000 for k in range(4)]  # count-in only, metronome off
    room.set_metronome("a", True)
    await ticks(room, 60)
    takes = await room.stop_recording()
    assert takes[0].start_frame == start


async def test_metronome_is_per_listener(room: JamRoom, make_bot: MakeBot) -> None:
    a, b = make_bot("a"), make_bot("b")
    await join(room, "a", a)
    await join(room, "b", b)
    room.set_metronome("b", True)
    info = await until(room, lambda i: np.abs(i.mixes[1]).max() > 0.05)
    assert np.abs(info.mixes[0]).max() == 0.0
    assert (info.frame + np.flatnonzero(info.mixes[1, :, 0])[0] - 1) % 24000 == 0


async def test_meters_and_stats_report_each_participant(room: JamRoom, make_bot: MakeBot) -> None:
    a = make_bot("a", signal=tone(0.5))
    b = make_bot("b")
    await join(room, "a", a)
    await join(room, "b", b)
    drive(room, [a, b])
    await ticks(room, 50)
    meters = room.meters()
    assert meters["a"] == pytest.approx(20 * np.log10(0.5), abs=1.0)
    assert meters["b"] <= -100
    stats = room.stats()
    assert stats["participants"]["a"]["received"] > 30
    assert stats["server_latency_ms"]["n"] > 0


async def test_room_full_and_server_full_are_clear_errors(make_bot: MakeBot) -> None:
    server = JamServer(
        max_rooms=1, max_participants=2, max_participants_per_room=1, ice=IceConfig()
    )
    try:
        room = server.open_room("one")
        a = make_bot("a")
        answer = await server.join("one", "a", await a.offer())
        await a.accept(answer)
        with pytest.raises(RoomFull, match="full"):
            await server.join("one", "b", await make_bot("b").offer())
        with pytest.raises(ServerFull):
            server.open_room("two")
        assert room.participants == ["a"]
    finally:
        await server.close()
