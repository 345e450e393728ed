"""The embedded server's channel layer: channels' in-memory layer, made cheap
per message for fan-out.

channels' `InMemoryChannelLayer` (4.3) scans every connection's queue and every
group membership for expired entries on each `receive` and `group_send`, makes
one task per recipient in `group_send`, and deep-copies the message for each.
With 100 sockets that is most of the layer's cost at 2,000 deliveries a
second (docs/benchmarks.md, co-editing). Here the scan runs at most once a
second (expiry is 60 s: a second late changes nothing), a group send puts the
message straight into each queue in membership order, and a flat message (all
project events are: collab.broadcast.event_message) is copied shallowly,
which for immutable values is the same as a deep copy. Semantics are
otherwise channels' own: capacity per channel, `ChannelFull` skipped in group
sends, expiry, group expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from copy import deepcopy
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

_SCALARS = (str, int, float, bool, type(None), bytes)


def _copy(message: dict[str, Any]) -> dict[str, Any]:
    if all(isinstance(value, _SCALARS) for value in message.values()):
        return dict(message)
    return deepcopy(message)


class FanoutInMemoryChannelLayer(InMemoryChannelLayer):
    clean_every_s = 1.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cleaned_at = float("-inf")

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._cleaned_at < self.clean_every_s:
            return
        self._cleaned_at = now
        super()._clean_expired()

    def _put(self, channel: str, message: dict[str, Any]) -> None:
        queue = self.channels.setdefault(channel, asyncio.Queue(maxsize=self.get_capacity(channel)))
        try:
            queue.put_nowait((time.time() + self.expiry, _copy(message)))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        self._put(channel, message)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        # Members were checked when they joined; a full one misses this
        # message (as in channels) and hears the next.
        for channel in list(self.groups.get(group, ())):
            with contextlib.suppress(ChannelFull):
                self._put(channel, message)
