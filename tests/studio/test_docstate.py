"""The document state on its own: typed ops, validation, inverses, cascades,
lenient mode, diffs and export (docs/protocol.md §2–3, ARCHITECTURE.md §4)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio.engine.document import parse_document
from studio import docstate
from studio.docstate import Context, OpError, StemInfo
from tests.collab.editing_helpers import create, delete, set_

NOW = "2026-11-21T10:00:00+00:00"
# stem 42: 10 s and usable; stem 43: failed analysis; anything else: no such stem.
STEMS = {42: StemInfo(duration_s=10.0, usable=True), 43: StemInfo(duration_s=5.0, usable=False)}


def ctx(user_id: int = 3, *, can_edit: bool = True, name: str = "olivia") -> Context:
    return Context(
        user_id=user_id,
        user_name=name,
        now_iso=NOW,
        can_edit=can_edit,
        stem_info=STEMS.get,
    )


def blank() -> docstate.State:
    state = docstate.empty_state()
    state["project"]["project"] = {
        "sample_rate": 48000,
        "tempo_bpm": 120.0,
        "time_signature": [4, 4],
        "master_gain_db": 0.0,
    }
    return state


def apply(state, ops, context=None, *, lenient=False):
    return docstate.apply_ops(state, docstate.parse_ops(ops), context or ctx(), lenient=lenient)


def band() -> docstate.State:
    """Two tracks with clips and effects, a master effect, a marker and a thread."""
    state = blank()
    apply(
        state,
        [
            create("track", "drums", name="Drums", order="V"),
            create("track", "bass", name="Bass", order="k", gain_db=-3.0, pan=-0.5),
            create("clip", "c1", track="drums", source="stem:42", start=0.0, duration=4.0),
            create("clip", "c2", track="drums", source="stem:42", start=4.0, offset=1.0),
            create("clip", "c3", track="bass", source="stem:42", start=2.0),
            create("effect", "e1", track="drums", order="V", type="highpass"),
            create(
                "effect",
                "e2",
                track="drums",
                order="k",
                type="compressor",
                params={"threshold_db": -18.0, "ratio": 3.0},
            ),
            create("effect", "e3", track="bass", order="V", type="gain"),
            create("effect", "m1", track=None, order="V", type="limiter"),
            create("marker", "mk1", time=32.0, name="Chorus"),
            create("comment", "k1", time=1.0, track="drums", text="Too loud"),
            create("comment", "k2", time=1.0, parent="k1", text="Agreed"),
        ],
    )
    return state


# --- creating -----------------------------------------------------------------------


def test_create_fills_in_defaults_and_server_set_fields():
    state = blank()
    applied, _ = apply(
        state,
        [
            create("track", "t1", name="Drums", order="V"),
            create("clip", "c1", track="t1", source="stem:42"),
            create("effect", "e1", track="t1", order="V", type="highpass"),
            create("marker", "m1", time=3.0),
            create("comment", "k1", time=1.5, text="hi"),
        ],
        ctx(7, name="eddie"),
    )
    assert state["track"]["t1"] == {
        "name": "Drums",
        "order": "V",
        "gain_db": 0.0,
        "pan": 0.0,
        "mute": False,
        "solo": False,
    }
    assert state["clip"]["c1"] == {
        "track": "t1",
        "source": "stem:42",
        "start": 0.0,
        "offset": 0.0,
        "duration": None,
        "gain_db": 0.0,
        "fade_in": 0.0,
        "fade_out": 0.0,
    }
    assert state["effect"]["e1"] == {
        "track": "t1",
        "order": "V",
        "type": "highpass",
        "params": {"cutoff_hz": 80.0},
    }
    assert state["marker"]["m1"] == {"time": 3.0, "name": ""}
    assert state["comment"]["k1"] == {
        "time": 1.5,
        "track": None,
        "parent": None,
        "text": "hi",
        "resolved": False,
        "author": 7,
        "author_name": "eddie",
        "created_at": NOW,
    }
    # The applied creates carry every property, so others can replay them.
    assert [op["props"] for op in applied] == [state[op["kind"]][op["id"]] for op in applied]


def test_integers_are_accepted_for_numbers_and_stored_as_floats():
    state = blank()
    applied, _ = apply(state, [create("track", "t1", name="x", order="V", gain_db=-6)])
    assert applied[0]["props"]["gain_db"] == -6.0
    assert isinstance(state["track"]["t1"]["gain_db"], float)


def test_a_reply_to_a_reply_joins_the_top_thread():
    state = band()
    apply(state, [create("comment", "k3", time=2.0, parent="k2", text="Me too")])
    assert state["comment"]["k3"]["parent"] == "k1"


def test_effect_params_merge_with_the_types_defaults():
    state = blank()
    apply(
        state,
        [create("effect", "e1", order="V", type="compressor", params={"ratio": 4})],
    )
    assert state["effect"]["e1"]["params"] == {
        "threshold_db": 0.0,
        "ratio": 4.0,
        "attack_ms": 1.0,
        "release_ms": 100.0,
    }


# --- validation ---------------------------------------------------------------------

TRACK = {"name": "Drums", "order": "V"}


@pytest.mark.parametrize(
    "ops, code, where",
    [
        # out of range and wrong types
        ([set_("track", "drums", pan=3)], "bad_op", "ops[0].props.pan"),
        ([set_("track", "drums", pan=-1.5)], "bad_op", "ops[0].props.pan"),
        ([set_("track", "drums", gain_db=400)], "bad_op", "ops[0].props.gain_db"),
        ([set_("track", "drums", gain_db=-121)], "bad_op", "ops[0].props.gain_db"),
        ([set_("track", "drums", gain_db="3")], "bad_op", "ops[0].props.gain_db"),
        ([set_("track", "drums", gain_db=True)], "bad_op", "ops[0].props.gain_db"),
        ([set_("track", "drums", gain_db=float("nan"))], "bad_op", "ops[0].props.gain_db"),
        ([set_("track", "drums", gain_db=float("inf"))], "bad_op", "ops[0].props.gain_db"),
        ([set_("track", "drums", gain_db=None)], "bad_op", "ops[0].props.gain_db"),
        ([set_("track", "drums", mute=1)], "bad_op", "ops[0].props.mute"),
        ([set_("track", "drums", name="")], "bad_op", "ops[0].props.name"),
        ([set_("track", "drums", name="x" * 201)], "bad_op", "ops[0].props.name"),
        ([set_("track", "drums", order="a b")], "bad_op", "ops[0].props.order"),
        ([set_("track", "drums", order="-")], "bad_op", "ops[0].props.order"),
        ([set_("track", "drums", colour="red")], "bad_op", "ops[0].props.colour"),
        ([set_("track", "drums")], "bad_op", "ops[0].props"),
        ([create("track", "t9", name="x")], "bad_op", "ops[0].props.order"),
        ([create("track", "t9", order="V")], "bad_op", "ops[0].props.name"),
        ([set_("project", "project", tempo_bpm=500)], "bad_op", "ops[0].props.tempo_bpm"),
        ([set_("project", "project", tempo_bpm=19.9)], "bad_op", "ops[0].props.tempo_bpm"),
        ([set_("project", "project", sample_rate=22050)], "bad_op", "ops[0].props.sample_rate"),
        (
            [set_("project", "project", time_signature=[4, 3])],
            "bad_op",
            "ops[0].props.time_signature",
        ),
        (
            [set_("project", "project", time_signature=[33, 4])],
            "bad_op",
            "ops[0].props.time_signature",
        ),
        (
            [set_("project", "project", time_signature=[4, 4, 4])],
            "bad_op",
            "ops[0].props.time_signature",
        ),
        (
            [set_("project", "project", master_gain_db=25)],
            "bad_op",
            "ops[0].props.master_gain_db",
        ),
        # malformed ops
        ([{"op": "move", "kind": "track", "id": "drums"}], "bad_op", "ops[0].op"),
        ([{"op": "set", "kind": "lyric", "id": "l1", "props": {}}], "bad_op", "ops[0].kind"),
        ([{"op": "set", "kind": "track", "id": "a b", "props": {}}], "bad_op", "ops[0].id"),
        ([{"op": "set", "kind": "track", "id": "x" * 65, "props": {}}], "bad_op", "ops[0].id"),
        ([{"op": "set", "kind": "track", "props": {}}], "bad_op", "ops[0].id"),
        ([{"op": "set", "kind": "track", "id": "drums", "props": [1]}], "bad_op", "ops[0].props"),
        (
            [{"op": "set", "kind": "track", "id": "drums", "props": {}, "why": 1}],
            "bad_op",
            "ops[0].why",
        ),
        ([create("project", "project", tempo_bpm=100)], "bad_op", "ops[0].op"),
        ([create("track", "project", **TRACK)], "bad_op", "ops[0].id"),
        ([set_("project", "p1", tempo_bpm=100)], "bad_op", "ops[0].id"),
        (["not an op"], "bad_op", "ops[0]"),
        # objects that do not exist
        ([set_("track", "nope", pan=0.1)], "not_found", "ops[0].id"),
        ([delete("marker", "nope")], "not_found", "ops[0].id"),
        ([create("clip", "c9", track="nope", source="stem:42")], "not_found", "ops[0].props.track"),
        (
            [create("clip", "c9", track="drums", source="stem:7")],
            "not_found",
            "ops[0].props.source",
        ),
        ([set_("clip", "c1", track="nope")], "not_found", "ops[0].props.track"),
        (
            [create("effect", "e9", track="nope", order="V", type="gain")],
            "not_found",
            "ops[0].props.track",
        ),
        (
            [create("comment", "k9", time=1.0, parent="nope", text="x")],
            "not_found",
            "ops[0].props.parent",
        ),
        (
            [create("comment", "k9", time=1.0, track="nope", text="x")],
            "not_found",
            "ops[0].props.track",
        ),
        # clips
        ([create("clip", "c9", track="drums", source="stem:43")], "bad_op", "ops[0].props.source"),
        (
            [create("clip", "c9", track="drums", source="drums.flac")],
            "bad_op",
            "ops[0].props.source",
        ),
        ([set_("clip", "c1", source="stem:42")], "bad_op", "ops[0].props.source"),
        ([set_("clip", "c1", offset=10.0)], "bad_op", "ops[0].props.offset"),
        ([set_("clip", "c1", offset=-1)], "bad_op", "ops[0].props.offset"),
        ([set_("clip", "c1", offset=8.0, duration=2.5)], "bad_op", "ops[0].props.duration"),
        ([set_("clip", "c1", duration=0)], "bad_op", "ops[0].props.duration"),
        ([set_("clip", "c1", start=-0.5)], "bad_op", "ops[0].props.start"),
        ([set_("clip", "c1", fade_in=-1)], "bad_op", "ops[0].props.fade_in"),
        ([set_("clip", "c1", fade_out=3601)], "bad_op", "ops[0].props.fade_out"),
        ([set_("clip", "c1", gain_db=400)], "bad_op", "ops[0].props.gain_db"),
        # effects
        (
            [create("effect", "e9", order="V", type="fuzz")],
            "bad_op",
            "ops[0].props.type: unknown effect type 'fuzz'",
        ),
        (
            [create("effect", "e9", order="V", type="highpass", params={"resonance": 1.0})],
            "bad_op",
            "ops[0].props.params.resonance: unknown parameter 'resonance' for highpass",
        ),
        (
            [set_("effect", "e1", params={"cutoff_hz": 5.0})],
            "bad_op",
            "ops[0].props.params.cutoff_hz",
        ),
        (
            [set_("effect", "e1", params={"cutoff_hz": 30000.0})],
            "bad_op",
            "ops[0].props.params.cutoff_hz: must be below half the sample rate",
        ),
        ([set_("effect", "e1", params={"cutoff_hz": "80"})], "bad_op", "ops[0].props.params"),
        ([set_("effect", "e1", params=[80.0])], "bad_op", "ops[0].props.params"),
        ([set_("effect", "e1", type="lowpass")], "bad_op", "ops[0].props.type"),
        ([set_("effect", "e1", track="bass")], "bad_op", "ops[0].props.track"),
        (
            [create("effect", "e9", order="V", type="ladder_filter", params={"mode": "x"})],
            "bad_op",
            "ops[0].props.params.mode",
        ),
        # markers and comments
        ([create("marker", "mk9", name="x")], "bad_op", "ops[0].props.time"),
        ([set_("marker", "mk1", name="x" * 201)], "bad_op", "ops[0].props.name"),
        ([create("comment", "k9", time=1.0, text="")], "bad_op", "ops[0].props.text"),
        ([create("comment", "k9", time=1.0)], "bad_op", "ops[0].props.text"),
        (
            [create("comment", "k9", time=1.0, text="x", author=1)],
            "bad_op",
            "ops[0].props.author: set by the server",
        ),
        (
            [create("comment", "k9", time=1.0, text="x", parent=["k1"])],
            "bad_op",
            "ops[0].props.parent",
        ),
        ([set_("comment", "k1", parent="k2")], "bad_op", "ops[0].props.parent"),
        ([set_("comment", "k1", created_at=NOW)], "bad_op", "ops[0].props.created_at"),
        # conflicts, and the path names the op that failed
        ([create("track", "drums", **TRACK)], "conflict", "ops[0].id"),
        ([create("track", "t9", **TRACK), create("track", "t9", **TRACK)], "conflict", "ops[1].id"),
        ([set_("track", "drums", pan=0.5), set_("track", "bass", pan=2)], "bad_op", "ops[1]"),
    ],
)
def test_bad_ops_are_refused_with_a_code_and_the_path(ops, code, where):
    with pytest.raises(OpError) as caught:
        apply(band(), ops)
    assert caught.value.code == code
    assert caught.value.message.startswith(where), caught.value.message


@pytest.mark.parametrize(
    "raw, message",
    [
        (None, "ops: must be a non-empty list"),
        ([], "ops: must be a non-empty list"),
        ({"op": "set"}, "ops: must be a non-empty list"),
        ([set_("track", "drums", pan=0.1)] * 101, "ops: at most 100 ops per edit"),
    ],
)
def test_the_op_list_itself_is_checked(raw, message):
    with pytest.raises(OpError) as caught:
        docstate.parse_ops(raw)
    assert (caught.value.code, caught.value.message) == ("bad_op", message)


def test_viewers_may_only_touch_comments():
    state = band()
    viewer = ctx(9, can_edit=False, name="vera")
    with pytest.raises(OpError) as caught:
        apply(
            band(),
            [create("comment", "k9", time=0.0, text="x"), set_("track", "drums", pan=1)],
            viewer,
        )
    assert caught.value.code == "forbidden"
    apply(
        state,
        [create("comment", "k9", time=0.0, text="x"), set_("comment", "k1", resolved=True)],
        viewer,
    )
    assert state["comment"]["k9"]["author"] == 9
    assert state["comment"]["k1"]["resolved"] is True


def test_only_the_author_changes_a_comments_text():
    state = band()  # k1 was written by user 3
    with pytest.raises(OpError) as caught:
        apply(state, [set_("comment", "k1", text="edited")], ctx(9, name="vera"))
    assert caught.value.code == "forbidden"
    assert caught.value.message.startswith("ops[0].props.text")
    apply(state, [set_("comment", "k1", text="edited")], ctx(3))
    assert state["comment"]["k1"]["text"] == "edited"


def test_lowering_the_sample_rate_is_refused_while_an_effect_needs_the_higher_one():
    state = band()
    apply(state, [set_("effect", "e1", params={"cutoff_hz": 23000.0})])
    with pytest.raises(OpError) as caught:
        apply(state, [set_("project", "project", sample_rate=44100)])
    assert caught.value.code == "bad_op"
    assert caught.value.message.startswith("ops[0].props.sample_rate: effect 'e1'")
    # Lower the cutoff in the same edit, first, and the new rate fits.
    apply(
        state,
        [
            set_("effect", "e1", params={"cutoff_hz": 20000.0}),
            set_("project", "project", sample_rate=44100),
        ],
    )
    assert state["project"]["project"]["sample_rate"] == 44100
    parse_document(docstate.export_document(state))


# --- applied ops and inverses -----------------------------------------------------------

EDITS = {
    "set track": [set_("track", "drums", gain_db=-6.0, pan=0.25, mute=True)],
    "set project": [set_("project", "project", tempo_bpm=90, time_signature=[6, 8])],
    "set effect params": [set_("effect", "e2", params={"ratio": 8.0})],
    "move a clip": [set_("clip", "c1", track="bass", start=12.5, duration=None)],
    "create": [
        create("track", "keys", name="Keys", order="s"),
        create("clip", "c9", track="keys", source="stem:42"),
        create("effect", "e9", track="keys", order="V", type="reverb"),
    ],
    "delete a track": [delete("track", "drums")],
    "delete a clip and a marker": [delete("clip", "c3"), delete("marker", "mk1")],
    "delete a comment thread": [delete("comment", "k1")],
    "several on one object": [
        set_("track", "bass", gain_db=-1.0),
        set_("track", "bass", gain_db=-2.0, name="Bass 2"),
    ],
    "create then delete": [
        create("marker", "mk9", time=1.0),
        delete("marker", "mk9"),
        set_("marker", "mk1", name="Verse"),
    ],
}


@pytest.mark.parametrize("ops", EDITS.values(), ids=EDITS.keys())
def test_applied_ops_replay_to_the_same_state_and_the_inverse_undoes_exactly(ops):
    before = band()
    state = copy.deepcopy(before)
    applied, inverse = apply(state, ops)
    assert state != before
    # Another client replaying the applied ops ends in the same state.
    replayed = copy.deepcopy(before)
    docstate.replay_all(replayed, applied)
    assert replayed == state
    # The inverse, replayed, undoes exactly ...
    undone = copy.deepcopy(state)
    docstate.replay_all(undone, inverse)
    assert undone == before
    # ... and so does sending it as a new edit, as undo does (comments are
    # re-created with their author by the same user, so this holds for them too).
    again = copy.deepcopy(state)
    _, redo = docstate.apply_ops(again, docstate.lenient_ops(inverse), ctx())
    assert again == before
    docstate.replay_all(again, redo)
    assert again == state


def test_a_set_broadcasts_only_the_properties_sent_and_effect_params_merge():
    state = band()
    applied, inverse = apply(state, [set_("effect", "e2", params={"ratio": 8})])
    assert applied == [
        {"op": "set", "kind": "effect", "id": "e2", "props": {"params": {"ratio": 8.0}}}
    ]
    assert inverse == [
        {"op": "set", "kind": "effect", "id": "e2", "props": {"params": {"ratio": 3.0}}}
    ]
    assert state["effect"]["e2"]["params"] == {
        "threshold_db": -18.0,
        "ratio": 8.0,
        "attack_ms": 1.0,
        "release_ms": 100.0,
    }


def test_deleting_a_track_deletes_its_clips_and_effects_first():
    state = band()
    applied, inverse = apply(state, [delete("track", "drums")])
    assert applied == [
        delete("clip", "c1"),
        delete("clip", "c2"),
        delete("effect", "e1"),
        delete("effect", "e2"),
        delete("track", "drums"),
    ]
    assert set(state["clip"]) == {"c3"}
    assert set(state["effect"]) == {"e3", "m1"}
    # Undo recreates the track before what sits on it.
    assert [(op["op"], op["kind"], op["id"]) for op in inverse][0] == ("create", "track", "drums")
    # Comments pinned to the track stay.
    assert state["comment"]["k1"]["track"] == "drums"


def test_deleting_a_comment_deletes_its_replies():
    state = band()
    applied, _ = apply(state, [delete("comment", "k1")])
    assert applied == [delete("comment", "k2"), delete("comment", "k1")]
    assert state["comment"] == {}


def test_strict_mode_refuses_what_lenient_mode_skips():
    ops = [
        set_("track", "gone", pan=0.5),
        set_("track", "drums", pan=0.5),
        delete("clip", "gone"),
        create("clip", "c9", track="gone", source="stem:42"),
        create("marker", "mk2", time=4.0),
    ]
    with pytest.raises(OpError):
        apply(band(), ops)
    state = band()
    applied, inverse = apply(state, ops, lenient=True)
    assert applied == [
        set_("track", "drums", pan=0.5),
        {"op": "create", "kind": "marker", "id": "mk2", "props": {"time": 4.0, "name": ""}},
    ]
    assert inverse == [delete("marker", "mk2"), set_("track", "drums", pan=0.0)]


def test_is_conversation_is_true_only_for_comment_ops():
    assert docstate.is_conversation(docstate.parse_ops([create("comment", "k", time=0, text="x")]))
    assert not docstate.is_conversation(
        docstate.parse_ops([create("comment", "k", time=0, text="x"), delete("marker", "m")])
    )


# --- diff (restore) -------------------------------------------------------------------


def _music(state):
    return {k: v for k, v in state.items() if k != "comment"}


def _target_states():
    """Targets that differ from band() in every way a restore meets."""
    a = blank()
    apply(a, [create("track", "drums", name="Old drums", order="A", gain_db=-10.0)])
    b = band()
    apply(
        b,
        [
            create("track", "keys", name="Keys", order="z"),
            set_("clip", "c1", track="keys", start=3.0),  # moved to a new track
            set_("clip", "c3", track="drums"),  # moved off a track that goes
            delete("track", "bass"),
            delete("effect", "e1"),
            create("effect", "e1", track="keys", order="V", type="lowpass"),  # same id, new type
            set_("effect", "e2", params={"ratio": 5.0}),
            set_("project", "project", tempo_bpm=100.0, master_gain_db=-1.0),
            create("marker", "mk2", time=1.0),
        ],
    )
    c = band()
    apply(
        c,
        [
            set_("effect", "e1", params={"cutoff_hz": 21000.0}),
            set_("project", "project", sample_rate=44100),
        ],
    )
    d = band()
    apply(d, [set_("effect", "e1", params={"cutoff_hz": 23000.0})])
    return {"older": a, "rearranged": b, "lower rate": c, "high cutoff": d, "empty": blank()}


@pytest.mark.parametrize("name", ["older", "rearranged", "lower rate", "high cutoff", "empty"])
def test_diff_ops_turn_one_state_into_another(name):
    targets = _target_states()
    target = targets[name]
    for current in (band(), *targets.values()):
        ops = docstate.diff_ops(current, target)
        replayed = copy.deepcopy(current)
        docstate.replay_all(replayed, ops)
        assert _music(replayed) == _music(target)
        assert replayed["comment"] == current["comment"]  # a restore leaves the conversation
        # Validated as a restore validates them, every op applies.
        restored = copy.deepcopy(current)
        applied, _ = docstate.apply_ops(restored, docstate.lenient_ops(ops), ctx(), lenient=True)
        assert _music(restored) == _music(target)
        assert len(applied) >= len(ops)
    assert docstate.diff_ops(target, target) == []


_tracks = st.sampled_from(["drums", "bass", "t1", "t2"])
_clips = st.sampled_from(["c1", "c2", "c3", "c4"])
_effects = st.sampled_from(["e1", "e2", "e3", "m1"])
_arrangement_op = st.one_of(
    st.builds(
        lambda i, o: create("track", i, name=i, order=o), _tracks, st.sampled_from(["A", "V", "z"])
    ),
    st.builds(lambda i, g: set_("track", i, gain_db=g), _tracks, st.sampled_from([-6, 0])),
    st.builds(lambda i: delete("track", i), _tracks),
    st.builds(
        lambda i, t, s: create("clip", i, track=t, source="stem:42", start=s),
        _clips,
        _tracks,
        st.sampled_from([0, 2.5]),
    ),
    st.builds(
        lambda i, t, s: set_("clip", i, track=t, start=s), _clips, _tracks, st.sampled_from([0, 1])
    ),
    st.builds(lambda i: delete("clip", i), _clips),
    st.builds(
        lambda i, t, k, c: create("effect", i, track=t, order="V", type=k, params={"cutoff_hz": c}),
        _effects,
        st.one_of(st.none(), _tracks),
        st.sampled_from(["highpass", "lowpass"]),
        st.sampled_from([100, 23000]),
    ),
    st.builds(lambda i, c: set_("effect", i, params={"cutoff_hz": c}), _effects, st.just(20000)),
    st.builds(lambda i: delete("effect", i), _effects),
    st.builds(lambda r: set_("project", "project", sample_rate=r), st.sampled_from([44100, 48000])),
    st.builds(lambda t: create("marker", "mk2", time=t), st.just(1.0)),
    st.builds(lambda: delete("marker", "mk1")),
)


def _arranged(state, ops):
    for op in ops:  # one by one: an op that does not apply is skipped
        apply(state, [op], lenient=True)
    return state


@settings(max_examples=300, deadline=None)
@given(
    first=st.lists(_arrangement_op, max_size=12),
    then=st.lists(_arrangement_op, max_size=12),
)
def test_diff_ops_restore_any_earlier_arrangement(first, then):
    saved = _arranged(band(), first)
    now = _arranged(copy.deepcopy(saved), then)
    for current, target in ((now, saved), (saved, now)):
        restored = copy.deepcopy(current)
        docstate.apply_ops(
            restored, docstate.lenient_ops(docstate.diff_ops(current, target)), ctx(), lenient=True
        )
        assert _music(restored) == _music(target)
        parse_document(docstate.export_document(restored))


# --- export ----------------------------------------------------------------------------


def test_export_has_the_renderers_shape_in_track_and_effect_order():
    state = band()
    apply(state, [create("track", "aaa", name="Tie", order="k")])  # same order as bass
    document = docstate.export_document(state)
    assert document == {
        "format": "roomtone.project",
        "version": 1,
        "sample_rate": 48000,
        "tempo_bpm": 120.0,
        "time_signature": [4, 4],
        "tracks": [
            {
                "id": "drums",
                "name": "Drums",
                "gain_db": 0.0,
                "pan": 0.0,
                "mute": False,
                "solo": False,
                "effects": [
                    {"type": "highpass", "cutoff_hz": 80.0},
                    {
                        "type": "compressor",
                        "threshold_db": -18.0,
                        "ratio": 3.0,
                        "attack_ms": 1.0,
                        "release_ms": 100.0,
                    },
                ],
                "clips": [
                    {
                        "id": "c1",
                        "source": "stem:42",
                        "start": 0.0,
                        "offset": 0.0,
                        "duration": 4.0,
                        "gain_db": 0.0,
                        "fade_in": 0.0,
                        "fade_out": 0.0,
                    },
                    {
                        "id": "c2",
                        "source": "stem:42",
                        "start": 4.0,
                        "offset": 1.0,
                        "duration": None,
                        "gain_db": 0.0,
                        "fade_in": 0.0,
                        "fade_out": 0.0,
                    },
                ],
            },
            {
                "id": "aaa",
                "name": "Tie",
                "gain_db": 0.0,
                "pan": 0.0,
                "mute": False,
                "solo": False,
                "effects": [],
                "clips": [],
            },
            {
                "id": "bass",
                "name": "Bass",
                "gain_db": -3.0,
                "pan": -0.5,
                "mute": False,
                "solo": False,
                "effects": [{"type": "gain", "gain_db": 0.0}],
                "clips": [
                    {
                        "id": "c3",
                        "source": "stem:42",
                        "start": 2.0,
                        "offset": 0.0,
                        "duration": None,
                        "gain_db": 0.0,
                        "fade_in": 0.0,
                        "fade_out": 0.0,
                    }
                ],
            },
        ],
        "master": {
            "gain_db": 0.0,
            "effects": [{"type": "limiter", "threshold_db": -1.0, "release_ms": 100.0}],
        },
    }
    parsed = parse_document(document)
    assert [t.id for t in parsed.tracks] == ["drums", "aaa", "bass"]
    assert parsed.tracks[0].clips[1].source == "stem:42"
    assert [e.type for e in parsed.master.effects] == ["limiter"]


def test_orders_sort_by_bytes_so_upper_case_comes_before_lower_case():
    state = blank()
    apply(
        state,
        [
            create("track", "t1", name="a", order="a"),
            create("track", "t2", name="B", order="B"),
            create("track", "t3", name="0", order="0"),
            create("track", "t4", name="aa", order="aA"),
        ],
    )
    assert [t["id"] for t in docstate.export_document(state)["tracks"]] == ["t3", "t2", "t1", "t4"]


def test_clips_sort_by_start_then_id():
    state = band()
    apply(state, [set_("clip", "c2", start=0.0), set_("clip", "c1", start=0.0)])
    clips = docstate.export_document(state)["tracks"][0]["clips"]
    assert [c["id"] for c in clips] == ["c1", "c2"]


def test_every_effect_type_with_its_defaults_exports_to_a_renderable_document():
    from audio.engine.effects import EFFECT_TYPES

    state = band()
    apply(
        state,
        [
            create("effect", f"fx{i}", track="bass", order=f"a{i:02d}", type=kind)
            for i, kind in enumerate(EFFECT_TYPES)
        ],
    )
    parsed = parse_document(docstate.export_document(state))
    assert [e.type for e in parsed.tracks[1].effects] == ["gain", *EFFECT_TYPES]


# --- live gestures ---------------------------------------------------------------------


def test_gesture_props_are_checked_one_by_one():
    assert docstate.validate_partial("track", {"gain_db": -6, "pan": 0.5}) == {
        "gain_db": -6.0,
        "pan": 0.5,
    }
    assert docstate.validate_partial("clip", {"start": 2.0, "duration": None}) == {
        "start": 2.0,
        "duration": None,
    }
    assert docstate.validate_partial("effect", {"params": {"cutoff_hz": 100}}) == {
        "params": {"cutoff_hz": 100}
    }
    for kind, props, where in [
        ("track", {"pan": 3}, "props.pan"),
        ("track", {"gain_db": "loud"}, "props.gain_db"),
        ("track", {"colour": "red"}, "props.colour"),
        ("comment", {"author": 3}, "props.author"),
        ("effect", {"params": {"cutoff_hz": "x"}}, "props.params"),
    ]:
        with pytest.raises(OpError) as caught:
            docstate.validate_partial(kind, props)
        assert caught.value.code == "bad_op"
        assert caught.value.message.startswith(where)
