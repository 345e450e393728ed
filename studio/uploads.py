"""Streaming uploads: bytes go to a temporary file while being hashed, never
whole into memory, and an oversize upload is cut off as soon as it is known."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Writes each file to disk, computing its sha256 and size on the way."""

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.limit: int = settings.ROOMTONE_MAX_UPLOAD_BYTES
        self.digest = hashlib.sha256()
        self.received = 0
        self.too_large = False

    def handle_raw_input(
        self, input_data: Any, META: Any, content_length: int, boundary: Any, encoding: Any = None
    ) -> None:
        # Multipart framing adds a little; anything beyond that is over the limit.
        if content_length and content_length > self.limit + 64 * 1024:
            self.too_large = True

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        if self.too_large:
            # Raised here rather than in handle_raw_input, where Django's parser
            # does not catch it.
            raise StopUpload(connection_reset=True)
        self.digest = hashlib.sha256()
        self.received = 0
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.too_large = True
            raise StopUpload(connection_reset=True)
        self.digest.update(raw_data)
        super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size: int) -> Any:
        uploaded = super().file_complete(file_size)
        if uploaded is not None:
            uploaded.sha256 = self.digest.hexdigest()  # type: ignore[attr-defined]
        return uploaded


class UploadLimitMiddleware:
    """ASGI middleware: refuse a request whose body is over the upload limit
    before Django spools it: at once when its Content-Length says so, and as
    soon as a chunked body passes the limit. (daphne itself buffers a request
    body before the app sees it, so in production put the same limit in the
    reverse proxy, e.g. nginx client_max_body_size.)"""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = settings.ROOMTONE_MAX_UPLOAD_BYTES + 64 * 1024
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _refuse_too_large(send)
                    return
        received = 0

        async def counted_receive() -> Any:
            # A chunked body declares no length: count it as it arrives.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestTooLarge
            return message

        try:
            await self.app(scope, counted_receive, send)
        except RequestTooLarge:
            await _refuse_too_large(send)


class RequestTooLarge(Exception):
    pass


async def _refuse_too_large(send: Any) -> None:
    limit_mb = settings.ROOMTONE_MAX_UPLOAD_MB
    body = (
        b'{"error": {"code": "too_large", "message": "file is larger than the '
        + str(limit_mb).encode()
        + b' MB upload limit"}}'
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
