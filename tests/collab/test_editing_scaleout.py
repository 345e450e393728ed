"""Scale-out: two daphne processes share one database and a Redis channel
layer; clients on either see every edit, whichever process took it, and end
with the same document (docs/protocol.md §4: gaps between processes are
repaired by resync)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.collab.editing_helpers import create, delete, set_
from tests.conftest import port_open, require_service
from tests.live_server import Server, connect_client, prepare, server_env

pytestmark = [pytest.mark.redis, pytest.mark.slow]

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture
def two_servers(tmp_path: Path):
    require_service("Redis", port_open("127.0.0.1", 6379), "127.0.0.1:6379")
    var = tmp_path / "var"
    var.mkdir()
    env = server_env(var, REDIS_URL=REDIS_URL)
    band = prepare(var, env)
    servers: list[Server] = []
    try:
        servers.append(Server(env, var / "server-a.log"))
        servers.append(Server(env, var / "server-b.log"))
        yield band, servers
    finally:
        for server in servers:
            server.stop()


async def test_edits_through_two_servers_converge_on_every_client(two_servers):
    band, (a, b) = two_servers
    pid, src, keys = band["project"], band["source"], band["sessions"]
    olivia_a = await connect_client(a, pid, keys["olivia"])
    eddie_b = await connect_client(b, pid, keys["eddie"])
    olivia_b = await connect_client(b, pid, keys["olivia"])
    eddie_a = await connect_client(a, pid, keys["eddie"])
    clients = [olivia_a, eddie_b, olivia_b, eddie_a]
    # The newcomer on one process hears presence from a session on the other.
    await olivia_a.until("presence", session=eddie_b.session)

    async def burst(plan: list) -> list[int]:
        """Send without waiting, so both processes write at once; then the acks."""
        sent = []
        for client, ops in plan:
            sent.append((client, await client.edit(*ops, base=client.revision)))
        return [(await client.done(cid))["revision"] for client, cid in sent]

    revisions = await burst(
        [
            (olivia_a, [create("track", "drums", name="Drums", order="V")]),
            (eddie_b, [create("track", "bass", name="Bass", order="k")]),
            (olivia_b, [create("marker", "m1", time=4.0, name="Verse")]),
            (eddie_a, [create("effect", "e1", order="V", type="limiter")]),
        ]
    )
    # Each connection's edits apply in the order sent; last writer wins.
    revisions += await burst(
        [
            edit
            for i in range(5)
            for edit in (
                (olivia_a, [set_("track", "drums", gain_db=-float(i))]),
                (eddie_b, [set_("track", "drums", pan=i / 10)]),
                (olivia_b, [create("marker", f"r{i}", time=float(i))]),
                (eddie_a, [set_("effect", "e1", params={"threshold_db": -float(i)})]),
            )
        ]
    )
    # One after another where each depends on the last.
    for client, ops in [
        (eddie_b, [create("clip", "c1", track="bass", source=src, start=1.0)]),
        (olivia_a, [set_("clip", "c1", track="drums")]),
        (eddie_a, [delete("track", "bass")]),
        (olivia_b, [create("comment", "k1", time=1.0, track="drums", text="Both servers")]),
    ]:
        revisions += await burst([(client, ops)])
    top = max(revisions)
    assert sorted(revisions) == list(range(top - len(revisions) + 1, top + 1))
    for client in clients:
        await client.caught_up(top)
    # Every client holds the same document, and it is what either process
    # serves to a fresh fetch.
    fresh_a = await olivia_a.sync()
    fresh_b = await eddie_b.sync()
    assert fresh_a == fresh_b
    assert fresh_a["revision"] == top
    for client in clients:
        assert client.state == fresh_a["state"]
    state = fresh_a["state"]
    assert set(state["track"]) == {"drums"}
    assert state["clip"]["c1"]["track"] == "drums"
    assert set(state["marker"]) == {"m1", *(f"r{i}" for i in range(5))}
    assert state["effect"]["e1"]["params"]["threshold_db"] == -4.0
    # An undo taken by one process reaches clients of the other.
    await eddie_b.send({"type": "undo", "client_op_id": "u1"})
    undone = (await eddie_b.done("u1"))["revision"]
    await olivia_a.caught_up(undone)
    assert olivia_a.state["track"]["bass"]["name"] == "Bass"
    for client in clients:
        await client.close()
