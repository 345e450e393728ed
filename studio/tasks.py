"""The only bridge from jobs to the audio engine: load rows by id, build the
engine input, run it, store results through an action. Jobs take primary keys.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django_tasks import task

from audio.engine.analysis import analyse
from audio.engine.codecs import AudioFormatError
from audio.engine.preview import PREVIEW_EXTENSION

from . import actions
from .models import Stem

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
