"""Who is on the other end of a WebSocket: the Django session cookie, read once
at the handshake.

channels' `AuthMiddlewareStack` does the same through its `SessionMiddleware`,
which also wraps the connection's `send` for the socket's whole life, so that
a modified session is saved with an HTTP response. A WebSocket sends no HTTP
response: on a socket the wrapper only adds a few lookups through Django's
lazy session object to every frame, and a project socket sends one frame per
edit anyone makes (docs/benchmarks.md, co-editing). Here the session and its
user are loaded once, before the consumer starts, and frames go straight to
the server's `send`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from channels.auth import get_user
from channels.middleware import BaseMiddleware
from channels.sessions import CookieMiddleware
from django.conf import settings


class SessionUserMiddleware(BaseMiddleware):
    """Sets `scope["session"]` (the cookie's session, for reading) and
    `scope["user"]` (its user, or AnonymousUser), as channels' session and
    auth middleware do; needs `scope["cookies"]` (CookieMiddleware). It
    leaves a session or user that an outer layer already set (a
    test harness, an ASGI wrapper that authenticates otherwise)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        scope = dict(scope)
        if "session" not in scope:
            engine = import_module(settings.SESSION_ENGINE)
            key = scope.get("cookies", {}).get(settings.SESSION_COOKIE_NAME)
            scope["session"] = engine.SessionStore(session_key=key)
        if "user" not in scope:
            # channels' own lookup: the session's user, if its backend still
            # knows them and their password has not changed since they logged in.
            scope["user"] = await get_user(scope)
        return await super().__call__(scope, receive, send)


def SocketAuthStack(inner: Any) -> Any:  # noqa: N802 - named like channels' stacks
    return CookieMiddleware(SessionUserMiddleware(inner))
