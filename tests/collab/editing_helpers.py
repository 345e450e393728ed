"""Shared by the co-editing tests: a band with real stems, and a protocol
client over channels' WebsocketCommunicator that keeps its own copy of the
document by replaying what the server broadcasts (docs/protocol.md §4)."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model

from collab.routing import websocket_urlpatterns
from studio import actions, docstate, editing
from studio.models import Project, Stem
from tests.conftest import write_audio

TIMEOUT = 10


@dataclass
class Band:
    project: Project
    owner: Any
    editor: Any
    viewer: Any
    outsider: Any
    stem: Stem

    @property
    def source(self) -> str:
        return f"stem:{self.stem.id}"


def add_stem(project: Project, user: Any, path: Path) -> Stem:
    access = actions.access_project(user, project.id, "editor")
    return actions.do_add_stem_from_file(access, path)


def make_band(tmp_path: Path) -> Band:
    User = get_user_model()
    owner = User.objects.create_user("olivia", password="x")
    editor = User.objects.create_user("eddie", password="x")
    viewer = User.objects.create_user("vera", password="x")
    outsider = User.objects.create_user("otto", password="x")
    project = actions.do_create_project(owner, "Band")
    access = actions.access_project(owner, project.id, "owner")
    actions.do_add_member(access, "eddie", "editor")
    actions.do_add_member(access, "vera", "viewer")
    stem = add_stem(project, owner, write_audio(tmp_path / "drums.wav", seconds=4.0))
    return Band(project, owner, editor, viewer, outsider, stem)


def current(project: Project) -> tuple[int, docstate.State]:
    fresh = Project.objects.get(id=project.id)
    return fresh.revision, editing.full_state(fresh)


async def stored(project: Project) -> tuple[int, docstate.State]:
    """The revision and the document as a fresh fetch sees them."""
    return await sync_to_async(current)(project)


_ids = itertools.count(1)


def op_id(prefix: str = "op") -> str:
    return f"{prefix}-{next(_ids)}"


def create(kind: str, obj_id: str, **props: Any) -> dict[str, Any]:
    return {"op": "create", "kind": kind, "id": obj_id, "props": props}


def set_(kind: str, obj_id: str, **props: Any) -> dict[str, Any]:
    return {"op": "set", "kind": kind, "id": obj_id, "props": props}


def delete(kind: str, obj_id: str) -> dict[str, Any]:
    return {"op": "delete", "kind": kind, "id": obj_id}


class Client:
    """One open socket. Every message received is logged; `edit`, `sync` and
    `snapshot` messages update the client's copy of the document."""

    def __init__(self, comm: WebsocketCommunicator, hello: dict[str, Any]) -> None:
        self.comm = comm
        self.hello = hello
        self.session: str = hello["session"]
        self.revision: int = hello["revision"]
        self.state: docstate.State | None = None
        self.log: list[dict[str, Any]] = []
        self.kept: list[dict[str, Any]] = []  # edits above a gap, kept for after the resync
        self.drop_revisions: set[int] = set()  # broadcasts to lose, to make a gap
        self.gaps: list[int] = []
        self.resyncing = False

    # --- sending --------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        await self.comm.send_json_to(message)

    async def send_text(self, text: str) -> None:
        await self.comm.send_to(text_data=text)

    async def edit(self, *ops: dict[str, Any], base: int | None = None, cid: str = "") -> str:
        cid = cid or op_id()
        message: dict[str, Any] = {"type": "edit", "client_op_id": cid, "ops": list(ops)}
        message["base_revision"] = self.revision if base is None else base
        await self.send(message)
        return cid

    # --- receiving ------------------------------------------------------------------

    async def recv(self) -> dict[str, Any]:
        message = await self.comm.receive_json_from(timeout=TIMEOUT)
        self.log.append(message)
        await self._track(message)
        return message

    async def until(self, kind: str, **fields: Any) -> dict[str, Any]:
        """The next message of type `kind` whose fields match; others are logged."""
        while True:
            message = await self.recv()
            if message["type"] == kind and all(message.get(k) == v for k, v in fields.items()):
                return message

    async def ack(self, cid: str) -> dict[str, Any]:
        """The answer to one client_op_id: its ack or its error."""
        while True:
            message = await self.recv()
            if message["type"] in ("ack", "error") and message.get("client_op_id") == cid:
                return message

    async def done(self, cid: str) -> dict[str, Any]:
        answer = await self.ack(cid)
        assert answer["type"] == "ack", answer
        return answer

    async def error(self) -> dict[str, Any]:
        return await self.until("error")

    async def caught_up(self, revision: int) -> None:
        while self.revision < revision:
            await self.recv()

    async def ping(self) -> list[dict[str, Any]]:
        """Round trip; returns what arrived before the pong."""
        marker = op_id("ping")
        start = len(self.log)
        await self.send({"type": "ping", "id": marker})
        await self.until("pong", id=marker)
        return self.log[start:-1]

    async def sync(self, since: int | None = None) -> dict[str, Any]:
        await self.send({"type": "sync"} if since is None else {"type": "sync", "since": since})
        while True:
            message = await self.recv()
            if message["type"] in ("sync", "snapshot"):
                return message

    async def close(self) -> None:
        await self.comm.disconnect()

    # --- the document, as a client keeps it (protocol §4) -------------------------------

    async def _track(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "snapshot":
            self.state = copy.deepcopy(message["state"])
            self.revision = message["revision"]
            self._apply_kept()
            self.resyncing = False
        elif kind == "sync":
            for edit in message["edits"]:
                self._apply(edit)
            self._apply_kept()
            self.resyncing = False
        elif kind == "edit":
            if message["revision"] in self.drop_revisions:
                self.drop_revisions.discard(message["revision"])
                return
            if message["revision"] > self.revision + 1 and self.state is not None:
                self.kept.append(message)
                if not self.resyncing:  # one sync at a time
                    self.resyncing = True
                    self.gaps.append(self.revision)
                    await self.send({"type": "sync", "since": self.revision})
                return
            self._apply(message)

    def _apply(self, edit: dict[str, Any]) -> None:
        if edit["revision"] <= self.revision:
            return  # already applied
        assert edit["revision"] == self.revision + 1, (self.revision, edit["revision"])
        if self.state is not None:
            docstate.replay_all(self.state, edit["ops"])
        self.revision = edit["revision"]

    def _apply_kept(self) -> None:
        for edit in sorted(self.kept, key=lambda e: e["revision"]):
            if edit["revision"] == self.revision + 1:
                self._apply(edit)
        self.kept = [e for e in self.kept if e["revision"] > self.revision]


async def connect(user: Any, project_id: int) -> Client:
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/projects/{project_id}/")
    comm.scope["user"] = user
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected
    hello = await comm.receive_json_from(timeout=TIMEOUT)
    assert hello["type"] == "hello", hello
    return Client(comm, hello)


async def follow(user: Any, project_id: int) -> Client:
    """Connect and fetch the document, as a client does first."""
    client = await connect(user, project_id)
    snapshot = await client.sync()
    assert snapshot["type"] == "snapshot"
    return client
