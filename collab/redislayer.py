"""The scale-out channel layer: channels_redis's pub/sub layer, plus
`group_send_many`, several group sends published in one round trip.

channels_redis 4.3 makes every publish a round trip of its own, one at a time
per Redis host (behind a lock it shares with subscribing). When a server's
loop is busy each of those round trips waits its turn on the loop, so events
committed together left the process one loop pass apart (docs/benchmarks.md,
co-editing). `collab.broadcast` hands over what queued meanwhile as one batch.

The messages, channel names and choice of host are the layer's own (its
`serialize`, `_get_group_channel_name`, `_get_shard`), published on its own
connection under its own lock, so receivers cannot tell the difference. Those
are internals of channels_redis 4.3, which pyproject.toml pins;
tests/collab/test_layers.py checks the result through a real Redis.
"""

from __future__ import annotations

from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer


class BatchingPubSubChannelLayer(RedisPubSubChannelLayer):
    async def group_send_many(self, sends: list[tuple[str, dict[str, Any]]]) -> None:
        """Publish each (group, message), in order, one pipeline per Redis
        host. A host that fails does not stop the others; the first error is
        raised once all have been tried."""
        layer = self._get_layer()
        by_host: dict[Any, list[tuple[str, bytes]]] = {}
        for group, message in sends:
            channel = layer._get_group_channel_name(group)
            by_host.setdefault(layer._get_shard(channel), []).append(
                (channel, self.serialize(message))
            )
        failed: Exception | None = None
        for host, items in by_host.items():
            try:
                async with host._lock:
                    host._ensure_redis()
                    pipe = host._redis.pipeline(transaction=False)
                    for channel, data in items:
                        pipe.publish(channel, data)
                    await pipe.execute()
            except Exception as exc:
                failed = failed or exc
        if failed is not None:
            raise failed
