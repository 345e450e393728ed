"""The project document (ARCHITECTURE.md §4): typed model and strict parser.

`parse_document` accepts the JSON shape (already decoded into Python objects)
and either returns frozen dataclasses or raises `DocumentError` whose message
starts with the path of the offending value, e.g.
``tracks[1].clips[0].fade_in: must be >= 0``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from audio.engine.effects import Effect, parse_effect

__all__ = [
    "Clip",
    "Document",
    "DocumentError",
    "Effect",
    "Master",
    "Track",
    "parse_document",
]

FORMAT = "roomtone.project"
VERSION = 1
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 384000
# Gains beyond these are mistakes, not mixing decisions; refusing them early
# keeps float32 far from overflow.
MIN_GAIN_DB = -120.0
MAX_GAIN_DB = 24.0


class DocumentError(ValueError):
    """The document does not follow §4; the message names the offending path."""


@dataclass(frozen=True)
class Clip:
    id: str
    source: str
    start: float = 0.0
    offset: float = 0.0
    duration: float | None = None
    gain_db: float = 0.0
    fade_in: float = 0.0
    fade_out: float = 0.0


@dataclass(frozen=True)
class Track:
    id: str
    name: str
    gain_db: float = 0.0
    pan: float = 0.0
    mute: bool = False
    solo: bool = False
    effects: tuple[Effect, ...] = ()
    clips: tuple[Clip, ...] = ()


@dataclass(frozen=True)
class Master:
    gain_db: float = 0.0
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True)
class Document:
    sample_rate: int
    tracks: tuple[Track, ...]
    master: Master = Master()
    tempo_bpm: float = 120.0
    time_signature: tuple[int, int] = (4, 4)


_TOP_FIELDS = {
    "format",
    "version",
    "sample_rate",
    "tempo_bpm",
    "time_signature",
    "tracks",
    "master",
}
_TRACK_FIELDS = {"id", "name", "gain_db", "pan", "mute", "solo", "effects", "clips"}
_CLIP_FIELDS = {"id", "source", "start", "offset", "duration", "gain_db", "fade_in", "fade_out"}
_MASTER_FIELDS = {"gain_db", "effects"}


def _obj(value: Any, path: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DocumentError(f"{path or 'document'}: must be an object")
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        where = f"{path}." if path else ""
        raise DocumentError(f"{where}{unknown[0]}: unknown field")
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _number(
    obj: Mapping[str, Any],
    key: str,
    path: str,
    default: float,
    lo: float | None = None,
    hi: float | None = None,
) -> float:
    where = _join(path, key)
    value = obj.get(key, default)
    # bool is an int subclass; true/false as a gain is a client bug, not 1/0.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DocumentError(f"{where}: must be a number")
    value = float(value)
    if not math.isfinite(value):
        raise DocumentError(f"{where}: must be finite")
    if lo is not None and value < lo:
        raise DocumentError(f"{where}: must be >= {lo:g}")
    if hi is not None and value > hi:
        raise DocumentError(f"{where}: must be <= {hi:g}")
    return value


def _bool(obj: Mapping[str, Any], key: str, path: str) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise DocumentError(f"{_join(path, key)}: must be true or false")
    return value


def _string(obj: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str:
    where = _join(path, key)
    if key not in obj:
        if default is None:
            raise DocumentError(f"{where}: required")
        return default
    value = obj[key]
    if not isinstance(value, str) or not value:
        raise DocumentError(f"{where}: must be a non-empty string")
    return value


def _list(obj: Mapping[str, Any], key: str, path: str) -> list[Any]:
    value = obj.get(key, [])
    if not isinstance(value, list):
        raise DocumentError(f"{_join(path, key)}: must be a list")
    return value


def _effects(obj: Mapping[str, Any], path: str, sample_rate: int) -> tuple[Effect, ...]:
    where = _join(path, "effects")
    items = _list(obj, "effects", path)
    try:
        return tuple(
            parse_effect(item, f"{where}[{i}]", sample_rate) for i, item in enumerate(items)
        )
    except ValueError as exc:
        raise DocumentError(str(exc)) from None


def _clip(value: Any, path: str) -> Clip:
    obj = _obj(value, path, _CLIP_FIELDS)
    duration_raw = obj.get("duration")
    duration = None
    if duration_raw is not None:
        duration = _number(obj, "duration", path, 0.0, lo=0.0)
    return Clip(
        id=_string(obj, "id", path),
        source=_string(obj, "source", path),
        start=_number(obj, "start", path, 0.0, lo=0.0),
        offset=_number(obj, "offset", path, 0.0, lo=0.0),
        duration=duration,
        gain_db=_number(obj, "gain_db", path, 0.0, MIN_GAIN_DB, MAX_GAIN_DB),
        fade_in=_number(obj, "fade_in", path, 0.0, lo=0.0),
        fade_out=_number(obj, "fade_out", path, 0.0, lo=0.0),
    )


def _track(value: Any, path: str, sample_rate: int) -> Track:
    obj = _obj(value, path, _TRACK_FIELDS)
    track_id = _string(obj, "id", path)
    clips = tuple(_clip(c, f"{path}.clips[{i}]") for i, c in enumerate(_list(obj, "clips", path)))
    seen: set[str] = set()
    for i, clip in enumerate(clips):
        if clip.id in seen:
            raise DocumentError(f"{path}.clips[{i}].id: duplicate clip id {clip.id!r}")
        seen.add(clip.id)
    return Track(
        id=track_id,
        name=_string(obj, "name", path, default=track_id),
        gain_db=_number(obj, "gain_db", path, 0.0, MIN_GAIN_DB, MAX_GAIN_DB),
        pan=_number(obj, "pan", path, 0.0, -1.0, 1.0),
        mute=_bool(obj, "mute", path),
        solo=_bool(obj, "solo", path),
        effects=_effects(obj, path, sample_rate),
        clips=clips,
    )


def parse_document(data: Any) -> Document:
    """Validate a decoded JSON project document and return its typed form."""
    obj = _obj(data, "", _TOP_FIELDS)
    if obj.get("format") != FORMAT:
        raise DocumentError(f"format: must be {FORMAT!r}")
    if obj.get("version") != VERSION or isinstance(obj.get("version"), bool):
        raise DocumentError(f"version: must be {VERSION}")
    rate = obj.get("sample_rate")
    if isinstance(rate, bool) or not isinstance(rate, int):
        raise DocumentError("sample_rate: must be an integer")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise DocumentError(f"sample_rate: must be between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE}")
    tempo = _number(obj, "tempo_bpm", "", 120.0, lo=1.0, hi=999.0)
    signature = obj.get("time_signature", [4, 4])
    if (
        not isinstance(signature, list)
        or len(signature) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in signature)
    ):
        raise DocumentError("time_signature: must be two positive integers")
    if "tracks" not in obj:
        raise DocumentError("tracks: required")
    raw_tracks = _list(obj, "tracks", "")
    tracks = tuple(_track(t, f"tracks[{i}]", rate) for i, t in enumerate(raw_tracks))
    seen: set[str] = set()
    for i, track in enumerate(tracks):
        if track.id in seen:
            raise DocumentError(f"tracks[{i}].id: duplicate track id {track.id!r}")
        seen.add(track.id)
    master_obj = _obj(obj.get("master", {}), "master", _MASTER_FIELDS)
    master = Master(
        gain_db=_number(master_obj, "gain_db", "master", 0.0, MIN_GAIN_DB, MAX_GAIN_DB),
        effects=_effects(master_obj, "master", rate),
    )
    return Document(
        sample_rate=rate,
        tracks=tracks,
        master=master,
        tempo_bpm=tempo,
        time_signature=(int(signature[0]), int(signature[1])),
    )
