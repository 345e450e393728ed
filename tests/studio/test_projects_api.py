from __future__ import annotations

import pytest

from studio.models import Membership, Project

pytestmark = pytest.mark.django_db


def test_creating_a_project_makes_the_creator_its_owner(client_for, people):
    response = client_for("outsider").post(
        "/api/projects",
        {"name": "  Demo  ", "sample_rate": 44100, "tempo_bpm": 96.5, "time_signature": [6, 8]},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "Demo"
    assert body["sample_rate"] == 44100
    assert body["tempo_bpm"] == 96.5
    assert body["time_signature"] == [6, 8]
    assert body["role"] == "owner"
    assert Membership.objects.get(project_id=body["id"], user=people["outsider"]).role == "owner"


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"name": ""}, "name must be a non-empty string"),
        ({"name": "x" * 201}, "too long"),
        ({"name": "a", "sample_rate": 22050}, "sample_rate must be 44100 or 48000"),
        ({"name": "a", "tempo_bpm": 1000}, "tempo_bpm must be a number from 20 to 400"),
        ({"name": "a", "tempo_bpm": "fast"}, "tempo_bpm"),
        ({"name": "a", "time_signature": [4, 3]}, "time_signature"),
        ({"name": "a", "colour": "red"}, "unknown field(s): colour"),
        ({"name": "a", "created_by": 1}, "unknown field(s): created_by"),
        ({"name": "a", "tempo_bpm": 10**400}, "tempo_bpm must be a number from 20 to 400"),
    ],
)
def test_bad_project_settings_are_refused_and_nothing_is_created(
    client_for, people, fields, message
):
    before = Project.objects.count()
    response = client_for("owner").post("/api/projects", fields, format="json")
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert Project.objects.count() == before


def test_a_huge_id_in_a_url_is_not_found(client_for, project):
    assert client_for("owner").get("/api/projects/99999999999999999999999").status_code == 404


def test_project_list_shows_only_my_projects_with_my_role(client_for, project):
    assert [p["id"] for p in client_for("viewer").get("/api/projects").json()["projects"]] == [
        project.id
    ]
    assert client_for("viewer").get("/api/projects").json()["projects"][0]["role"] == "viewer"
    assert client_for("outsider").get("/api/projects").json()["projects"] == []


@pytest.mark.parametrize(
    "who, status",
    [("owner", 200), ("editor", 200), ("viewer", 200), ("outsider", 404), ("anonymous", 401)],
)
def test_reading_a_project_needs_membership(client_for, project, who, status):
    assert client_for(who).get(f"/api/projects/{project.id}").status_code == status


@pytest.mark.parametrize(
    "who, status",
    [("owner", 200), ("editor", 200), ("viewer", 403), ("outsider", 404), ("anonymous", 401)],
)
def test_renaming_needs_editor_or_owner(client_for, project, who, status):
    response = client_for(who).patch(f"/api/projects/{project.id}", {"name": "New"}, format="json")
    assert response.status_code == status
    project.refresh_from_db()
    assert project.name == ("New" if status == 200 else "Band")


def test_changing_settings_bumps_the_revision(client_for, project):
    before = project.revision
    response = client_for("editor").patch(
        f"/api/projects/{project.id}", {"tempo_bpm": 140, "time_signature": [3, 4]}, format="json"
    )
    assert response.status_code == 200
    project.refresh_from_db()
    assert (project.tempo_bpm, project.time_signature_num, project.revision) == (
        140.0,
        3,
        before + 1,
    )


@pytest.mark.parametrize(
    "who, status",
    [("owner", 204), ("editor", 403), ("viewer", 403), ("outsider", 404), ("anonymous", 401)],
)
def test_only_owners_delete_a_project(client_for, project, who, status):
    assert client_for(who).delete(f"/api/projects/{project.id}").status_code == status
    assert Project.objects.filter(id=project.id).exists() == (status != 204)


def test_api_token_authenticates_scripts(client_for, people):
    from rest_framework.test import APIClient

    token = client_for("owner").get("/api/me/token").json()["token"]
    bot = APIClient()
    bot.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert bot.get("/api/projects").status_code == 200
    rotated = client_for("owner").post("/api/me/token").json()["token"]
    assert rotated != token
    assert bot.get("/api/projects").status_code == 401


def test_password_exchange_gives_a_token_and_wrong_password_does_not(people):
    from rest_framework.test import APIClient

    ok = APIClient().post(
        "/api/auth/token", {"username": "olivia", "password": "pw-oliviaolivia"}, format="json"
    )
    assert ok.status_code == 200 and len(ok.json()["token"]) == 40
    bad = APIClient().post(
        "/api/auth/token", {"username": "olivia", "password": "x"}, format="json"
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["message"] == "wrong username or password"


def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/projects/{project_id}/stems" in text
    assert client.get("/api/docs").status_code == 200
