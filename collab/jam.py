"""Jam signalling over the project WebSocket (placeholder until the jam issue lands)."""

from __future__ import annotations

from typing import Any


class JamSignalling:
    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer

    async def handle(self, data: dict[str, Any]) -> None:
        await self.consumer.send_error("unknown_type", f"unknown message type {data['type']!r}")

    async def on_channel_message(self, message: dict[str, Any]) -> None:
        return None

    async def close(self) -> None:
        return None
