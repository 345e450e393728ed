"""Co-editing over the project socket with several clients
(docs/protocol.md §1–8): convergence, roles, bad input, resync, undo and redo,
versions and restore, presence and live gestures."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from rest_framework.test import APIClient

from audio.engine.document import parse_document
from collab import consumers
from collab.routing import websocket_urlpatterns
from studio import actions, editing
from studio.models import Edit, Project, Stem, Version, VersionKind
from tests.collab.editing_helpers import (
    Band,
    add_stem,
    connect,
    create,
    current,
    delete,
    follow,
    make_band,
    set_,
    stored,
)
from tests.conftest import write_audio

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def band(transactional_db: None, tmp_path: Path) -> Band:
    return make_band(tmp_path)


class FrozenClock:
    """Time for the consumer's rate limits only, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    frozen = FrozenClock()
    monkeypatch.setattr(consumers, "time", SimpleNamespace(monotonic=frozen.monotonic))
    return frozen


def rest(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def music(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "comment"}


async def rig(band: Band) -> None:
    """A drum track with a clip and an effect, from the owner: revision 1."""
    owner = await connect(band.owner, band.project.id)
    cid = await owner.edit(
        create("track", "drums", name="Drums", order="V"),
        create("clip", "c1", track="drums", source=band.source, start=0.0, duration=2.0),
        create("effect", "e1", track="drums", order="V", type="highpass"),
    )
    await owner.done(cid)
    await owner.close()


# --- convergence ----------------------------------------------------------------------


async def test_edits_from_several_clients_converge_to_the_stored_document(band):
    olivia = await follow(band.owner, band.project.id)
    tab2 = await follow(band.owner, band.project.id)  # the same user in a second tab
    eddie = await follow(band.editor, band.project.id)
    vera = await follow(band.viewer, band.project.id)
    src = band.source
    sent = [
        (olivia, [create("track", "drums", name="Drums", order="V")]),
        (eddie, [create("track", "bass", name="Bass", order="k")]),
        (olivia, [create("clip", "c1", track="drums", source=src, start=0.0, duration=2.0)]),
        (eddie, [create("clip", "c2", track="bass", source=src, start=1.0, offset=0.5)]),
        (tab2, [create("effect", "e1", track="drums", order="V", type="compressor")]),
        (eddie, [set_("effect", "e1", params={"ratio": 4})]),
        (olivia, [set_("track", "drums", gain_db=-6)]),
        (eddie, [set_("track", "drums", gain_db=-3, pan=0.25)]),  # last writer wins
        (vera, [create("comment", "k1", time=1.0, track="bass", text="Nice")]),
        (tab2, [set_("clip", "c2", track="drums", start=8.0)]),
        (eddie, [create("marker", "m1", time=4.0, name="Verse")]),
        (olivia, [delete("track", "bass")]),
        (tab2, [set_("project", "project", tempo_bpm=96.5, master_gain_db=-1.5)]),
        (eddie, [create("effect", "e2", order="V", type="limiter")]),
    ]
    revisions = []
    for i, (client, ops) in enumerate(sent):
        # Every edit claims to have seen only the start: none is refused for it.
        # Each waits for its ack (edits on different sockets may be taken in
        # any order), while the broadcasts pile up unread on every client.
        cid = await client.edit(*ops, base=0, cid=f"c{i}")
        revisions.append((await client.done(cid))["revision"])
    assert sorted(revisions) == list(range(1, len(sent) + 1))
    revision, state = await stored(band.project)
    assert revision == len(sent)
    for client in (olivia, tab2, eddie, vera):
        await client.caught_up(revision)
        assert client.state == state
        assert client.gaps == []
    assert state["track"]["drums"]["gain_db"] == -3.0
    assert state["clip"]["c2"]["track"] == "drums"
    assert "bass" not in state["track"]
    assert state["comment"]["k1"]["author_name"] == "vera"
    # A latecomer's snapshot is the same document.
    late = await follow(band.editor, band.project.id)
    assert late.state == state and late.revision == revision
    for client in (olivia, tab2, eddie, vera, late):
        await client.close()


async def test_the_broadcast_carries_the_ops_as_applied(band):
    await rig(band)
    olivia = await follow(band.owner, band.project.id)
    eddie = await follow(band.editor, band.project.id)
    cid = await olivia.edit(delete("track", "drums"))
    ack = await olivia.done(cid)
    assert ack == {"type": "ack", "client_op_id": cid, "revision": 2, "duplicate": False}
    edit = await eddie.until("edit", revision=2)
    assert edit == {
        "type": "edit",
        "revision": 2,
        "kind": "edit",
        "client_op_id": cid,
        "user": {"id": band.owner.id, "name": "olivia"},
        "ops": [delete("clip", "c1"), delete("effect", "e1"), delete("track", "drums")],
    }
    await olivia.close()
    await eddie.close()


# --- roles ------------------------------------------------------------------------------


async def test_a_viewer_cannot_edit_but_can_comment(band):
    await rig(band)
    vera = await follow(band.viewer, band.project.id)
    olivia = await follow(band.owner, band.project.id)
    before = await stored(band.project)
    refused = [
        {"type": "edit", "client_op_id": "v1", "ops": [set_("track", "drums", pan=0.5)]},
        {
            "type": "edit",
            "client_op_id": "v2",
            "ops": [create("comment", "k0", time=0.0, text="x"), delete("clip", "c1")],
        },
        {"type": "undo", "client_op_id": "v3"},
        {"type": "redo", "client_op_id": "v4"},
        {"type": "version.save", "client_op_id": "v5", "name": "Mine"},
        {"type": "restore", "client_op_id": "v6", "version": 1},
    ]
    for message in refused:
        await vera.send(message)
        answer = await vera.ack(message["client_op_id"])
        assert (answer["type"], answer["code"]) == ("error", "forbidden"), answer
    await vera.send({"type": "gesture", "kind": "track", "id": "drums", "props": {"pan": 0.1}})
    assert (await vera.error())["code"] == "forbidden"
    assert await stored(band.project) == before
    assert await sync_to_async(Version.objects.filter(project=band.project).count)() == 1
    # Comments are the viewer's to make, and everyone hears them.
    cid = await vera.edit(create("comment", "k1", time=2.0, track="drums", text="Too loud"))
    revision = (await vera.done(cid))["revision"]
    await olivia.caught_up(revision)
    await vera.caught_up(revision)
    _, state = await stored(band.project)
    assert olivia.state == vera.state == state
    assert state["comment"]["k1"]["author"] == band.viewer.id
    await vera.close()
    await olivia.close()


async def test_outsiders_cannot_connect(band):
    comm = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), f"/ws/projects/{band.project.id}/"
    )
    comm.scope["user"] = band.outsider
    await comm.connect(timeout=5)
    assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}


