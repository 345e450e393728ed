from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from studio import settings as s


@pytest.mark.parametrize(
    "helper, raw, message",
    [
        (lambda: s.env_int("X_INT", 1), "ten", "X_INT must be an integer"),
        (lambda: s.env_int("X_INT", 1, minimum=5), "2", "X_INT must be at least 5"),
        (lambda: s.env_bool("X_INT"), "maybe", "X_INT must be a boolean"),
        (lambda: s.env_float("X_INT", 1.0), "loud", "X_INT must be a number"),
        (lambda: s.env_float("X_INT", 1.0), "nan", "X_INT must be a finite number"),
        (lambda: s.env_float("X_INT", 1.0, minimum=0.1), "inf", "X_INT must be a finite number"),
        (
            lambda: s.env_choice("X_INT", "off", ("off", "on")),
            "sometimes",
            "X_INT must be one of off, on, got 'sometimes'",
        ),
        (
            lambda: s.env_url("X_INT", ("redis",)),
            "http://x",
            "X_INT must be a URL with scheme redis",
        ),
    ],
)
def test_bad_environment_values_name_the_variable(monkeypatch, helper, raw, message):
    monkeypatch.setenv("X_INT", raw)
    with pytest.raises(ImproperlyConfigured, match=message):
        helper()


def test_environment_values_parse(monkeypatch):
    monkeypatch.setenv("X_INT", "42")
    assert s.env_int("X_INT", 1) == 42
    monkeypatch.setenv("X_INT", "off")
    assert s.env_bool("X_INT", True) is False
    monkeypatch.setenv("X_INT", "a, b,,c")
    assert s.env_list("X_INT", []) == ["a", "b", "c"]
    monkeypatch.setenv("X_INT", " ON ")
    assert s.env_choice("X_INT", "off", ("off", "on")) == "on"
    monkeypatch.delenv("X_INT")
    assert s.env_float("X_INT", 2.5) == 2.5
    assert s.env_choice("X_INT", "off", ("off", "on")) == "off"


def test_server_process_takes_the_gil_switch_interval(settings):
    import sys

    from studio import asgi

    before = sys.getswitchinterval()
    try:
        settings.ROOMTONE_GIL_SWITCH_MS = 2.5
        asgi._share_the_gil()
        assert sys.getswitchinterval() == pytest.approx(0.0025)
        settings.ROOMTONE_GIL_SWITCH_MS = 1.0
        asgi._share_the_gil()
        assert sys.getswitchinterval() == pytest.approx(0.001)
    finally:
        sys.setswitchinterval(before)


def test_server_start_up_objects_are_left_out_of_full_collections():
    import gc

    from studio import asgi

    # Importing the server module froze what start-up had built.
    frozen = gc.get_freeze_count()
    assert frozen > 10_000
    asgi._settle_the_heap()
    assert gc.get_freeze_count() >= frozen


def test_the_pool_must_leave_connections_beside_the_edit_threads(tmp_path):
    """Each edit thread keeps a pooled connection: a pool too small for them
    and the rest is refused at start, naming both settings."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "ROOMTONE_VAR_DIR": str(tmp_path),
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
        "ROOMTONE_EDIT_THREADS": "4",
    }
    code = "import django; django.setup()"
    for size, ok in (("5", False), ("6", True)):
        done = subprocess.run(
            [sys.executable, "-c", code],
            env={**env, "ROOMTONE_DB_POOL_SIZE": size},
            capture_output=True,
            text=True,
            check=False,
        )
        assert (done.returncode == 0) is ok, done.stderr
        if not ok:
            assert "ROOMTONE_DB_POOL_SIZE (5) must be at least ROOMTONE_EDIT_THREADS + 2" in (
                done.stderr
            )
