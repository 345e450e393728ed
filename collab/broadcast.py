"""Fan-out of project events to every connected client.

Only actions call this, and only through send_on_commit, so a client never hears
of a change that was rolled back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def project_group(project_id: int) -> str:
    return f"project.{project_id}"


_server_loop: asyncio.AbstractEventLoop | None = None


def remember_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Called by the ASGI app: the loop the consumers (and the in-memory
    layer's queues) live on."""
    global _server_loop
    _server_loop = loop


def _off_server_loop(layer: Any) -> asyncio.AbstractEventLoop | None:
    """The server's loop, when `layer` keeps its queues on it and this thread
    is not running it (a job thread, say)."""
    loop = _server_loop
    if loop is None or not loop.is_running() or not isinstance(layer, InMemoryChannelLayer):
        return None
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    return loop if running is not loop else None


def send_now(project_id: int, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "project.event", "event": event}
    try:
        loop = _off_server_loop(layer)
        if loop is not None:
            # The in-memory layer's queues belong to the server's loop: a send
            # from another loop would not wake the consumers waiting on them.
            future = asyncio.run_coroutine_threadsafe(
                layer.group_send(project_group(project_id), message), loop
            )
            future.result(timeout=10)
        else:
            async_to_sync(layer.group_send)(project_group(project_id), message)
    except Exception:
        # A broadcast is a notification: the change is already committed and
        # clients resync on reconnect, so a layer hiccup must not fail the write.
        logger.exception("broadcast to project %s failed", project_id)


def send_on_commit(project_id: int, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: send_now(project_id, event))
