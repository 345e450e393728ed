"""The editable project document: flat state, typed ops, validation and inverses.

No ORM here. The server validates an edit against the part of the state it
loaded, the op log is replayed with `replay`, and tests compare both, so there
is one definition of what an op does (docs/protocol.md §2–3).

State is `{kind: {id: props}}`; the project's own settings live under
`state["project"]["project"]`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from audio.engine.effects import EFFECT_TYPES, EffectError, effect_defaults, parse_effect

State = dict[str, dict[str, dict[str, Any]]]
OpDict = dict[str, Any]

KINDS = ("project", "track", "clip", "effect", "marker", "comment")
PROJECT_ID = "project"
MAX_OPS_PER_EDIT = 100
SAMPLE_RATES = (44100, 48000)
TIME_SIGNATURE_DENOMINATORS = (1, 2, 4, 8, 16)
SOURCE_PREFIX = "stem:"
# A clip may end this far past its source (float rounding of seconds).
_SOURCE_SLACK_S = 1e-6

ObjId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
OrderKey = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{1,64}$")]
GainDb = Annotated[float, Field(ge=-120.0, le=24.0)]
Seconds = Annotated[float, Field(ge=0.0, le=86400.0)]


class OpError(Exception):
    """An op the server refuses; `code` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Strict(BaseModel):
    # strict: no "3" for 3, no true for 1; NaN and infinities are refused.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Op(_Strict):
    op: Literal["create", "set", "delete"]
    kind: Literal["project", "track", "clip", "effect", "marker", "comment"]
    id: ObjId
    props: dict[str, Any] = Field(default_factory=dict)


class ProjectProps(_Strict):
    sample_rate: Literal[44100, 48000]
    tempo_bpm: Annotated[float, Field(ge=20.0, le=400.0)]
    # A JSON array; strict mode would refuse a list for a tuple type.
    time_signature: Annotated[list[int], Field(min_length=2, max_length=2)]
    master_gain_db: GainDb = 0.0


