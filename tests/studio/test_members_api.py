from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from studio.models import Membership, ShareLink

pytestmark = pytest.mark.django_db


def role_of(project, user):
    m = Membership.objects.filter(project=project, user=user).first()
    return m.role if m else None


@pytest.mark.parametrize(
    "who, status",
    [("owner", 201), ("editor", 403), ("viewer", 403), ("outsider", 404), ("anonymous", 401)],
)
def test_only_owners_invite_by_username(client_for, people, who, status):
    project = people["project"]
    response = client_for(who).post(
        f"/api/projects/{project.id}/members", {"username": "otto", "role": "editor"}, format="json"
    )
    assert response.status_code == status
    assert role_of(project, people["outsider"]) == ("editor" if status == 201 else None)


@pytest.mark.parametrize(
    "body, message",
    [
        ({"username": "nobody", "role": "editor"}, "no user named 'nobody'"),
        ({"username": "eddie", "role": "editor"}, "eddie is already a member"),
        ({"username": "otto", "role": "god"}, "role must be one of"),
    ],
)
def test_bad_invitations_are_refused(client_for, people, body, message):
    project = people["project"]
    response = client_for("owner").post(f"/api/projects/{project.id}/members", body, format="json")
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert Membership.objects.filter(project=project).count() == 3


def test_members_list_shows_roles(client_for, people):
    project = people["project"]
    members = client_for("viewer").get(f"/api/projects/{project.id}/members").json()["members"]
    assert {(m["username"], m["role"]) for m in members} == {
        ("olivia", "owner"),
        ("eddie", "editor"),
        ("vera", "viewer"),
    }


def test_owner_changes_a_role_and_others_cannot(client_for, people):
    project, vera = people["project"], people["viewer"]
    url = f"/api/projects/{project.id}/members/{vera.id}"
    assert client_for("editor").patch(url, {"role": "owner"}, format="json").status_code == 403
    assert client_for("owner").patch(url, {"role": "editor"}, format="json").status_code == 200
    assert role_of(project, vera) == "editor"


def test_the_last_owner_cannot_step_down_or_leave(client_for, people):
    project, olivia = people["project"], people["owner"]
    url = f"/api/projects/{project.id}/members/{olivia.id}"
    response = client_for("owner").patch(url, {"role": "viewer"}, format="json")
    assert response.status_code == 400
    assert "at least one owner" in response.json()["error"]["message"]
    assert client_for("owner").delete(url).status_code == 400
    assert role_of(project, olivia) == "owner"


def test_a_member_may_leave_but_not_remove_others(client_for, people):
    project = people["project"]
    eddie_url = f"/api/projects/{project.id}/members/{people['editor'].id}"
    vera_url = f"/api/projects/{project.id}/members/{people['viewer'].id}"
    assert client_for("viewer").delete(eddie_url).status_code == 403
    assert client_for("viewer").delete(vera_url).status_code == 204
    assert role_of(project, people["viewer"]) is None
    assert client_for("owner").delete(eddie_url).status_code == 204
    assert role_of(project, people["editor"]) is None


def make_link(client_for, project, role="viewer", **extra):
    response = client_for("owner").post(
        f"/api/projects/{project.id}/links", {"role": role, **extra}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_share_link_grants_its_role(client_for, people):
    project = people["project"]
    link = make_link(client_for, project, "editor")
    assert link["url"] == f"/join/{link['token']}/"
    response = client_for("outsider").post("/api/join", {"token": link["token"]}, format="json")
    assert response.status_code == 200
    assert response.json()["role"] == "editor"
    assert role_of(project, people["outsider"]) == "editor"


def test_share_link_never_lowers_an_existing_role(client_for, people):
    link = make_link(client_for, people["project"], "viewer")
    client_for("editor").post("/api/join", {"token": link["token"]}, format="json")
    assert role_of(people["project"], people["editor"]) == "editor"


def test_share_links_cannot_grant_ownership(client_for, people):
    response = client_for("owner").post(
        f"/api/projects/{people['project'].id}/links", {"role": "owner"}, format="json"
    )
    assert response.status_code == 400


@pytest.mark.parametrize("who", ["editor", "viewer"])
def test_only_owners_create_share_links(client_for, people, who):
    response = client_for(who).post(
        f"/api/projects/{people['project'].id}/links", {"role": "viewer"}, format="json"
    )
    assert response.status_code == 403
    assert not ShareLink.objects.exists()


def test_revoked_link_no_longer_works(client_for, people):
    project = people["project"]
    link = make_link(client_for, project)
    assert (
        client_for("owner").delete(f"/api/projects/{project.id}/links/{link['id']}").status_code
        == 204
    )
    response = client_for("outsider").post("/api/join", {"token": link["token"]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "link_revoked",
        "message": "this share link was revoked",
    }
    assert role_of(project, people["outsider"]) is None


def test_expired_link_no_longer_works(client_for, people):
    project = people["project"]
    link = make_link(client_for, project, expires_in_days=1)
    ShareLink.objects.filter(id=link["id"]).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    response = client_for("outsider").post("/api/join", {"token": link["token"]}, format="json")
    assert response.json()["error"]["code"] == "link_expired"
    assert role_of(project, people["outsider"]) is None


def test_tampered_link_token_is_refused(client_for, people):
    link = make_link(client_for, people["project"], "editor")
    forged = link["token"][:-2] + ("AA" if not link["token"].endswith("AA") else "BB")
    response = client_for("outsider").post("/api/join", {"token": forged}, format="json")
    assert response.status_code == 404
    assert role_of(people["project"], people["outsider"]) is None
