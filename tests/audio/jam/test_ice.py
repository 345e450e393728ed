"""ICE and SDP rules that keep jam traffic where it is allowed to go."""

from __future__ import annotations

import aioice.ice

from audio.jam.ice import IceConfig, add_ptime, filter_remote_candidates, host_addresses

BROWSER_AUDIO = (
    "v=0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host\r\n"
    "a=candidate:2 1 udp 2122260223 192.168.1.20 50001 typ host\r\n"
    "a=candidate:3 1 udp 2122260223 0b1c2d3e-1111-2222-3333-444455556666.local 50002 typ host\r\n"
    "a=candidate:4 1 udp 2122260223 ::1 50003 typ host\r\n"
)


def test_only_loopback_remote_candidates_survive() -> None:
    kept = filter_remote_candidates(BROWSER_AUDIO, loopback_only=True)
    hosts = [line.split()[4] for line in kept.splitlines() if line.startswith("a=candidate:")]
    assert hosts == ["127.0.0.1", "::1"]  # no LAN address, no mDNS name to resolve
    assert "a=fmtp:111 minptime=10;useinbandfec=1" in kept


def test_candidate_filter_can_be_turned_off_for_turn_deployments() -> None:
    assert filter_remote_candidates(BROWSER_AUDIO, loopback_only=False) == BROWSER_AUDIO


def test_answer_asks_for_10_ms_packets_once_per_audio_section() -> None:
    sdp = add_ptime(BROWSER_AUDIO + "a=ptime:20\r\n")
    assert sdp.count("a=ptime:10") == 1 and "a=ptime:20" not in sdp


def test_host_address_override_is_scoped_to_the_block() -> None:
    with host_addresses(["127.0.0.1", "::1"]):
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)


def test_no_public_stun_unless_configured() -> None:
    assert IceConfig().rtc_configuration().iceServers == []
