from __future__ import annotations

import os

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model

from collab.routing import websocket_urlpatterns
from studio import actions
from tests.conftest import port_open, require_service

pytestmark = pytest.mark.django_db(transaction=True)


def make_people():
    User = get_user_model()
    owner = User.objects.create_user("olivia", password="x")
    viewer = User.objects.create_user("vera", password="x")
    outsider = User.objects.create_user("otto", password="x")
    project = actions.do_create_project(owner, "Band")
    actions.do_add_member(actions.access_project(owner, project.id, "owner"), "vera", "viewer")
    return project, owner, viewer, outsider


async def connect(user, project_id):
    communicator = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), f"/ws/projects/{project_id}/"
    )
    communicator.scope["user"] = user
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def test_members_connect_and_hear_project_events():
    project, owner, viewer, _ = await sync_to_async(make_people)()
    comm, connected, _ = await connect(viewer, project.id)
    assert connected
    hello = await comm.receive_json_from(timeout=5)
    assert {k: hello[k] for k in ("type", "project_id", "role", "revision")} == {
        "type": "hello",
        "project_id": project.id,
        "role": "viewer",
        "revision": 0,
    }
    assert hello["user"]["name"] == "vera"
    access = await sync_to_async(actions.access_project)(owner, project.id, "owner")
    await sync_to_async(actions.do_update_project)(access, {"tempo_bpm": 99})
    edit = await comm.receive_json_from(timeout=5)
    assert edit["type"] == "edit"
    assert edit["kind"] == "settings"
    assert edit["ops"] == [
        {"op": "set", "kind": "project", "id": "project", "props": {"tempo_bpm": 99.0}}
    ]
    event = await comm.receive_json_from(timeout=5)
    assert event["type"] == "project.updated"
    assert event["project"]["tempo_bpm"] == 99.0
    assert event["project"]["revision"] == 1
    await comm.disconnect()


async def test_outsiders_and_anonymous_cannot_connect():
    from django.contrib.auth.models import AnonymousUser

    project, _, _, outsider = await sync_to_async(make_people)()
    for user in (outsider, AnonymousUser()):
        comm, _, _ = await connect(user, project.id)
        # Accepted and closed at once with 4403, so a browser sees the code
        # and knows not to retry; no project data is sent.
        assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}


async def test_malformed_messages_get_an_error_and_the_connection_carries_on():
    project, owner, _, _ = await sync_to_async(make_people)()
    comm, _, _ = await connect(owner, project.id)
    await comm.receive_json_from(timeout=5)
    await comm.send_to(text_data="{not json")
    assert (await comm.receive_json_from(timeout=5))["code"] == "bad_json"
    await comm.send_to(text_data="[1, 2]")
    assert (await comm.receive_json_from(timeout=5))["code"] == "bad_message"
    await comm.send_to(text_data='{"type": "explode"}')
    error = await comm.receive_json_from(timeout=5)
    assert error == {
        "type": "error",
        "code": "unknown_type",
        "message": "unknown message type 'explode'",
    }
    await comm.send_to(text_data="x" * (70 * 1024))
    assert (await comm.receive_json_from(timeout=5))["code"] == "bad_message"
    await comm.send_json_to({"type": "ping", "id": 7})
    assert await comm.receive_json_from(timeout=5) == {"type": "pong", "id": 7}
    await comm.disconnect()


async def test_a_removed_member_stops_hearing_the_project():
    project, owner, viewer, _ = await sync_to_async(make_people)()
    comm, _, _ = await connect(viewer, project.id)
    await comm.receive_json_from(timeout=5)
    access = await sync_to_async(actions.access_project)(owner, project.id, "owner")
    await sync_to_async(actions.do_remove_member)(access, viewer.id)
    assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}


async def test_deleting_the_project_tells_everyone_and_closes():
    project, owner, viewer, _ = await sync_to_async(make_people)()
    comm, _, _ = await connect(viewer, project.id)
    await comm.receive_json_from(timeout=5)
    access = await sync_to_async(actions.access_project)(owner, project.id, "owner")
    await sync_to_async(actions.do_delete_project)(access)
    assert await comm.receive_json_from(timeout=5) == {
        "type": "project.deleted",
        "project_id": project.id,
    }
    assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}


async def test_events_travel_through_redis_pubsub_layer(settings):
    """Scale-out: the same event reaches a client through Redis."""
    require_service("Redis", port_open("127.0.0.1", 6379), "127.0.0.1:6379")
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "collab.redislayer.BatchingPubSubChannelLayer",
            "CONFIG": {"hosts": [os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")]},
        }
    }
    channel_layers.backends.clear()
    try:
        project, owner, viewer, _ = await sync_to_async(make_people)()
        comm, connected, _ = await connect(viewer, project.id)
        assert connected
        await comm.receive_json_from(timeout=5)
        access = await sync_to_async(actions.access_project)(owner, project.id, "owner")
        await sync_to_async(actions.do_update_project)(access, {"name": "Via Redis"})
        event = await comm.receive_json_from(timeout=5)
        assert event["project"]["name"] == "Via Redis"
        await comm.disconnect()
    finally:
        for layer in channel_layers.backends.values():
            flush = getattr(layer, "flush", None)
            if flush:
                await flush()
        channel_layers.backends.clear()
