"""Property tests of co-editing: random interleavings of ops, good and bad,
from several users and tabs converge to the server's document; the op log
replayed on an old snapshot equals a fresh fetch; every document at every
revision is one the renderer accepts."""

from __future__ import annotations

import copy
import functools
import itertools
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from audio.engine.codecs import validate
from audio.engine.document import parse_document
from studio import actions, docstate, editing
from studio.docstate import StemInfo
from studio.editing import EditError
from studio.models import Project, Version
from tests.collab.editing_helpers import create, current, delete, follow, set_
from tests.conftest import write_audio

PROTOCOL_CODES = {
    "bad_op",
    "not_found",
    "conflict",
    "forbidden",
    "stale_revision",
    "bad_revision",
    "nothing_to_undo",
    "nothing_to_redo",
}
MAX_BEHIND = 8  # MAX_SYNC_EDITS in these tests, so stale edits and snapshots happen
STEM_SECONDS = 4.0

TRACKS = ["t1", "t2", "t3"]
CLIPS = ["c1", "c2", "c3", "c4"]
EFFECTS = ["e1", "e2", "e3"]
MARKERS = ["m1", "m2"]
COMMENTS = ["k1", "k2", "k3"]
GOOD_STEM = "stem:GOOD"  # replaced by the project's real stem id
MISSING_STEM = "stem:999999"


# --- strategies: ops that are often valid and sometimes not ---------------------------------


def mostly(good: list[Any], bad: list[Any]) -> st.SearchStrategy[Any]:
    """Good values, with a bad one now and then."""
    return st.sampled_from(good * 6 + bad)


gains = mostly([0, -6.5, -120, 24, -3], [400, -200])
pans = mostly([0, 0.5, -1, 1, -0.25], [3])
times = mostly([0, 1.5, 30.0, 2, 0.25], [-1])
orders = mostly(["A", "V", "k", "z", "V0"], ["a b"])
track_props = {"gain_db": gains, "pan": pans, "mute": st.booleans(), "solo": st.booleans()}
names = mostly(["Drums", "Bass", "Keys", "Vox"], [""])
clip_props = {
    "start": times,
    "offset": mostly([0, 1.0, 0.5], [3.9, 5.0]),
    "duration": mostly([None, 0.5, 2.0, 1.0], [10.0, 0]),
    "gain_db": gains,
    "fade_in": mostly([0, 0.25, 0.1], [-1]),
    "fade_out": st.sampled_from([0, 0.25]),
}
# Parameters by type, with a wrong one now and then; 23 kHz fits 48 kHz but
# not 44.1 kHz, so lowering the rate is sometimes refused.
PARAMS = {
    "highpass": {"cutoff_hz": mostly([80, 200, 23000], [5])},
    "lowpass": {"cutoff_hz": mostly([8000, 23000], [50000])},
    "compressor": {"ratio": mostly([2.0, 4], [0.5]), "threshold_db": mostly([-18], [3])},
    "delay": {"mix": mostly([0.5, 1], [2]), "feedback": st.just(0.3)},
    "gain": {"gain_db": mostly([-3, 6], [30])},
}
effect_types = mostly(sorted(PARAMS), ["fuzz"])


