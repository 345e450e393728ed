"""Explicit ICE configuration for jam peer connections.

Two aiortc defaults do not suit us: with no iceServers it queries Google's
public STUN server, and aioice never offers loopback host candidates. `IceConfig`
makes both explicit: the ICE servers are whatever the caller passes (none by
default), and `host_addresses` pins the host candidates, e.g. to 127.0.0.1 for
tests and local runs where nothing may leave the machine's loopback interface.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection

LOOPBACK = ("127.0.0.1",)


@dataclass(frozen=True)
class IceConfig:
    """How a jam peer connection finds its path.

    ice_servers: STUN/TURN servers (e.g. your own TURN). Empty means none at all.
    host_addresses: if set, the only local addresses offered as host candidates
        (None = aioice's usual gathering of every non-loopback interface).
    loopback_only: refuse remote candidates that are not loopback addresses, so
        no packet (connectivity checks, mDNS lookups of `.local` names) can go
        anywhere else. On by default because the default host is loopback.
    """

    ice_servers: Sequence[RTCIceServer] = ()
    host_addresses: Sequence[str] | None = field(default=LOOPBACK)
    loopback_only: bool = True

    def rtc_configuration(self) -> RTCConfiguration:
        # An explicit list, even empty: None would make aiortc add public STUN.
        return RTCConfiguration(iceServers=list(self.ice_servers))


# aioice reads host addresses from a module-level function. We wrap it once and
# let a context variable decide, so only gathering done inside `host_addresses()`
# (and tasks it spawns) sees the override; any other aiortc user in the process
# keeps the stock behaviour.
_override: contextvars.ContextVar[Sequence[str] | None] = contextvars.ContextVar(
    "roomtone_jam_host_addresses", default=None
)
_original_get_host_addresses = aioice.ice.get_host_addresses


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    chosen = _override.get()
    if chosen is None:
        return list(_original_get_host_addresses(use_ipv4, use_ipv6))
    return [
        a
        for a in chosen
        if (ipaddress.ip_address(a).version == 4 and use_ipv4)
        or (ipaddress.ip_address(a).version == 6 and use_ipv6)
    ]


aioice.ice.get_host_addresses = _get_host_addresses


@contextlib.contextmanager
def host_addresses(addresses: Sequence[str] | None) -> Iterator[None]:
    """Gather ICE host candidates only on `addresses` while inside this block."""
    token = _override.set(None if addresses is None else tuple(addresses))
    try:
        yield
    finally:
        _override.reset(token)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a hostname such as an mDNS `.local` name
        return False


def filter_remote_candidates(sdp: str, loopback_only: bool) -> str:
    """Drop remote candidates we must never contact."""
    if not loopback_only:
        return sdp
    lines = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split()
            if len(parts) < 5 or not _is_loopback(parts[4]):
                continue
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def add_ptime(sdp: str, ptime_ms: int = 10) -> str:
    """Ask the far end for `ptime_ms` packets in every audio section.

    aiortc cannot express ptime; browsers read `a=ptime` from the remote
    description when choosing their Opus frame length.
    """
    out: list[str] = []
    in_audio = inserted = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            in_audio, inserted = line.startswith("m=audio"), False
        elif in_audio and line.startswith("a=ptime:"):
            continue
        out.append(line)
        if in_audio and not inserted and line.startswith("a=rtpmap:"):
            out.append(f"a=ptime:{ptime_ms}")
            inserted = True
    return "\r\n".join(out) + "\r\n"


def make_peer_connection(config: IceConfig) -> RTCPeerConnection:
    return RTCPeerConnection(configuration=config.rtc_configuration())


async def set_local_description(pc: Any, description: Any, config: IceConfig) -> None:
    """setLocalDescription, gathering candidates as `config` says."""
    with host_addresses(config.host_addresses):
        await pc.setLocalDescription(description)
