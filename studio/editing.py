"""Writes to the project document: edits, undo and redo, versions and restore.

Every change runs in one transaction holding the project row: validate against
the stored objects (studio.docstate), write the rows, bump the revision, append
to the op log, and broadcast after commit (docs/protocol.md §3–5).
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Model
from django.utils import timezone

from audio.engine.effects import EFFECT_TYPES, effect_defaults
from collab.broadcast import send_on_commit

from . import docstate, rowsql
from .docstate import PROJECT_ID, Context, Op, OpDict, OpError, State, StemInfo
from .errors import NotFound, StudioError
from .models import (
    ROLE_RANK,
    Comment,
    DocClip,
    DocEffect,
    DocMarker,
    DocTrack,
    Edit,
    EditKind,
    Membership,
    Project,
    Role,
    Stem,
    StemStatus,
    Version,
    VersionKind,
)
from .payloads import project_payload

T = TypeVar("T")

# A client this far behind gets a snapshot instead of the edits it missed, and
# may not base new edits on what it has.
MAX_SYNC_EDITS = 500
CHECKPOINT_EVERY = 100
CHECKPOINT_AFTER = timedelta(minutes=10)
UNDOABLE = (EditKind.EDIT, EditKind.REDO, EditKind.RESTORE, EditKind.SETTINGS)
PLAIN = (EditKind.EDIT, EditKind.RESTORE, EditKind.SETTINGS)


class EditError(StudioError):
    """An edit refused with a protocol error code (docs/protocol.md §8)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)
        self.status = {"not_found": 404, "forbidden": 403, "conflict": 409}.get(code, 400)


@dataclass(frozen=True)
class EditResult:
    revision: int
    duplicate: bool = False


# --- rows <-> props -----------------------------------------------------------------


def _track_props(row: DocTrack) -> dict[str, Any]:
    return {
        "name": row.name,
        "order": row.order,
        "gain_db": row.gain_db,
        "pan": row.pan,
        "mute": row.mute,
        "solo": row.solo,
    }


def _clip_props(row: DocClip) -> dict[str, Any]:
    return {
        "track": row.track_uid,
        "source": f"{docstate.SOURCE_PREFIX}{row.stem_id}",
        "start": row.start,
        "offset": row.offset,
        "duration": row.duration,
        "gain_db": row.gain_db,
        "fade_in": row.fade_in,
        "fade_out": row.fade_out,
    }


def _effect_props(row: DocEffect) -> dict[str, Any]:
    # Parameters added to an effect type after this row was written take
    # their defaults, so every parameter is always present.
    defaults = effect_defaults(row.type) if row.type in EFFECT_TYPES else {}
    return {
        "track": row.track_uid or None,
        "order": row.order,
        "type": row.type,
        "params": {**defaults, **row.params},
    }


def _marker_props(row: DocMarker) -> dict[str, Any]:
    return {"time": row.time, "name": row.name}


def _comment_props(row: Comment) -> dict[str, Any]:
    return {
        "time": row.time,
        "track": row.track_uid or None,
        "parent": row.parent_uid or None,
        "text": row.text,
        "resolved": row.resolved,
        "author": row.author_id,
        "author_name": row.author_name,
        "created_at": row.created_at.isoformat(),
    }


_ROWS: dict[str, tuple[type[Model], Any]] = {
    "track": (DocTrack, _track_props),
    "clip": (DocClip, _clip_props),
    "effect": (DocEffect, _effect_props),
    "marker": (DocMarker, _marker_props),
    "comment": (Comment, _comment_props),
}


def _columns(kind: str, props: dict[str, Any]) -> dict[str, Any]:
    """Protocol props to model fields (only the keys given)."""
    out: dict[str, Any] = {}
    for key, value in props.items():
        if key == "track":
            out["track_uid"] = value or ""
        elif key == "parent":
            out["parent_uid"] = value or ""
        elif key == "source":
            out["stem_id"] = int(value[len(docstate.SOURCE_PREFIX) :])
        elif key == "author":
            out["author_id"] = value
        elif key == "created_at":
            out["created_at"] = datetime.fromisoformat(value)
        else:
            out[key] = value
    return out


def _project_props(project: Project) -> dict[str, Any]:
    return {
        "sample_rate": project.sample_rate,
        "tempo_bpm": project.tempo_bpm,
        "time_signature": [project.time_signature_num, project.time_signature_den],
        "master_gain_db": project.master_gain_db,
    }


