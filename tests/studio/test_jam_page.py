"""The jam page and the jam settings (ICE servers, host addresses)."""

from __future__ import annotations

import json
import re

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from collab.jamhost import ice_config
from studio import settings as s

TURN = {"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p"}


def logged_in(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.mark.django_db
def test_jam_page_is_for_members_and_carries_the_ice_servers(people, settings):
    settings.ROOMTONE_ICE_SERVERS = [{**TURN, "urls": [TURN["urls"]]}]
    project = people["project"]
    page = logged_in(people["viewer"]).get(f"/projects/{project.id}/jam/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="jam-app"' in html and 'id="jam-join"' in html
    assert 'id="jam-record"' not in html  # viewers play but do not record
    raw = re.search(r'<script id="jam-state" type="application/json">(.*?)</script>', html, re.S)
    assert raw is not None
    state = json.loads(raw.group(1))
    assert state["ice_servers"] == [{**TURN, "urls": [TURN["urls"]]}]
    assert state["project"]["role"] == "viewer" and state["max_players"] == 8
    assert (
        'id="jam-record"'
        in logged_in(people["editor"]).get(f"/projects/{project.id}/jam/").content.decode()
    )
    assert logged_in(people["outsider"]).get(f"/projects/{project.id}/jam/").status_code == 404
    assert Client().get(f"/projects/{project.id}/jam/").status_code == 302  # to the login page
    detail = logged_in(people["viewer"]).get(f"/projects/{project.id}/").content.decode()
    assert f'href="/projects/{project.id}/jam/"' in detail


def test_ice_servers_come_only_from_the_setting(monkeypatch):
    monkeypatch.delenv("X_ICE", raising=False)
    assert s.env_ice_servers("X_ICE") == []  # no public STUN by default
    monkeypatch.setenv("X_ICE", json.dumps([TURN, {"urls": ["stun:stun.example.org"]}]))
    assert s.env_ice_servers("X_ICE") == [
        {**TURN, "urls": [TURN["urls"]]},
        {"urls": ["stun:stun.example.org"]},
    ]


@pytest.mark.parametrize(
    "raw, message",
    [
        ("turn:x", "X_ICE must be a JSON list"),
        ('{"urls": "turn:x"}', "X_ICE must be a JSON list of ICE server objects"),
        ('[{"url": "turn:x"}]', r"X_ICE\[0\] must be an object with urls"),
        ('[{"urls": "http://x"}]', r"X_ICE\[0\].urls must be stun:/turn: URLs"),
        ('[{"urls": []}]', r"X_ICE\[0\].urls must be stun:/turn: URLs"),
        ('[{"urls": "turn:x", "credential": 5}]', r"X_ICE\[0\].credential must be a string"),
    ],
)
def test_bad_ice_servers_name_the_variable(monkeypatch, raw, message):
    monkeypatch.setenv("X_ICE", raw)
    with pytest.raises(ImproperlyConfigured, match=message):
        s.env_ice_servers("X_ICE")


def test_ice_config_follows_the_settings(settings):
    settings.ROOMTONE_ICE_SERVERS = []
    settings.ROOMTONE_JAM_HOST_ADDRESSES = ["127.0.0.1"]
    config = ice_config()
    assert list(config.ice_servers) == []  # an explicit empty list: aiortc adds no STUN
    assert config.rtc_configuration().iceServers == []
    assert tuple(config.host_addresses or ()) == ("127.0.0.1",) and config.loopback_only
    settings.ROOMTONE_JAM_HOST_ADDRESSES = ["192.0.2.10"]
    settings.ROOMTONE_ICE_SERVERS = [{**TURN, "urls": [TURN["urls"]]}]
    config = ice_config()
    assert tuple(config.host_addresses or ()) == ("192.0.2.10",) and not config.loopback_only
    (server,) = config.ice_servers
    assert (server.urls, server.username, server.credential) == ([TURN["urls"]], "u", "p")
    settings.ROOMTONE_JAM_HOST_ADDRESSES = ["*"]
    config = ice_config()
    assert config.host_addresses is None and not config.loopback_only
