from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from studio import actions
from studio.models import Project, Role


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
