from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from studio import actions
from studio.models import Project, Role
from tests.conftest import port_open, require_service


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    # Password hashing is deliberately slow; tests need none of that.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def make_user(db: None) -> Callable[[str], Any]:
    def make(username: str) -> Any:
        return get_user_model().objects.create_user(username, password="pw-" + username * 2)

    return make


@pytest.fixture
def people(make_user: Callable[[str], Any]) -> dict[str, Any]:
    """A project with one user in each role, plus an outsider."""
    owner = make_user("olivia")
    project = actions.do_create_project(owner, "Band")
    access = actions.access_project(owner, project.id, Role.OWNER)
    editor, viewer, outsider = make_user("eddie"), make_user("vera"), make_user("otto")
    actions.do_add_member(access, "eddie", Role.EDITOR)
    actions.do_add_member(access, "vera", Role.VIEWER)
    return {
        "project": project,
        "owner": owner,
        "editor": editor,
        "viewer": viewer,
        "outsider": outsider,
    }


@pytest.fixture
def project(people: dict[str, Any]) -> Project:
    return people["project"]


@pytest.fixture
def client_for(people: dict[str, Any]) -> Callable[[str], APIClient]:
    def make(who: str) -> APIClient:
        client = APIClient()
        if who != "anonymous":
            client.force_authenticate(people[who])
        return client

    return make


@pytest.fixture
def rq_queue(settings: Any) -> Iterator[Any]:
    """A Redis queue of this test's own as the tasks backend, and a way to run
    its jobs with a real RQ worker (burst mode: until the queue is empty).
    Task objects built at import still point at the embedded backend: tests
    re-point them with `task.using(queue_name=rq_queue.name)`."""
    require_service("Redis", port_open("127.0.0.1", 6379), "127.0.0.1:6379")
    import django_rq
    from django_tasks_rq.backend import Job
    from rq import SimpleWorker

    name = f"test-{uuid.uuid4().hex[:8]}"
    redis = {"URL": "redis://127.0.0.1:6379/0", "DEFAULT_TIMEOUT": 300}
    settings.RQ_QUEUES = {name: redis, "default": redis}
    settings.TASKS = {
        "default": {"BACKEND": "django_tasks_rq.backend.RQBackend", "QUEUES": [name, "default"]}
    }

    def work() -> None:
        django_rq.get_worker(name, job_class=Job, worker_class=SimpleWorker).work(burst=True)

    yield SimpleNamespace(name=name, work=work)
    django_rq.get_queue(name, job_class=Job).delete(delete_jobs=True)
