"""Real servers for multi-process tests: a migrated var/ folder, daphne
subprocesses, users logged in by session cookie, and protocol clients over the
`websockets` library (the same Client the in-process tests use)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from tests.collab.editing_helpers import Client

ROOT = Path(__file__).resolve().parents[1]

# Runs inside the server's environment: users, a project with a stem, and a
# logged-in session per user. Prints JSON. Ids start high and at random so
# that groups on a shared Redis cannot meet another run's.
SETUP = """
import json, random, sys
from pathlib import Path
import django
django.setup()
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from studio import actions
from tests.conftest import write_audio

with connection.cursor() as cursor:
    start = random.randrange(10**6, 10**9)
    if connection.vendor == "postgresql":
        cursor.execute("SELECT setval(pg_get_serial_sequence('studio_project', 'id'), %s)", [start])
    else:
        cursor.execute(
            "INSERT OR REPLACE INTO sqlite_sequence (name, seq) VALUES ('studio_project', %s)",
            [start],
        )
User = get_user_model()
owner = User.objects.create_user("olivia", password="x")
User.objects.create_user("eddie", password="x")
project = actions.do_create_project(owner, "Band")
access = actions.access_project(owner, project.id, "owner")
actions.do_add_member(access, "eddie", "editor")
path = write_audio(Path(sys.argv[1]) / "loop.wav", seconds=4.0)
stem = actions.do_add_stem_from_file(access, path)
sessions = {}
for user in User.objects.all():
    browser = Client()
    browser.force_login(user)
    sessions[user.username] = browser.cookies["sessionid"].value
print(json.dumps({"project": project.id, "source": f"stem:{stem.id}", "sessions": sessions}))
"""


def server_env(var: Path, **extra: str) -> dict[str, str]:
    """The embedded default (SQLite in var/, WAL) unless `extra` says otherwise."""
    env = {
        **os.environ,
        "ROOMTONE_VAR_DIR": str(var),
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "DATABASE_URL": "",
        "REDIS_URL": "",
        "TASK_BACKEND": "immediate",
        "SECRET_KEY": "test-only-secret-key-shared-by-every-process-0123456789",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    env.update(extra)
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def prepare(var: Path, env: dict[str, str]) -> dict[str, Any]:
    """Migrate a fresh database and create the band; returns ids and sessions."""
    migrate(env)
    done = subprocess.run(
        [sys.executable, "-c", SETUP, str(var)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One daphne process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.port = free_port()
        self.log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "studio.asgi:application",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daphne exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                # A listening port is the only readiness signal daphne gives.
                time.sleep(0.05)
        raise RuntimeError("daphne did not start")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flushing, as in a crash."""
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


class WebsocketsComm:
    """The slice of WebsocketCommunicator that Client uses, over a real socket."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send_json_to(self, data: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(data))

    async def send_to(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.ws.send(text_data if text_data is not None else bytes_data or b"")

    async def receive_json_from(self, timeout: float = 10) -> Any:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def disconnect(self) -> None:
        await self.ws.close()


async def connect_client(server: Server, project_id: int, session_key: str) -> Client:
    """Log in by session cookie, from an allowed origin, and fetch the document."""
    ws = await ws_connect(
        f"ws://127.0.0.1:{server.port}/ws/projects/{project_id}/",
        origin=f"http://127.0.0.1:{server.port}",  # type: ignore[arg-type]
        additional_headers={"Cookie": f"sessionid={session_key}"},
        open_timeout=10,
    )
    comm = WebsocketsComm(ws)
    hello = await comm.receive_json_from()
    assert hello["type"] == "hello", hello
    client = Client(comm, hello)  # type: ignore[arg-type]
    snapshot = await client.sync()
    assert snapshot["type"] == "snapshot"
    return client
