"""The only bridge from jobs to the audio engine: load rows by id, build the
engine input, run it, store results through an action. Jobs take primary keys.

Two jobs: a stem's analysis (`ingest_stem`) and a render (`render_project`:
fetch the sources the job froze, run `audio.engine.render` on this worker, the
embedded job thread or an RQ worker, never the web server's event loop, store
the file, record the result through studio.renders).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django_tasks import task

from audio.engine.analysis import analyse
from audio.engine.codecs import AudioFormatError
from audio.engine.document import Document, DocumentError, parse_document
from audio.engine.preview import PREVIEW_EXTENSION
from audio.engine.render import RenderCancelled, RenderResult, render

from . import actions, renders
from .models import Blob, RenderJob, RenderMaster, Stem

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def local_copy(storage_name: str) -> Iterator[str]:
    """A filesystem path for a stored file: the file itself on local storage,
    a streamed temporary copy on object storage."""
    try:
        yield default_storage.path(storage_name)
        return
    except NotImplementedError:
        pass
    fd, tmp = tempfile.mkstemp(prefix="roomtone-", suffix=os.path.splitext(storage_name)[1])
    try:
        with os.fdopen(fd, "wb") as out, default_storage.open(storage_name, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
        yield tmp
    finally:
        os.unlink(tmp)


@task()
def ingest_stem(stem_id: int) -> None:
    stem = Stem.objects.select_related("blob").filter(id=stem_id).first()
    if stem is None:
        return
    try:
        with local_copy(stem.blob.storage_name) as path, tempfile.TemporaryDirectory() as tmp:
            preview_tmp = os.path.join(tmp, "preview" + PREVIEW_EXTENSION)
            result = analyse(
                path,
                preview_path=preview_tmp,
                progress=lambda f: actions.do_stem_progress(stem_id, f),
            )
            folder = actions.derived_folder(stem_id)
            actions.delete_derived(stem_id)  # a re-run replaces, never suffixes
            # One file per zoom level, plus a small index, so a client asking
            # for one level never makes the server load them all.
            for spp, data in result.peaks.items():
                default_storage.save(
                    f"{folder}/peaks-{spp}.json",
                    ContentFile(json.dumps(data, separators=(",", ":")).encode()),
                )
            peaks_name = default_storage.save(
                f"{folder}/peaks.json",
                ContentFile(json.dumps({"levels": sorted(result.peaks)}).encode()),
            )
            with open(preview_tmp, "rb") as f:
                preview_name = default_storage.save(f"{folder}/preview{PREVIEW_EXTENSION}", File(f))
    except AudioFormatError as exc:
        actions.do_fail_stem_analysis(stem_id, str(exc))
        return
    except Exception as exc:
        logger.exception("analysis of stem %s failed", stem_id)
        actions.do_fail_stem_analysis(stem_id, f"analysis failed: {exc}")
        raise
    actions.do_finish_stem_analysis(
        stem_id,
        integrated_lufs=result.integrated_lufs,
        true_peak_dbtp=result.true_peak_dbtp,
        sample_peak_dbfs=result.sample_peak_dbfs,
        peaks_name=peaks_name,
        preview_name=preview_name,
    )


def enqueue_ingest(stem_id: int) -> None:
    ingest_stem.enqueue(stem_id)


# --- renders ----------------------------------------------------------------------

PROGRESS_EVERY_S = 0.1  # at most 10 progress events a second
CHECK_EVERY_S = 0.5  # how often a running render asks the database whether to stop
# A fixed timestamp inside zips keeps their bytes a function of the audio alone.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class _Refused(Exception):
    """The job cannot be rendered; the message says why."""


class _Lease:
    """Progress, heartbeat and cancellation for one run of one job, with the
    database touched at most every PROGRESS_EVERY_S / CHECK_EVERY_S."""

    def __init__(self, job_id: int, attempt: int) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.stop = False
        self._fraction = 0.0
        self._last_progress = -math.inf
        self._last_check = time.monotonic()

    def progress(self, fraction: float, *, force: bool = False) -> None:
        self._fraction = fraction
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_EVERY_S:
            return
        self._last_progress = self._last_check = now
        if not renders.do_render_progress(self.job_id, self.attempt, fraction):
            self.stop = True

    def beat(self) -> None:
        """A heartbeat between stages that report no progress."""
        self.progress(self._fraction, force=True)
        if self.stop:
            raise RenderCancelled("render stopped")

    def should_stop(self) -> bool:
        now = time.monotonic()
        if not self.stop and now - self._last_check >= CHECK_EVERY_S:
            self._last_check = now
            self.stop = renders.should_stop(self.job_id, self.attempt)
        return self.stop


def _master(job: RenderJob) -> float | str | None:
    if job.master == RenderMaster.NONE:
        return None
    if job.master == RenderMaster.CUSTOM:
        return job.master_lufs
    return str(job.master)


def _zip_stems(doc: Document, result: RenderResult, mix_path: str, ext: str, out_path: str) -> None:
    entries = [(f"Mix.{ext}", mix_path)]
    used: set[str] = set()
    for i, track in enumerate(doc.tracks):
        stem = result.stems.get(track.id)
        if stem is None:
            continue
        name = f"{i + 1:02d} {renders.safe_filename(track.name)}"
        while name in used:  # two tracks with the same name
            name += "_"
        used.add(name)
        entries.append((f"{name}.{ext}", stem.path))
    with zipfile.ZipFile(out_path, "w", zipfile.ZIP_STORED) as zf:
        for arcname, path in entries:
            info = zipfile.ZipInfo(arcname, ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.file_size = os.path.getsize(path)  # lets zipfile pick ZIP64 for huge stems
            with open(path, "rb") as src, zf.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


def _store(path: str, wanted: str) -> str:
    """Save under `wanted`, or reuse what is there: the same cache key means the
    same bytes, so only a partial copy (a different size) is replaced."""
    name = default_storage.generate_filename(wanted)
    size = os.path.getsize(path)
    if default_storage.exists(name):
        if default_storage.size(name) == size:
            return name
        default_storage.delete(name)
    with open(path, "rb") as f:
        saved = default_storage.save(name, File(f))
    if saved != name:
        # Another run of the same render got there first: its copy is only as
        # good as ours once it is whole, so keep ours unless sizes agree.
        if default_storage.size(name) != size:
            return saved
        default_storage.delete(saved)
    return name


def _run(job: RenderJob, lease: _Lease) -> renders.RenderOutput:
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="roomtone-render-"))
        paths: dict[str, str] = {}
        for source, sha in job.sources.items():
            blob = Blob.objects.filter(sha256=sha).first()
            if blob is None:
                raise _Refused(f"the stem behind {source} was deleted before the render ran")
            paths[source] = stack.enter_context(local_copy(blob.storage_name))
        lease.beat()
        doc = parse_document(job.document)
        ext = str(job.format)
        mix_path = os.path.join(tmp, f"mix.{ext}")
        stems_dir = os.path.join(tmp, "stems") if job.stems else None
        result = render(
            doc,
            paths.__getitem__,
            mix_path,
            bit_depth=job.bit_depth or "24",
            mp3_quality=job.mp3_quality or "320",
            stems_dir=stems_dir,
            master=_master(job),
            threads=settings.ROOMTONE_RENDER_THREADS,
            progress=lease.progress,
            cancel=lease.should_stop,
        )
        artifact = mix_path
        if job.stems:
            artifact = os.path.join(tmp, "stems.zip")
            _zip_stems(doc, result, mix_path, ext, artifact)
        lease.beat()
        base = os.path.splitext(job.filename)[0]
        name = _store(artifact, f"renders/{job.cache_key}/{base}.{renders.output_extension(job)}")
        return renders.RenderOutput(
            output_name=name,
            size=os.path.getsize(artifact),
            duration_s=result.duration_s,
            lufs=result.lufs,
            true_peak_dbtp=result.true_peak_dbtp,
            peak_dbfs=result.peak_dbfs,
            pcm_sha256=result.pcm_sha256,
        )


@task()
def render_project(job_id: int) -> None:
    attempt = renders.do_start_render(job_id)
    if attempt is None:
        return
    lease = _Lease(job_id, attempt)
    try:
        job = RenderJob.objects.get(id=job_id)
        output = _run(job, lease)
    except RenderCancelled:
        # The user cancelled, or this run lost its lease to a newer one; in
        # that case the newer run owns the row and this writes nothing.
        renders.do_mark_render_cancelled(job_id, attempt)
        return
    except (_Refused, DocumentError, ValueError) as exc:
        renders.do_fail_render(job_id, attempt, str(exc))
        return
    except Exception as exc:
        logger.exception("render %s failed", job_id)
        renders.do_fail_render(job_id, attempt, f"render failed: {exc}")
        raise
    renders.do_finish_render(job_id, attempt, output)


def enqueue_render(job_id: int) -> None:
    render_project.enqueue(job_id)