def _set_project_columns(project: Project, props: dict[str, Any]) -> list[str]:
    fields = []
    for key, value in props.items():
        if key == "time_signature":
            project.time_signature_num, project.time_signature_den = value
            fields += ["time_signature_num", "time_signature_den"]
        else:
            setattr(project, key, value)
            fields.append(key)
    return fields


def full_state(project: Project, *, comments: bool = True) -> State:
    """The whole document as stored now (a fresh fetch)."""
    state = docstate.empty_state()
    state["project"][PROJECT_ID] = _project_props(project)
    for kind, (model, to_props) in _ROWS.items():
        if kind == "comment" and not comments:
            continue
        for row in model._default_manager.filter(project=project).order_by("id"):
            state[kind][row.uid] = to_props(row)  # type: ignore[attr-defined]
    return state


def _wanted(ops: list[Op]) -> dict[str, set[str]]:
    """The objects `ops` touch or name, by kind."""
    want: dict[str, set[str]] = defaultdict(set)
    for op in ops:
        if op.kind != "project":
            want[op.kind].add(op.id)
        for key, kind in (("track", "track"), ("parent", "comment")):
            ref = op.props.get(key)
            if isinstance(ref, str):
                want[kind].add(ref)
    return want


def _load(project: Project, ops: list[Op], fetched: dict[str, list[Any]] | None = None) -> State:
    """The objects `ops` touch or refer to, enough to validate them.
    `fetched`: the rows of `_wanted(ops)`, when they were read already."""
    state = docstate.empty_state()
    state["project"][PROJECT_ID] = _project_props(project)
    if fetched is None:
        _fetch(project, state, _wanted(ops))
    else:
        for kind, rows in fetched.items():
            to_props = _ROWS[kind][1]
            for row in rows:
                state[kind][row.uid] = to_props(row)
    # Second round: what the loaded objects refer to, and what deletes cascade to.
    more: dict[str, set[str]] = defaultdict(set)
    for kind in ("clip", "effect"):
        for props in state[kind].values():
            if props["track"]:
                more["track"].add(props["track"])
    for props in state["comment"].values():
        if props["parent"]:
            more["comment"].add(props["parent"])
    _fetch(project, state, more)
    deleted_tracks = [op.id for op in ops if op.op == "delete" and op.kind == "track"]
    deleted_comments = [op.id for op in ops if op.op == "delete" and op.kind == "comment"]
    if deleted_tracks:
        for clip in DocClip.objects.filter(project=project, track_uid__in=deleted_tracks):
            state["clip"][clip.uid] = _clip_props(clip)
        for effect in DocEffect.objects.filter(project=project, track_uid__in=deleted_tracks):
            state["effect"][effect.uid] = _effect_props(effect)
    if deleted_comments:
        for comment in Comment.objects.filter(project=project, parent_uid__in=deleted_comments):
            state["comment"][comment.uid] = _comment_props(comment)
    if any(op.kind == "project" and "sample_rate" in op.props for op in ops):
        # A new rate is checked against every effect's frequencies.
        for effect in DocEffect.objects.filter(project=project):
            state["effect"].setdefault(effect.uid, _effect_props(effect))
    return state


def _fetch(project: Project, state: State, want: dict[str, set[str]]) -> None:
    for kind, ids in want.items():
        ids = ids - set(state[kind])
        if not ids:
            continue
        model, to_props = _ROWS[kind]
        for row in rowsql.by_uids(model, project.pk, sorted(ids)):
            state[kind][row.uid] = to_props(row)  # type: ignore[attr-defined]


def _persist(
    project: Project, state: State, applied: list[OpDict], writes: rowsql.Writes
) -> list[str]:
    """Write applied ops to the rows, in op order; returns the project fields changed."""
    project_fields: list[str] = []
    for op in applied:
        kind = op["kind"]
        if kind == "project":
            project_fields += _set_project_columns(project, op["props"])
            continue
        model = _ROWS[kind][0]
        if op["op"] == "create":
            writes.insert(model(project=project, uid=op["id"], **_columns(kind, op["props"])))
        elif op["op"] == "delete":
            writes.flush()
            model._default_manager.filter(project=project, uid=op["id"]).delete()
        elif op["id"] in state[kind]:
            # Effect params merge, so write the merged value, not just the keys sent.
            now = state[kind][op["id"]]
            writes.update_by_uid(
                model, project.pk, op["id"], _columns(kind, {k: now[k] for k in op["props"]})
            )
    return project_fields