def some(props: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """One or more of `props`."""
    return st.sampled_from(sorted(props)).flatmap(
        lambda key: st.fixed_dictionaries(
            {key: props[key]}, optional={k: v for k, v in props.items() if k != key}
        )
    )


def effect_params(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    good = st.fixed_dictionaries({}, optional=PARAMS.get(kind, {}))
    return st.one_of(good, good, good, st.just({"wobble": 1.0}))


any_params = st.one_of(*(effect_params(kind) for kind in PARAMS))


def ops_strategy(state: docstate.State | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """Ops on the objects `state` has (as a client would send), on ids from
    small pools (so creates collide and targets go missing), and on ids that
    never exist."""
    kinds = ("track", "clip", "effect", "marker", "comment")
    return _ops_for(tuple(tuple(sorted(state[k])) if state else () for k in kinds))


@functools.cache
def _ops_for(have_ids: tuple[tuple[str, ...], ...]) -> st.SearchStrategy[dict[str, Any]]:
    have = dict(zip(("track", "clip", "effect", "marker", "comment"), have_ids, strict=True))

    def existing(kind: str, pool: list[str]) -> st.SearchStrategy[str]:
        return st.sampled_from(list(have[kind]) * 6 + pool + ["nope"])

    def fresh(kind: str, pool: list[str]) -> st.SearchStrategy[str]:
        return st.sampled_from([i for i in pool if i not in have[kind]] * 3 + pool)

    tracks = existing("track", TRACKS)
    clips, effects = existing("clip", CLIPS), existing("effect", EFFECTS)
    markers, comments = existing("marker", MARKERS), existing("comment", COMMENTS)
    return st.one_of(
        st.builds(
            lambda i, n, o, p: create("track", i, name=n, order=o, **p),
            fresh("track", TRACKS),
            names,
            orders,
            st.fixed_dictionaries({}, optional=track_props),
        ),
        st.builds(
            lambda i, p: set_("track", i, **p),
            tracks,
            some({**track_props, "name": names, "order": orders}),
        ),
        st.builds(lambda i: delete("track", i), tracks),
        st.builds(
            lambda i, t, s, p: create("clip", i, track=t, source=s, **p),
            fresh("clip", CLIPS),
            tracks,
            st.sampled_from([GOOD_STEM] * 4 + [MISSING_STEM]),
            st.fixed_dictionaries({}, optional=clip_props),
        ),
        st.builds(
            lambda i, p: set_("clip", i, **p),
            clips,
            some({**clip_props, "track": tracks}),
        ),
        st.builds(lambda i: delete("clip", i), clips),
        st.builds(
            lambda i, t, o, kp: create("effect", i, track=t, order=o, type=kp[0], params=kp[1]),
            fresh("effect", EFFECTS),
            st.one_of(st.none(), tracks),
            orders,
            effect_types.flatmap(lambda k: st.tuples(st.just(k), effect_params(k))),
        ),
        st.builds(
            lambda i, p, o: set_("effect", i, params=p, **o),
            effects,
            any_params,
            st.fixed_dictionaries({}, optional={"order": orders}),
        ),
        st.builds(lambda i: delete("effect", i), effects),
        st.builds(
            lambda i, t, n: create("marker", i, time=t, name=n),
            fresh("marker", MARKERS),
            times,
            names,
        ),
        st.builds(lambda i, t: set_("marker", i, time=t), markers, times),
        st.builds(lambda i: delete("marker", i), markers),
        st.builds(
            lambda i, t, text, parent, track: create(
                "comment", i, time=t, text=text, parent=parent, track=track
            ),
            fresh("comment", COMMENTS),
            times,
            st.sampled_from(["Nice", "Hm", ""]),
            st.one_of(st.none(), comments),
            st.one_of(st.none(), tracks),
        ),
        st.builds(
            lambda i, p: set_("comment", i, **p),
            comments,
            some({"text": mostly(["Edited"], [""]), "resolved": st.booleans()}),
        ),
        st.builds(lambda i: delete("comment", i), comments),
        st.builds(
            lambda p: set_("project", "project", **p),
            some(
                {
                    "tempo_bpm": mostly([90, 133.5], [500]),
                    "sample_rate": mostly([44100, 48000], [22050]),
                    "master_gain_db": gains,
                    "time_signature": mostly([[3, 4], [7, 8]], [[4, 3]]),
                }
            ),
        ),
    )


def with_stem(ops: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    out = copy.deepcopy(ops)
    for op in out:
        if op.get("props", {}).get("source") == GOOD_STEM:
            op["props"]["source"] = source
    return out


# --- the simulated clients ----------------------------------------------------------------


@dataclass
class Tab:
    """A client: its user, its copy of the document and its revision, and how
    far it has read the stream of broadcasts."""

    user: Any
    can_edit: bool
    state: docstate.State
    revision: int
    read: int = 0
    kept: list[dict[str, Any]] = field(default_factory=list)
    sent: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)

    def receive(self, edit: dict[str, Any], project_id: int) -> None:
        """protocol §4: apply R+1, ignore old ones, resync on a gap."""
        if edit["revision"] <= self.revision:
            return
        if edit["revision"] > self.revision + 1:
            self.kept.append(edit)
            self.resync(project_id)
            return
        docstate.replay_all(self.state, edit["ops"])
        self.revision = edit["revision"]

    def resync(self, project_id: int) -> None:
        reply = editing.sync_reply(self.user, project_id, self.revision)
        if reply["type"] == "snapshot":
            self.state, self.revision = reply["state"], reply["revision"]
        else:
            assert reply["since"] == self.revision
            for edit in reply["edits"]:
                assert edit["revision"] == self.revision + 1
                docstate.replay_all(self.state, edit["ops"])
                self.revision = edit["revision"]
        for edit in sorted(self.kept, key=lambda e: e["revision"]):
            if edit["revision"] == self.revision + 1:
                docstate.replay_all(self.state, edit["ops"])
                self.revision = edit["revision"]
        self.kept = []


def normalised(state: docstate.State) -> docstate.State:
    """Comment timestamps are the server's clock: leave them out of comparisons."""
    out = copy.deepcopy(state)
    for comment in out["comment"].values():
        comment["created_at"] = ""
    return out


@pytest.fixture
def people(db: None, tmp_path: Path) -> dict[str, Any]:
    User = get_user_model()
    path = write_audio(tmp_path / "loop.wav", seconds=STEM_SECONDS)
    return {
        "owner": User.objects.create_user("olivia", password="x"),
        "editor": User.objects.create_user("eddie", password="x"),
        "viewer": User.objects.create_user("vera", password="x"),
        "audio": (path, validate(path), actions.sha256_of(path)),
    }


_project_names = itertools.count()


def new_project(people: dict[str, Any]) -> tuple[Project, str]:
    owner = people["owner"]
    project = actions.do_create_project(owner, f"P{next(_project_names)}")
    access = actions.access_project(owner, project.id, "owner")
    actions.do_add_member(access, "eddie", "editor")
    actions.do_add_member(access, "vera", "viewer")
    path, info, sha = people["audio"]
    stem = actions.do_add_stem(
        access,
        path=str(path),
        sha256=sha,
        size=path.stat().st_size,
        filename=path.name,
        name=None,
        info=info,
    )
    source = f"stem:{stem.id}"
    # Something to edit from the start.
    editing.do_edit(
        owner,
        project.id,
        [
            create("track", "t1", name="Drums", order="V"),
            create("track", "t2", name="Bass", order="k"),
            create("clip", "c1", track="t1", source=source, duration=2.0),
            create("clip", "c2", track="t2", source=source, start=1.0),
            create("effect", "e1", track="t1", order="V", type="highpass"),
            create("effect", "e2", track=None, order="V", type="compressor"),
            create("marker", "m1", time=4.0),
            create("comment", "k1", time=1.0, text="Start"),
        ],
    )
    return project, source


ACTIONS = ["edit"] * 10 + ["deliver"] * 3 + ["undo", "redo", "resend", "save", "restore", "snap"]


@settings(
    max_examples=30,
    deadline=None,
    # The explain phase reruns a failure hundreds of times: too slow here.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_interleavings_converge_and_the_log_replays_to_a_fresh_fetch(
    people, monkeypatch, data
):
    monkeypatch.setattr(editing, "MAX_SYNC_EDITS", MAX_BEHIND)
    monkeypatch.setattr(editing, "CHECKPOINT_EVERY", 5)
    broadcasts: list[dict[str, Any]] = []
    monkeypatch.setattr(editing, "send_on_commit", lambda _pid, event: broadcasts.append(event))
    project, source = new_project(people)
    pid = project.id
    stems = {int(source.split(":")[1]): StemInfo(STEM_SECONDS, True)}
    revision, state = current(project)
    tabs = [
        Tab(people["owner"], True, copy.deepcopy(state), revision),
        Tab(people["owner"], True, copy.deepcopy(state), revision),
        Tab(people["editor"], True, copy.deepcopy(state), revision),
        Tab(people["viewer"], False, copy.deepcopy(state), revision),
    ]
    snapshots = [(revision, copy.deepcopy(state))]
    counter = itertools.count()

    def deliver(tab: Tab, upto: int, drop: int | None = None) -> None:
        """Hand the tab the next broadcasts it has not read, maybe losing one."""
        events = [e for e in broadcasts if e["type"] == "edit"]
        for i in range(tab.read, upto):
            if i != drop:
                tab.receive(events[i], pid)
        tab.read = max(tab.read, upto)

    for _ in range(data.draw(st.integers(10, 40), label="steps")):
        # The viewer less often: most of what it may send is refused.
        tab = tabs[data.draw(st.sampled_from([0, 0, 1, 2, 2, 3]), label="tab")]
        action = data.draw(st.sampled_from(ACTIONS), label="action")
        before = current(project)
        user = tab.user
        try:
            if action == "edit":
                size = data.draw(st.sampled_from([1, 1, 1, 2, 3]), label="size")
                ops = with_stem(
                    data.draw(
                        st.lists(ops_strategy(tab.state), min_size=size, max_size=size),
                        label="ops",
                    ),
                    source,
                )
                cid = f"op-{next(counter)}"
                base = tab.revision
                editing.do_edit(user, pid, ops, client_op_id=cid, base_revision=base)
                assert before[0] - base <= MAX_BEHIND
                tab.sent.append((cid, ops))
                # The server validated against what it loaded; validating the same
                # ops against the whole document must agree.
                model = copy.deepcopy(before[1])
                context = docstate.Context(
                    user.pk, user.get_username(), "", tab.can_edit, stems.get
                )
                docstate.apply_ops(model, docstate.parse_ops(ops), context)
                assert normalised(model) == normalised(current(project)[1])
            elif action == "resend" and tab.sent:
                cid, ops = data.draw(st.sampled_from(tab.sent), label="resent")
                result = editing.do_edit(user, pid, ops, client_op_id=cid, base_revision=0)
                assert result.duplicate
            elif action in ("undo", "redo"):
                reverse = editing.do_undo if action == "undo" else editing.do_redo
                reverse(user, pid, f"op-{next(counter)}")
            elif action == "save":
                editing.do_save_version(user, pid, "saved")
            elif action == "restore":
                versions = list(Version.objects.filter(project_id=pid).values_list("id", flat=True))
                vid = data.draw(st.sampled_from(versions), label="version")
                editing.do_restore(user, pid, vid, f"op-{next(counter)}")
            elif action == "deliver":
                events = sum(1 for e in broadcasts if e["type"] == "edit")
                upto = data.draw(st.integers(tab.read, events), label="upto")
                drop = None
                if upto - tab.read >= 2:
                    # Lose one, as a channel layer may; a later one shows the gap.
                    drop = data.draw(
                        st.one_of(st.none(), st.integers(tab.read, upto - 2)), label="drop"
                    )
                deliver(tab, upto, drop)
            elif action == "snap":
                reply = editing.sync_reply(people["owner"], pid, None)
                snapshots.append((reply["revision"], copy.deepcopy(reply["state"])))
        except EditError as exc:
            event(f"{action}: {exc.code}")
            assert exc.code in PROTOCOL_CODES, (exc.code, exc.message)
            if exc.code == "stale_revision":
                assert before[0] - tab.revision > MAX_BEHIND
                tab.resync(pid)
            if action == "edit" and exc.code not in ("stale_revision", "bad_revision"):
                # Whole-document validation refuses it too, with the same code.
                model = copy.deepcopy(before[1])
                context = docstate.Context(
                    user.pk, user.get_username(), "", tab.can_edit, stems.get
                )
                with pytest.raises(docstate.OpError) as caught:
                    docstate.apply_ops(model, docstate.parse_ops(ops), context)
                assert caught.value.code == exc.code
            # Refused: nothing changed.
            assert current(project) == before
        else:
            event(f"{action}: done")
        after = current(project)
        # Every revision bumps by one and is logged and broadcast once.
        assert after[0] - before[0] in (0, 1)
        assert len([e for e in broadcasts if e["type"] == "edit"]) == after[0]
        # Whatever happened, the document is one the renderer accepts.
        parse_document(docstate.export_document(after[1]))

    revision, state = current(project)
    event(f"revisions: {min(revision // 5 * 5, 20)}+")
    for tab in tabs:
        events = sum(1 for e in broadcasts if e["type"] == "edit")
        deliver(tab, events)
        assert tab.kept == []
        assert (tab.revision, tab.state) == (revision, state)
    for old_revision, _ in snapshots:
        reply = editing.sync_reply(people["owner"], pid, old_revision)
        far = revision - old_revision > MAX_BEHIND
        assert reply["type"] == ("snapshot" if far else "sync")
    # However far back, the log replayed on an old snapshot is a fresh fetch.
    monkeypatch.setattr(editing, "MAX_SYNC_EDITS", 10**6)
    for old_revision, old_state in snapshots:
        reply = editing.sync_reply(people["owner"], pid, old_revision)
        replayed = copy.deepcopy(old_state)
        assert [e["revision"] for e in reply["edits"]] == list(
            range(old_revision + 1, revision + 1)
        )
        for edit in reply["edits"]:
            docstate.replay_all(replayed, edit["ops"])
        assert replayed == state
        # The document at that old revision is what it was then.
        then = editing.state_at(project, old_revision)
        assert then == {**old_state, "comment": {}}


# --- over real sockets ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@settings(
    max_examples=15,
    deadline=None,
    # The explain phase reruns a failure hundreds of times: too slow here.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    plan=st.lists(
        st.tuples(st.integers(0, 2), st.lists(ops_strategy(), min_size=1, max_size=3)),
        min_size=1,
        max_size=12,
    ),
    seed=st.integers(0, 2**16),
)
def test_clients_on_sockets_converge_whatever_the_order(people, plan, seed):
    project, source = new_project(people)
    users = [people["owner"], people["editor"], people["viewer"]]

    async def scenario() -> None:
        clients = [await follow(user, project.id) for user in users]
        start = clients[0].revision
        # Each client sends its edits without waiting; the three streams interleave.
        shuffled = random.Random(seed).sample(plan, len(plan))
        sent = []
        for i, (who, ops) in enumerate(shuffled):
            client = clients[who]
            sent.append((client, await client.edit(*with_stem(ops, source), cid=f"s{i}")))
        for client, cid in sent:
            answer = await client.ack(cid)
            assert answer["type"] == "ack" or answer["code"] in PROTOCOL_CODES, answer
        revision, state = await sync_current()
        assert revision == start + sum(1 for c, cid in sent if _acked(c, cid))
        for client in clients:
            await client.caught_up(revision)
            assert client.state == state
            await client.close()

    async def sync_current() -> tuple[int, docstate.State]:
        from asgiref.sync import sync_to_async

        return await sync_to_async(current)(project)

    async_to_sync(scenario)()


def _acked(client: Any, cid: str) -> bool:
    return any(m["type"] == "ack" and m.get("client_op_id") == cid for m in client.log)
