"""Jam signalling over the project socket, with real WebRTC bots (embedded host).

Each test connects project members through the consumer, joins aiortc bots
(audio/jam/bot.py) with the SDP the socket carries, and checks what they hear
and what the project gains, on loopback only.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage

from audio.jam import TickInfo
from audio.jam.bot import Bot, tone
from collab import jamhost
from collab.routing import websocket_urlpatterns
from studio import actions
from studio.jam_actions import order_after
from studio.models import DocClip, DocTrack, Stem

pytestmark = pytest.mark.django_db(transaction=True)

N = 480


def noise(seed: int, amplitude: float = 0.1) -> Callable[[int], np.ndarray]:
    """Different audio in every frame, so a misplaced take cannot match."""
    rng = np.random.default_rng(seed)

    def signal(_: int) -> np.ndarray:
        x = (amplitude * rng.standard_normal(N)).clip(-0.9, 0.9).astype(np.float32)
        return np.stack([x, x], axis=1)

    return signal


def level_db(frames: list[np.ndarray]) -> float:
    rms = [np.sqrt(np.mean(f**2)) for f in frames]
    return float(20 * np.log10(np.median(rms) + 1e-12))


def make_band() -> dict[str, Any]:
    User = get_user_model()
    olivia = User.objects.create_user("olivia", password="x")
    eddie = User.objects.create_user("eddie", password="x")
    erin = User.objects.create_user("erin", password="x")
    vera = User.objects.create_user("vera", password="x")
    project = actions.do_create_project(olivia, "Band", {"tempo_bpm": 100.0})
    owner = actions.access_project(olivia, project.id, "owner")
    actions.do_add_member(owner, "eddie", "editor")
    actions.do_add_member(owner, "erin", "editor")
    actions.do_add_member(owner, "vera", "viewer")
    return {"project": project, "olivia": olivia, "eddie": eddie, "erin": erin, "vera": vera}


class Client:
    """A project socket that remembers what it received, so a test can wait
    for one message type while others (meters, presence) keep flowing."""

    def __init__(self, comm: WebsocketCommunicator, hello: dict[str, Any]) -> None:
        self.comm = comm
        self.hello = hello
        self.session: str = hello["session"]
        self.inbox: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any]) -> None:
        await self.comm.send_json_to(message)

    async def next(
        self,
        kind: str,
        where: Callable[[dict[str, Any]], bool] = lambda _: True,
        timeout: float = 15.0,
    ) -> dict[str, Any]:
        """The first message of `kind` (matching `where`) not taken yet."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for i, event in enumerate(self.inbox):
                if event.get("type") == kind and where(event):
                    return self.inbox.pop(i)
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                seen = sorted({e.get("type") for e in self.inbox})
                raise AssertionError(f"no {kind} within {timeout} s; saw {seen}")
            try:
                self.inbox.append(await self.comm.receive_json_from(timeout=left))
            except TimeoutError:
                continue

    async def join(self, bot: Bot) -> dict[str, Any]:
        await self.send({"type": "jam.join", "offer": await bot.offer()})
        answer = await self.next("jam.answer")
        assert answer["participant"] == self.session
        await bot.accept(answer["sdp"])
        return answer


@asynccontextmanager
async def jam_sockets() -> AsyncIterator[Callable[..., Any]]:
    """`connect(user, project_id)` opens a project socket as a Client, and
    `connect.bot(name)` makes a WebRTC bot; all are closed on the way out,
    and the embedded jam rooms shut down."""
    opened: list[Client] = []
    bots: list[Bot] = []

    async def connect(user: Any, project_id: int) -> Client:
        comm = WebsocketCommunicator(
            URLRouter(websocket_urlpatterns), f"/ws/projects/{project_id}/"
        )
        comm.scope["user"] = user
        connected, _ = await comm.connect(timeout=5)
        assert connected
        client = Client(comm, await comm.receive_json_from(timeout=5))
        opened.append(client)
        return client

    def bot(name: str, **kwargs: Any) -> Bot:
        b = Bot(name, **kwargs)
        bots.append(b)
        return b

    connect.bot = bot  # type: ignore[attr-defined]
    yield connect
    for b in bots:
        await b.close()
    for client in opened:
        await client.comm.disconnect()
    await jamhost.shutdown_embedded()


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., Any]]:
    async with jam_sockets() as connect:
        yield connect