def writer_threads() -> int:
    """How many database threads may write edits of different projects at the
    same time (collab.consumers.on_project_thread): settings.ROOMTONE_EDIT_THREADS
    on PostgreSQL, one on SQLite, which takes one writer at a time."""
    if connection.vendor != "postgresql":
        return 1
    return int(settings.ROOMTONE_EDIT_THREADS)


# A kept connection unused for longer than this is checked (a round trip)
# before its next use: the server may have dropped it (restart, idle timeout).
WRITER_CHECK_AFTER_IDLE_S = 1.0
# A connection kept for longer than this goes back to the pool before the
# next call and another is taken: psycopg's pool retires connections older
# than its max_lifetime (one hour by default) only when they come back, and
# kept ones would never come back. (One taken from the pool may already be up
# to an hour old, so a kept connection lives at most about two.)
WRITER_CONNECTION_LIFETIME_S = 3600.0


def on_writer_thread(func: Callable[..., T]) -> Callable[..., T]:
    """`func` for one of the long-lived project database threads
    (writer_threads() > 1), which keep their connection between calls.

    The pool's way (take a connection for every call, checked with a round
    trip, and give it back) cost an edit about a tenth of its Python in a
    py-spy profile, and one of its six round trips (docs/benchmarks.md,
    co-editing). Here a thread keeps
    its connection; one that was idle for WRITER_CHECK_AFTER_IDLE_S or more is
    checked before use, one that saw an error is checked and replaced, as
    Django does for requests (close_if_unusable_or_obsolete), and one older
    than WRITER_CONNECTION_LIFETIME_S is given back and replaced."""

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> T:
        db = connections[DEFAULT_DB_ALIAS]
        now = time.monotonic()
        if db.connection is not None:
            db.close_at = None  # kept: not obsolete by Django's CONN_MAX_AGE
            db.close_if_unusable_or_obsolete()
        if db.connection is not None:
            # Never stamped (opened outside this wrapper): treated as old.
            taken_at = getattr(db, "roomtone_taken_at", -math.inf)
            used_at = getattr(db, "roomtone_used_at", -math.inf)
            old = now - taken_at >= WRITER_CONNECTION_LIFETIME_S
            idle = now - used_at >= WRITER_CHECK_AFTER_IDLE_S
            # (Django leaves the check of pooled connections to the pool.)
            if old or (idle and not db.is_usable()):
                db.close()
        if db.connection is None:
            db.roomtone_taken_at = now  # type: ignore[attr-defined]
        try:
            return func(*args, **kwargs)
        finally:
            if db.connection is not None:
                db.close_at = None
                db.roomtone_used_at = time.monotonic()  # type: ignore[attr-defined]

    return call


# --- committing -----------------------------------------------------------------------


def _lock(project_id: int) -> Project:
    try:
        return Project.objects.select_for_update().get(id=project_id)
    except Project.DoesNotExist:
        raise NotFound("project not found") from None


def _role(user: Any, project: Project) -> str:
    if not getattr(user, "is_authenticated", False):
        raise NotFound("project not found")
    role = (
        Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    )
    if role is None:
        raise NotFound("project not found")
    return str(role)


def _can_edit(role: str) -> bool:
    return ROLE_RANK[Role(role)] >= ROLE_RANK[Role.EDITOR]


def _context(project: Project, user: Any, role: str) -> Context:
    cache: dict[int, StemInfo | None] = {}

    def stem_info(stem_id: int) -> StemInfo | None:
        if stem_id not in cache:
            row = (
                Stem.objects.filter(project=project, id=stem_id)
                .values_list("frames", "sample_rate", "status")
                .first()
            )
            cache[stem_id] = (
                None
                if row is None
                else StemInfo(
                    duration_s=row[0] / row[1] if row[1] else 0.0,
                    usable=row[2] != StemStatus.FAILED,
                )
            )
        return cache[stem_id]

    return Context(
        user_id=user.pk,
        user_name=user.get_username(),
        now_iso=timezone.now().isoformat(),
        can_edit=_can_edit(role),
        stem_info=stem_info,
    )


