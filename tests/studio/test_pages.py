from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from studio.models import Membership, Project

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_signup_logs_the_new_user_in(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    c = Client()
    response = c.post(
        "/signup/",
        {"username": "newbie", "password1": "Vinyl-Ghost-42", "password2": "Vinyl-Ghost-42"},
    )
    assert response.status_code == 302
    assert c.get("/").context["user"].username == "newbie"


def test_signup_with_mismatched_passwords_shows_the_error():
    response = Client().post(
        "/signup/", {"username": "n", "password1": "Vinyl-Ghost-42", "password2": "x"}
    )
    assert response.status_code == 200
    assert b"password fields didn" in response.content


def test_pages_need_login():
    response = Client().get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_project_list_page_creates_a_project(people):
    c = logged_in(people["outsider"])
    response = c.post("/", {"name": "Live set", "sample_rate": "44100", "tempo_bpm": "88"})
    project = Project.objects.get(name="Live set")
    assert response["Location"] == f"/projects/{project.id}/"
    assert (project.sample_rate, project.tempo_bpm) == (44100, 88.0)
    assert b"Live set" in c.get("/").content


def test_project_page_embeds_state_for_members_only(people):
    project = people["project"]
    page = logged_in(people["viewer"]).get(f"/projects/{project.id}/")
    assert page.status_code == 200
    raw = re.search(
        rb'<script id="project-state" type="application/json">(.*?)</script>', page.content, re.S
    )
    state = json.loads(raw.group(1))
    assert state["project"]["role"] == "viewer"
    assert {m["username"] for m in state["members"]} == {"olivia", "eddie", "vera"}
    assert state["links"] == []  # only owners see share links
    assert logged_in(people["outsider"]).get(f"/projects/{project.id}/").status_code == 404


def test_join_page_adds_the_visitor_with_the_links_role(people, client_for):
    project = people["project"]
    token = (
        client_for("owner")
        .post(f"/api/projects/{project.id}/links", {"role": "editor"}, format="json")
        .json()["token"]
    )
    c = logged_in(people["outsider"])
    assert b"Join as editor" in c.get(f"/join/{token}/").content
    response = c.post(f"/join/{token}/")
    assert response["Location"] == f"/projects/{project.id}/"
    assert Membership.objects.get(project=project, user=people["outsider"]).role == "editor"


def test_join_page_explains_a_bad_link(people):
    response = logged_in(people["outsider"]).get("/join/not-a-token/")
    assert response.status_code == 404
    assert b"not valid" in response.content


def test_static_frontend_is_served(client):
    response = client.get("/static/frontend/js/api.js")
    assert response.status_code == 200
    assert "javascript" in response["Content-Type"]
