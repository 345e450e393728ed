"""Run a jam worker: a process that owns live jam rooms (scale-out).

Web processes with ROOMTONE_JAM_WORKERS=channel route jam signalling through
the Redis channel layer to the worker that claimed the project's room; this
process runs the rooms' media (WebRTC, mixing, recording) and, when a
recording stops, stores its takes through the usual actions, so it needs the
same DATABASE_URL, REDIS_URL and storage settings as the web processes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Serve live jam rooms routed here through the Redis channel layer "
        "(ROOMTONE_JAM_WORKERS=channel on the web processes)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--rooms",
            type=int,
            default=None,
            help="rooms this worker runs at most (default: ROOMTONE_JAM_ROOMS_PER_WORKER)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.REDIS_URL:
            raise CommandError(
                "jamworker needs REDIS_URL: rooms are routed and claimed through Redis"
            )
        rooms = options["rooms"]
        if rooms is not None and rooms < 1:
            raise CommandError("--rooms must be at least 1")
        from collab.jamhost import run_worker

        asyncio.run(run_worker(rooms))