def _check_member(user: Any, project_id: int) -> None:
    """Before taking the project lock: a non-member must not hold up the
    project's writers (on SQLite, everyone's) on the way to a 404. Project
    sockets skip it: they checked at connect and re-read membership every
    30 s, and `_begin` reads the role again under the lock."""
    if (
        not getattr(user, "is_authenticated", False)
        or not Membership.objects.filter(project_id=project_id, user=user).exists()
    ):
        raise NotFound("project not found")


def _begin(
    user: Any, project_id: int, client_op_id: str, want: dict[str, set[str]] | None = None
) -> Begun:
    """Inside the caller's transaction: the locked project, the user's role,
    the earlier answer if this client_op_id was applied before (a resend), and
    the rows of `want` (by kind, the uids an edit touches or names).

    Hand-written statements instead of ORM queries (each costs about 0.25 ms
    of CPU to build, on the path of every edit), in one round trip on
    PostgreSQL (rowsql.lock_then_read). The role, the resend and the rows are
    read after the lock is held, in statements of their own: on PostgreSQL a
    statement that waited for the lock still sees the data as of its start,
    so reading them in the locking statement would miss a resend, a role
    change or a row committed by the writer it waited for.
    """
    if not getattr(user, "is_authenticated", False):
        raise NotFound("project not found")
    qn = connection.ops.quote_name
    kinds = sorted(kind for kind, uids in (want or {}).items() if uids)
    project, (role, done), rows = rowsql.lock_then_read(
        Project,
        project_id,
        f"SELECT (SELECT {qn('role')} FROM {qn(Membership._meta.db_table)}"
        f" WHERE {qn('project_id')} = %s AND {qn('user_id')} = %s),"
        f" (SELECT {qn('revision')} FROM {qn(Edit._meta.db_table)}"
        f" WHERE {qn('project_id')} = %s AND {qn('user_id')} = %s"
        f" AND {qn('client_op_id')} = %s AND {qn('client_op_id')} <> '' LIMIT 1)",
        [project_id, user.pk, project_id, user.pk, client_op_id],
        [rowsql.uid_read(_ROWS[kind][0], project_id, (want or {})[kind]) for kind in kinds],
        _edit_settings(),
    )
    if project is None or role is None:
        raise NotFound("project not found")
    return Begun(
        project,
        str(role),
        None if done is None else EditResult(revision=int(done), duplicate=True),
        dict(zip(kinds, rows, strict=True)) if want is not None else None,
    )


def _edit_settings() -> list[str]:
    """SET LOCAL statements for an edit's transaction (PostgreSQL): whether
    its commit waits for the disk (settings.ROOMTONE_EDIT_SYNCHRONOUS_COMMIT)."""
    if connection.vendor != "postgresql" or not rowsql.outermost_atomic_block():
        return []  # inside a caller's transaction, the caller's setting holds
    return [f"SET LOCAL synchronous_commit TO {settings.ROOMTONE_EDIT_SYNCHRONOUS_COMMIT}"]


class Begun(NamedTuple):
    """What `_begin` read under the project lock."""

    project: Project
    role: str
    done: EditResult | None  # the earlier answer to a resend
    fetched: dict[str, list[Any]] | None  # rows by kind, when asked for


@contextmanager
def _writing(
    user: Any,
    project_id: int,
    client_op_id: str,
    on_socket: bool,
    want: dict[str, set[str]] | None = None,
) -> Iterator[Begun]:
    """The transaction of an edit, undo, redo or restore, with `_begin`'s
    answer; the membership pre-check first unless a project socket asks."""
    if not on_socket:
        _check_member(user, project_id)
    with transaction.atomic():
        connection.roomtone_committed = False  # type: ignore[attr-defined]
        yield _begin(user, project_id, client_op_id, want)
        rowsql.check_nothing_after_commit()


