"""bench_collab.py --what-if direct-dispatch: the shipped ASGI application, but
ProjectConsumer handles each message without first hopping to the process's
shared sync thread to close old database connections (channels'
AsyncConsumer.dispatch makes that hop for every message, group events
included; database_sync_to_async already closes them around each database
call). Measures a suggested change; never used by Roomtone itself."""

from __future__ import annotations

from typing import Any

from channels.consumer import get_handler_name

from studio.asgi import application

__all__ = ["application"]


async def _dispatch(self: Any, message: dict[str, Any]) -> None:
    handler = getattr(self, get_handler_name(message), None)
    if handler is None:
        raise ValueError(f"No handler for message type {message['type']}")
    await handler(message)


def _patch() -> None:
    # Imported here: the consumer needs the apps that studio.asgi has set up.
    from collab.consumers import ProjectConsumer

    ProjectConsumer.dispatch = _dispatch  # type: ignore[method-assign]


_patch()
