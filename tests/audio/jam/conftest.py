from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from audio.jam import JamRoom, JitterConfig, TickInfo
from audio.jam.bot import Bot

# These bots share the room's event loop and send right after each tick reaches
# it (see `drive`), while the room clock keeps real time on its own thread. On
# a loaded machine the loop can fall a tick behind the clock, and a frame that
# misses its tick is, correctly, concealed. Tests of mixing and recording want
# every frame, so their rooms keep a fixed 30 ms of margin; the jitter
# behaviour itself is tested with the defaults (`default_room`, test_jitter.py).
STEADY = JitterConfig(min_delay_ms=30.0)


@pytest.fixture
async def room() -> AsyncIterator[JamRoom]:
    r = JamRoom("test-room", tempo_bpm=120.0, jitter=STEADY)
    yield r
    await r.close()


@pytest.fixture
async def default_room() -> AsyncIterator[JamRoom]:
    r = JamRoom("test-room", tempo_bpm=120.0)
    yield r
    await r.close()


@pytest.fixture
async def make_bot() -> AsyncIterator[Callable[..., Bot]]:
    bots: list[Bot] = []

    def make(name: str, **kwargs: Any) -> Bot:
        bot = Bot(name, **kwargs)
        bots.append(bot)
        return bot

    yield make
    for bot in bots:
        await bot.close()


def drive(room: JamRoom, bots: list[Bot]) -> Callable[[], None]:
    """Bots send one frame right after every room tick (a fixed, known phase)."""

    def on_tick(_: TickInfo) -> None:
        for bot in list(bots):
            bot.send()

    return room.add_tick_listener(on_tick)


async def until(
    room: JamRoom, predicate: Callable[[TickInfo], bool], timeout: float = 10.0
) -> TickInfo:
    """The first tick (from now) for which `predicate` holds."""
    done: asyncio.Future[TickInfo] = asyncio.get_running_loop().create_future()

    def on_tick(info: TickInfo) -> None:
        if not done.done() and predicate(info):
            done.set_result(info)

    remove = room.add_tick_listener(on_tick)
    try:
        return await asyncio.wait_for(done, timeout)
    finally:
        remove()


async def ticks(room: JamRoom, count: int) -> TickInfo:
    target = room.frame + count * room.frame_samples
    return await until(room, lambda info: info.frame >= target - room.frame_samples)