def _record(
    project: Project,
    user: Any,
    kind: str,
    state: State,
    applied: list[OpDict],
    inverse: list[OpDict],
    client_op_id: str,
    reverses: Edit | None = None,
    *,
    last: bool = False,
) -> int:
    """Write the applied ops, the revision and the op-log row, and broadcast
    after commit. `last`: nothing follows in the transaction, so on
    PostgreSQL the commit may go in the writes' round trip (rowsql.Writes)."""
    writes = rowsql.Writes()
    project_fields = _persist(project, state, applied, writes)
    project.revision += 1
    fields = ["revision", "updated_at", *project_fields]
    if kind != EditKind.COMMENT and _checkpoint_due(project):
        writes.flush()  # the checkpoint reads the document as it now is
        _add_version(project, VersionKind.AUTO)
        fields += CHECKPOINT_FIELDS
    writes.save_fields(project, fields)
    user_name = user.get_username()
    writes.insert(
        Edit(
            project=project,
            revision=project.revision,
            user=user,
            user_name=user_name,
            client_op_id=client_op_id,
            kind=kind,
            ops=applied,
            inverse=inverse,
            reverses=reverses,
        )
    )
    # The broadcasts are registered before the last statements: they may
    # carry the commit, after which nothing may fail.
    event = edit_event(project.revision, kind, client_op_id, user.pk, user_name, applied)
    send_on_commit(project.id, event)
    if project_fields:
        send_on_commit(project.id, {"type": "project.updated", "project": project_payload(project)})
    writes.flush(last=last)
    return int(project.revision)


def edit_event(
    revision: int, kind: str, client_op_id: str, user_id: int | None, user_name: str, ops: Any
) -> dict[str, Any]:
    return {
        "type": "edit",
        "revision": revision,
        "kind": kind,
        "client_op_id": client_op_id,
        "user": {"id": user_id, "name": user_name},
        "ops": ops,
    }


def _as_error(exc: OpError) -> EditError:
    return EditError(exc.code, exc.message)


def do_edit(
    user: Any,
    project_id: int,
    raw_ops: Any,
    *,
    client_op_id: str = "",
    base_revision: int | None = None,
    kind: str = EditKind.EDIT,
    on_socket: bool = False,
) -> EditResult:
    try:
        ops = docstate.parse_ops(raw_ops)
    except OpError as exc:
        raise _as_error(exc) from None
    if docstate.is_conversation(ops):
        kind = EditKind.COMMENT
    want = _wanted(ops)
    with _writing(user, project_id, client_op_id, on_socket, want) as begun:
        project, role, done, fetched = begun
        if done is not None:
            return done
        if base_revision is not None:
            if base_revision > project.revision:
                raise EditError(
                    "bad_revision",
                    f"base_revision {base_revision} is ahead of the server ({project.revision})",
                )
            if project.revision - base_revision > MAX_SYNC_EDITS:
                raise EditError(
                    "stale_revision",
                    f"base_revision {base_revision} is more than {MAX_SYNC_EDITS} behind "
                    f"({project.revision}): resync, then send the edit again",
                )
        state = _load(project, ops, fetched)
        try:
            applied, inverse = docstate.apply_ops(state, ops, _context(project, user, role))
        except OpError as exc:
            raise _as_error(exc) from None
        # Comments are not undone, even when they came in one edit with music.
        inverse = [op for op in inverse if op["kind"] not in docstate.CONVERSATION_KINDS]
        revision = _record(project, user, kind, state, applied, inverse, client_op_id, last=True)
    return EditResult(revision=revision)


def do_undo(
    user: Any, project_id: int, client_op_id: str = "", *, on_socket: bool = False
) -> EditResult:
    return _reverse(user, project_id, client_op_id, redo=False, on_socket=on_socket)


def do_redo(
    user: Any, project_id: int, client_op_id: str = "", *, on_socket: bool = False
) -> EditResult:
    return _reverse(user, project_id, client_op_id, redo=True, on_socket=on_socket)


def _reverse(
    user: Any, project_id: int, client_op_id: str, *, redo: bool, on_socket: bool
) -> EditResult:
    with _writing(user, project_id, client_op_id, on_socket) as (project, role, done, _):
        if done is not None:
            return done
        if not _can_edit(role):
            raise EditError("forbidden", "viewers can comment but not edit")
        mine = Edit.objects.filter(project=project, user=user).order_by("-revision")
        target: Edit | None
        if redo:
            target = mine.filter(kind=EditKind.UNDO, reversed=False).first()
            if (
                target is not None
                and mine.filter(kind__in=PLAIN, revision__gt=target.revision).exists()
            ):
                target = None  # a new edit since the undo clears the redo list
        else:
            target = mine.filter(kind__in=UNDOABLE, reversed=False).first()
        if target is None:
            what = "redo" if redo else "undo"
            raise EditError(f"nothing_to_{what}", f"nothing to {what}")
        ops = docstate.lenient_ops(target.inverse)
        state = _load(project, ops)
        applied, inverse = docstate.apply_ops(
            state, ops, _context(project, user, role), lenient=True
        )
        target.reversed = True
        target.save(update_fields=["reversed"])
        kind = EditKind.REDO if redo else EditKind.UNDO
        revision = _record(
            project, user, kind, state, applied, inverse, client_op_id, target, last=True
        )
    return EditResult(revision=revision)


