from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def fast_settings(settings: Any, tmp_path: Path) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(scope="session", autouse=True)
def project_threads_let_go(django_db_setup: Any, django_db_blocker: Any) -> Any:
    """The sockets' database threads (channels' shared one and
    collab.consumers.on_project_thread's, which keep their connection between
    calls) outlive each test; their connections would keep the test database
    from being dropped. Close them while the database is still there."""
    yield
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connections

    from collab import consumers

    with django_db_blocker.unblock():
        for executor in consumers._project_threads:
            executor.submit(connections.close_all).result(timeout=60)
        asyncio.run(sync_to_async(connections.close_all)())
