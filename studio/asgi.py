"""ASGI entry point, served by daphne: HTTP through Django, WebSockets through
Channels behind origin validation and session authentication."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
django_asgi_app = get_asgi_application()

import asyncio  # noqa: E402
import gc  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

from channels.routing import ProtocolTypeRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from collab.broadcast import remember_server_loop  # noqa: E402
from collab.routing import websocket_application  # noqa: E402
from studio.uploads import UploadLimitMiddleware  # noqa: E402


def _keep_sqlite_open() -> Any:
    """Hold one connection to the SQLite file for the life of the server.

    Django opens and closes a connection around each piece of sync work, and
    when the last connection to a WAL database closes SQLite checkpoints and
    deletes the WAL (two fsyncs and two unlinks): measured as most of the cost
    of an edit. With this one always open, closing the others is cheap."""
    import sqlite3

    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.sqlite3" or str(db["NAME"]).startswith(
        ("file:", ":memory:")
    ):
        return None
    return sqlite3.connect(str(db["NAME"]), check_same_thread=False)


_sqlite_keeper = _keep_sqlite_open()


def _share_the_gil() -> None:
    """The event loop sends every socket's frames and shares the GIL with the
    database thread: a short switch interval keeps deliveries from waiting out
    5 ms slices of an edit's ORM work (settings.ROOMTONE_GIL_SWITCH_MS)."""
    from django.conf import settings

    sys.setswitchinterval(settings.ROOMTONE_GIL_SWITCH_MS / 1000.0)


_share_the_gil()


class RememberLoop:
    """Tells collab.broadcast which loop serves connections, so job threads
    can hand it events (see broadcast.send_now)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        remember_server_loop(asyncio.get_running_loop())
        return await self.app(scope, receive, send)


router = ProtocolTypeRouter(
    {
        "http": UploadLimitMiddleware(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(websocket_application),
    }
)
application = RememberLoop(router)


def _settle_the_heap() -> None:
    """Leave what start-up built (Django, Twisted, the routes: hundreds of
    thousands of objects that live as long as the process) out of the cyclic
    garbage collector's full passes. Each full pass walked all of them and
    stopped the event loop for about 65 ms, every few seconds under co-editing
    load; after `gc.freeze()` a full pass takes 3-4 ms (docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()


_settle_the_heap()