async def test_only_the_author_changes_a_comments_text_but_anyone_resolves_it(band):
    olivia = await follow(band.owner, band.project.id)
    vera = await follow(band.viewer, band.project.id)
    await olivia.done(await olivia.edit(create("comment", "k1", time=1.0, text="Louder")))
    before = await stored(band.project)
    answer = await vera.ack(await vera.edit(set_("comment", "k1", text="Quieter")))
    assert answer["code"] == "forbidden"
    assert answer["message"].startswith("ops[0].props.text")
    assert await stored(band.project) == before
    await vera.done(await vera.edit(set_("comment", "k1", resolved=True)))
    await olivia.done(await olivia.edit(set_("comment", "k1", text="Much louder")))
    _, state = await stored(band.project)
    assert state["comment"]["k1"]["resolved"] is True
    assert state["comment"]["k1"]["text"] == "Much louder"
    await olivia.close()
    await vera.close()


async def test_viewers_delete_only_their_own_comments(band):
    olivia = await follow(band.owner, band.project.id)
    vera = await follow(band.viewer, band.project.id)
    await olivia.done(await olivia.edit(create("comment", "k1", time=1.0, text="Owner's")))
    await vera.done(await vera.edit(create("comment", "k2", time=2.0, text="Mine")))
    before = await stored(band.project)
    answer = await vera.ack(await vera.edit(delete("comment", "k1")))
    assert answer["code"] == "forbidden"
    assert await stored(band.project) == before
    await vera.done(await vera.edit(delete("comment", "k2")))
    _, state = await stored(band.project)
    assert set(state["comment"]) == {"k1"}
    await olivia.close()
    await vera.close()


async def test_a_changed_role_applies_to_the_next_message(band):
    eddie = await follow(band.editor, band.project.id)
    await eddie.done(await eddie.edit(create("marker", "m1", time=1.0)))

    def demote() -> None:
        access = actions.access_project(band.owner, band.project.id, "owner")
        actions.do_change_role(access, band.editor.id, "viewer")

    await sync_to_async(demote)()
    await eddie.until("members.changed")
    answer = await eddie.ack(await eddie.edit(set_("marker", "m1", time=2.0)))
    assert answer["code"] == "forbidden"
    await eddie.send({"type": "gesture", "kind": "marker", "id": "m1", "props": {"time": 3.0}})
    assert (await eddie.error())["code"] == "forbidden"
    await eddie.close()


# --- bad input ------------------------------------------------------------------------


def _edit(*ops: dict[str, Any], **extra: Any) -> str:
    return json.dumps({"type": "edit", "client_op_id": "bad-1", "ops": list(ops), **extra})


BAD_INPUT = {
    "malformed JSON": ("{not json", "bad_json", "message is not valid JSON"),
    "not an object": ("[1, 2]", "bad_message", "message must be an object"),
    "type not a string": ('{"type": 7}', "bad_message", "message must be an object"),
    "unknown type": ('{"type": "explode"}', "unknown_type", "unknown message type 'explode'"),
    "unknown field in message": (
        _edit(set_("track", "drums", pan=0.5), colour="red"),
        "bad_message",
        "colour: Extra inputs are not permitted",
    ),
    "missing client_op_id": (
        json.dumps({"type": "edit", "ops": [set_("track", "drums", pan=0.5)]}),
        "bad_message",
        "client_op_id: Field required",
    ),
    "ops not a list": (
        json.dumps({"type": "edit", "client_op_id": "bad-1", "ops": 5}),
        "bad_message",
        "ops: Input should be a valid list",
    ),
    "too many ops": (_edit(*[set_("track", "drums", pan=0.5)] * 101), "bad_message", "ops"),
    "unknown field in op": (
        _edit({**set_("track", "drums", pan=0.5), "when": 3}),
        "bad_op",
        "ops[0].when",
    ),
    "set on a missing track": (_edit(set_("track", "nope", pan=0.5)), "not_found", "ops[0].id"),
    "delete a missing clip": (_edit(delete("clip", "nope")), "not_found", "ops[0].id"),
    "clip on a missing track": (
        _edit(create("clip", "c9", track="nope", source="stem:1")),
        "not_found",
        "ops[0].props.track",
    ),
    "clip of a missing stem": (
        _edit(create("clip", "c9", track="drums", source="stem:999999")),
        "not_found",
        "ops[0].props.source: no stem 999999",
    ),
    "pan 3": (
        _edit(set_("track", "drums", pan=3)),
        "bad_op",
        "ops[0].props.pan: Input should be less than or equal to 1",
    ),
    "gain +400 dB": (_edit(set_("track", "drums", gain_db=400)), "bad_op", "ops[0].props.gain_db"),
    "a number as a string": (
        _edit(set_("clip", "c1", start="3")),
        "bad_op",
        "ops[0].props.start",
    ),
    "unknown effect type": (
        _edit(create("effect", "e9", track="drums", order="V", type="fuzz")),
        "bad_op",
        "ops[0].props.type: unknown effect type 'fuzz'",
    ),
    "unknown effect parameter": (
        _edit(set_("effect", "e1", params={"wobble": 1.0})),
        "bad_op",
        "ops[0].props.params.wobble: unknown parameter 'wobble' for highpass",
    ),
    "effect parameter out of range": (
        _edit(set_("effect", "e1", params={"cutoff_hz": 1.0})),
        "bad_op",
        "ops[0].props.params.cutoff_hz",
    ),
    "clip past the end of its stem": (
        _edit(set_("clip", "c1", offset=3.0, duration=2.0)),
        "bad_op",
        "ops[0].props.duration",
    ),
    "create an existing id": (
        _edit(create("track", "drums", name="Again", order="V")),
        "conflict",
        "ops[0].id",
    ),
    "second op bad, first not applied": (
        _edit(set_("track", "drums", pan=0.5), set_("track", "drums", gain_db=400)),
        "bad_op",
        "ops[1].props.gain_db",
    ),
    "base revision ahead": (
        _edit(set_("track", "drums", pan=0.5), base_revision=99),
        "bad_revision",
        "base_revision 99 is ahead of the server (1)",
    ),
    "oversized message": (
        _edit(create("marker", "m9", time=1.0, name="x" * (65 * 1024))),
        "bad_message",
        "64 KiB",
    ),
    "oversized garbage": ("x" * (70 * 1024), "bad_message", "64 KiB"),
}


