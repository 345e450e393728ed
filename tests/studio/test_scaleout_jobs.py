"""Scale-out: the same ingest job, enqueued on Redis through django-tasks-rq
and run by an RQ worker, gives the same analysis as the embedded backend."""

from __future__ import annotations

import pytest

from studio.models import Stem

pytestmark = pytest.mark.django_db(transaction=True)


def test_ingest_runs_on_an_rq_worker(rq_queue, client_for, project, audio_file, monkeypatch):
    import studio.tasks

    task = studio.tasks.ingest_stem.using(queue_name=rq_queue.name)
    monkeypatch.setattr(studio.tasks, "enqueue_ingest", lambda stem_id: task.enqueue(stem_id))
    with open(audio_file(seconds=1.5, freq=997.0, level_db=-18), "rb") as f:
        response = client_for("editor").post(
            f"/api/projects/{project.id}/stems", {"file": f}, format="multipart"
        )
    assert response.status_code == 201
    stem_id = response.json()["id"]
    assert Stem.objects.get(id=stem_id).status == "analysing"  # queued, not run

    rq_queue.work()

    stem = Stem.objects.get(id=stem_id)
    assert stem.status == "ready", stem.error
    assert stem.integrated_lufs == pytest.approx(-18.0, abs=0.1)