def room_of(project_id: int) -> Any:
    host = jamhost.current_embedded_host()
    assert host is not None
    return host.rooms[project_id]


async def test_two_members_join_see_each_other_and_hear_each_other(clients: Any) -> None:
    band = await sync_to_async(make_band)()
    pid = band["project"].id
    olivia = await clients(band["olivia"], pid)
    eddie = await clients(band["eddie"], pid)
    vera = await clients(band["vera"], pid)  # watching, not playing

    await vera.send({"type": "jam.state"})
    state = await vera.next("jam.state")
    assert state["participants"] == [] and state["ice_servers"] == []

    a = clients.bot("a", signal=tone(0.25))
    b = clients.bot("b")
    await olivia.join(a)
    await eddie.join(b)
    roster = await vera.next("jam.roster", lambda e: len(e["participants"]) == 2)
    assert [(p["participant"], p["user"]["name"]) for p in roster["participants"]] == [
        (olivia.session, "olivia"),
        (eddie.session, "eddie"),
    ]
    assert roster["tempo_bpm"] == 100.0 and roster["recording"] is None

    a.start_clock()
    b.start_clock()
    await b.wait_heard(150)
    await a.wait_heard(150)
    # eddie hears olivia's tone at its level; olivia's own mix leaves her out
    assert level_db(b.heard[-60:]) == pytest.approx(20 * np.log10(0.25 / np.sqrt(2)), abs=1.5)
    assert np.abs(np.concatenate(a.heard[-60:])).max() < 1e-3

    # Peak meters, ten a second; a start-up transient may hold a while, so
    # look at the median of a second's worth.
    olivia.inbox = [e for e in olivia.inbox if e["type"] != "jam.meters"]  # fresh ones
    readings = [await olivia.next("jam.meters") for _ in range(10)]
    mine = [m["levels"][olivia.session] for m in readings]
    assert float(np.median(mine)) == pytest.approx(20 * np.log10(0.25), abs=1.5)
    assert max(m["levels"][eddie.session] for m in readings) < -90
    # Only players get meters: vera, watching, received none meanwhile.
    await vera.send({"type": "jam.ping", "t": 1})
    await vera.next("jam.pong")
    assert "jam.meters" not in {e["type"] for e in vera.inbox}

    await olivia.send({"type": "jam.ping", "t": 1234.5})
    assert (await olivia.next("jam.pong"))["t"] == 1234.5

    await eddie.send({"type": "jam.leave"})
    assert (await eddie.next("jam.left"))["reason"] == "left"
    roster = await vera.next("jam.roster", lambda e: len(e["participants"]) == 1)
    assert roster["participants"][0]["participant"] == olivia.session

    # Closing the socket leaves the room, and the last one out closes it.
    await olivia.comm.disconnect()
    await vera.next("jam.roster", lambda e: e["participants"] == [])
    host = jamhost.current_embedded_host()
    assert host is not None and pid not in host.rooms