@pytest.mark.parametrize("text, code, message", BAD_INPUT.values(), ids=BAD_INPUT.keys())
async def test_bad_input_gets_an_error_changes_nothing_and_everyone_carries_on(
    band, text, code, message
):
    await rig(band)
    olivia = await follow(band.owner, band.project.id)
    eddie = await follow(band.editor, band.project.id)
    before = await stored(band.project)
    await olivia.send_text(text)
    error = await olivia.error()
    assert error["code"] == code, error
    assert message in error["message"], error
    if '"client_op_id": "bad-1"' in text and len(text) < consumers.MAX_MESSAGE_BYTES:
        # Errors about an edit name it, so the client can drop it from its queue.
        assert error["client_op_id"] == "bad-1"
    assert await stored(band.project) == before
    # That connection carries on, and so does everyone else's.
    assert await olivia.ping() == []
    cid = await eddie.edit(set_("track", "drums", gain_db=-2.0))
    revision = (await eddie.done(cid))["revision"]
    assert revision == before[0] + 1
    await olivia.caught_up(revision)
    assert olivia.state == (await stored(band.project))[1]
    await olivia.close()
    await eddie.close()


async def test_a_binary_frame_is_refused(band):
    olivia = await follow(band.owner, band.project.id)
    await olivia.comm.send_to(bytes_data=b'{"type": "ping"}')
    assert (await olivia.error())["code"] == "bad_message"
    assert await olivia.ping() == []
    await olivia.close()


async def test_an_edit_based_too_far_back_is_stale(band, monkeypatch):
    monkeypatch.setattr(editing, "MAX_SYNC_EDITS", 2)
    await rig(band)
    olivia = await follow(band.owner, band.project.id)
    for time in (1.0, 2.0):
        await olivia.done(await olivia.edit(create("marker", f"m{int(time)}", time=time)))
    before = await stored(band.project)
    assert before[0] == 3
    answer = await olivia.ack(await olivia.edit(set_("track", "drums", pan=0.5), base=0))
    assert answer["code"] == "stale_revision"
    assert "resync" in answer["message"]
    assert await stored(band.project) == before
    # Within reach, the same edit goes through.
    answer = await olivia.ack(await olivia.edit(set_("track", "drums", pan=0.5), base=1))
    assert answer["type"] == "ack"
    await olivia.close()


async def test_a_flood_is_rate_limited_while_others_carry_on(band, clock):
    await rig(band)
    flooder = await follow(band.owner, band.project.id)
    eddie = await follow(band.editor, band.project.id)
    await flooder.until("presence", session=eddie.session)
    before = await stored(band.project)
    for i in range(100):
        await flooder.send({"type": "ping", "id": i})
    # A burst of 60 passes (the sync after connecting was one of them); then
    # one error, and the rest are dropped without an answer.
    answers = [await flooder.recv() for _ in range(60)]
    assert answers[:59] == [{"type": "pong", "id": i} for i in range(59)]
    assert answers[59]["type"] == "error"
    assert answers[59]["code"] == "rate_limited"
    assert await flooder.comm.receive_nothing(timeout=0.2)
    assert await stored(band.project) == before
    # Someone else's edit goes through, and the flooder still hears it.
    revision = (await eddie.done(await eddie.edit(set_("track", "drums", mute=True))))["revision"]
    await flooder.caught_up(revision)
    assert flooder.state == (await stored(band.project))[1]
    # Once the bucket refills, the flooder is served again.
    clock.now += 2.0
    assert await flooder.ping() == []
    assert (await flooder.done(await flooder.edit(set_("track", "drums", solo=True))))["revision"]
    await flooder.close()
    await eddie.close()


# --- resync -----------------------------------------------------------------------------


async def test_a_client_resyncs_after_a_lost_broadcast(band):
    await rig(band)
    olivia = await follow(band.owner, band.project.id)
    eddie = await follow(band.editor, band.project.id)
    eddie.drop_revisions = {3}  # as if the channel layer lost it
    for i in range(2, 6):
        await olivia.done(await olivia.edit(create("marker", f"m{i}", time=float(i))))
    await eddie.caught_up(5)
    assert eddie.gaps == [2]
    reply = next(m for m in eddie.log if m["type"] == "sync")
    assert reply["since"] == 2
    assert [e["revision"] for e in reply["edits"]][0] == 3
    assert eddie.state == (await stored(band.project))[1]
    await olivia.close()
    await eddie.close()


async def test_sync_since_a_revision_returns_exactly_the_missing_edits(band):
    await rig(band)
    eddie = await follow(band.editor, band.project.id)
    snapshot_state, seen = eddie.state, eddie.revision
    await eddie.close()
    olivia = await follow(band.owner, band.project.id)
    vera = await follow(band.viewer, band.project.id)
    await olivia.done(await olivia.edit(set_("track", "drums", gain_db=-4.0)))
    await vera.done(await vera.edit(create("comment", "k1", time=0.5, text="ok")))
    await olivia.done(await olivia.edit(delete("track", "drums")))
    await olivia.send({"type": "undo", "client_op_id": "u1"})
    await olivia.done("u1")
    # Back after a drop: the edits since what it had, in order, and nothing else.
    eddie = await connect(band.editor, band.project.id)
    eddie.state, eddie.revision = snapshot_state, seen
    reply = await eddie.sync(seen)
    assert reply["type"] == "sync"
    assert (reply["since"], reply["revision"]) == (seen, seen + 4)
    assert [e["revision"] for e in reply["edits"]] == [seen + 1, seen + 2, seen + 3, seen + 4]
    assert [e["kind"] for e in reply["edits"]] == ["edit", "comment", "edit", "undo"]
    assert [e["user"]["name"] for e in reply["edits"]] == ["olivia", "vera", "olivia", "olivia"]
    assert eddie.state == (await stored(band.project))[1]
    # Up to date: nothing to send.
    reply = await eddie.sync(eddie.revision)
    assert reply == {
        "type": "sync",
        "since": eddie.revision,
        "revision": eddie.revision,
        "edits": [],
    }
    for client in (olivia, vera, eddie):
        await client.close()


