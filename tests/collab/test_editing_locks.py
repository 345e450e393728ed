"""Edits that queue on the project's row lock (PostgreSQL): the one that
waited sees what the one before it committed."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections

from studio import editing, rowsql
from studio.models import Edit
from tests.collab.editing_helpers import Band, create, make_band

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def band(transactional_db: None, tmp_path: Path) -> Band:
    return make_band(tmp_path)


def _waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return int(cursor.fetchone()[0])


def test_a_resend_that_waited_for_the_lock_is_answered_not_applied_twice(band, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("row locks and per-statement snapshots are PostgreSQL's")
    pid = band.project.id
    inside, release = threading.Event(), threading.Event()
    flush = rowsql.Writes.flush

    def held_flush(self: rowsql.Writes, *, last: bool = False) -> None:
        if last and threading.current_thread().name == "first":
            inside.set()
            # The op-log row and the commit go only once the resend queues
            # on the lock (on PostgreSQL they go in one round trip).
            release.wait(10)
        flush(self, last=last)

    monkeypatch.setattr(rowsql.Writes, "flush", held_flush)
    results: dict[str, Any] = {}

    def send(name: str) -> None:
        try:
            results[name] = editing.do_edit(
                band.editor, pid, [create("marker", "m1", time=1.0)], client_op_id="op1"
            )
        except Exception as exc:  # reported below
            results[name] = exc
        finally:
            connections.close_all()

    first = threading.Thread(target=send, args=("first",), name="first")
    first.start()
    assert inside.wait(10)
    again = threading.Thread(target=send, args=("again",), name="again")
    again.start()
    deadline = time.monotonic() + 10
    while _waiting_on_a_lock() == 0:  # the resend is queued on the row lock
        assert time.monotonic() < deadline, "the resend never waited for the lock"
    release.set()
    first.join(10)
    again.join(10)
    assert results["first"].revision == results["again"].revision
    assert results["again"].duplicate is True
    assert Edit.objects.filter(project_id=pid, client_op_id="op1").count() == 1