async def test_a_mix_change_is_heard_by_that_listener_only(clients: Any) -> None:
    band = await sync_to_async(make_band)()
    pid = band["project"].id
    olivia = await clients(band["olivia"], pid)
    eddie = await clients(band["eddie"], pid)
    erin = await clients(band["erin"], pid)
    a, b, c = clients.bot("a", signal=tone(0.25)), clients.bot("b"), clients.bot("c")
    await olivia.join(a)
    await eddie.join(b)
    await erin.join(c)
    for bot in (a, b, c):
        bot.start_clock()
    await b.wait_heard(100)
    room = room_of(pid).room
    ticks: list[TickInfo] = []
    room.add_tick_listener(ticks.append)

    await eddie.send({"type": "jam.mix", "source": olivia.session, "gain_db": -12.0, "pan": 0.0})
    mix = await eddie.next("jam.mix")
    assert mix["gains"] == {olivia.session: {"gain_db": -12.0, "pan": 0.0}}
    # From the next tick on, eddie's mix has olivia 12 dB down and erin's
    # does not: the same input, two personal mixes.
    applied = len(ticks)
    heard_from = len(b.heard), len(c.heard)
    await b.wait_heard(heard_from[0] + 120)
    await c.wait_heard(heard_from[1] + 120)
    after = ticks[applied + 1 :]
    order = after[0].participants
    ib, ic = order.index(eddie.session), order.index(erin.session)
    mixes = np.concatenate([t.mixes for t in after if t.participants == order], axis=1)
    ratio_db = 20 * np.log10(np.sqrt(np.mean(mixes[ib] ** 2)) / np.sqrt(np.mean(mixes[ic] ** 2)))
    assert ratio_db == pytest.approx(-12.0, abs=0.05)
    # ...and that is what arrives over the network (well after frames in flight).
    quiet = level_db(b.heard[heard_from[0] + 60 : heard_from[0] + 120])
    loud = level_db(c.heard[heard_from[1] + 60 : heard_from[1] + 120])
    assert loud == pytest.approx(20 * np.log10(0.25 / np.sqrt(2)), abs=1.5)
    assert quiet == pytest.approx(loud - 12.0, abs=1.5)

    # Pan olivia hard left in erin's mix: erin's right channel goes quiet.
    await erin.send({"type": "jam.mix", "source": olivia.session, "gain_db": 0, "pan": -1})
    await erin.next("jam.mix")
    mark = len(c.heard)
    await c.wait_heard(mark + 60)
    right = np.concatenate(c.heard[mark + 30 : mark + 60])
    assert np.abs(right[:, 1]).max() < 0.01 < np.abs(right[:, 0]).max()

    # Self-monitor and metronome are personal too.
    await olivia.send({"type": "jam.mix", "self_monitor": True, "gain_db": -6.0})
    assert (await olivia.next("jam.mix"))["self_monitor"] == {"on": True, "gain_db": -6.0}
    await eddie.send({"type": "jam.mix", "metronome": True})
    assert (await eddie.next("jam.mix"))["metronome"] is True
    assert room._self_monitor == {olivia.session: -6.0}
    assert room._metronome_on == {eddie.session}


async def test_bad_requests_get_clear_errors_and_viewers_cannot_record(clients: Any) -> None:
    band = await sync_to_async(make_band)()
    pid = band["project"].id
    vera = await clients(band["vera"], pid)
    olivia = await clients(band["olivia"], pid)

    async def error_for(client: Client, message: dict[str, Any]) -> dict[str, Any]:
        await client.send(message)
        return await client.next("error")

    err = await error_for(olivia, {"type": "jam.mix", "metronome": True})
    assert (err["code"], err["request"]) == ("not_joined", "jam.mix")
    err = await error_for(olivia, {"type": "jam.mix", "metronome": True, "volume": 3})
    assert err["code"] == "bad_message" and "volume" in err["message"]
    err = await error_for(olivia, {"type": "jam.mix", "source": "x", "metronome": True})
    assert err["message"] == "message: send exactly one of source, self_monitor or metronome"
    err = await error_for(olivia, {"type": "jam.mix", "source": "x", "gain_db": 40})
    assert err["code"] == "bad_message" and err["message"].startswith("gain_db:")
    err = await error_for(olivia, {"type": "jam.join", "offer": "hello"})
    assert err["code"] == "bad_message" and err["message"].startswith("offer:")
    err = await error_for(olivia, {"type": "jam.explode"})
    assert err["code"] == "unknown_type"
    err = await error_for(olivia, {"type": "jam.join", "offer": "v=0\r\nnot really sdp"})
    assert err["code"] == "jam_failed" and err["request"] == "jam.join"

    # A viewer may play along but not record.
    bot = clients.bot("v")
    await vera.join(bot)
    err = await error_for(vera, {"type": "jam.record.start", "count_in_bars": 1})
    assert err == {
        "type": "error",
        "code": "forbidden",
        "message": "only editors and owners can record",
        "request": "jam.record.start",
    }
    assert not room_of(pid).room.recording
    err = await error_for(olivia, {"type": "jam.record.stop"})
    assert err["code"] == "not_joined"