async def test_a_client_far_behind_or_without_a_revision_gets_a_snapshot(band, monkeypatch):
    monkeypatch.setattr(editing, "MAX_SYNC_EDITS", 2)
    await rig(band)
    olivia = await follow(band.owner, band.project.id)
    for i in range(3):
        await olivia.done(await olivia.edit(create("marker", f"m{i}", time=float(i))))
    revision, state = await stored(band.project)
    for since in (0, 1, None, revision + 5):
        reply = await olivia.sync(since)
        assert reply == {"type": "snapshot", "revision": revision, "state": state}
    assert (await olivia.sync(revision - 2))["type"] == "sync"
    await olivia.close()


async def test_a_resent_edit_is_acknowledged_again_and_applied_once(band):
    await rig(band)
    olivia = await follow(band.owner, band.project.id)
    eddie = await follow(band.editor, band.project.id)
    ops = [create("marker", "m1", time=1.0)]
    cid = await olivia.edit(*ops, cid="resend-me")
    first = await olivia.done(cid)
    # The connection drops before the client sees the ack; it resends from a new one.
    await olivia.close()
    olivia = await follow(band.owner, band.project.id)
    await olivia.edit(*ops, cid="resend-me", base=1)
    again = await olivia.done("resend-me")
    assert again == {**first, "duplicate": True}
    # Even when it is stale by now.
    await olivia.edit(*ops, cid="resend-me", base=0)
    assert (await olivia.done("resend-me"))["duplicate"] is True
    revision, state = await stored(band.project)
    assert revision == first["revision"]
    # Another user's op id is theirs: not a duplicate.
    await eddie.edit(create("marker", "m2", time=2.0), cid="resend-me")
    assert (await eddie.done("resend-me"))["duplicate"] is False
    await eddie.caught_up(revision + 1)
    edits = [m["revision"] for m in eddie.log if m["type"] == "edit"]
    assert edits == [first["revision"], revision + 1]
    await olivia.close()
    await eddie.close()


# --- undo and redo ------------------------------------------------------------------------


async def undo(client, redo: bool = False) -> dict[str, Any]:
    cid = f"{'redo' if redo else 'undo'}-{len(client.log)}"
    await client.send({"type": "redo" if redo else "undo", "client_op_id": cid})
    return await client.ack(cid)


async def test_each_user_undoes_and_redoes_their_own_edits(band):
    await rig(band)
    olivia = await follow(band.owner, band.project.id)
    eddie = await follow(band.editor, band.project.id)
    await olivia.done(await olivia.edit(set_("track", "drums", gain_db=-6.0)))
    await eddie.done(await eddie.edit(set_("track", "drums", pan=0.5)))
    answer = await undo(olivia)
    edit = await eddie.until("edit", revision=answer["revision"])
    assert edit["kind"] == "undo"
    assert edit["ops"] == [set_("track", "drums", gain_db=0.0)]
    _, state = await stored(band.project)
    assert (state["track"]["drums"]["gain_db"], state["track"]["drums"]["pan"]) == (0.0, 0.5)
    # Olivia's next undo is her rig edit; then there is nothing left.
    await undo(olivia)
    _, state = await stored(band.project)
    assert state["track"] == {} and state["clip"] == {}
    before = await stored(band.project)
    answer = await undo(olivia)
    assert (answer["type"], answer["code"]) == ("error", "nothing_to_undo")
    assert await stored(band.project) == before
    # Redo, newest undo first.
    answer = await undo(olivia, redo=True)
    edit = await eddie.until("edit", revision=answer["revision"])
    assert edit["kind"] == "redo"
    _, state = await stored(band.project)
    assert state["track"]["drums"]["gain_db"] == 0.0
    # The track came back as it was when it went, Eddie's pan included.
    assert state["track"]["drums"]["pan"] == 0.5
    await undo(olivia, redo=True)
    _, state = await stored(band.project)
    assert (state["track"]["drums"]["gain_db"], state["track"]["drums"]["pan"]) == (-6.0, 0.5)
    answer = await undo(olivia, redo=True)
    assert answer["code"] == "nothing_to_redo"
    # Eddie undoes his own pan, and leaves Olivia's gain alone.
    answer = await undo(eddie)
    edit = await olivia.until("edit", revision=answer["revision"])
    assert (edit["kind"], edit["user"]["name"]) == ("undo", "eddie")
    assert edit["ops"] == [set_("track", "drums", pan=0.0)]
    revision = answer["revision"]
    _, state = await stored(band.project)
    assert (state["track"]["drums"]["gain_db"], state["track"]["drums"]["pan"]) == (-6.0, 0.0)
    assert (await undo(eddie))["code"] == "nothing_to_undo"
    for client in (olivia, eddie):
        await client.caught_up(revision)
        assert client.state == (await stored(band.project))[1]
        await client.close()


async def test_a_new_edit_clears_the_redo_list(band):
    await rig(band)
    olivia = await follow(band.owner, band.project.id)
    await olivia.done(await olivia.edit(set_("track", "drums", gain_db=-6.0)))
    await undo(olivia)
    await olivia.done(await olivia.edit(set_("track", "drums", pan=-0.5)))
    before = await stored(band.project)
    assert (await undo(olivia, redo=True))["code"] == "nothing_to_redo"
    assert await stored(band.project) == before
    # Comments do not count as edits for undo, nor clear the redo list.
    await undo(olivia)
    await olivia.done(await olivia.edit(create("comment", "k1", time=0.0, text="hm")))
    assert (await undo(olivia, redo=True))["type"] == "ack"
    _, state = await stored(band.project)
    assert state["track"]["drums"]["pan"] == -0.5
    assert "k1" in state["comment"]
    await olivia.close()


async def test_undo_works_across_tabs_and_reconnects(band):
    await rig(band)
    tab1 = await follow(band.owner, band.project.id)
    await tab1.done(await tab1.edit(set_("track", "drums", name="Kit")))
    await tab1.close()
    tab2 = await follow(band.owner, band.project.id)
    await undo(tab2)
    assert (await stored(band.project))[1]["track"]["drums"]["name"] == "Drums"
    await tab2.close()


async def test_undoing_a_track_delete_brings_back_its_clips_and_effects(band):
    await rig(band)
    olivia = await follow(band.owner, band.project.id)
    eddie = await follow(band.editor, band.project.id)
    await eddie.done(
        await eddie.edit(
            create("effect", "e2", track="drums", order="k", type="reverb"),
            set_("effect", "e1", params={"cutoff_hz": 120.0}),
        )
    )
    before = await stored(band.project)
    await olivia.done(await olivia.edit(delete("track", "drums")))
    _, state = await stored(band.project)
    assert state["clip"] == {} and state["effect"] == {}
    revision = (await undo(olivia))["revision"]
    _, state = await stored(band.project)
    assert state == before[1]
    await eddie.caught_up(revision)
    assert eddie.state == state
    await olivia.close()
    await eddie.close()


