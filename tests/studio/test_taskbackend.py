from __future__ import annotations

import threading

import pytest
from django_tasks import task

from studio.taskbackend import ThreadBackend

seen: list[tuple[str, int]] = []


@task()
def record_thread(value: int) -> int:
    seen.append((threading.current_thread().name, value))
    return value * 2


@task()
def explode() -> None:
    raise RuntimeError("boom")


def test_thread_backend_runs_jobs_in_order_off_the_calling_thread():
    backend = ThreadBackend("threadtest", {})
    seen.clear()
    results = [backend.enqueue(record_thread, [i], {}) for i in range(5)]
    backend.join()
    assert [v for _, v in seen] == [0, 1, 2, 3, 4]
    assert {name for name, _ in seen} == {"roomtone-jobs-threadtest"}
    assert [r.return_value for r in results] == [0, 2, 4, 6, 8]


def test_a_failing_job_does_not_stop_the_worker():
    backend = ThreadBackend("threadtest2", {})
    seen.clear()
    failed = backend.enqueue(explode, [], {})
    ok = backend.enqueue(record_thread, [21], {})
    backend.join()
    assert failed.status == "FAILED"
    assert ok.return_value == 42


@task()
async def coroutine_job() -> None:  # pragma: no cover - never runs
    return None


def test_async_tasks_are_refused():
    from django_tasks.exceptions import InvalidTaskError

    with pytest.raises(InvalidTaskError, match="async"):
        ThreadBackend("x", {}).validate_task(coroutine_job)
