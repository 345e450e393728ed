"""The only bridge from jobs to the audio engine: load rows by id, build the
engine input, run it, store results through an action. Jobs take primary keys.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
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


def _json_safe(value: float) -> float | None:
    return value if math.isfinite(value) else None


@task()
def ingest_stem(stem_id: int) -> None:
    stem = Stem.objects.select_related("blob").filter(id=stem_id).first()
    if stem is None:
        return
    try:
        with local_copy(stem.blob.storage_name) as path, tempfile.TemporaryDirectory() as tmp:
            preview_tmp = os.path.join(tmp, "preview.mp3")
            result = analyse(
                path,
                preview_path=preview_tmp,
                progress=lambda f: actions.do_stem_progress(stem_id, f),
            )
            peaks = {
                "levels": {str(spp): data for spp, data in sorted(result.peaks.items())},
            }
            peaks_name = default_storage.save(
                f"derived/stem-{stem_id}/peaks.json",
                ContentFile(json.dumps(peaks, separators=(",", ":")).encode()),
            )
            with open(preview_tmp, "rb") as f:
                preview_name = default_storage.save(f"derived/stem-{stem_id}/preview.mp3", File(f))
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
