"""A real server (daphne, embedded default) and a real browser (Debian's
chromium driven by Playwright) for page tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service
from tests.live_server import Server, migrate, server_env

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-loopback-in-peer-connection",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture(scope="session")
def live_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The embedded default as run.sh serves it: jobs on a worker thread."""
    var = tmp_path_factory.mktemp("e2e-var")
    env = server_env(var, TASK_BACKEND="thread", LOG_LEVEL="INFO")
    migrate(env)
    server = Server(env, var / "server.log")
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


# Per module, not per session: Playwright's sync API keeps an event loop
# running on the main thread while it is open, and async tests that pytest
# runs after an e2e module need that thread free.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_service("Chromium", os.path.exists(CHROMIUM), CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    p = context.new_page()
    p.set_default_timeout(30_000)
    yield p
    context.close()