def do_update_settings(project: Project, user: Any, values: dict[str, Any]) -> None:
    """Project settings from the REST API, as an undoable edit of kind
    `settings`. Runs inside the caller's transaction with `project` locked."""
    props = {k: v for k, v in values.items() if _project_props(project).get(k) != v}
    if not props:
        return
    role = _role(user, project)
    ops = [Op(op="set", kind="project", id=PROJECT_ID, props=props)]
    state = _load(project, ops)
    try:
        applied, inverse = docstate.apply_ops(state, ops, _context(project, user, role))
    except OpError as exc:
        raise _as_error(exc) from None
    _record(project, user, EditKind.SETTINGS, state, applied, inverse, "")


# --- versions -----------------------------------------------------------------------


def _music_state(project: Project) -> State:
    return full_state(project, comments=False)


def _add_version(project: Project, kind: str, name: str = "", user: Any = None) -> Version:
    """A snapshot of the music as stored now, at the project's revision. The
    caller saves `CHECKPOINT_FIELDS` on the project, which remember it."""
    version = Version.objects.create(
        project=project,
        revision=project.revision,
        kind=kind,
        name=name,
        state=_music_state(project),
        created_by=user,
    )
    project.checkpoint_revision = version.revision
    project.checkpoint_at = version.created_at
    return version


CHECKPOINT_FIELDS = ["checkpoint_revision", "checkpoint_at"]


def create_initial_version(project: Project, user: Any = None) -> Version:
    version = _add_version(project, VersionKind.AUTO, user=user)
    project.save(update_fields=CHECKPOINT_FIELDS)
    return version


def _checkpoint_due(project: Project) -> bool:
    """A checkpoint every CHECKPOINT_EVERY revisions or CHECKPOINT_AFTER since
    the last version of any kind (read from the locked project row, so no
    query of its own on the path of every edit)."""
    return (
        project.checkpoint_at is None
        or project.revision - project.checkpoint_revision >= CHECKPOINT_EVERY
        or timezone.now() - project.checkpoint_at >= CHECKPOINT_AFTER
    )


def do_save_version(user: Any, project_id: int, name: Any) -> Version:
    from .actions import check_name

    with transaction.atomic():
        project = _lock(project_id)
        if not _can_edit(_role(user, project)):
            raise EditError("forbidden", "viewers cannot save versions")
        version = _add_version(project, VersionKind.NAMED, check_name(name), user)
        project.save(update_fields=CHECKPOINT_FIELDS)
        send_on_commit(project.id, {"type": "versions.changed", "project_id": project.id})
    return version


def do_restore(
    user: Any,
    project_id: int,
    version_id: int,
    client_op_id: str = "",
    *,
    on_socket: bool = False,
) -> EditResult:
    with _writing(user, project_id, client_op_id, on_socket) as (project, role, done, _):
        if done is not None:
            return done
        if not _can_edit(role):
            raise EditError("forbidden", "viewers cannot restore versions")
        version = Version.objects.filter(project=project, id=version_id).first()
        if version is None:
            raise EditError("not_found", f"no version {version_id} in this project")
        state = _music_state(project)
        ops = docstate.lenient_ops(docstate.diff_ops(state, version.state))
        applied, inverse = docstate.apply_ops(
            state, ops, _context(project, user, role), lenient=True
        )
        revision = _record(
            project, user, EditKind.RESTORE, state, applied, inverse, client_op_id, last=True
        )
    return EditResult(revision=revision)


# --- reading --------------------------------------------------------------------------


