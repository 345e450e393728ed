"""Jam recordings into the project: takes become stems, tracks and clips.

The jam room (audio/jam) writes one file per player, every take on the room
clock. Here each file is stored as a stem through the ordinary upload action
and one edit places all of them, so everyone in the project sees the new
tracks through the usual edit broadcast, and the person who stopped the
recording can undo the placement like any edit of theirs.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from audio.engine.codecs import AudioFormatError

from . import actions, editing
from .docstate import MAX_OPS_PER_EDIT
from .errors import NotFound, StudioError
from .models import DocTrack, Project, Role

ORDER_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class JamTake:
    """One player's take, as the jam room left it on disk."""

    path: str
    player: str  # shown name: becomes the track name
    start_s: float  # where the take starts, from the start of the recording


@dataclass(frozen=True)
class SavedTakes:
    stems: list[int]
    tracks: list[str]
    clips: list[str]
    revision: int | None


def order_after(key: str) -> str:
    """A fractional index (docs/protocol.md §2) strictly after `key`.

    Raises the first digit that has room above it to halfway towards "z",
    so appending many tracks keeps keys short. Never ends in "0" (the
    editor's convention, which keeps room below every key).
    """
    for i, ch in enumerate(key):
        d = ORDER_DIGITS.index(ch)
        if d < len(ORDER_DIGITS) - 1:
            return key[:i] + ORDER_DIGITS[(d + len(ORDER_DIGITS)) // 2]
    return key + ORDER_DIGITS[len(ORDER_DIGITS) // 2]


def jam_room_settings(project_id: int) -> tuple[float, int]:
    """(tempo in BPM, beats per bar) of the project, for its jam metronome."""
    row = Project.objects.filter(id=project_id).values_list("tempo_bpm", "time_signature_num")
    found = row.first()
    if found is None:
        raise NotFound("project not found")
    return float(found[0]), int(found[1])


def do_save_jam_takes(
    user_id: int,
    project_id: int,
    takes: list[JamTake],
    *,
    recorded_at: datetime | None = None,
    client_op_id: str = "",
) -> SavedTakes:
    """Add every take as a stem, then one edit with a track and a clip each.

    Clips start where their take started on the room clock, relative to the
    recording's start, so the tracks line up to the sample. Blocking: call it
    from a worker thread.
    """
    user = get_user_model().objects.filter(id=user_id).first()
    if user is None:
        raise NotFound("the user who recorded is gone")
    access = actions.access_project(user, project_id, Role.EDITOR)
    if not takes:
        return SavedTakes([], [], [], None)
    when = timezone.localtime(recorded_at or timezone.now()).strftime("%Y-%m-%d %H:%M")
    stems = []
    for take in takes:
        name = f"{take.player} · jam {when}"[:200]
        try:
            stems.append(actions.do_add_stem_from_file(access, take.path, name=name))
        except AudioFormatError as exc:
            raise StudioError(f"take of {take.player} is unusable: {exc}") from None
    orders = list(DocTrack.objects.filter(project_id=project_id).values_list("order", flat=True))
    # Byte order, as the document sorts (a database collation might not).
    order = max(orders) if orders else ""
    ops: list[dict[str, Any]] = []
    tracks, clips = [], []
    for take, stem in zip(takes, stems, strict=True):
        order = order_after(order)
        track_id, clip_id = secrets.token_hex(6), secrets.token_hex(6)
        tracks.append(track_id)
        clips.append(clip_id)
        ops.append(
            {
                "op": "create",
                "kind": "track",
                "id": track_id,
                "props": {"name": take.player[:200] or "Player", "order": order},
            }
        )
        ops.append(
            {
                "op": "create",
                "kind": "clip",
                "id": clip_id,
                "props": {"track": track_id, "source": f"stem:{stem.id}", "start": take.start_s},
            }
        )
    op_id = client_op_id or f"jam-{secrets.token_hex(12)}"
    revision = None
    # A track and its clip always travel in the same edit.
    per_edit = MAX_OPS_PER_EDIT - MAX_OPS_PER_EDIT % 2
    for n, first in enumerate(range(0, len(ops), per_edit)):
        chunk = ops[first : first + per_edit]
        revision = editing.do_edit(
            user, project_id, chunk, client_op_id=op_id if n == 0 else f"{op_id}-{n}"
        ).revision
    return SavedTakes([s.id for s in stems], tracks, clips, revision)