async def test_a_full_room_and_a_full_server_are_refused_clearly(
    clients: Any, settings: Any
) -> None:
    settings.ROOMTONE_JAM_MAX_PLAYERS = 1
    settings.ROOMTONE_JAM_ROOMS_PER_WORKER = 1
    band = await sync_to_async(make_band)()
    pid = band["project"].id
    other = await sync_to_async(actions.do_create_project)(band["eddie"], "Side project")
    olivia = await clients(band["olivia"], pid)
    eddie = await clients(band["eddie"], pid)
    eddie_side = await clients(band["eddie"], other.id)
    await olivia.join(clients.bot("a"))

    await eddie.send({"type": "jam.join", "offer": await clients.bot("b").offer()})
    err = await eddie.next("error")
    assert (err["code"], err["request"]) == ("room_full", "jam.join")
    assert err["message"] == f"The jam room is full: room {pid} is full (1 players)."

    await eddie_side.send({"type": "jam.join", "offer": await clients.bot("c").offer()})
    err = await eddie_side.next("error")
    assert err["code"] == "server_full"
    assert "1 rooms, its capacity" in err["message"]
    assert room_of(pid).room.participants == [olivia.session]


async def test_recording_turns_takes_into_aligned_stems_and_tracks(clients: Any) -> None:
    band = await sync_to_async(make_band)()
    pid = band["project"].id
    olivia = await clients(band["olivia"], pid)
    eddie = await clients(band["eddie"], pid)
    erin = await clients(band["erin"], pid)
    vera = await clients(band["vera"], pid)
    bots = {
        olivia.session: clients.bot("a", signal=noise(1)),
        eddie.session: clients.bot("b", signal=noise(2)),
        erin.session: clients.bot("c", signal=noise(3)),
    }
    await olivia.join(bots[olivia.session])
    await eddie.join(bots[eddie.session])
    for bot in bots.values():
        bot.start_clock()
    state = room_of(pid)
    played: list[TickInfo] = []
    state.room.add_tick_listener(played.append)
    await bots[eddie.session].wait_heard(50)

    await eddie.send({"type": "jam.record.start", "count_in_bars": 0})
    started = await vera.next("jam.recording")
    assert started["state"] == "recording" and started["by"]["name"] == "eddie"
    assert state.recording is not None
    rec_start = state.recording.start_frame
    await asyncio.sleep(0.4)
    await erin.join(bots[erin.session])  # late: erin's take starts later
    await asyncio.sleep(0.6)
    await olivia.send({"type": "jam.record.stop"})
    assert (await vera.next("jam.recording"))["state"] == "saving"
    saved = await vera.next("jam.recording", timeout=30)
    assert saved["state"] == "saved", saved
    assert len(saved["stems"]) == 3 and len(saved["tracks"]) == 3

    # Everyone in the project sees the new tracks as one edit.
    edit = await vera.next("edit")
    created = [(op["kind"], op["props"]) for op in edit["ops"]]
    assert [k for k, _ in created] == ["track", "clip"] * 3
    # takes in order of their start, then by name
    assert [p["name"] for k, p in created if k == "track"] == ["eddie", "olivia", "erin"]

    def rows() -> list[tuple[str, float, int, str]]:
        out = []
        for clip in DocClip.objects.filter(project_id=pid).select_related("stem__blob"):
            track = DocTrack.objects.get(project_id=pid, uid=clip.track_uid)
            out.append((track.name, clip.start, clip.stem.id, clip.stem.blob.storage_name))
        return out

    placed = await sync_to_async(rows)()
    assert {name for name, *_ in placed} == {"olivia", "eddie", "erin"}
    orders = await sync_to_async(
        lambda: list(DocTrack.objects.filter(project_id=pid).values_list("order", flat=True))
    )()
    assert orders == sorted(orders) and len(set(orders)) == 3
    names = {olivia.session: "olivia", eddie.session: "eddie", erin.session: "erin"}
    live: dict[str, dict[int, np.ndarray]] = {pid_: {} for pid_ in names}
    for info in played:
        for i, who in enumerate(info.participants):
            live[who][info.frame] = info.inputs[i]
    for session, name in names.items():
        (_, start_s, stem_id, storage_name) = next(r for r in placed if r[0] == name)
        offset = round(start_s * 48000)
        assert offset == start_s * 48000  # on the sample
        first = min(f for f in live[session] if f >= rec_start)
        # Each clip starts where its player's take started on the room clock...
        assert offset == first - rec_start
        if name == "erin":
            assert offset > 0
        else:
            assert offset == 0
        # ...and its stem is exactly what the room heard from that player.
        with default_storage.open(storage_name) as f:
            audio, rate = sf.read(io.BytesIO(f.read()), dtype="float32")
        assert rate == 48000 and audio.ndim == 2
        frames = sorted(f for f in live[session] if f >= first)
        heard = np.concatenate([live[session][f] for f in frames])
        n = min(len(audio), len(heard))
        assert n > 0.5 * 48000
        # (a fixed-point file holds nothing above full scale: Opus decoding
        # can overshoot a little, and the take is clipped there)
        np.testing.assert_allclose(audio[:n], np.clip(heard[:n], -1.0, 1.0), atol=2.0**-22)
        stem = await sync_to_async(Stem.objects.get)(id=stem_id)
        assert stem.name.startswith(f"{name} · jam ")
    assert not (state.recording or state.saving)


