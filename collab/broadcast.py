"""Fan-out of project events to every connected client.

Only actions call this, and only through send_on_commit, so a client never hears
of a change that was rolled back.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def project_group(project_id: int) -> str:
    return f"project.{project_id}"


def send_now(project_id: int, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            project_group(project_id), {"type": "project.event", "event": event}
        )
    except Exception:
        # A broadcast is a notification: the change is already committed and
        # clients resync on reconnect, so a layer hiccup must not fail the write.
        logger.exception("broadcast to project %s failed", project_id)


def send_on_commit(project_id: int, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: send_now(project_id, event))
