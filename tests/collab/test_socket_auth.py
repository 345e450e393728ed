"""The project socket knows its user from the Django session cookie
(collab.routing.websocket_application, which studio.asgi serves)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from collab.routing import websocket_application
from tests.collab.test_project_socket import make_people

pytestmark = pytest.mark.django_db(transaction=True)


def logged_in(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def open_socket(project_id: int, cookie: str | None):
    headers = [(b"cookie", f"sessionid={cookie}".encode())] if cookie is not None else []
    comm = WebsocketCommunicator(
        websocket_application, f"/ws/projects/{project_id}/", headers=headers
    )
    connected, _ = await comm.connect(timeout=5)
    assert connected
    return comm


async def test_a_member_is_known_by_the_session_cookie_and_hears_events():
    project, owner, viewer, _ = await sync_to_async(make_people)()
    comm = await open_socket(project.id, await sync_to_async(logged_in)(viewer))
    hello = await comm.receive_json_from(timeout=5)
    assert (hello["type"], hello["role"], hello["user"]["name"]) == ("hello", "viewer", "vera")
    await comm.send_json_to({"type": "ping", "id": 5})
    assert await comm.receive_json_from(timeout=5) == {"type": "pong", "id": 5}
    await comm.disconnect()


async def test_no_cookie_a_forged_one_or_an_outdated_session_cannot_connect():
    project, _, viewer, outsider = await sync_to_async(make_people)()
    outdated = await sync_to_async(logged_in)(viewer)

    def change_password() -> None:
        viewer.set_password("changed")
        viewer.save()

    await sync_to_async(change_password)()
    cookies = [None, "not-a-session", outdated, await sync_to_async(logged_in)(outsider)]
    for cookie in cookies:
        comm = await open_socket(project.id, cookie)
        assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}
        await comm.disconnect()


async def test_a_user_set_by_an_outer_layer_is_kept():
    project, owner, viewer, _ = await sync_to_async(make_people)()
    # The viewer's cookie, but a wrapper in front already said who this is.
    cookie = await sync_to_async(logged_in)(viewer)
    comm = WebsocketCommunicator(
        websocket_application,
        f"/ws/projects/{project.id}/",
        headers=[(b"cookie", f"sessionid={cookie}".encode())],
    )
    comm.scope["user"] = owner
    connected, _ = await comm.connect(timeout=5)
    assert connected
    hello = await comm.receive_json_from(timeout=5)
    assert (hello["role"], hello["user"]["id"]) == ("owner", owner.pk)
    await comm.disconnect()
