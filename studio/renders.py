"""Render jobs: bounce a project (now, at a revision, or a saved version) to a file.

Same conventions as studio.actions: access_* look up with a permission check,
check_* validate, do_* write in one transaction and broadcast after commit.
The document and the blobs its clips read are frozen on the job row when it is
requested; the render task (studio.tasks.render_project) turns that row into a file.

Any member may render and download: listening to the project is what viewers
are for. Cancelling is for whoever asked for the render, and editors and owners.

Caching: the engine is deterministic (docs/document.md), so a render is named
by `cache_key`, a hash of the document, the bytes of every source and the
options. Asking again for the same thing returns the stored file at once.

Retry: each run of the task claims the job by bumping `attempts` and keeps
`heartbeat_at` fresh while it works. A queued or running job whose heartbeat
is older than STALE_AFTER_S lost its worker (a crash, a restart of the embedded
server); `do_reclaim_render` queues it again, at most MAX_ATTEMPTS runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from audio.engine.master import resolve_target
from collab.broadcast import send_on_commit

from . import actions, docstate, editing
from .errors import Conflict, Forbidden, Invalid, NotFound, TooManyRequests
from .models import (
    ROLE_RANK,
    Project,
    RenderFormat,
    RenderJob,
    RenderMaster,
    RenderStatus,
    Role,
    Stem,
    Version,
    finite_or_none,
)

logger = logging.getLogger(__name__)

# Bump when the engine's output for the same input changes, so old cached
# files are no longer served for new requests.
RENDER_ENGINE_VERSION = "1"
MAX_ATTEMPTS = 3
# A running task beats at least every few seconds (with its progress); a job
# this quiet has lost its worker. Generous: fetching big sources from object
# storage and storing the result beat only before and after.
STALE_AFTER_S = 300.0
MAX_IN_FLIGHT_PER_USER = 3

IN_FLIGHT = (RenderStatus.QUEUED, RenderStatus.RUNNING)
FINISHED = (RenderStatus.DONE, RenderStatus.FAILED, RenderStatus.CANCELLED)
BIT_DEPTHS = {RenderFormat.WAV: ("16", "24", "32f"), RenderFormat.FLAC: ("16", "24")}
MP3_QUALITIES = ("320", "V2")
PRESETS = (RenderMaster.STREAMING, RenderMaster.APPLE, RenderMaster.EBU)
OPTION_FIELDS = {"format", "bit_depth", "mp3_quality", "master", "stems", "revision", "version"}
CONTENT_TYPES = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "zip": "application/zip",
}


# --- options --------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderOptions:
    format: str
    bit_depth: str  # "" for MP3
    mp3_quality: str  # "" unless MP3
    master: str  # a RenderMaster value
    master_lufs: float | None  # the target, for every master but none
    stems: bool
    revision: int | None = None
    version_id: int | None = None

    def key_part(self) -> dict[str, Any]:
        """What changes the output bytes; a preset and the same custom LUFS are equal."""
        master = None
        if self.master != RenderMaster.NONE:
            target = resolve_target(self.master_lufs)
            master = [target.lufs, target.ceiling_dbtp]
        return {
            "format": self.format,
            "bit_depth": self.bit_depth,
            "mp3_quality": self.mp3_quality,
            "master": master,
            "stems": self.stems,
        }


def _whole(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Invalid(f"{what} must be a whole number")
    return value


def check_render_options(raw: Any) -> RenderOptions:
    if not isinstance(raw, dict):
        raise Invalid("render options must be a JSON object")
    unknown = sorted(set(raw) - OPTION_FIELDS)
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(unknown)}")

    fmt = raw.get("format", RenderFormat.WAV)
    if fmt not in RenderFormat.values:
        raise Invalid(f"format must be one of {', '.join(RenderFormat.values)}")

    bit_depth = raw.get("bit_depth", "24")
    if isinstance(bit_depth, int) and not isinstance(bit_depth, bool):
        bit_depth = str(bit_depth)
    if bit_depth not in ("16", "24", "32f"):
        raise Invalid("bit_depth must be 16, 24 or 32f (32-bit float)")
    mp3_quality = raw.get("mp3_quality", "320")
    if isinstance(mp3_quality, int) and not isinstance(mp3_quality, bool):
        mp3_quality = str(mp3_quality)
    if not isinstance(mp3_quality, str) or mp3_quality.upper() not in MP3_QUALITIES:
        raise Invalid("mp3_quality must be 320 (CBR kbps) or V2 (VBR)")
    mp3_quality = mp3_quality.upper()
    if fmt == RenderFormat.MP3:
        bit_depth = ""
    else:
        mp3_quality = ""
        if bit_depth not in BIT_DEPTHS[RenderFormat(fmt)]:
            raise Invalid("FLAC stores 16 or 24-bit integers, not 32-bit float")

    master = raw.get("master", RenderMaster.NONE)
    if master is None:
        master = RenderMaster.NONE
    master_lufs: float | None = None
    if isinstance(master, int | float) and not isinstance(master, bool):
        if not math.isfinite(master) or not -60.0 <= master <= 0.0:
            raise Invalid("a custom master target must be from -60 to 0 LUFS")
        master_lufs, master = float(master), RenderMaster.CUSTOM
    elif master in PRESETS:
        master_lufs = resolve_target(master).lufs
    elif master != RenderMaster.NONE:
        raise Invalid("master must be none, streaming, apple, ebu or a LUFS number (-60 to 0)")

    stems = raw.get("stems", False)
    if not isinstance(stems, bool):
        raise Invalid("stems must be true or false")

    revision = raw.get("revision")
    version = raw.get("version")
    if revision is not None and version is not None:
        raise Invalid("give a revision or a version, not both")
    return RenderOptions(
        format=str(fmt),
        bit_depth=bit_depth,
        mp3_quality=mp3_quality,
        master=str(master),
        master_lufs=master_lufs,
        stems=stems,
        revision=None if revision is None else _whole(revision, "revision"),
        version_id=None if version is None else _whole(version, "version"),
    )


# --- cache keys and names -------------------------------------------------------------

_STEM_SOURCE = re.compile(r"stem:([0-9]{1,18})")


def cache_key(document: dict[str, Any], sources: dict[str, str], options: RenderOptions) -> str:
    canonical = json.dumps(
        {
            "engine": RENDER_ENGINE_VERSION,
            "document": document,
            "sources": sources,
            "options": options.key_part(),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _source_blobs(project: Project, document: dict[str, Any], what: str) -> dict[str, str]:
    """Every clip source of `document` -> the sha256 of its stem's bytes."""
    names = {clip["source"] for track in document["tracks"] for clip in track["clips"]}
    if not names:
        raise Invalid(f"nothing to render: {what} has no clips", code="nothing_to_render")
    ids: dict[str, int] = {}
    for name in names:
        match = _STEM_SOURCE.fullmatch(name)
        if match is None:  # the editor only ever stores stem:<id>
            raise Invalid(f"clip source {name!r} does not name a stem")
        ids[name] = int(match.group(1))
    blobs = dict(
        Stem.objects.filter(project=project, id__in=ids.values()).values_list("id", "blob_id")
    )
    missing = sorted(name for name, stem_id in ids.items() if stem_id not in blobs)
    if missing:
        raise Invalid(
            f"{what} uses stems that have since been deleted ({', '.join(missing)})",
            code="stem_deleted",
        )
    return {name: blobs[stem_id] for name, stem_id in sorted(ids.items())}


