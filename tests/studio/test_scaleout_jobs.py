"""Scale-out: the same ingest job, enqueued on Redis through django-tasks-rq
and run by an RQ worker, gives the same analysis as the embedded backend."""

from __future__ import annotations

import uuid

import pytest

from studio.models import Stem
from tests.conftest import port_open, require_service

pytestmark = pytest.mark.django_db(transaction=True)


def test_ingest_runs_on_an_rq_worker(settings, client_for, project, audio_file):
    require_service("Redis", port_open("127.0.0.1", 6379), "127.0.0.1:6379")
    import django_rq
    from django_tasks_rq.backend import Job
    from rq import SimpleWorker

    queue = f"test-{uuid.uuid4().hex[:8]}"
    redis = {"URL": "redis://127.0.0.1:6379/0", "DEFAULT_TIMEOUT": 300}
    settings.RQ_QUEUES = {queue: redis, "default": redis}
    settings.TASKS = {
        "default": {"BACKEND": "django_tasks_rq.backend.RQBackend", "QUEUES": [queue, "default"]}
    }
    import studio.tasks

    # The task object was built against the embedded backend at import; point
    # it at the queue this test owns.
    task = studio.tasks.ingest_stem.using(queue_name=queue)
    original = studio.tasks.enqueue_ingest
    studio.tasks.enqueue_ingest = lambda stem_id: task.enqueue(stem_id)
    try:
        with open(audio_file(seconds=1.5, freq=997.0, level_db=-18), "rb") as f:
            response = client_for("editor").post(
                f"/api/projects/{project.id}/stems", {"file": f}, format="multipart"
            )
        assert response.status_code == 201
        stem_id = response.json()["id"]
        assert Stem.objects.get(id=stem_id).status == "analysing"  # queued, not run

        worker = django_rq.get_worker(queue, job_class=Job, worker_class=SimpleWorker)
        worker.work(burst=True)

        stem = Stem.objects.get(id=stem_id)
        assert stem.status == "ready", stem.error
        assert stem.integrated_lufs == pytest.approx(-18.0, abs=0.1)
    finally:
        studio.tasks.enqueue_ingest = original
        django_rq.get_queue(queue, job_class=Job).delete(delete_jobs=True)
