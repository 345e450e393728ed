from channels.routing import URLRouter
from django.urls import re_path

from .auth import SocketAuthStack
from .consumers import ProjectConsumer

websocket_urlpatterns = [
    re_path(r"^ws/projects/(?P<project_id>[0-9]{1,18})/$", ProjectConsumer.as_asgi()),
]

# The WebSocket routes behind session authentication (studio.asgi puts origin
# validation in front).
websocket_application = SocketAuthStack(URLRouter(websocket_urlpatterns))