def sync_reply(user: Any, project_id: int, since: int | None) -> dict[str, Any]:
    """What a client at revision `since` needs to catch up (protocol §4).

    Membership is checked on every call: a removed member whose socket missed
    the `members.changed` event still learns nothing new."""
    project = Project.objects.filter(id=project_id).first()
    if project is None:
        raise NotFound("project not found")
    _role(user, project)
    if since is not None and 0 <= project.revision - since <= MAX_SYNC_EDITS:
        # Edit rows never change and commit with their revision bump, so the
        # rows up to the revision just read are a consistent prefix; no lock.
        rows = Edit.objects.filter(
            project=project, revision__gt=since, revision__lte=project.revision
        ).order_by("revision")
        edits = [
            edit_event(e.revision, e.kind, e.client_op_id, e.user_id, e.user_name, e.ops)
            for e in rows
        ]
        # The log is complete from the first version on; anything older
        # (a project from before the log) gets a snapshot.
        if len(edits) == project.revision - since:
            return {"type": "sync", "since": since, "revision": project.revision, "edits": edits}
    revision, state = snapshot(project.id)
    return {"type": "snapshot", "revision": revision, "state": state}


def snapshot(project_id: int, *, comments: bool = True) -> tuple[int, State]:
    """The whole state and its revision, read as one: under the project lock,
    so no edit lands between the tables read."""
    with transaction.atomic():
        project = _lock(project_id)
        return int(project.revision), full_state(project, comments=comments)


def state_at(project: Project, revision: int | None = None) -> State:
    """The document (comments aside) at `revision`: the newest version at or
    before it, with the op log replayed on top."""
    project = Project.objects.get(id=project.id)  # the caller's copy may be old
    if revision is None or revision == project.revision:
        return snapshot(project.id, comments=False)[1]
    if revision > project.revision or revision < 0:
        raise NotFound(f"revision {revision} does not exist (newest is {project.revision})")
    version = (
        Version.objects.filter(project=project, revision__lte=revision)
        .order_by("-revision")
        .first()
    )
    if version is None:
        raise NotFound(f"revision {revision} is older than this project's history")
    state: State = copy.deepcopy(version.state)
    edits = Edit.objects.filter(
        project=project, revision__gt=version.revision, revision__lte=revision
    ).order_by("revision")
    for edit in edits:
        docstate.replay_all(state, (op for op in edit.ops if op["kind"] != "comment"))
    return state


def export_document(project: Project, revision: int | None = None) -> dict[str, Any]:
    return export_at(project, revision)[1]


def export_at(project: Project, revision: int | None = None) -> tuple[int, dict[str, Any]]:
    """The renderer's document and the revision it is at."""
    if revision is None:
        current, state = snapshot(project.id, comments=False)
        return current, docstate.export_document(state)
    return revision, docstate.export_document(state_at(project, revision))


def version_list(project: Project, limit: int = 100) -> dict[str, Any]:
    versions = list(Version.objects.filter(project=project).order_by("-revision", "-id")[:limit])
    low = versions[-1].revision if versions else 0
    edits = (
        Edit.objects.filter(project=project, revision__gt=low)
        .exclude(kind=EditKind.COMMENT)
        .values_list("revision", "user_name", "ops")
    )

    def summarise(rows: Iterable[tuple[int, str, Any]]) -> list[dict[str, Any]]:
        by_user: dict[str, dict[str, Any]] = {}
        for _, name, ops in rows:
            entry = by_user.setdefault(name, {"user": name, "edits": 0, "kinds": set()})
            entry["edits"] += 1
            entry["kinds"].update(op["kind"] for op in ops)
        return [{**e, "kinds": sorted(e["kinds"])} for e in by_user.values()]

    rows = list(edits)
    # Each version lists the changes since the one before it; two versions at
    # one revision (a checkpoint and a named save) do not share them.
    changes: dict[int, list[dict[str, Any]]] = {}
    lower = low
    for v in sorted(versions, key=lambda v: (v.revision, v.id)):
        changes[v.id] = summarise(r for r in rows if lower < r[0] <= v.revision)
        lower = v.revision
    unsaved = summarise(r for r in rows if r[0] > lower)
    return {
        "revision": project.revision,
        "changes_since_last": unsaved,
        "versions": [{**version_payload(v), "changes": changes[v.id]} for v in versions],
    }


def version_payload(version: Version, *, with_state: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": version.id,
        "revision": version.revision,
        "kind": version.kind,
        "name": version.name,
        "created_by": version.created_by.get_username() if version.created_by else None,
        "created_at": version.created_at.isoformat(),
    }
    if with_state:
        data["state"] = version.state
        data["document"] = docstate.export_document(version.state)
    return data


def clips_using(stem: Stem) -> int:
    return DocClip.objects.filter(stem=stem).count()
