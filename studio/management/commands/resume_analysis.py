"""Finish analyses a stopped server left half done.

On the embedded default jobs live in the server process, so a restart drops
queued ones; run.sh calls this before serving. Jobs run here, synchronously.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from studio.models import Stem, StemStatus
from studio.tasks import ingest_stem


class Command(BaseCommand):
    help = "Run the analysis of every stem still marked as analysing."

    def handle(self, *args: Any, **options: Any) -> None:
        ids = list(Stem.objects.filter(status=StemStatus.ANALYSING).values_list("id", flat=True))
        for stem_id in ids:
            try:
                ingest_stem.call(stem_id)
            except Exception as exc:  # recorded on the stem by the job itself
                self.stderr.write(f"stem {stem_id}: {exc}")
        self.stdout.write(f"resumed {len(ids)} analysis job(s)")