async def test_undo_skips_what_someone_else_deleted_since(band):
    await rig(band)
    olivia = await follow(band.owner, band.project.id)
    eddie = await follow(band.editor, band.project.id)
    await olivia.done(
        await olivia.edit(
            create("marker", "m1", time=1.0, name="Intro"),
            create("track", "bass", name="Bass", order="k"),
        )
    )
    await olivia.done(
        await olivia.edit(
            set_("marker", "m1", name="Verse"),
            set_("track", "bass", gain_db=-9.0),
            set_("track", "drums", pan=0.75),
        )
    )
    await eddie.done(await eddie.edit(delete("marker", "m1"), delete("track", "bass")))
    answer = await undo(olivia)
    edit = await eddie.until("edit", revision=answer["revision"])
    assert edit["ops"] == [set_("track", "drums", pan=0.0)]
    _, state = await stored(band.project)
    assert state["marker"] == {} and "bass" not in state["track"]
    assert state["track"]["drums"]["pan"] == 0.0
    await olivia.close()
    await eddie.close()


async def test_undo_leaves_comments_made_in_the_same_edit(band):
    await rig(band)
    olivia = await follow(band.owner, band.project.id)
    await olivia.done(
        await olivia.edit(
            set_("track", "drums", gain_db=-6.0),
            create("comment", "k1", time=1.0, track="drums", text="Quieter now"),
        )
    )
    await undo(olivia)
    _, state = await stored(band.project)
    assert state["track"]["drums"]["gain_db"] == 0.0
    assert state["comment"]["k1"]["text"] == "Quieter now"
    await olivia.close()


# --- versions and restore -------------------------------------------------------------


async def test_a_named_version_is_saved_and_everyone_hears_of_it(band):
    await rig(band)
    olivia = await follow(band.owner, band.project.id)
    vera = await follow(band.viewer, band.project.id)
    await olivia.send({"type": "version.save", "name": "  First mix ", "client_op_id": "s1"})
    answer = await olivia.done("s1")
    await vera.until("versions.changed", project_id=band.project.id)
    version = await sync_to_async(Version.objects.get)(id=answer["version"])
    revision, state = await stored(band.project)
    assert (version.kind, version.name, version.revision) == (VersionKind.NAMED, "First mix", 1)
    assert music(version.state) == music(state)
    await olivia.send({"type": "version.save", "name": "   ", "client_op_id": "s2"})
    answer = await olivia.ack("s2")
    assert (answer["code"], answer["message"].split(":")[0]) == ("bad_message", "name")
    assert await sync_to_async(Version.objects.filter(project=band.project).count)() == 2
    await olivia.close()
    await vera.close()


async def test_a_checkpoint_is_kept_every_so_many_revisions(band, monkeypatch):
    monkeypatch.setattr(editing, "CHECKPOINT_EVERY", 3)
    olivia = await follow(band.owner, band.project.id)

    def autos() -> list[int]:
        rows = Version.objects.filter(project=band.project, kind=VersionKind.AUTO)
        return sorted(rows.values_list("revision", flat=True))

    for i in range(1, 8):
        await olivia.done(await olivia.edit(create("marker", f"m{i}", time=float(i))))
    assert await sync_to_async(autos)() == [0, 3, 6]
    state = await sync_to_async(editing.state_at)(band.project, 6)
    assert set(state["marker"]) == {f"m{i}" for i in range(1, 7)}
    await olivia.close()


def test_the_checkpoint_clock_counts_from_the_newest_version_of_any_kind(band, monkeypatch):
    monkeypatch.setattr(editing, "CHECKPOINT_EVERY", 3)
    p = band.project.id

    def autos() -> list[int]:
        rows = Version.objects.filter(project=band.project, kind=VersionKind.AUTO)
        return sorted(rows.values_list("revision", flat=True))

    for i in range(1, 3):
        editing.do_edit(band.editor, p, [create("marker", f"m{i}", time=float(i))])
    editing.do_save_version(band.owner, p, "Verse")  # at revision 2
    for i in range(3, 6):
        editing.do_edit(band.editor, p, [create("marker", f"m{i}", time=float(i))])
    assert autos() == [0, 5]  # 3 revisions after the named save, not after revision 0
    project = Project.objects.get(id=p)
    assert project.checkpoint_revision == 5
    monkeypatch.setattr(editing, "CHECKPOINT_AFTER", timedelta(0))
    editing.do_edit(band.editor, p, [create("marker", "m6", time=6.0)])
    assert autos() == [0, 5, 6]  # the clock ran out, whatever the count


async def test_restore_brings_back_a_version_and_undo_takes_it_back(band):
    await rig(band)
    olivia = await follow(band.owner, band.project.id)
    eddie = await follow(band.editor, band.project.id)
    await olivia.done(
        await olivia.edit(
            create("track", "bass", name="Bass", order="k"),
            create("clip", "c2", track="bass", source=band.source, start=1.0),
            create("effect", "e2", order="V", type="limiter"),
            create("marker", "m1", time=1.0),
        )
    )
    await olivia.send({"type": "version.save", "name": "Good", "client_op_id": "s1"})
    version_id = (await olivia.done("s1"))["version"]
    _, saved = await stored(band.project)
    # Then the arrangement changes: the clip moves to a new track and its old
    # track goes, an effect changes type under the same id, settings change.
    await eddie.done(
        await eddie.edit(
            create("track", "keys", name="Keys", order="z"),
            set_("clip", "c2", track="keys"),
            delete("track", "bass"),
            delete("effect", "e1"),
            create("effect", "e1", track="keys", order="V", type="reverb"),
            set_("project", "project", tempo_bpm=140.0),
            delete("marker", "m1"),
        )
    )
    await eddie.done(await eddie.edit(create("comment", "k1", time=0.0, text="Keep?")))
    _, changed = await stored(band.project)
    await olivia.send({"type": "restore", "version": version_id, "client_op_id": "r1"})
    restored_at = (await olivia.done("r1"))["revision"]
    edit = await eddie.until("edit", revision=restored_at)
    assert (edit["kind"], edit["client_op_id"]) == ("restore", "r1")
    _, state = await stored(band.project)
    assert music(state) == music(saved)
    assert state["comment"] == changed["comment"]  # the conversation stays
    for client in (olivia, eddie):
        await client.caught_up(restored_at)
        assert client.state == state
    # A restore is an edit like any other: undo takes it back.
    revision = (await undo(olivia))["revision"]
    _, state = await stored(band.project)
    assert state == changed
    await eddie.caught_up(revision)
    assert eddie.state == state
    # And restoring what does not exist is refused.
    await olivia.send({"type": "restore", "version": 999999, "client_op_id": "r2"})
    assert (await olivia.ack("r2"))["code"] == "not_found"
    await olivia.close()
    await eddie.close()


