from typing import Any

from django.apps import AppConfig
from django.core.signals import request_finished
from django.db import connections


def close_request_connections(**kwargs: Any) -> None:
    """SQLite keeps connections open (CONN_MAX_AGE=None, see settings) for
    the long-lived threads; a request's thread is not one of them (under ASGI
    each request gets its own), so its connection is closed with the request
    instead of lingering until the garbage collector finds it."""
    for conn in connections.all(initialized_only=True):
        if conn.vendor == "sqlite" and conn.connection is not None and not conn.in_atomic_block:
            conn.close()


class StudioConfig(AppConfig):
    name = "studio"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        request_finished.connect(close_request_connections, dispatch_uid="roomtone-close-conns")
