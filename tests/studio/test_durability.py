"""Durability: an edit the server has acknowledged survives `kill -9` of the
server and a restart, on the embedded default (SQLite in WAL mode) and on
PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.collab.editing_helpers import create, set_
from tests.conftest import port_open, require_service
from tests.live_server import ROOT, Server, connect_client, prepare, server_env

pytestmark = pytest.mark.slow

PRAGMAS = """
import json
import django
django.setup()
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("PRAGMA journal_mode")
    journal = cursor.fetchone()[0]
    cursor.execute("PRAGMA synchronous")
    synchronous = cursor.fetchone()[0]
print(json.dumps({"journal_mode": journal, "synchronous": synchronous}))
"""


def test_the_embedded_database_commits_through_a_write_ahead_log(tmp_path: Path):
    env = server_env(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", PRAGMAS], cwd=ROOT, env=env, check=True, capture_output=True
    )
    pragmas = json.loads(done.stdout)
    assert pragmas["journal_mode"] == "wal"
    # 0 is OFF (a commit may be lost when the process dies mid-write); NORMAL
    # (1) writes each commit to the log before returning, which a killed
    # process cannot undo, and FULL (2) also syncs it to disk.
    assert pragmas["synchronous"] in (1, 2)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The embedded default, and a fresh PostgreSQL database with
    ROOMTONE_EDIT_SYNCHRONOUS_COMMIT=off: even when an edit's commit does not
    wait for the disk, a killed Roomtone process cannot undo it."""
    if request.param == "sqlite":
        yield {}
        return
    require_service("PostgreSQL", port_open("127.0.0.1", 5432), "127.0.0.1:5432")
    import psycopg

    name = f"roomtone_durability_{os.getpid()}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield {
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{name}",
            "ROOMTONE_EDIT_SYNCHRONOUS_COMMIT": "off",
        }
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def test_an_acknowledged_edit_survives_kill_9_and_a_restart(
    tmp_path: Path, database: dict[str, str]
):
    var = tmp_path / "var"
    var.mkdir()
    env = server_env(var, **database)
    band = prepare(var, env)
    pid, src, key = band["project"], band["source"], band["sessions"]["olivia"]
    server = Server(env, var / "server.log")
    try:
        client = await connect_client(server, pid, key)
        cids = [
            await client.edit(
                create("track", "drums", name="Drums", order="V"),
                create("clip", "c1", track="drums", source=src, start=1.0),
                cid="first",
            ),
            await client.edit(set_("track", "drums", gain_db=-6.0), base=1, cid="second"),
            await client.edit(create("marker", "m1", time=2.0, name="Last"), base=1, cid="last"),
        ]
        acks = [await client.done(cid) for cid in cids]
        # The moment the last ack is in, the server dies without any shutdown.
        server.kill()
    finally:
        server.stop()  # only if something above failed before the kill
    assert [a["revision"] for a in acks] == [1, 2, 3]
    server = Server(env, var / "server.log")
    try:
        again = await connect_client(server, pid, key)
        assert again.revision == 3
        state = again.state
        assert state is not None
        assert state["track"]["drums"]["gain_db"] == -6.0
        assert state["clip"]["c1"]["source"] == src
        assert state["marker"]["m1"]["name"] == "Last"
        # The op log survived too: a client that had seen nothing catches up
        # edit by edit, and a resent edit is recognised as done.
        reply = await again.sync(0)
        assert [(e["revision"], e["client_op_id"]) for e in reply["edits"]] == [
            (1, "first"),
            (2, "second"),
            (3, "last"),
        ]
        await again.edit(create("marker", "m1", time=2.0, name="Last"), base=0, cid="last")
        assert await again.done("last") == {
            "type": "ack",
            "client_op_id": "last",
            "revision": 3,
            "duplicate": True,
        }
        await again.close()
    finally:
        server.stop()
