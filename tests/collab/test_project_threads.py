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


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def _on_lane(func, project_id: int = 5):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        return await on_project_thread(project_id, func)()

    return asyncio.run(main())


def _terminate(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        assert cursor.fetchone()[0] is True


@pytest.mark.django_db(transaction=True)
def test_a_project_thread_keeps_its_connection_and_replaces_a_dead_one(settings, monkeypatch):
    """The project threads keep their connection between calls instead of
    taking one from the pool (and checking it) for every call. One idle for
    longer than WRITER_CHECK_AFTER_IDLE_S is checked first, so a connection
    the server dropped is replaced before it fails anything."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no project threads")
    from studio import editing

    settings.ROOMTONE_EDIT_THREADS = 3
    first = _on_lane(_backend_pid)
    taken = connection.pool.get_stats().get("requests_num", 0)
    assert _on_lane(_backend_pid) == first  # kept: not taken from the pool again
    assert connection.pool.get_stats().get("requests_num", 0) == taken
    assert _on_lane(_backend_pid, 8) == first  # project 8 runs on the same thread
    assert _on_lane(_backend_pid, 6) != first  # another thread, its own connection
    monkeypatch.setattr(editing, "WRITER_CHECK_AFTER_IDLE_S", 0.0)
    _terminate(first)
    second = _on_lane(_backend_pid)  # checked, found dead, replaced
    assert second != first
    assert _on_lane(_backend_pid) == second


@pytest.mark.django_db(transaction=True)
def test_a_connection_that_failed_is_replaced_on_the_next_call(settings, monkeypatch):
    """Within WRITER_CHECK_AFTER_IDLE_S nothing is checked: a connection the
    server dropped just then fails that one call, and the next call gets a new
    one (Django's rule for a connection that saw an error)."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no project threads")
    from django.db import OperationalError

    from studio import editing

    settings.ROOMTONE_EDIT_THREADS = 3
    monkeypatch.setattr(editing, "WRITER_CHECK_AFTER_IDLE_S", 3600.0)
    first = _on_lane(_backend_pid)
    _terminate(first)
    with pytest.raises(OperationalError):
        _on_lane(_backend_pid)
    second = _on_lane(_backend_pid)
    assert second != first
    assert _on_lane(_backend_pid) == second


@pytest.mark.django_db(transaction=True)
def test_a_kept_connection_is_given_back_after_its_lifetime(settings, monkeypatch):
    """The pool retires connections at its max_lifetime only when they come
    back; a project thread gives its connection back once it is that old."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no project threads")
    from studio import editing

    settings.ROOMTONE_EDIT_THREADS = 3
    monkeypatch.setattr(editing, "WRITER_CONNECTION_LIFETIME_S", 3600.0)
    first = _on_lane(_backend_pid)
    assert _on_lane(_backend_pid) == first
    stats = connection.pool.get_stats()
    taken, out = stats.get("requests_num", 0), stats["pool_size"] - stats["pool_available"]
    monkeypatch.setattr(editing, "WRITER_CONNECTION_LIFETIME_S", 0.0)
    second = _on_lane(_backend_pid)
    # given back and taken again (the pool may hand the same backend out),
    # not left checked out beside the new one
    stats = connection.pool.get_stats()
    assert stats.get("requests_num", 0) == taken + 1
    assert stats["pool_size"] - stats["pool_available"] == out
    monkeypatch.setattr(editing, "WRITER_CONNECTION_LIFETIME_S", 3600.0)
    assert _on_lane(_backend_pid) == second
