"""The project WebSocket: authenticate, check membership, relay project events.

Thin by design: every change a client asks for goes through one studio action.
"""

from __future__ import annotations

import json
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from studio import actions
from studio.errors import StudioError

from .broadcast import project_group

# WebSocket close codes in the 4000-4999 application range.
CLOSE_NOT_ALLOWED = 4403
MAX_MESSAGE_BYTES = 64 * 1024


class ProjectConsumer(AsyncWebsocketConsumer):
    project_id: int
    role: str
    group: str

    async def connect(self) -> None:
        self.project_id = int(self.scope["url_route"]["kwargs"]["project_id"])
        user = self.scope.get("user")
        try:
            access = await database_sync_to_async(actions.access_project)(user, self.project_id)
        except StudioError:
            # Accept, then close: a close before accepting reaches a browser as
            # a bare handshake failure, and the client could not tell "not
            # allowed" (stop retrying) from a network error (retry).
            await self.accept()
            await self.close(code=CLOSE_NOT_ALLOWED)
            return
        self.role = access.role
        self.group = project_group(self.project_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(
            {
                "type": "hello",
                "project_id": self.project_id,
                "role": self.role,
                "revision": access.project.revision,
            }
        )

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None or len(text_data.encode()) > MAX_MESSAGE_BYTES:
            await self.send_error("bad_message", "send JSON text messages of at most 64 KiB")
            return
        try:
            message = json.loads(text_data)
        except json.JSONDecodeError:
            await self.send_error("bad_json", "message is not valid JSON")
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.send_error("bad_message", "message must be an object with a 'type'")
            return
        if message["type"] == "ping":
            await self.send_json({"type": "pong", "id": message.get("id")})
            return
        await self.send_error("unknown_type", f"unknown message type {message['type']!r}")

    async def project_event(self, message: dict[str, Any]) -> None:
        event = message["event"]
        if event.get("type") == "project.deleted":
            await self.send_json(event)
            await self.close(code=CLOSE_NOT_ALLOWED)
            return
        if event.get("type") == "members.changed" and not await self._still_member():
            await self.close(code=CLOSE_NOT_ALLOWED)
            return
        await self.send_json(event)

    async def _still_member(self) -> bool:
        """Roles change while sockets are open: someone removed stops hearing
        the project at once, and a changed role is what later messages see."""
        try:
            access = await database_sync_to_async(actions.access_project)(
                self.scope.get("user"), self.project_id
            )
        except StudioError:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            return False
        self.role = access.role
        return True

    async def send_error(self, code: str, text: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": text})

    async def send_json(self, data: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(data, separators=(",", ":")))
