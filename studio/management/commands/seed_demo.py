"""Create a demo user and project with generated stems, so a fresh install is a
working studio at once. Running it again changes nothing."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from studio import actions, editing
from studio.demo import DEMO_STEMS, write_demo_stem
from studio.models import Membership, Project

DEMO_PROJECT = "Demo session"
DEMO_PANS = (0.0, -0.3, 0.3)


class Command(BaseCommand):
    help = "Create the demo user and project (idempotent)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default="demo")
        parser.add_argument("--wait", action="store_true", help="wait for the analysis jobs")

    def handle(self, *args: Any, username: str, wait: bool, **options: Any) -> None:
        User = get_user_model()
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password(settings.ROOMTONE_DEMO_PASSWORD)
            user.save()
        if Membership.objects.filter(user=user, project__name=DEMO_PROJECT).exists():
            self.stdout.write(f"demo already there: log in as {username}")
            return
        project = actions.do_create_project(user, DEMO_PROJECT, {"tempo_bpm": 120.0})
        access = actions.access_project(user, project.id, "owner")
        stems = []
        with tempfile.TemporaryDirectory() as tmp:
            for name in DEMO_STEMS:
                path = os.path.join(tmp, f"{name.lower()}.flac")
                write_demo_stem(path, name)
                stems.append(actions.do_add_stem_from_file(access, path, name=name))
        self._arrange(user, project.id, stems)
        if wait:
            from django_tasks import default_task_backend

            join = getattr(default_task_backend, "join", None)
            if join is not None:
                join()
        self.stdout.write(
            self.style.SUCCESS(
                f"demo ready: project {Project.objects.get(id=project.id).name!r}, "
                f"user {username!r}, password {settings.ROOMTONE_DEMO_PASSWORD!r}"
            )
        )

    def _arrange(self, user: Any, project_id: int, stems: list[Any]) -> None:
        """One track per stem in the editor, a marker, a comment and a named
        version, so the editor and version history have something to show."""
        ops: list[dict[str, Any]] = []
        for i, stem in enumerate(stems):
            track = f"demo-track-{i}"
            ops.append(
                {
                    "op": "create",
                    "kind": "track",
                    "id": track,
                    "props": {"name": stem.name, "order": "V" + "V" * i, "pan": DEMO_PANS[i % 3]},
                }
            )
            ops.append(
                {
                    "op": "create",
                    "kind": "clip",
                    "id": f"demo-clip-{i}",
                    "props": {"track": track, "source": f"stem:{stem.id}", "start": 0.0},
                }
            )
        ops.append(
            {
                "op": "create",
                "kind": "marker",
                "id": "demo-marker",
                "props": {"time": 4.0, "name": "B"},
            }
        )
        editing.do_edit(user, project_id, ops, client_op_id="seed-demo")
        editing.do_edit(
            user,
            project_id,
            [
                {
                    "op": "create",
                    "kind": "comment",
                    "id": "demo-comment",
                    "props": {"time": 2.0, "text": "Bass a touch louder here?"},
                }
            ],
            client_op_id="seed-demo-comment",
        )
        editing.do_save_version(user, project_id, "Demo start")