async def test_restore_leaves_out_clips_of_stems_deleted_since(band, tmp_path):
    await rig(band)
    bass = await sync_to_async(add_stem)(
        band.project, band.owner, write_audio(tmp_path / "bass.wav", seconds=1.0)
    )
    olivia = await follow(band.owner, band.project.id)
    await olivia.done(
        await olivia.edit(create("clip", "c2", track="drums", source=f"stem:{bass.id}"))
    )
    version = await sync_to_async(editing.do_save_version)(band.owner, band.project.id, "Both")
    await olivia.done(await olivia.edit(delete("clip", "c2"), delete("clip", "c1")))
    await sync_to_async(actions.do_delete_stem)(bass)
    await olivia.send({"type": "restore", "version": version.id, "client_op_id": "r1"})
    await olivia.done("r1")
    _, state = await stored(band.project)
    assert set(state["clip"]) == {"c1"}
    await olivia.close()


async def test_a_stem_in_use_cannot_be_deleted(band):
    await rig(band)
    olivia = await follow(band.owner, band.project.id)
    url = f"/api/projects/{band.project.id}/stems/{band.stem.id}"
    response = await sync_to_async(rest(band.owner).delete)(url)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "stem_in_use"
    assert await sync_to_async(Stem.objects.filter(id=band.stem.id).exists)()
    await olivia.done(await olivia.edit(delete("clip", "c1")))
    response = await sync_to_async(rest(band.owner).delete)(url)
    assert response.status_code == 204
    # And a clip of the deleted stem cannot come back.
    answer = await olivia.ack(
        await olivia.edit(create("clip", "c2", track="drums", source=band.source))
    )
    assert answer["code"] == "not_found"
    await olivia.close()


def test_the_version_list_says_who_changed_what(band, monkeypatch):
    monkeypatch.setattr(editing, "CHECKPOINT_EVERY", 2)
    p = band.project.id
    editing.do_edit(band.owner, p, [create("track", "t1", name="A", order="V")])
    editing.do_edit(band.editor, p, [create("marker", "m1", time=1.0)])  # checkpoint
    editing.do_save_version(band.owner, p, "Named")  # at the checkpoint's revision
    editing.do_edit(band.viewer, p, [create("comment", "k1", time=1.0, text="x")])
    editing.do_edit(band.editor, p, [create("effect", "e1", track="t1", order="V", type="gain")])
    editing.do_edit(band.owner, p, [set_("track", "t1", gain_db=-1.0)])
    body = rest(band.viewer).get(f"/api/projects/{p}/versions").json()
    assert body["revision"] == 5
    # Comments are conversation, not changes to the music.
    assert body["changes_since_last"] == [{"user": "olivia", "edits": 1, "kinds": ["track"]}]
    summary = [(v["kind"], v["name"], v["revision"], v["changes"]) for v in body["versions"]]
    assert summary == [
        ("auto", "", 4, [{"user": "eddie", "edits": 1, "kinds": ["effect"]}]),
        ("named", "Named", 2, []),
        (
            "auto",
            "",
            2,
            [
                {"user": "olivia", "edits": 1, "kinds": ["track"]},
                {"user": "eddie", "edits": 1, "kinds": ["marker"]},
            ],
        ),
        ("auto", "", 0, []),
    ]
    named = body["versions"][1]
    assert named["created_by"] == "olivia"
    # One version in full, for preview.
    detail = rest(band.viewer).get(f"/api/projects/{p}/versions/{named['id']}")
    assert set(detail.json()["state"]["track"]) == {"t1"}
    assert detail.json()["document"]["tracks"][0]["id"] == "t1"


def test_versions_are_saved_and_restored_over_rest(band):
    p = band.project.id
    editing.do_edit(band.owner, p, [create("track", "t1", name="A", order="V")])
    response = rest(band.editor).post(f"/api/projects/{p}/versions", {"name": "v"}, format="json")
    assert response.status_code == 201
    vid = response.json()["id"]
    editing.do_edit(band.owner, p, [delete("track", "t1")])
    assert rest(band.viewer).post(f"/api/projects/{p}/versions/{vid}/restore").status_code == 403
    assert rest(band.viewer).post(f"/api/projects/{p}/versions", {"name": "x"}).status_code == 403
    response = rest(band.editor).post(f"/api/projects/{p}/versions/{vid}/restore")
    assert response.json() == {"revision": 3}
    assert set(current(band.project)[1]["track"]) == {"t1"}
    assert rest(band.outsider).get(f"/api/projects/{p}/versions").status_code == 404


def test_the_document_at_an_old_revision_is_what_it_was_then(band, monkeypatch):
    monkeypatch.setattr(editing, "CHECKPOINT_EVERY", 4)
    p, src = band.project.id, band.source
    api = rest(band.viewer)

    def document(revision: int | None = None) -> dict[str, Any]:
        query = "" if revision is None else f"?revision={revision}"
        response = api.get(f"/api/projects/{p}/document{query}")
        assert response.status_code == 200, response.content
        return response.json()

    seen = {0: document()["document"]}
    steps = [
        lambda: editing.do_edit(band.owner, p, [create("track", "t1", name="A", order="V")]),
        lambda: editing.do_edit(
            band.owner, p, [create("clip", "c1", track="t1", source=src, duration=1.5)]
        ),
        lambda: editing.do_edit(band.viewer, p, [create("comment", "k", time=0, text="x")]),
        lambda: editing.do_edit(
            band.editor, p, [create("effect", "e1", track="t1", order="V", type="delay")]
        ),
        lambda: editing.do_edit(band.editor, p, [set_("effect", "e1", params={"mix": 0.9})]),
        lambda: editing.do_undo(band.editor, p),
        lambda: editing.do_edit(band.owner, p, [set_("project", "project", tempo_bpm=80)]),
        lambda: editing.do_edit(band.owner, p, [delete("track", "t1")]),
        lambda: editing.do_restore(
            band.owner, p, Version.objects.filter(project_id=p).order_by("-revision")[0].id
        ),
        lambda: editing.do_edit(band.owner, p, [create("track", "t2", name="B", order="A")]),
    ]
    for step in steps:
        revision = step().revision
        now = document()
        assert now["revision"] == revision
        seen[revision] = now["document"]
    assert len(seen) == len(steps) + 1
    for revision, then in seen.items():
        assert document(revision) == {"revision": revision, "document": then}
    assert api.get(f"/api/projects/{p}/document?revision=99").status_code == 404
    assert api.get(f"/api/projects/{p}/document?revision=-1").status_code == 400
    assert rest(band.outsider).get(f"/api/projects/{p}/document").status_code == 404


