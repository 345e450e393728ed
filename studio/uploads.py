"""Streaming uploads: bytes go to a temporary file while being hashed, never
whole into memory, and an oversize upload is cut off as soon as it is known."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler


class UploadTooLarge(Exception):
    pass


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
    """ASGI middleware: refuse a request whose declared body is over the upload
    limit before reading any of it (Django's ASGI handler would otherwise spool
    the whole body to disk before a view could object)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for name, value in scope.get("headers", []):
                if name == b"content-length":
                    try:
                        length = int(value)
                    except ValueError:
                        break
                    if length > settings.ROOMTONE_MAX_UPLOAD_BYTES + 64 * 1024:
                        await _refuse_too_large(send)
                        return
                    break
        await self.app(scope, receive, send)


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