async def test_tempo_changes_reach_the_room_metronome(clients: Any) -> None:
    band = await sync_to_async(make_band)()
    pid = band["project"].id
    olivia = await clients(band["olivia"], pid)
    await olivia.join(clients.bot("a"))
    room = room_of(pid).room
    assert room.metronome.tempo_bpm == 100.0 and room.metronome.beats_per_bar == 4
    access = await sync_to_async(actions.access_project)(band["olivia"], pid, "owner")
    await sync_to_async(actions.do_update_project)(
        access, {"tempo_bpm": 132.0, "time_signature": [3, 4]}
    )
    roster = await olivia.next("jam.roster", lambda e: e["tempo_bpm"] == 132.0)
    assert roster["beats_per_bar"] == 3
    assert room.metronome.tempo_bpm == 132.0 and room.metronome.beats_per_bar == 3


def test_track_orders_append_in_byte_order() -> None:
    keys = [""]
    for _ in range(200):
        keys.append(order_after(keys[-1]))
    keys = keys[1:]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert all(k[-1] != "0" for k in keys) and max(len(k) for k in keys) <= 40
    assert order_after("V") > "V" and order_after("zz") > "zz" and order_after("y") > "y"


async def test_a_player_whose_audio_connection_drops_is_told_and_leaves_the_roster(
    clients: Any,
) -> None:
    band = await sync_to_async(make_band)()
    pid = band["project"].id
    olivia = await clients(band["olivia"], pid)
    eddie = await clients(band["eddie"], pid)
    bot = clients.bot("a")
    await olivia.join(bot)
    await eddie.join(clients.bot("b"))
    await bot.close()  # the browser tab's peer connection goes away, the socket stays
    left = await olivia.next("jam.left", timeout=40)
    assert left == {
        "type": "jam.left",
        "participant": olivia.session,
        "reason": "the audio connection was lost",
    }
    await eddie.next(
        "jam.roster", lambda e: [p["participant"] for p in e["participants"]] == [eddie.session]
    )
    err_message = {"type": "jam.mix", "metronome": True}
    await olivia.send(err_message)
    assert (await olivia.next("error"))["code"] == "not_joined"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("jam: still stopping"):
            self.messages.append(record.getMessage())
            self.seen.set()  # logged from a task on this loop


@pytest.fixture
def jam_warnings() -> Iterator[_Collect]:
    handler = _Collect()
    logger = logging.getLogger("collab.jamhost")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.mark.django_db(transaction=False)
async def test_a_slow_shutdown_says_what_it_waits_on(jam_warnings: _Collect) -> None:
    release = asyncio.Event()

    async def close_the_peer_that_hangs() -> None:
        await release.wait()

    stopping = asyncio.ensure_future(
        jamhost.stop_reporting(close_the_peer_that_hangs(), timeout=60, report_every=0.05)
    )
    await asyncio.wait_for(jam_warnings.seen.wait(), 10)
    assert "close_the_peer_that_hangs (test_jam_signalling.py:" in jam_warnings.messages[0]
    assert not stopping.done()
    release.set()
    assert await asyncio.wait_for(stopping, 10) is None


@pytest.mark.django_db(transaction=False)
async def test_a_shutdown_past_its_time_limit_is_given_up(jam_warnings: _Collect) -> None:
    given_up = asyncio.Event()

    async def never_done() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            given_up.set()

    with pytest.raises(TimeoutError):
        await jamhost.stop_reporting(never_done(), timeout=0.2, report_every=0.05)
    assert given_up.is_set()  # cancelled, not left running
    assert any("never_done" in m for m in jam_warnings.messages)
