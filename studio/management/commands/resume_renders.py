"""Queue again the renders whose worker died (no heartbeat for a while).

On the embedded default jobs live in the server process, so a restart drops
queued and running renders; run.sh calls this with --stale-after 0 before
serving (nothing can be running then) and it renders them here, as
resume_analysis does. With RQ workers it only queues them: run it with --every
(docker/compose.yaml's `janitor` service does) to retry renders whose worker
was killed. A render that stopped
MAX_ATTEMPTS times is failed with a message saying so.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand
from django_tasks import default_task_backend

from studio import renders


class Command(BaseCommand):
    help = "Re-queue renders whose worker stopped; fail those out of attempts."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--stale-after",
            type=float,
            default=renders.STALE_AFTER_S,
            metavar="SECONDS",
            help=f"no heartbeat for this long means the worker is gone "
            f"(default {renders.STALE_AFTER_S:g})",
        )

        parser.add_argument(
            "--every",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="keep running, checking this often (for a scale-out janitor process)",
        )

    def handle(self, *args: Any, stale_after: float, every: float, **options: Any) -> None:
        self._once(stale_after)
        while every > 0:
            time.sleep(every)  # a periodic sweep: nothing to wait on but the clock
            self._once(stale_after)

    def _once(self, stale_after: float) -> None:
        counts = renders.reclaim_stale(max(0.0, stale_after))
        # The embedded backend runs jobs on a thread of this process: wait for
        # them, or they would die with it.
        join = getattr(default_task_backend, "join", None)
        if join is not None and counts.get("requeued"):
            join()
        summary = ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "nothing"
        self.stdout.write(f"stale renders: {summary}")
