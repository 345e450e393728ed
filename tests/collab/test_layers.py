"""The embedded channel layer keeps channels' in-memory semantics while
fanning out cheaply (collab.broadcast.FanoutInMemoryChannelLayer)."""

from __future__ import annotations

import pytest
from channels.exceptions import ChannelFull

from collab.broadcast import FanoutInMemoryChannelLayer, event_message


async def test_a_group_send_reaches_every_member_in_order_and_skips_a_full_one():
    layer = FanoutInMemoryChannelLayer(capacity=3)
    members = [await layer.new_channel() for _ in range(4)]
    for channel in members:
        await layer.group_add("project.1", channel)
    await layer.send(members[0], {"type": "x", "n": -1})
    await layer.send(members[0], {"type": "x", "n": -2})
    for n in range(3):
        await layer.group_send("project.1", {"type": "x", "n": n})
    with pytest.raises(ChannelFull):
        await layer.send(members[0], {"type": "x", "n": 99})
    # members[0] was full for the last group send: it missed it, the others did not.
    assert [(await layer.receive(members[0]))["n"] for _ in range(3)] == [-1, -2, 0]
    for channel in members[1:]:
        assert [(await layer.receive(channel))["n"] for _ in range(3)] == [0, 1, 2]


async def test_each_recipient_gets_its_own_copy():
    layer = FanoutInMemoryChannelLayer()
    a, b = await layer.new_channel(), await layer.new_channel()
    for channel in (a, b):
        await layer.group_add("project.2", channel)
    flat = event_message({"type": "edit", "revision": 1})
    nested = {"type": "jam.message", "event": {"players": ["x"]}}
    await layer.group_send("project.2", flat)
    await layer.group_send("project.2", nested)
    first, second = await layer.receive(a), await layer.receive(b)
    first["text"] = "changed"
    assert second["text"] == flat["text"] and flat["text"] != "changed"
    first, second = await layer.receive(a), await layer.receive(b)
    first["event"]["players"].append("y")
    assert second["event"]["players"] == ["x"] and nested["event"]["players"] == ["x"]


async def test_expired_messages_still_drop_their_channel_from_groups(monkeypatch):
    layer = FanoutInMemoryChannelLayer(expiry=0)
    layer.clean_every_s = 0.0
    stale, live = await layer.new_channel(), await layer.new_channel()
    for channel in (stale, live):
        await layer.group_add("project.3", channel)
    await layer.send(stale, {"type": "x"})  # expires at once, never read
    await layer.group_send("project.3", {"type": "y"})  # the clean runs first
    assert set(layer.groups["project.3"]) == {live}