class TrackProps(_Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    order: OrderKey
    gain_db: GainDb = 0.0
    pan: Annotated[float, Field(ge=-1.0, le=1.0)] = 0.0
    mute: bool = False
    solo: bool = False


class ClipProps(_Strict):
    track: ObjId
    source: Annotated[str, StringConstraints(pattern=r"^stem:[0-9]{1,18}$")]
    start: Seconds = 0.0
    offset: Seconds = 0.0
    duration: Annotated[float, Field(gt=0.0, le=86400.0)] | None = None
    gain_db: GainDb = 0.0
    fade_in: Annotated[float, Field(ge=0.0, le=3600.0)] = 0.0
    fade_out: Annotated[float, Field(ge=0.0, le=3600.0)] = 0.0


class EffectProps(_Strict):
    track: ObjId | None = None
    order: OrderKey
    type: str
    params: dict[str, Any] = Field(default_factory=dict)


class MarkerProps(_Strict):
    time: Seconds
    name: Annotated[str, StringConstraints(max_length=200)] = ""


class CommentProps(_Strict):
    time: Seconds
    track: ObjId | None = None
    parent: ObjId | None = None
    text: Annotated[str, StringConstraints(min_length=1, max_length=5000)]
    resolved: bool = False
    # Set by the server from who sent the op; clients may not send them.
    author: int | None = None
    author_name: str = ""
    created_at: str = ""


PROPS_MODELS: dict[str, type[_Strict]] = {
    "project": ProjectProps,
    "track": TrackProps,
    "clip": ClipProps,
    "effect": EffectProps,
    "marker": MarkerProps,
    "comment": CommentProps,
}
# Properties fixed at creation: changing them would be a different object.
IMMUTABLE = {
    "clip": {"source"},
    "effect": {"track", "type"},
    "comment": {"track", "parent", "author", "author_name", "created_at"},
}
SERVER_SET = {"comment": {"author", "author_name", "created_at"}}
# Ops in these kinds may come from viewers; they never enter undo history.
CONVERSATION_KINDS = frozenset({"comment"})


@dataclass(frozen=True)
class StemInfo:
    duration_s: float
    usable: bool


@dataclass
class Context:
    """What validation needs from outside the document."""

    user_id: int
    user_name: str
    now_iso: str
    can_edit: bool
    stem_info: Callable[[int], StemInfo | None]


def empty_state() -> State:
    return {kind: {} for kind in KINDS}


def _error_text(exc: ValidationError, prefix: str) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    path = f"{prefix}.{where}" if where else prefix
    return f"{path}: {err['msg']}"


def parse_ops(raw: Any) -> list[Op]:
    if not isinstance(raw, list) or not raw:
        raise OpError("bad_op", "ops: must be a non-empty list")
    if len(raw) > MAX_OPS_PER_EDIT:
        raise OpError("bad_op", f"ops: at most {MAX_OPS_PER_EDIT} ops per edit")
    ops = []
    for i, item in enumerate(raw):
        try:
            op = Op.model_validate(item)
        except ValidationError as exc:
            raise OpError("bad_op", _error_text(exc, f"ops[{i}]")) from None
        if (op.kind == "project") != (op.id == PROJECT_ID):
            raise OpError("bad_op", f"ops[{i}].id: the project's id is {PROJECT_ID!r}")
        if op.kind == "project" and op.op != "set":
            raise OpError("bad_op", f"ops[{i}].op: the project can only be set")
        ops.append(op)
    return ops


def is_conversation(ops: Iterable[Op | OpDict]) -> bool:
    return all((op.kind if isinstance(op, Op) else op["kind"]) in CONVERSATION_KINDS for op in ops)


# --- mechanical application: the op log, other clients and the DB all use this ---


def replay(state: State, op: OpDict) -> None:
    """Apply one op as the server applied it (already validated, cascades
    spelled out). Used for the op log and by clients."""
    objects = state[op["kind"]]
    if op["op"] == "create":
        objects[op["id"]] = copy.deepcopy(op["props"])
    elif op["op"] == "set":
        target = objects[op["id"]]
        for key, value in op["props"].items():
            if key == "params":
                target["params"] = {**target["params"], **value}
            else:
                target[key] = copy.deepcopy(value)
    else:
        del objects[op["id"]]


def replay_all(state: State, ops: Iterable[OpDict]) -> None:
    for op in ops:
        replay(state, op)


# --- validation of new ops ----------------------------------------------------


def _validated(kind: str, props: dict[str, Any], path: str) -> dict[str, Any]:
    try:
        model = PROPS_MODELS[kind].model_validate(props)
    except ValidationError as exc:
        raise OpError("bad_op", _error_text(exc, path)) from None
    data = model.model_dump()
    if kind == "project":
        beats, note = data["time_signature"]
        if not 1 <= beats <= 32 or note not in TIME_SIGNATURE_DENOMINATORS:
            raise OpError(
                "bad_op",
                f"{path}.time_signature: must be [beats 1-32, note value 1, 2, 4, 8 or 16]",
            )
    return data


def _check_clip(state: State, props: dict[str, Any], ctx: Context, path: str) -> None:
    if props["track"] not in state["track"]:
        raise OpError("not_found", f"{path}.track: no track {props['track']!r}")
    stem_id = int(props["source"][len(SOURCE_PREFIX) :])
    info = ctx.stem_info(stem_id)
    if info is None:
        raise OpError("not_found", f"{path}.source: no stem {stem_id} in this project")
    if not info.usable:
        raise OpError("bad_op", f"{path}.source: stem {stem_id} failed analysis")
    if props["offset"] >= info.duration_s:
        raise OpError(
            "bad_op", f"{path}.offset: must be before the end of the source ({info.duration_s:g} s)"
        )
    if (
        props["duration"] is not None
        and props["offset"] + props["duration"] > info.duration_s + _SOURCE_SLACK_S
    ):
        raise OpError(
            "bad_op",
            f"{path}.duration: offset + duration must be within the source ({info.duration_s:g} s)",
        )


def _check_effect(state: State, props: dict[str, Any], sample_rate: int, path: str) -> None:
    if props["track"] is not None and props["track"] not in state["track"]:
        raise OpError("not_found", f"{path}.track: no track {props['track']!r}")
    if props["type"] not in EFFECT_TYPES:
        raise OpError(
            "bad_op",
            f"{path}.type: unknown effect type {props['type']!r} "
            f"(known: {', '.join(EFFECT_TYPES)})",
        )
    try:
        effect = parse_effect(
            {"type": props["type"], **props["params"]}, f"{path}.params", sample_rate
        )
    except EffectError as exc:
        raise OpError("bad_op", str(exc)) from None
    props["params"] = dict(effect.params)


def _check_effects_at(state: State, sample_rate: int, path: str) -> None:
    """Every effect must stay valid at a new sample rate (cutoffs below Nyquist).
    The caller loads all effects when an op changes the rate."""
    for effect_id, effect in sorted(state["effect"].items()):
        where = f"effect {effect_id!r} params"
        try:
            parse_effect({"type": effect["type"], **effect["params"]}, where, sample_rate)
        except EffectError as exc:
            raise OpError("bad_op", f"{path}: {exc}") from None


def _check_refs(state: State, kind: str, props: dict[str, Any], ctx: Context, path: str) -> None:
    if kind == "clip":
        _check_clip(state, props, ctx, path)
    elif kind == "effect":
        _check_effect(state, props, _sample_rate(state), path)
    elif kind == "comment" and props["parent"] is not None:
        parent = state["comment"].get(props["parent"])
        if parent is None:
            raise OpError("not_found", f"{path}.parent: no comment {props['parent']!r}")


def _sample_rate(state: State) -> int:
    project = state["project"].get(PROJECT_ID)
    return int(project["sample_rate"]) if project else 48000


def _create(state: State, op: Op, ctx: Context, path: str) -> tuple[list[OpDict], list[OpDict]]:
    kind = op.kind
    if op.id in state[kind]:
        raise OpError("conflict", f"{path}.id: a {kind} {op.id!r} already exists")
    server_set = SERVER_SET.get(kind, set()) & set(op.props)
    if server_set:
        raise OpError("bad_op", f"{path}.props.{sorted(server_set)[0]}: set by the server")
    props = dict(op.props)
    if kind == "effect":
        kind_name = props.get("type")
        if isinstance(kind_name, str) and kind_name in EFFECT_TYPES:
            given = props.get("params", {})
            if isinstance(given, dict):
                props["params"] = {**effect_defaults(kind_name), **given}
    if kind == "comment":
        props.update(author=ctx.user_id, author_name=ctx.user_name, created_at=ctx.now_iso)
        parent_id = props.get("parent")
        # Not a string: validation below names the bad type.
        parent = state["comment"].get(parent_id) if isinstance(parent_id, str) else None
        if parent is not None and parent["parent"] is not None:
            # Threads are one level deep: a reply to a reply joins the thread.
            props["parent"] = parent["parent"]
    data = _validated(kind, props, f"{path}.props")
    _check_refs(state, kind, data, ctx, f"{path}.props")
    if kind == "comment" and data["track"] is not None and data["track"] not in state["track"]:
        # Checked at creation only: a comment outlives the track it was pinned to.
        raise OpError("not_found", f"{path}.props.track: no track {data['track']!r}")
    applied = {"op": "create", "kind": kind, "id": op.id, "props": data}
    return [applied], [{"op": "delete", "kind": kind, "id": op.id}]


def _set(state: State, op: Op, ctx: Context, path: str) -> tuple[list[OpDict], list[OpDict]]:
    kind = op.kind
    current = state[kind].get(op.id)
    if current is None:
        raise OpError("not_found", f"{path}.id: no {kind} {op.id!r}")
    if not op.props:
        raise OpError("bad_op", f"{path}.props: nothing to set")
    fixed = IMMUTABLE.get(kind, set()) & set(op.props)
    if fixed:
        raise OpError("bad_op", f"{path}.props.{sorted(fixed)[0]}: cannot be changed")
    moved = {"text", "time"} & set(op.props)
    if kind == "comment" and moved and current["author"] != ctx.user_id:
        key = sorted(moved)[0]
        raise OpError("forbidden", f"{path}.props.{key}: only its author can change a comment")
    merged = {**current, **op.props}
    if kind == "effect":
        given = op.props.get("params", {})
        if not isinstance(given, dict):
            raise OpError("bad_op", f"{path}.props.params: must be an object")
        merged["params"] = {**current["params"], **given}
    data = _validated(kind, merged, f"{path}.props")
    _check_refs(state, kind, data, ctx, f"{path}.props")
    if kind == "project" and data["sample_rate"] != current["sample_rate"]:
        _check_effects_at(state, data["sample_rate"], f"{path}.props.sample_rate")
    new_props: dict[str, Any] = {}
    old_props: dict[str, Any] = {}
    for key in op.props:
        if key == "params":
            new_props["params"] = {k: data["params"][k] for k in op.props["params"]}
            old_props["params"] = {k: current["params"][k] for k in op.props["params"]}
        else:
            new_props[key] = data[key]
            old_props[key] = copy.deepcopy(current[key])
    applied = {"op": "set", "kind": kind, "id": op.id, "props": new_props}
    return [applied], [{"op": "set", "kind": kind, "id": op.id, "props": old_props}]


def _delete(state: State, op: Op, ctx: Context, path: str) -> tuple[list[OpDict], list[OpDict]]:
    kind = op.kind
    current = state[kind].get(op.id)
    if current is None:
        raise OpError("not_found", f"{path}.id: no {kind} {op.id!r}")
    if kind == "comment" and not ctx.can_edit and current["author"] != ctx.user_id:
        raise OpError("forbidden", f"{path}: viewers can delete only their own comments")
    doomed: list[tuple[str, str]] = []
    if kind == "track":
        doomed += [("clip", i) for i, c in state["clip"].items() if c["track"] == op.id]
        doomed += [("effect", i) for i, e in state["effect"].items() if e["track"] == op.id]
    elif kind == "comment":
        doomed += [("comment", i) for i, c in state["comment"].items() if c["parent"] == op.id]
    doomed.append((kind, op.id))
    applied = [{"op": "delete", "kind": k, "id": i} for k, i in doomed]
    # Recreate the parent first when undoing.
    inverse = [
        {"op": "create", "kind": k, "id": i, "props": copy.deepcopy(state[k][i])}
        for k, i in reversed(doomed)
    ]
    return applied, inverse


def apply_ops(
    state: State, ops: list[Op], ctx: Context, *, lenient: bool = False
) -> tuple[list[OpDict], list[OpDict]]:
    """Validate and apply `ops` in order to `state` (changed in place).

    Returns the ops as applied (what to store and broadcast) and the ops that
    undo them. Strict mode raises OpError on the first bad op, leaving `state`
    partly changed: callers work on a copy or roll back. Lenient mode (undo,
    redo, restore) skips what no longer applies, e.g. an object someone else
    deleted since.
    """
    applied: list[OpDict] = []
    inverse: list[OpDict] = []
    for i, op in enumerate(ops):
        path = f"ops[{i}]"
        if not ctx.can_edit and op.kind not in CONVERSATION_KINDS:
            raise OpError("forbidden", "viewers can comment but not edit")
        try:
            if op.op == "create":
                done, undo = _create(state, op, ctx, path)
            elif op.op == "set":
                done, undo = _set(state, op, ctx, path)
            else:
                done, undo = _delete(state, op, ctx, path)
        except OpError:
            if lenient:
                continue
            raise
        replay_all(state, done)
        applied += done
        inverse = undo + inverse
    return applied, inverse


def lenient_ops(raw: list[OpDict]) -> list[Op]:
    """Stored ops back into typed form, for undo, redo and restore.

    Creates are turned back into what a client would send: server-set fields
    are dropped (and re-derived)."""
    out = []
    for item in raw:
        props = {
            k: v
            for k, v in item.get("props", {}).items()
            if k not in SERVER_SET.get(item["kind"], ())
        }
        out.append(Op(op=item["op"], kind=item["kind"], id=item["id"], props=props))
    return out


def diff_ops(current: State, target: State) -> list[OpDict]:
    """Ops that turn `current` into `target`, comments excepted (a restore
    brings back the music, not the conversation)."""
    ops: list[OpDict] = []
    cur_p, tgt_p = current["project"].get(PROJECT_ID, {}), target["project"].get(PROJECT_ID, {})
    changed = {k: v for k, v in tgt_p.items() if cur_p.get(k) != v}
    settings = [{"op": "set", "kind": "project", "id": PROJECT_ID, "props": changed}]
    # Effects must fit the sample rate at every step: a higher rate first,
    # a lower one after the effects have been changed.
    lower_rate = changed.get("sample_rate", 0) < cur_p.get("sample_rate", 0)
    if changed and not lower_rate:
        ops += settings
    # Creates and changes first, tracks before what goes on them; deletes
    # last, so deleting a track cannot take along a clip that moves off it.
    for kind in ("track", "clip", "effect", "marker"):
        for obj_id, props in sorted(target[kind].items()):
            now = current[kind].get(obj_id)
            if now is None:
                ops.append({"op": "create", "kind": kind, "id": obj_id, "props": props})
                continue
            fixed = IMMUTABLE.get(kind, set())
            if any(now.get(k) != props.get(k) for k in fixed):
                # Same id, different source or type: replace the object.
                ops.append({"op": "delete", "kind": kind, "id": obj_id})
                ops.append({"op": "create", "kind": kind, "id": obj_id, "props": props})
                continue
            changes = {k: v for k, v in props.items() if now.get(k) != v and k not in fixed}
            if changes:
                ops.append({"op": "set", "kind": kind, "id": obj_id, "props": changes})
    for kind in ("clip", "effect", "marker", "track"):
        for obj_id in sorted(set(current[kind]) - set(target[kind])):
            ops.append({"op": "delete", "kind": kind, "id": obj_id})
    if changed and lower_rate:
        ops += settings
    return ops


def kinds_touched(ops: Iterable[OpDict]) -> list[str]:
    return sorted({op["kind"] for op in ops})


# --- export in the renderer's shape (ARCHITECTURE.md §4) ------------------------


def _ordered(objects: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return sorted(objects.items(), key=lambda item: (item[1]["order"].encode(), item[0]))


def export_document(state: State) -> dict[str, Any]:
    project = state["project"][PROJECT_ID]

    def effects_of(track: str | None) -> list[dict[str, Any]]:
        on_bus = {i: e for i, e in state["effect"].items() if e["track"] == track}
        return [{"type": e["type"], **e["params"]} for _, e in _ordered(on_bus)]

    tracks = []
    for track_id, track in _ordered(state["track"]):
        clips = sorted(
            ((i, c) for i, c in state["clip"].items() if c["track"] == track_id),
            key=lambda item: (item[1]["start"], item[0]),
        )
        tracks.append(
            {
                "id": track_id,
                "name": track["name"],
                "gain_db": track["gain_db"],
                "pan": track["pan"],
                "mute": track["mute"],
                "solo": track["solo"],
                "effects": effects_of(track_id),
                "clips": [
                    {
                        "id": clip_id,
                        "source": clip["source"],
                        "start": clip["start"],
                        "offset": clip["offset"],
                        "duration": clip["duration"],
                        "gain_db": clip["gain_db"],
                        "fade_in": clip["fade_in"],
                        "fade_out": clip["fade_out"],
                    }
                    for clip_id, clip in clips
                ],
            }
        )
    return {
        "format": "roomtone.project",
        "version": 1,
        "sample_rate": project["sample_rate"],
        "tempo_bpm": project["tempo_bpm"],
        "time_signature": list(project["time_signature"]),
        "tracks": tracks,
        "master": {"gain_db": project["master_gain_db"], "effects": effects_of(None)},
    }


_partial_adapters: dict[tuple[str, str], Any] = {}


def validate_partial(kind: str, props: dict[str, Any]) -> dict[str, Any]:
    """Check each property on its own (types and ranges), without the object:
    enough for live gestures, which are shown, never stored."""
    model = PROPS_MODELS[kind]
    out: dict[str, Any] = {}
    for key, value in props.items():
        field = model.model_fields.get(key)
        if field is None or key in SERVER_SET.get(kind, ()):
            raise OpError("bad_op", f"props.{key}: unknown {kind} property")
        if key == "params":
            if not isinstance(value, dict) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()
            ):
                raise OpError("bad_op", "props.params: must map names to numbers")
            out[key] = value
            continue
        adapter = _partial_adapters.get((kind, key))
        if adapter is None:
            # Annotated needs at least one piece of metadata (bool, duration have none).
            annotation: Any = (
                Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
            )
            adapter = TypeAdapter(
                annotation,
                config=ConfigDict(strict=True, allow_inf_nan=False),
            )
            _partial_adapters[(kind, key)] = adapter
        try:
            out[key] = adapter.validate_python(value)
        except ValidationError as exc:
            raise OpError("bad_op", _error_text(exc, f"props.{key}")) from None
    return out
