from __future__ import annotations

import io

import pytest
from channels.testing import HttpCommunicator
from django.core.management import call_command

from studio import editing
from studio.models import Project, Stem, StemStatus
from studio.uploads import UploadLimitMiddleware

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_an_analysed_demo_once(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", stdout=io.StringIO())
    project = Project.objects.get(name="Demo session")
    stems = {s.name: s for s in project.stems.all()}
    assert set(stems) == {"Drums", "Bass", "Keys"}
    assert all(s.status == StemStatus.READY for s in stems.values())
    assert stems["Bass"].channels == 1 and stems["Drums"].channels == 2
    # Generated with headroom, like a tracked stem: no clipping.
    assert all(s.sample_peak_dbfs < -0.5 for s in stems.values())
    # Arranged in the editor: one track and clip per stem, and a named version.
    document = editing.export_document(project)
    assert [t["name"] for t in document["tracks"]] == ["Drums", "Bass", "Keys"]
    assert sorted(t["clips"][0]["source"] for t in document["tracks"]) == sorted(
        f"stem:{s.id}" for s in stems.values()
    )
    assert project.versions.filter(name="Demo start").exists()
    call_command("seed_demo", stdout=io.StringIO())
    assert Project.objects.filter(name="Demo session").count() == 1


def test_resume_analysis_finishes_interrupted_jobs(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        call_command("seed_demo", stdout=io.StringIO())  # jobs queued, never run
    assert Stem.objects.filter(status=StemStatus.ANALYSING).count() == 3
    out = io.StringIO()
    call_command("resume_analysis", stdout=out)
    assert "resumed 3" in out.getvalue()
    assert Stem.objects.filter(status=StemStatus.READY).count() == 3


async def test_oversize_request_is_refused_before_its_body_is_read(settings):
    settings.ROOMTONE_MAX_UPLOAD_BYTES = 1000
    settings.ROOMTONE_MAX_UPLOAD_MB = 0
    reached = []

    async def app(scope, receive, send):  # pragma: no cover - must not run
        reached.append(scope)

    communicator = HttpCommunicator(
        UploadLimitMiddleware(app),
        "POST",
        "/api/projects/1/stems",
        body=b"",
        headers=[(b"content-length", b"999999999")],
    )
    response = await communicator.get_response()
    assert response["status"] == 413
    assert b"upload limit" in response["body"]
    assert reached == []
