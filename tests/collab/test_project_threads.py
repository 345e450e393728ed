"""collab.consumers.on_project_thread: which database thread runs a project's calls."""

from __future__ import annotations

import asyncio
import threading

import pytest
from django.db import connection

from collab.consumers import on_project_thread


def _thread_name() -> str:
    return threading.current_thread().name


def _names(project_ids: list[int]) -> list[str]:
    async def main() -> list[str]:
        return [await on_project_thread(p, _thread_name)() for p in project_ids]

    return asyncio.run(main())


@pytest.mark.django_db
def test_each_project_keeps_one_database_thread(settings):
    settings.ROOMTONE_EDIT_THREADS = 3
    names = _names([1, 2, 3, 4, 1, 4, 7])
    if connection.vendor == "postgresql":
        # Spread by id; a project always lands on the same one.
        assert all(name.startswith("project-db-") for name in names)
        assert len({names[0], names[1], names[2]}) == 3
        assert names[0] == names[3] == names[4] == names[5] == names[6]
    else:
        # SQLite takes one writer at a time: channels' one shared thread.
        assert len(set(names)) == 1
        assert not names[0].startswith("project-db-")


@pytest.mark.django_db
def test_one_edit_thread_is_channels_shared_thread(settings):
    settings.ROOMTONE_EDIT_THREADS = 1
    names = _names([1, 2, 3])
    assert len(set(names)) == 1 and not names[0].startswith("project-db-")