def test_edits_over_rest_reach_the_sockets_the_same_way(band):
    p = band.project.id
    ok = rest(band.editor).post(
        f"/api/projects/{p}/edits",
        {"client_op_id": "r1", "base_revision": 0, "ops": [create("marker", "m1", time=1.0)]},
        format="json",
    )
    assert ok.json() == {"revision": 1, "duplicate": False}
    refused = rest(band.editor).post(
        f"/api/projects/{p}/edits", {"ops": [set_("marker", "m1", time=-1)]}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "bad_op"
    missing = rest(band.editor).post(
        f"/api/projects/{p}/edits", {"ops": [delete("marker", "nope")]}, format="json"
    )
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    viewer = rest(band.viewer).post(
        f"/api/projects/{p}/edits", {"ops": [delete("marker", "m1")]}, format="json"
    )
    assert (viewer.status_code, viewer.json()["error"]["code"]) == (403, "forbidden")
    again = rest(band.editor).post(
        f"/api/projects/{p}/edits",
        {"client_op_id": "r1", "ops": [create("marker", "m1", time=1.0)]},
        format="json",
    )
    assert again.json() == {"revision": 1, "duplicate": True}


# --- presence and gestures ----------------------------------------------------------------


async def test_presence_reaches_everyone_else_and_newcomers_learn_who_is_here(band):
    olivia = await connect(band.owner, band.project.id)
    await olivia.send({"type": "presence", "selection": ["c1"], "playhead": 3.5})
    eddie = await connect(band.editor, band.project.id)
    # The newcomer hears from the session already open, with its last state ...
    hello_back = await eddie.until("presence", session=olivia.session)
    assert hello_back == {
        "type": "presence",
        "session": olivia.session,
        "user": olivia.hello["user"],
        "selection": ["c1"],
        "playhead": 3.5,
    }
    # ... and everyone hears of the newcomer.
    arrived = await olivia.until("presence", session=eddie.session)
    assert arrived["user"]["name"] == "eddie" and "reply_to" not in arrived
    # A field left out keeps its value.
    await eddie.send({"type": "presence", "selection": ["c2", "c3"]})
    await eddie.send({"type": "presence", "playhead": 9.0})
    update = await olivia.until("presence", session=eddie.session, playhead=9.0)
    assert update["selection"] == ["c2", "c3"]
    # No one hears their own presence: an edit broadcast after it arrives alone.
    await eddie.done(await eddie.edit(create("marker", "m1", time=1.0)))
    await eddie.caught_up(1)
    assert [m for m in eddie.log if m.get("session") == eddie.session] == []
    await eddie.send({"type": "presence", "selection": ["x" * 65]})
    assert (await eddie.error())["code"] == "bad_message"
    await eddie.close()
    assert await olivia.until("presence.leave") == {
        "type": "presence.leave",
        "session": eddie.session,
    }
    await olivia.close()


async def test_gestures_reach_others_at_most_twenty_a_second(band, clock):
    await rig(band)
    olivia = await follow(band.owner, band.project.id)
    eddie = await follow(band.editor, band.project.id)
    for i in range(25):
        gesture = {"type": "gesture", "kind": "track", "id": "drums", "props": {"gain_db": -i}}
        await olivia.send(gesture)
    # The committing edit follows the drag; it is broadcast after the gestures.
    revision = (await olivia.done(await olivia.edit(set_("track", "drums", gain_db=-24))))[
        "revision"
    ]
    await eddie.caught_up(revision)
    gestures = [m for m in eddie.log if m["type"] == "gesture"]
    assert len(gestures) == 20
    assert gestures[0] == {
        "type": "gesture",
        "session": olivia.session,
        "user": olivia.hello["user"],
        "kind": "track",
        "id": "drums",
        "props": {"gain_db": 0.0},
        "end": False,
    }
    assert [g["props"]["gain_db"] for g in gestures] == [-float(i) for i in range(20)]
    await olivia.caught_up(revision)
    assert [m for m in olivia.log if m["type"] == "gesture"] == []
    # A second later the next drag is heard again; a cancel carries no props.
    clock.now += 1.0
    await olivia.send({"type": "gesture", "kind": "clip", "id": "c1", "props": {"start": 2}})
    await olivia.send({"type": "gesture", "kind": "clip", "id": "c1", "end": True})
    moved = await eddie.until("gesture")
    assert (moved["props"], moved["end"]) == ({"start": 2.0}, False)
    cancelled = await eddie.until("gesture")
    assert (cancelled["props"], cancelled["end"]) == ({}, True)
    # Bad values are refused to the sender only.
    await olivia.send({"type": "gesture", "kind": "track", "id": "drums", "props": {"pan": 3}})
    error = await olivia.error()
    assert (error["code"], error["message"].split(":")[0]) == ("bad_op", "props.pan")
    await olivia.send({"type": "gesture", "kind": "track", "id": "drums", "props": {"mute": True}})
    assert (await eddie.until("gesture"))["props"] == {"mute": True}
    await olivia.close()
    await eddie.close()


def test_the_sample_rate_cannot_drop_below_what_an_effect_needs(band):
    p = band.project.id
    editing.do_edit(
        band.owner,
        p,
        [create("effect", "e1", order="V", type="lowpass", params={"cutoff_hz": 23000})],
    )
    before = current(band.project)
    # Over the socket's ops and the REST settings alike.
    with pytest.raises(editing.EditError) as caught:
        editing.do_edit(band.owner, p, [set_("project", "project", sample_rate=44100)])
    assert caught.value.code == "bad_op"
    assert caught.value.message.startswith("ops[0].props.sample_rate: effect 'e1'")
    response = rest(band.owner).patch(f"/api/projects/{p}", {"sample_rate": 44100}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_op"
    assert current(band.project) == before
    # With the cutoff lowered first, the rate goes down and the document renders.
    editing.do_edit(band.owner, p, [set_("effect", "e1", params={"cutoff_hz": 20000})])
    response = rest(band.owner).patch(f"/api/projects/{p}", {"sample_rate": 44100}, format="json")
    assert response.status_code == 200
    document = rest(band.viewer).get(f"/api/projects/{p}/document").json()["document"]
    assert parse_document(document).sample_rate == 44100


@contextmanager
def round_trips(connection: Any) -> Iterator[list[str]]:
    """The queries sent to PostgreSQL inside the block, one per round trip, as
    libpq's protocol trace shows them (nothing on other databases)."""
    sent: list[str] = []
    if connection.vendor != "postgresql":
        yield sent
        return
    from psycopg import pq

    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            yield sent
        finally:
            pgconn.untrace()
            trace.seek(0)
            for line in trace.read().splitlines():
                fields = line.split("\t")
                if fields[0] == "F" and fields[2] == "Query":
                    sent.append(fields[3].strip().strip('"').rstrip(";").strip())


def test_an_edit_writes_its_rows_in_one_round_trip_on_postgresql(band):
    """studio.rowsql: on PostgreSQL an edit is three round trips (BEGIN, the
    lock with every read, the writes with the commit); SQLite runs the
    statements one by one. Either way the rows are what the ORM reads back."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from studio.models import DocTrack

    p = band.project.id
    editing.do_edit(band.editor, p, [create("track", "t1", name="Keys", order="a")])
    with CaptureQueriesContext(connection) as captured, round_trips(connection) as sent:
        result = editing.do_edit(
            band.editor,
            p,
            [set_("track", "t1", gain_db=-4.5, mute=True)],
            client_op_id="w1",
            on_socket=True,
        )
    writes = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].lstrip().startswith(("UPDATE", "INSERT"))
    ]
    if connection.vendor == "postgresql":
        # Three round trips in all, as the server saw them: BEGIN; the lock
        # with the reads (role, resend, the track); the writes with COMMIT.
        assert len(sent) == 3
        assert sent[0] == "BEGIN"
        assert sent[1].startswith("SET LOCAL synchronous_commit TO on;")
        assert "FOR UPDATE" in sent[1] and sent[1].count("SELECT") == 5
        assert sent[2].count("UPDATE") == 2 and sent[2].count("INSERT INTO") == 1
        assert sent[2].endswith("COMMIT")
        assert len(writes) == 1
    else:
        assert len(writes) == 3
    track = DocTrack.objects.get(project_id=p, uid="t1")
    assert (track.gain_db, track.mute, track.name) == (-4.5, True, "Keys")
    project = Project.objects.get(id=p)
    assert project.revision == result.revision
    row = Edit.objects.get(project_id=p, revision=result.revision)
    assert (row.client_op_id, row.user_id, row.user_name) == (
        "w1",
        band.editor.pk,
        band.editor.username,
    )
    assert row.ops == [
        {"op": "set", "kind": "track", "id": "t1", "props": {"gain_db": -4.5, "mute": True}}
    ]
    assert row.inverse[0]["props"] == {"gain_db": 0.0, "mute": False}
    assert abs(project.updated_at - row.created_at) < timedelta(seconds=5)


def test_whether_an_edit_waits_for_the_disk_is_a_setting_of_its_own(band, settings):
    """ROOMTONE_EDIT_SYNCHRONOUS_COMMIT holds for the edit's transaction only
    (SET LOCAL): the connection's other work keeps the server's setting."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's synchronous_commit")
    p = band.project.id

    def setting() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return str(cursor.fetchone()[0])

    server_default = setting()
    for value in ("on", "off"):
        settings.ROOMTONE_EDIT_SYNCHRONOUS_COMMIT = value
        with round_trips(connection) as sent:
            editing.do_edit(
                band.editor, p, [create("marker", f"m-{value}", time=1.0)], on_socket=True
            )
        assert sent[1].startswith(f"SET LOCAL synchronous_commit TO {value};")
        assert setting() == server_default
    assert current(band.project)[0] == 2


def test_a_statement_after_the_commit_that_went_with_the_writes_is_caught(band, monkeypatch):
    """Guard for later changes: once the commit went with an edit's writes,
    anything more in that block would run outside the transaction."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the commit goes with the writes on PostgreSQL only")
    p = band.project.id
    record = editing._record

    def record_then_more(*args: Any, **kwargs: Any) -> int:
        revision = record(*args, **kwargs)
        Project.objects.filter(id=p).update(name="After")
        return revision

    monkeypatch.setattr(editing, "_record", record_then_more)
    with pytest.raises(RuntimeError, match="after the commit"):
        editing.do_edit(band.editor, p, [create("marker", "m1", time=1.0)])


def test_an_edit_inside_a_larger_transaction_commits_or_rolls_back_with_it(band):
    """The commit goes with an edit's writes only when the edit's transaction
    is the outermost one: inside a caller's, the edit is rolled back with it."""
    from django.db import transaction

    p = band.project.id
    before = current(band.project)
    with pytest.raises(RuntimeError), transaction.atomic():
        editing.do_edit(band.editor, p, [create("track", "t1", name="Keys", order="a")])
        raise RuntimeError("the caller fails after the edit")
    assert current(band.project) == before
    assert not Edit.objects.filter(project_id=p, revision=before[0] + 1).exists()
    editing.do_edit(band.editor, p, [create("track", "t1", name="Keys", order="a")])
    assert current(band.project)[0] == before[0] + 1


async def test_a_removed_member_is_found_out_by_the_periodic_recheck(band, clock):
    """Membership is re-read within RECHECK_EVERY_S even when the
    members.changed event never arrives; each socket picks its own moment in
    the second half of the interval, so sockets that connected together do not
    all hit the database at once."""
    from studio.models import Membership

    await rig(band)
    eddie = await follow(band.editor, band.project.id)
    # Removed behind the server's back: no event tells the socket.
    await sync_to_async(Membership.objects.filter(project=band.project, user=band.editor).delete)()
    clock.now += consumers.RECHECK_EVERY_S * 0.5 - 0.1
    assert await eddie.ping() == []  # not yet re-read: still served
    clock.now += consumers.RECHECK_EVERY_S * 0.5 + 0.2
    await eddie.send({"type": "ping", "id": 7})
    closed = await eddie.comm.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": consumers.CLOSE_NOT_ALLOWED}


def test_recheck_moments_spread_over_the_second_half_of_the_interval():
    delays = [consumers._recheck_delay() for _ in range(200)]
    assert min(delays) >= consumers.RECHECK_EVERY_S * 0.5
    assert max(delays) <= consumers.RECHECK_EVERY_S
    assert max(delays) - min(delays) > consumers.RECHECK_EVERY_S * 0.25
