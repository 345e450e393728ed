"""Embedded-default job backend: jobs run on one worker thread in this process.

The job code is the same as on RQ workers (django-tasks' API); only where it runs
differs. One thread keeps DSP from starving the event loop's threads and gives
jobs a predictable order.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from django.db import close_old_connections
from django_tasks.backends.immediate import ImmediateBackend
from django_tasks.base import Task, TaskResult, TaskResultStatus
from django_tasks.utils import get_random_id

logger = logging.getLogger(__name__)


class ThreadBackend(ImmediateBackend):
    supports_async_task = False

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self._queue: queue.Queue[TaskResult[Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name=f"roomtone-jobs-{self.alias}", daemon=True
                )
                self._thread.start()

    def _work(self) -> None:
        while True:
            result = self._queue.get()
            try:
                close_old_connections()
                self._execute_task(result)
                if result.status == TaskResultStatus.FAILED:
                    logger.error("job %s failed: %s", result.task.name, result.errors[-1].traceback)
            except Exception:
                logger.exception("job %s crashed", result.task.name)
            finally:
                close_old_connections()
                self._queue.task_done()

    def enqueue(self, task: Task[Any, Any], args: Any, kwargs: Any) -> TaskResult[Any]:
        self.validate_task(task)
        result: TaskResult[Any] = TaskResult(
            task=task,
            id=get_random_id(),
            status=TaskResultStatus.READY,
            enqueued_at=None,
            started_at=None,
            last_attempted_at=None,
            finished_at=None,
            args=args,
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        self._ensure_worker()
        self._queue.put(result)
        return result

    def join(self) -> None:
        """Wait until every queued job has run (tests and the demo seeder use it)."""
        self._queue.join()