def safe_filename(name: str) -> str:
    """A file name every OS accepts, keeping spaces and non-ASCII letters."""
    text = re.sub(r'[\x00-\x1f\x7f/\\:*?"<>|]+', "_", name).strip(" .")
    return text[:150] or "render"


def _filename(
    project: Project, options: RenderOptions, revision: int, version: Version | None
) -> str:
    label = f"r{revision}"
    if version is not None and version.name:
        label = version.name
    ext = "zip" if options.stems else options.format
    suffix = " stems" if options.stems else ""
    return safe_filename(f"{project.name} {label}{suffix}") + f".{ext}"


def output_extension(job: RenderJob) -> str:
    return "zip" if job.stems else str(job.format)


# --- payload --------------------------------------------------------------------------


def _number(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def render_payload(job: RenderJob) -> dict[str, Any]:
    base = f"/api/projects/{job.project_id}/renders/{job.id}"
    version = job.version
    return {
        "id": job.id,
        "project_id": job.project_id,
        "requested_by": job.requested_by.get_username() if job.requested_by else None,
        "requested_by_id": job.requested_by_id,
        "revision": job.revision,
        "version": {"id": version.id, "name": version.name} if version is not None else None,
        "format": job.format,
        "bit_depth": job.bit_depth or None,
        "mp3_quality": job.mp3_quality or None,
        "master": job.master,
        "master_lufs": job.master_lufs,
        "stems": job.stems,
        "status": job.status,
        "progress": round(job.progress, 4),
        "error": job.error,
        "cancel_requested": job.cancel_requested,
        "cached": job.cached,
        "filename": job.filename,
        "size": job.size,
        "duration_s": _number(job.duration_s, 6),
        "lufs": _number(job.lufs),
        "true_peak_dbtp": _number(job.true_peak_dbtp),
        "peak_dbfs": _number(job.peak_dbfs),
        "pcm_sha256": job.pcm_sha256 or None,
        "cache_key": job.cache_key,
        "attempts": job.attempts,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "download_url": f"{base}/download" if job.status == RenderStatus.DONE else None,
    }


def _broadcast(job: RenderJob) -> None:
    send_on_commit(job.project_id, {"type": "render.updated", "render": render_payload(job)})


# --- access ---------------------------------------------------------------------------


def _rows() -> QuerySet[RenderJob]:
    return RenderJob.objects.select_related("requested_by", "version")


def access_render(user: actions.AnyUser, project_id: int, render_id: int) -> RenderJob:
    actions.access_project(user, project_id)
    job = _rows().filter(id=render_id, project_id=project_id).first()
    if job is None:
        raise NotFound("render not found")
    return job


def renders_for(user: actions.AnyUser, project_id: int, limit: int = 50) -> list[RenderJob]:
    access = actions.access_project(user, project_id)
    return list(_rows().filter(project=access.project)[:limit])


def is_stored(name: str, size: int | None = None) -> bool:
    """The file is there, and whole when its size is known."""
    try:
        if not name or not default_storage.exists(name):
            return False
        return size is None or default_storage.size(name) == size
    except (OSError, NotImplementedError):
        return False


# --- requesting -----------------------------------------------------------------------


def do_request_render(user: actions.AnyUser, project_id: int, options: Any) -> RenderJob:
    """A new job for `options` (see check_render_options), served from the cache
    when the same render is stored, or the identical render already in flight
    (then `reused` is set on the returned row)."""
    access = actions.access_project(user, project_id)
    opts = check_render_options(options)
    reclaim_stale(project_id=project_id)
    with transaction.atomic():
        # Holding the project row: no edit lands between reading the revision
        # and exporting the document at it.
        project = Project.objects.select_for_update().get(id=access.project.id)
        version: Version | None = None
        if opts.version_id is not None:
            version = Version.objects.filter(project=project, id=opts.version_id).first()
            if version is None:
                raise NotFound("version not found")
            revision = int(version.revision)
            document = docstate.export_document(version.state)
            what = f"version {version.name or f'r{revision}'}"
        else:
            revision = project.revision if opts.revision is None else opts.revision
            if revision > project.revision:
                raise Invalid(f"revision {revision} does not exist (newest is {project.revision})")
            try:
                document = editing.export_document(project, revision)
            except NotFound as exc:
                raise Invalid(exc.message) from None
            what = f"revision {revision}"
        sources = _source_blobs(project, document, what)
        key = cache_key(document, sources, opts)

        same = RenderJob.objects.filter(project=project, cache_key=key)
        running = same.filter(status__in=IN_FLIGHT, cancel_requested=False).order_by("-id").first()
        if running is not None:
            job = _rows().get(id=running.id)
            job.reused = True
            return job
        done = next(
            (
                j
                for j in same.filter(status=RenderStatus.DONE).order_by("-id")[:5]
                if is_stored(j.output_name, j.size)
            ),
            None,
        )
        if done is None:
            busy = RenderJob.objects.filter(
                project=project, requested_by_id=user.pk, status__in=IN_FLIGHT
            ).count()
            if busy >= MAX_IN_FLIGHT_PER_USER:
                raise TooManyRequests(
                    f"you already have {busy} renders in progress in this project: "
                    "wait for one to finish or cancel one",
                    code="too_many_renders",
                )
        now = timezone.now()
        job = RenderJob(
            project=project,
            requested_by=access.membership.user,
            revision=revision,
            version=version,
            format=opts.format,
            bit_depth=opts.bit_depth,
            mp3_quality=opts.mp3_quality,
            master=opts.master,
            master_lufs=opts.master_lufs,
            stems=opts.stems,
            document=document,
            sources=sources,
            cache_key=key,
            filename=_filename(project, opts, revision, version),
            heartbeat_at=now,
        )
        if done is not None:
            job.status = RenderStatus.DONE
            job.cached = True
            job.progress = 1.0
            job.finished_at = now
            for field in (
                "output_name",
                "size",
                "duration_s",
                "lufs",
                "true_peak_dbtp",
                "peak_dbfs",
                "pcm_sha256",
            ):
                setattr(job, field, getattr(done, field))
        job.save()
        _broadcast(job)
        if done is None:
            from .tasks import enqueue_render

            job_id = job.id
            # robust: the job is committed even if the queue is down; it then
            # waits for resume_renders (or the next request) to queue it again.
            transaction.on_commit(lambda: enqueue_render(job_id), robust=True)
    return job


def do_cancel_render(user: actions.AnyUser, project_id: int, render_id: int) -> RenderJob:
    access = actions.access_project(user, project_id)
    with transaction.atomic():
        job = (
            _rows()
            .select_for_update(of=("self",))
            .filter(id=render_id, project_id=project_id)
            .first()
        )
        if job is None:
            raise NotFound("render not found")
        if job.requested_by_id != user.pk and ROLE_RANK[Role(access.role)] < ROLE_RANK[Role.EDITOR]:
            raise Forbidden("only whoever asked for this render, or an editor, can cancel it")
        if job.status in FINISHED:
            raise Conflict(f"the render is already {job.status}", code="render_finished")
        job.cancel_requested = True
        if job.status == RenderStatus.QUEUED:
            # Nothing runs it yet; a task that picks it up later sees this.
            job.status = RenderStatus.CANCELLED
            job.finished_at = timezone.now()
        job.save(update_fields=["cancel_requested", "status", "finished_at"])
        _broadcast(job)
    return job


# --- the task's side: claim, progress, finish -------------------------------------------


def _lock(job_id: int) -> RenderJob | None:
    return _rows().select_for_update(of=("self",)).filter(id=job_id).first()


def do_start_render(job_id: int) -> int | None:
    """Claim a queued job for one run; returns the attempt number, or None when
    there is nothing to run (cancelled, finished, or another run holds it)."""
    with transaction.atomic():
        job = _lock(job_id)
        if job is None or job.status != RenderStatus.QUEUED:
            return None
        now = timezone.now()
        if job.cancel_requested:
            job.status = RenderStatus.CANCELLED
            job.finished_at = now
        else:
            job.status = RenderStatus.RUNNING
            job.attempts += 1
            job.started_at = now
            job.heartbeat_at = now
            job.progress = 0.0
            job.error = ""
        job.save()
        _broadcast(job)
        return int(job.attempts) if job.status == RenderStatus.RUNNING else None


def do_render_progress(job_id: int, attempt: int, fraction: float) -> bool:
    """Record progress (and a heartbeat); False when this run should stop:
    the render was cancelled, deleted, or reclaimed by another run."""
    fraction = min(max(fraction, 0.0), 1.0)
    with transaction.atomic():
        mine = RenderJob.objects.filter(id=job_id, status=RenderStatus.RUNNING, attempts=attempt)
        if not mine.update(progress=fraction, heartbeat_at=timezone.now()):
            return False
        project_id, cancel = mine.values_list("project_id", "cancel_requested").get()
        send_on_commit(
            project_id,
            {"type": "render.progress", "render_id": job_id, "progress": round(fraction, 4)},
        )
    return not cancel


def should_stop(job_id: int, attempt: int) -> bool:
    return not RenderJob.objects.filter(
        id=job_id, status=RenderStatus.RUNNING, attempts=attempt, cancel_requested=False
    ).exists()


def _lock_run(job_id: int, attempt: int) -> RenderJob | None:
    job = _lock(job_id)
    if job is None or job.status != RenderStatus.RUNNING or job.attempts != attempt:
        return None
    return job


@dataclass(frozen=True)
class RenderOutput:
    output_name: str
    size: int
    duration_s: float
    lufs: float
    true_peak_dbtp: float
    peak_dbfs: float
    pcm_sha256: str


def do_finish_render(job_id: int, attempt: int, output: RenderOutput) -> RenderJob | None:
    with transaction.atomic():
        job = _lock_run(job_id, attempt)
        if job is None:  # reclaimed meanwhile; the stored file is the same bytes anyway
            return None
        job.status = RenderStatus.DONE
        job.progress = 1.0
        job.finished_at = timezone.now()
        job.output_name = output.output_name
        job.size = output.size
        job.duration_s = output.duration_s
        job.lufs = finite_or_none(output.lufs)
        job.true_peak_dbtp = finite_or_none(output.true_peak_dbtp)
        job.peak_dbfs = finite_or_none(output.peak_dbfs)
        job.pcm_sha256 = output.pcm_sha256
        job.save()
        _broadcast(job)
    return job


def do_fail_render(job_id: int, attempt: int, message: str) -> None:
    with transaction.atomic():
        job = _lock_run(job_id, attempt)
        if job is None:
            return
        _fail(job, message)


def _fail(job: RenderJob, message: str) -> None:
    job.status = RenderStatus.FAILED
    job.error = message[:2000]
    job.finished_at = timezone.now()
    job.save()
    _broadcast(job)


def do_mark_render_cancelled(job_id: int, attempt: int) -> None:
    with transaction.atomic():
        job = _lock_run(job_id, attempt)
        if job is None:
            return
        job.status = RenderStatus.CANCELLED
        job.finished_at = timezone.now()
        job.save()
        _broadcast(job)


# --- retry ------------------------------------------------------------------------------


def stale_render_ids(
    stale_after_s: float = STALE_AFTER_S, project_id: int | None = None
) -> list[int]:
    cutoff = timezone.now() - timedelta(seconds=stale_after_s)
    rows = RenderJob.objects.filter(status__in=IN_FLIGHT, heartbeat_at__lte=cutoff)
    if project_id is not None:
        rows = rows.filter(project_id=project_id)
    return list(rows.order_by("id").values_list("id", flat=True))


def do_reclaim_render(job_id: int, stale_after_s: float = STALE_AFTER_S) -> str:
    """Queue again a job whose worker is gone. Returns what happened:
    "requeued", "failed" (out of attempts), "cancelled" or "skipped"."""
    cutoff = timezone.now() - timedelta(seconds=stale_after_s)
    with transaction.atomic():
        job = _lock(job_id)
        if job is None or job.status not in IN_FLIGHT or job.heartbeat_at > cutoff:
            return "skipped"  # finished, or its worker beat since we looked
        if job.cancel_requested:
            job.status = RenderStatus.CANCELLED
            job.finished_at = timezone.now()
            job.save()
            _broadcast(job)
            return "cancelled"
        if job.status == RenderStatus.RUNNING and job.attempts >= MAX_ATTEMPTS:
            _fail(
                job,
                f"the render stopped {job.attempts} times without finishing "
                "(its worker was stopped or ran out of memory); giving up",
            )
            return "failed"
        job.status = RenderStatus.QUEUED
        job.progress = 0.0
        job.heartbeat_at = timezone.now()
        job.save()
        _broadcast(job)
        from .tasks import enqueue_render

        transaction.on_commit(lambda: enqueue_render(job_id), robust=True)
    return "requeued"


def reclaim_stale(
    stale_after_s: float = STALE_AFTER_S, project_id: int | None = None
) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job_id in stale_render_ids(stale_after_s, project_id):
        outcome = do_reclaim_render(job_id, stale_after_s)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


# --- clean-up -----------------------------------------------------------------------------


def collect_render_files(names: list[str]) -> None:
    """Delete stored render files no job refers to any more (after a project is deleted)."""
    for name in set(names):
        if name and not RenderJob.objects.filter(output_name=name).exists():
            try:
                default_storage.delete(name)
            except OSError:
                logger.exception("could not delete render file %s", name)
