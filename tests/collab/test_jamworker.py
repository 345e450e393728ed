"""Scale-out jams: `manage.py jamworker` processes own rooms, signalling reaches
the owner through the Redis channel layer, and a full worker says so.

Two real worker processes (one room each), project sockets in this process on
the Redis pub/sub layer, and aiortc bots joining through the sockets.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.contrib.auth import get_user_model

from collab import jamhost
from studio import actions
from tests.conftest import port_open, require_service

from .test_jam_signalling import jam_sockets, level_db, tone

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis(settings: Any) -> Iterator[str]:
    require_service("Redis", port_open("127.0.0.1", 6379), "127.0.0.1:6379")
    url = REDIS_URL
    settings.REDIS_URL = url
    # Keys of this test only, so a parallel run cannot pick our workers
    # (pub/sub channel names are unique anyway).
    settings.ROOMTONE_JAM_KEY_PREFIX = f"roomtone-test:{uuid.uuid4().hex[:12]}:jam:"
    settings.ROOMTONE_JAM_WORKERS = "channel"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "collab.redislayer.BatchingPubSubChannelLayer",
            "CONFIG": {"hosts": [url]},
        }
    }
    channel_layers.backends.clear()
    yield url
    channel_layers.backends.clear()


@pytest.fixture
def workers(redis: str, settings: Any, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    import redis as redis_client

    r = redis_client.Redis.from_url(redis)
    prefix = settings.ROOMTONE_JAM_KEY_PREFIX
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "REDIS_URL": redis,
        "SECRET_KEY": "jamworker-test",
        "TASK_BACKEND": "immediate",
        "DATABASE_URL": "",
        "ROOMTONE_VAR_DIR": str(tmp_path / "var"),
        "ROOMTONE_JAM_ROOMS_PER_WORKER": "1",
        "ROOMTONE_JAM_HOST_ADDRESSES": "127.0.0.1",
        "ROOMTONE_JAM_KEY_PREFIX": prefix,
    }
    procs: list[subprocess.Popen[bytes]] = []
    for i in range(2):
        log = open(tmp_path / f"worker{i}.log", "wb")  # noqa: SIM115 - closed below
        procs.append(
            subprocess.Popen(
                # faulthandler: a worker that hangs on the way out is sent
                # SIGABRT below and leaves every thread's stack in its log.
                [sys.executable, "-X", "faulthandler", "manage.py", "jamworker"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        log.close()
    try:
        deadline = time.monotonic() + 60
        while len(r.hgetall(f"{prefix}workers")) < 2:
            for i, p in enumerate(procs):
                if p.poll() is not None:
                    raise RuntimeError((tmp_path / f"worker{i}.log").read_text())
            if time.monotonic() > deadline:
                raise RuntimeError("jam workers did not register")
            # Polling Redis is the only readiness signal another process gives.
            time.sleep(0.1)
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        for key in r.scan_iter(f"{prefix}*"):
            r.delete(key)
        r.close()


@pytest.fixture
async def sockets() -> AsyncIterator[Any]:
    async with jam_sockets() as connect:
        yield connect
    await jamhost.claims().close()
    layer = get_channel_layer()
    if layer is not None and hasattr(layer, "flush"):
        await layer.flush()


def make_projects() -> dict[str, Any]:
    User = get_user_model()
    olivia = User.objects.create_user("olivia", password="x")
    eddie = User.objects.create_user("eddie", password="x")
    projects = [actions.do_create_project(olivia, name) for name in ("A", "B", "C")]
    actions.do_add_member(
        actions.access_project(olivia, projects[0].id, "owner"), "eddie", "editor"
    )
    return {"olivia": olivia, "eddie": eddie, "projects": [p.id for p in projects]}


async def test_rooms_live_on_one_worker_each_and_full_workers_refuse(
    workers: list[subprocess.Popen[bytes]], sockets: Any
) -> None:
    people = await sync_to_async(make_projects)()
    a_id, b_id, c_id = people["projects"]
    room_claims = jamhost.claims()

    # Project A: two players, both routed to the worker that claimed the room.
    olivia_a = await sockets(people["olivia"], a_id)
    eddie_a = await sockets(people["eddie"], a_id)
    a, b = sockets.bot("a", signal=tone(0.25)), sockets.bot("b")
    await olivia_a.join(a)
    owner_a = await room_claims.owner(a_id)
    assert owner_a is not None and "jamworker." in owner_a
    await eddie_a.join(b)
    assert await room_claims.owner(a_id) == owner_a
    roster = await olivia_a.next("jam.roster", lambda e: len(e["participants"]) == 2)
    assert {p["user"]["name"] for p in roster["participants"]} == {"olivia", "eddie"}
    a.start_clock()
    b.start_clock()
    await b.wait_heard(120)
    assert level_db(b.heard[-50:]) == pytest.approx(20 * np.log10(0.25 / np.sqrt(2)), abs=1.5)
    meters = await olivia_a.next("jam.meters", lambda e: len(e["levels"]) == 2)
    assert set(meters["levels"]) == {olivia_a.session, eddie_a.session}

    # Project B goes to the other worker (each runs one room).
    olivia_b = await sockets(people["olivia"], b_id)
    await olivia_b.join(sockets.bot("c"))
    owner_b = await room_claims.owner(b_id)
    assert owner_b is not None and owner_b != owner_a

    # Project C: every worker is full, a clear error and nothing claimed.
    olivia_c = await sockets(people["olivia"], c_id)
    await olivia_c.send({"type": "jam.join", "offer": await sockets.bot("d").offer()})
    err = await olivia_c.next("error")
    assert (err["code"], err["request"]) == ("server_full", "jam.join")
    assert err["message"] == (
        "every jam worker is at its capacity (1 rooms each); try again when a jam ends"
    )
    assert await room_claims.owner(c_id) is None

    # A full worker asked directly (a consumer that raced another) refuses too.
    layer = get_channel_layer()
    assert layer is not None
    inbox = await layer.new_channel("test.")
    await layer.send(
        owner_a,
        {
            "type": jamhost.REQUEST,
            "action": "join",
            "project_id": c_id,
            "participant": "raced",
            "reply_to": inbox,
            "user": {"id": 1, "name": "olivia", "colour": "#fff"},
            "role": "owner",
            "data": {
                "offer": await sockets.bot("e").offer(),
                "tempo_bpm": 120.0,
                "beats_per_bar": 4,
            },
        },
    )
    reply = await asyncio.wait_for(layer.receive(inbox), 10)
    assert reply["event"]["code"] == "server_full"
    assert "1 rooms, its capacity" in reply["event"]["message"]

    # When A's players leave, its room closes, its claim goes, and C gets a room.
    await olivia_a.send({"type": "jam.leave"})
    await eddie_a.send({"type": "jam.leave"})
    await olivia_a.next("jam.roster", lambda e: e["participants"] == [])
    deadline = asyncio.get_running_loop().time() + 10
    while await room_claims.owner(a_id) is not None:
        assert asyncio.get_running_loop().time() < deadline, "room A was not released"
        await asyncio.sleep(0.05)
    await olivia_c.join(sockets.bot("f"))
    assert await room_claims.owner(c_id) == owner_a

    infos = {w.channel: w for w in await room_claims.workers()}
    assert set(infos) == {owner_a, owner_b}
    assert infos[owner_a].rooms == 1 and infos[owner_a].max_rooms == 1


async def test_a_stopped_worker_lets_go_of_its_rooms(
    workers: list[subprocess.Popen[bytes]], sockets: Any, tmp_path: Path
) -> None:
    logs = [tmp_path / f"worker{i}.log" for i in range(len(workers))]
    people = await sync_to_async(make_projects)()
    a_id = people["projects"][0]
    room_claims = jamhost.claims()
    olivia = await sockets(people["olivia"], a_id)
    await olivia.join(sockets.bot("a"))
    owner = await room_claims.owner(a_id)
    assert owner is not None
    registry = await room_claims.redis.hgetall(room_claims.workers_key)
    assert sorted(json.loads(v)["rooms"] for v in registry.values()) == [0, 1]
    for p in workers:
        p.send_signal(signal.SIGTERM)
    for i, p in enumerate(workers):
        try:
            code = await asyncio.get_running_loop().run_in_executor(None, p.wait, 30)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGABRT)
            p.wait(10)
            raise AssertionError(logs[i].read_text()[-6000:]) from None
        assert code == 0, logs[i].read_text()[-3000:]
    # Told it is out (the room closed), and nothing left claimed or registered.
    left = await olivia.next("jam.left")
    assert left["reason"] == "the jam server is shutting down"
    assert await room_claims.owner(a_id) is None
    assert await room_claims.workers() == []
    await olivia.send({"type": "jam.join", "offer": await sockets.bot("b").offer()})
    err = await olivia.next("error")
    assert err["code"] == "jam_failed" and "no jam worker is running" in err["message"]


async def test_embedded_rooms_are_claimed_when_web_processes_share_redis(
    redis: str, settings: Any, sockets: Any
) -> None:
    """Several web processes on one Redis, no jam workers: the process whose
    client opens a room claims it, so the others route to it."""
    settings.ROOMTONE_JAM_WORKERS = "embedded"
    people = await sync_to_async(make_projects)()
    a_id = people["projects"][0]
    room_claims = jamhost.claims()
    olivia = await sockets(people["olivia"], a_id)
    eddie = await sockets(people["eddie"], a_id)
    await olivia.join(sockets.bot("a"))
    host = jamhost.current_embedded_host()
    assert host is not None
    assert await room_claims.owner(a_id) == host.channel
    assert host.channel not in {w.channel for w in await room_claims.workers()}
    await eddie.send({"type": "jam.state"})
    state = await eddie.next("jam.state")
    assert [p["participant"] for p in state["participants"]] == [olivia.session]
    await olivia.send({"type": "jam.leave"})
    await eddie.next("jam.roster", lambda e: e["participants"] == [])
    deadline = asyncio.get_running_loop().time() + 10
    while await room_claims.owner(a_id) is not None:  # released as the room closes
        assert asyncio.get_running_loop().time() < deadline, "the room was not released"
        await asyncio.sleep(0.05)
