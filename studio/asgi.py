"""ASGI entry point, served by daphne: HTTP through Django, WebSockets through
Channels behind origin validation and session authentication."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
django_asgi_app = get_asgi_application()

import asyncio  # noqa: E402
from typing import Any  # noqa: E402

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from collab.broadcast import remember_server_loop  # noqa: E402
from collab.routing import websocket_urlpatterns  # noqa: E402
from studio.uploads import UploadLimitMiddleware  # noqa: E402


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
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
application = RememberLoop(router)
