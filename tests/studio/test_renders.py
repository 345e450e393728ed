"""Render jobs (issue #3): request, progress, cancel, cache, retry, download."""

from __future__ import annotations

import io
import time
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

import audio.engine.render
import studio.tasks
from audio.engine.document import parse_document
from audio.engine.render import render
from studio import actions, editing, renders
from studio.models import Blob, RenderJob, Role, Stem
from tests.conftest import write_audio

pytestmark = pytest.mark.django_db


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every event broadcast (after commit) to any project."""
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr("collab.broadcast.send_now", lambda project_id, event: seen.append(event))
    return seen


@pytest.fixture
def add_stem(people, tmp_path):
    access = actions.access_project(people["owner"], people["project"].id, Role.OWNER)

    def add(name: str, **audio: Any) -> Stem:
        path = write_audio(tmp_path / f"{name}.wav", **audio)
        # Analysis is not needed to render; its job waits on a commit that the
        # test transaction never makes.
        return actions.do_add_stem_from_file(access, path, name=name)

    return add


@pytest.fixture
def song(people, add_stem) -> dict[str, Any]:
    """Two tracks: a stereo tone with a fade-in, and a panned mono tone."""
    drums = add_stem("drums", seconds=1.5, freq=220.0, channels=2, level_db=-14)
    bass = add_stem("bass", seconds=1.0, freq=110.0, channels=1, level_db=-10)
    editing.do_edit(
        people["owner"],
        people["project"].id,
        [
            {"op": "create", "kind": "track", "id": "t1", "props": {"name": "Drums", "order": "a"}},
            {
                "op": "create",
                "kind": "track",
                "id": "t2",
                "props": {"name": "Bass", "order": "b", "pan": -0.3, "gain_db": -3.0},
            },
            {
                "op": "create",
                "kind": "clip",
                "id": "c1",
                "props": {"track": "t1", "source": f"stem:{drums.id}", "fade_in": 0.1},
            },
            {
                "op": "create",
                "kind": "clip",
                "id": "c2",
                "props": {"track": "t2", "source": f"stem:{bass.id}", "start": 0.5},
            },
        ],
    )
    people["project"].refresh_from_db()
    return {"drums": drums, "bass": bass}


@pytest.fixture
def ask(client_for, people, django_capture_on_commit_callbacks):
    """POST a render request and run what its commit queues (the render job
    itself, on the immediate backend)."""

    def run(body: dict[str, Any], who: str = "owner", execute: bool = True) -> Any:
        with django_capture_on_commit_callbacks(execute=execute):
            return client_for(who).post(
                f"/api/projects/{people['project'].id}/renders", body, format="json"
            )

    return run


@pytest.fixture
def engine_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the engine runs the render task makes."""
    calls: list[str] = []
    real = studio.tasks.render

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(studio.tasks, "render", counting)
    return calls


def body_of(response: Any) -> bytes:
    return b"".join(response)


def blob_path(source: str) -> str:
    stem = Stem.objects.select_related("blob").get(id=int(source.split(":")[1]))
    return default_storage.path(stem.blob.storage_name)


def render_directly(document: dict[str, Any], out: Path, **options: Any) -> Any:
    return render(parse_document(document), blob_path, str(out), **options)


def url(project: Any, suffix: str = "") -> str:
    return f"/api/projects/{project.id}/renders{suffix}"


# --- rendering ----------------------------------------------------------------------------


def test_a_render_is_the_engine_rendering_the_exported_document(
    ask, song, project, client_for, tmp_path, engine_calls
):
    response = ask({"format": "flac", "bit_depth": 24})
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "queued"  # the job runs after commit

    job = client_for("viewer").get(url(project, f"/{response.json()['id']}")).json()
    assert job["status"] == "done", job["error"]
    assert (job["revision"], job["cached"], job["progress"]) == (project.revision, False, 1.0)
    assert len(engine_calls) == 1

    download = client_for("viewer").get(job["download_url"])
    assert download.status_code == 200
    assert download["Content-Type"] == "audio/flac"
    assert f'filename="Band r{project.revision}.flac"' in download["Content-Disposition"]
    data = body_of(download)
    assert int(download["Content-Length"]) == len(data) == job["size"]

    reference = tmp_path / "reference.flac"
    result = render_directly(editing.export_document(project), reference, bit_depth="24")
    got, rate = sf.read(io.BytesIO(data), dtype="int32")
    want, _ = sf.read(str(reference), dtype="int32")
    assert rate == 48000
    # Clips end at 1.5 s; the song is exactly that long.
    assert got.shape == want.shape == (72000, 2)
    np.testing.assert_array_equal(got, want)
    assert job["pcm_sha256"] == result.pcm_sha256
    assert job["duration_s"] == pytest.approx(1.5)
    assert job["lufs"] == pytest.approx(result.lufs, abs=0.01)


def test_mastering_and_mp3_options_reach_the_engine(ask, song, project, client_for):
    job = ask({"format": "mp3", "mp3_quality": "V2", "master": "ebu"}).json()
    job = client_for("owner").get(url(project, f"/{job['id']}")).json()
    assert job["status"] == "done", job["error"]
    assert (job["format"], job["mp3_quality"], job["bit_depth"]) == ("mp3", "V2", None)
    assert (job["master"], job["master_lufs"]) == ("ebu", -23.0)
    # Mastered to EBU R128 on the project's own meter, within the engine's tolerance.
    assert job["lufs"] == pytest.approx(-23.0, abs=0.5)
    assert job["true_peak_dbtp"] <= -1.0 + 1e-6
    data = body_of(client_for("owner").get(job["download_url"]))
    audio, rate = sf.read(io.BytesIO(data))
    assert rate == 48000 and audio.shape[1] == 2


def test_the_render_threads_setting_reaches_the_engine_and_changes_no_byte(
    ask, song, project, client_for, settings, monkeypatch
):
    pools: list[int | None] = []
    real_pool = audio.engine.render.ThreadPoolExecutor

    class CountedPool(real_pool):  # type: ignore[misc, valid-type]
        def __init__(self, max_workers: int | None = None, *args: Any, **kwargs: Any) -> None:
            pools.append(max_workers)
            super().__init__(max_workers, *args, **kwargs)

    monkeypatch.setattr(audio.engine.render, "ThreadPoolExecutor", CountedPool)
    hashes = []
    for threads in (1, 3):
        settings.ROOMTONE_RENDER_THREADS = threads
        # Stems the second time, so the cache does not answer; the mix is the same.
        job = ask({"format": "wav", "bit_depth": "24", "stems": threads == 3}).json()
        job = client_for("owner").get(url(project, f"/{job['id']}")).json()
        assert job["status"] == "done", job["error"]
        hashes.append(job["pcm_sha256"])
    assert pools == [3]  # none for one thread, one pool of three
    assert hashes[0] == hashes[1]  # the mix's PCM, byte for byte


def test_stems_render_is_a_zip_of_the_mix_and_one_file_per_track(ask, song, project, client_for):
    job = ask({"format": "wav", "bit_depth": "32f", "stems": True}).json()
    job = client_for("owner").get(url(project, f"/{job['id']}")).json()
    assert job["status"] == "done", job["error"]
    assert job["filename"] == f"Band r{project.revision} stems.zip"
    response = client_for("owner").get(job["download_url"])
    assert response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(body_of(response))) as zf:
        assert zf.namelist() == ["Mix.wav", "01 Drums.wav", "02 Bass.wav"]
        mix, _ = sf.read(io.BytesIO(zf.read("Mix.wav")), dtype="float32")
        drums, _ = sf.read(io.BytesIO(zf.read("01 Drums.wav")), dtype="float32")
        bass, _ = sf.read(io.BytesIO(zf.read("02 Bass.wav")), dtype="float32")
    # Stems are post-fader, post-pan and add up to the (unmastered) mix.
    np.testing.assert_allclose(drums + bass, mix, atol=1e-6)
    assert np.max(np.abs(bass[:24000])) == 0.0  # the bass clip starts at 0.5 s
    assert np.max(np.abs(bass[:, 0])) > np.max(np.abs(bass[:, 1]))  # panned left


# --- caching --------------------------------------------------------------------------------


def test_asking_again_for_an_unchanged_revision_returns_the_stored_file_at_once(
    ask, song, project, client_for, engine_calls, media_root
):
    first = ask({"format": "wav", "bit_depth": 16}).json()
    first = client_for("owner").get(url(project, f"/{first['id']}")).json()
    assert first["status"] == "done" and len(engine_calls) == 1

    began = time.perf_counter()
    again = ask({"format": "wav", "bit_depth": "16"}, who="viewer")
    assert time.perf_counter() - began < 1.0
    assert again.status_code == 201
    cached = again.json()
    # Done in the answer itself, a new job pointing at the same file, no engine run.
    assert (cached["status"], cached["cached"], cached["progress"]) == ("done", True, 1.0)
    assert cached["id"] != first["id"]
    assert cached["cache_key"] == first["cache_key"]
    assert cached["pcm_sha256"] == first["pcm_sha256"]
    assert len(engine_calls) == 1
    jobs = RenderJob.objects.filter(id__in=[first["id"], cached["id"]])
    assert len({j.output_name for j in jobs}) == 1
    a = body_of(client_for("owner").get(first["download_url"]))
    b = body_of(client_for("viewer").get(cached["download_url"]))
    assert a == b
    assert len(list((media_root / "renders").rglob("*.wav"))) == 1


def test_a_comment_bumps_the_revision_but_not_the_audio_so_the_cache_still_serves(
    ask, song, project, people, engine_calls
):
    first = ask({"format": "flac"}).json()
    editing.do_edit(
        people["viewer"],
        project.id,
        [{"op": "create", "kind": "comment", "id": "k1", "props": {"time": 1.0, "text": "nice"}}],
    )
    project.refresh_from_db()
    again = ask({"format": "flac"}).json()
    assert again["revision"] == first["revision"] + 1 == project.revision
    assert again["cached"] is True and again["cache_key"] == first["cache_key"]
    assert again["filename"] == f"Band r{project.revision}.flac"
    assert len(engine_calls) == 1


def test_a_changed_document_or_options_miss_the_cache(
    ask, song, project, people, client_for, engine_calls
):
    first = ask({"format": "flac"}).json()
    editing.do_edit(
        people["editor"],
        project.id,
        [{"op": "set", "kind": "track", "id": "t2", "props": {"gain_db": -9.0}}],
    )
    changed = ask({"format": "flac"}).json()
    assert changed["revision"] == first["revision"] + 1
    assert changed["cache_key"] != first["cache_key"]
    changed = client_for("owner").get(url(project, f"/{changed['id']}")).json()
    assert changed["status"] == "done" and changed["cached"] is False
    assert changed["pcm_sha256"] != first["pcm_sha256"]
    other_options = ask({"format": "flac", "bit_depth": "16"}).json()
    assert other_options["cached"] is False
    # A preset and the same custom target are one render.
    streaming = ask({"format": "flac", "master": "streaming"}).json()
    custom = ask({"format": "flac", "master": -14}).json()
    assert custom["cache_key"] == streaming["cache_key"] and custom["cached"] is True
    assert len(engine_calls) == 4


def test_a_cached_file_that_is_gone_is_rendered_again(ask, song, project, engine_calls):
    first = ask({"format": "wav"}).json()
    default_storage.delete(RenderJob.objects.get(id=first["id"]).output_name)
    again = ask({"format": "wav"}).json()
    assert again["cached"] is False
    assert RenderJob.objects.get(id=again["id"]).status == "done"
    assert len(engine_calls) == 2


def test_an_identical_render_in_flight_is_returned_instead_of_queued_twice(
    ask, song, project, engine_calls
):
    first = ask({"format": "wav"}, execute=False)
    second = ask({"format": "wav"}, who="viewer", execute=False)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert RenderJob.objects.count() == 1


def test_at_most_three_renders_in_flight_per_member(ask, song, project):
    for depth in ("16", "24", "32f"):
        assert ask({"bit_depth": depth}, who="viewer", execute=False).status_code == 201
    refused = ask({"format": "flac"}, who="viewer", execute=False)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_renders"
    assert ask({"format": "flac"}, who="editor", execute=False).status_code == 201


# --- revisions and versions ---------------------------------------------------------------


def test_a_saved_version_renders_as_it_was(ask, song, project, people, client_for, tmp_path):
    version = editing.do_save_version(people["owner"], project.id, "Rough mix")
    editing.do_edit(
        people["owner"],
        project.id,
        [{"op": "set", "kind": "track", "id": "t1", "props": {"mute": True}}],
    )
    job = ask({"format": "wav", "bit_depth": "24", "version": version.id}).json()
    assert job["revision"] == version.revision
    assert job["version"] == {"id": version.id, "name": "Rough mix"}
    assert job["filename"] == "Band Rough mix.wav"
    job = client_for("owner").get(url(project, f"/{job['id']}")).json()
    assert job["status"] == "done", job["error"]
    data = body_of(client_for("owner").get(job["download_url"]))
    reference = tmp_path / "version.wav"
    render_directly(editing.export_document(project, version.revision), reference)
    assert data == reference.read_bytes()
    # The same document asked for by revision is the same render.
    by_revision = ask({"format": "wav", "bit_depth": "24", "revision": version.revision}).json()
    assert by_revision["cached"] is True and by_revision["cache_key"] == job["cache_key"]
    # And the current (muted) revision is not.
    assert ask({"format": "wav", "bit_depth": "24"}).json()["cached"] is False


def test_a_version_whose_stem_was_deleted_is_refused_clearly(
    ask, song, project, people, client_for
):
    version = editing.do_save_version(people["owner"], project.id, "With bass")
    editing.do_edit(people["owner"], project.id, [{"op": "delete", "kind": "track", "id": "t2"}])
    assert (
        client_for("owner")
        .delete(f"/api/projects/{project.id}/stems/{song['bass'].id}")
        .status_code
        == 204
    )
    response = ask({"version": version.id})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "stem_deleted"
    assert f"stem:{song['bass'].id}" in response.json()["error"]["message"]
    assert not RenderJob.objects.exists()


# --- bad requests and permissions ----------------------------------------------------------


@pytest.mark.parametrize(
    "body, message",
    [
        ({"format": "ogg"}, "format must be one of wav, flac, mp3"),
        ({"format": "flac", "bit_depth": "32f"}, "FLAC stores 16 or 24-bit"),
        ({"bit_depth": 20}, "bit_depth must be 16, 24 or 32f"),
        ({"format": "mp3", "mp3_quality": "128"}, "mp3_quality must be 320"),
        ({"master": "loud"}, "master must be none, streaming, apple, ebu"),
        ({"master": 3}, "from -60 to 0 LUFS"),
        ({"master": True}, "master must be"),
        ({"stems": "yes"}, "stems must be true or false"),
        ({"revision": -1}, "revision must be a whole number"),
        ({"revision": 999}, "revision 999 does not exist"),
        ({"revision": 1, "version": 1}, "not both"),
        ({"colour": "red"}, "unknown field(s): colour"),
    ],
)
def test_bad_options_are_refused_and_create_nothing(ask, song, body, message, events):
    response = ask(body)
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]["message"]
    assert not RenderJob.objects.exists()
    assert not [e for e in events if e["type"].startswith("render.")]


def test_a_project_without_clips_has_nothing_to_render(ask):
    response = ask({"format": "wav"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "nothing_to_render"


def test_an_unknown_version_is_not_found(ask, song):
    assert ask({"version": 987654}).status_code == 404


@pytest.mark.parametrize("who, status", [("outsider", 404), ("anonymous", 401)])
def test_outsiders_see_no_renders(ask, song, project, client_for, who, status):
    job = ask({"format": "wav"}).json()
    client = client_for(who)
    assert client.get(url(project)).status_code == status
    assert client.post(url(project), {"format": "wav"}, format="json").status_code == status
    assert client.get(url(project, f"/{job['id']}")).status_code == status
    assert client.get(url(project, f"/{job['id']}/download")).status_code == status
    assert client.post(url(project, f"/{job['id']}/cancel")).status_code == status


def test_viewers_render_and_download_and_cancel_only_their_own(ask, song, project, client_for):
    mine = ask({"format": "wav"}, who="viewer")
    assert mine.status_code == 201
    listed = client_for("viewer").get(url(project)).json()["renders"]
    assert [r["id"] for r in listed] == [mine.json()["id"]]
    assert listed[0]["requested_by"] == "vera"
    assert client_for("viewer").get(listed[0]["download_url"]).status_code == 200

    editors = ask({"format": "flac"}, who="editor", execute=False).json()
    refused = client_for("viewer").post(url(project, f"/{editors['id']}/cancel"))
    assert refused.status_code == 403
    viewers = ask({"format": "mp3"}, who="viewer", execute=False).json()
    assert client_for("viewer").post(url(project, f"/{viewers['id']}/cancel")).status_code == 200
    # Editors and owners may cancel anyone's.
    assert client_for("owner").post(url(project, f"/{editors['id']}/cancel")).status_code == 200


def test_downloading_an_unfinished_render_is_a_conflict(ask, song, project, client_for):
    job = ask({"format": "wav"}, execute=False).json()
    assert job["download_url"] is None
    response = client_for("owner").get(url(project, f"/{job['id']}/download"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "render_not_done"


# --- progress and cancellation -------------------------------------------------------------


def test_progress_and_completion_are_broadcast_to_the_project(
    ask, people, add_stem, project, events
):
    long = add_stem("long", seconds=40.0, freq=330.0)
    editing.do_edit(
        people["owner"],
        project.id,
        [
            {"op": "create", "kind": "track", "id": "t1", "props": {"name": "Long", "order": "a"}},
            {
                "op": "create",
                "kind": "clip",
                "id": "c1",
                "props": {"track": "t1", "source": f"stem:{long.id}"},
            },
        ],
    )
    events.clear()
    began = time.perf_counter()
    job = ask({"format": "flac", "master": "streaming"}).json()
    elapsed = time.perf_counter() - began
    mine = [e for e in events if e["type"].startswith("render.")]
    updates = [e["render"] for e in mine if e["type"] == "render.updated"]
    progress = [e for e in mine if e["type"] == "render.progress"]
    assert [u["status"] for u in updates] == ["queued", "running", "done"]
    assert all(u["id"] == job["id"] for u in updates)
    assert updates[-1]["download_url"] == f"/api/projects/{project.id}/renders/{job['id']}/download"
    assert progress, "no progress was broadcast"
    assert all(p["render_id"] == job["id"] for p in progress)
    values = [p["progress"] for p in progress]
    assert values == sorted(values) and values[0] >= 0.0 and values[-1] <= 1.0
    # Throttled to about 10 a second, however many blocks the engine reports.
    assert len(progress) <= 10 * elapsed + 2


def test_cancelling_a_queued_render_means_it_never_runs(
    ask, song, project, client_for, events, engine_calls, django_capture_on_commit_callbacks
):
    job = ask({"format": "wav"}, execute=False).json()
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = client_for("owner").post(url(project, f"/{job['id']}/cancel"))
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    studio.tasks.render_project.call(job["id"])  # the queue delivers it anyway
    assert RenderJob.objects.get(id=job["id"]).status == "cancelled"
    assert engine_calls == []
    assert events[-1]["type"] == "render.updated"
    assert events[-1]["render"]["status"] == "cancelled"
    again = client_for("owner").post(url(project, f"/{job['id']}/cancel"))
    assert again.status_code == 409


def test_cancelling_a_running_render_stops_the_engine_and_stores_nothing(
    ask, song, project, people, monkeypatch, media_root
):
    real = studio.tasks.render

    def cancel_first(*args: Any, **kwargs: Any) -> Any:
        # The user presses cancel while the engine runs.
        job = RenderJob.objects.get()
        renders.do_cancel_render(people["owner"], project.id, job.id)
        return real(*args, **kwargs)

    monkeypatch.setattr(studio.tasks, "render", cancel_first)
    monkeypatch.setattr(studio.tasks, "CHECK_EVERY_S", 0.0)
    job = ask({"format": "wav"}).json()
    row = RenderJob.objects.get(id=job["id"])
    assert (row.status, row.cancel_requested, row.output_name) == ("cancelled", True, "")
    assert not (media_root / "renders").exists()


# --- retry ---------------------------------------------------------------------------------


def _orphan(job_id: int, attempts: int) -> None:
    """What a worker that died mid-render leaves behind."""
    RenderJob.objects.filter(id=job_id).update(
        status="running",
        attempts=attempts,
        progress=0.4,
        heartbeat_at=timezone.now() - timedelta(seconds=renders.STALE_AFTER_S + 1),
    )


def test_a_render_whose_worker_died_is_requeued_and_completes(
    ask, song, project, engine_calls, django_capture_on_commit_callbacks
):
    job = ask({"format": "flac"}, execute=False).json()
    fresh = ask({"format": "wav"}, execute=False).json()
    _orphan(job["id"], attempts=1)
    RenderJob.objects.filter(id=fresh["id"]).update(status="running", attempts=1)

    with django_capture_on_commit_callbacks(execute=True):
        call_command("resume_renders", stdout=io.StringIO())
    row = RenderJob.objects.get(id=job["id"])
    assert (row.status, row.attempts, row.error) == ("done", 2, "")
    assert default_storage.exists(row.output_name)
    assert len(engine_calls) == 1
    # A render with a recent heartbeat is alive: left alone.
    assert RenderJob.objects.get(id=fresh["id"]).status == "running"


def test_a_render_that_keeps_dying_fails_clearly_after_three_attempts(
    ask, song, project, client_for, engine_calls, django_capture_on_commit_callbacks
):
    job = ask({"format": "flac"}, execute=False).json()
    _orphan(job["id"], attempts=renders.MAX_ATTEMPTS)
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("resume_renders", stdout=out)
    assert "1 failed" in out.getvalue()
    failed = client_for("owner").get(url(project, f"/{job['id']}")).json()
    assert failed["status"] == "failed"
    assert "stopped 3 times without finishing" in failed["error"]
    assert engine_calls == []


def test_asking_again_revives_an_identical_render_whose_worker_died(
    ask, song, project, engine_calls
):
    job = ask({"format": "flac"}, execute=False).json()
    _orphan(job["id"], attempts=1)
    again = ask({"format": "flac"})
    assert again.json()["id"] == job["id"]
    assert RenderJob.objects.get(id=job["id"]).status == "done"
    assert len(engine_calls) == 1


def test_a_run_that_lost_its_lease_writes_nothing(ask, song, project):
    job = ask({"format": "wav"}).json()
    row = RenderJob.objects.get(id=job["id"])
    assert row.attempts == 1
    output = renders.RenderOutput("renders/x/y.wav", 1, 1.0, -20.0, -1.0, -1.0, "0" * 64)
    assert renders.do_finish_render(row.id, attempt=0, output=output) is None
    assert renders.do_render_progress(row.id, attempt=0, fraction=0.5) is False
    row.refresh_from_db()
    assert row.output_name != "renders/x/y.wav"


# --- clean-up -------------------------------------------------------------------------------


def test_deleting_the_project_deletes_its_render_files(
    ask, song, project, people, client_for, media_root, django_capture_on_commit_callbacks
):
    ask({"format": "wav"})
    assert list((media_root / "renders").rglob("*.wav"))
    # Clips protect their stems; empty the document first.
    editing.do_edit(
        people["owner"],
        project.id,
        [
            {"op": "delete", "kind": "track", "id": "t1"},
            {"op": "delete", "kind": "track", "id": "t2"},
        ],
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert client_for("owner").delete(f"/api/projects/{project.id}").status_code == 204
    assert not list((media_root / "renders").rglob("*.wav"))
    assert not Blob.objects.exists()


# --- scale-out ------------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_render_runs_on_an_rq_worker(rq_queue, song, project, client_for, monkeypatch):
    task = studio.tasks.render_project.using(queue_name=rq_queue.name)
    monkeypatch.setattr(studio.tasks, "enqueue_render", lambda job_id: task.enqueue(job_id))
    response = client_for("viewer").post(url(project), {"format": "flac"}, format="json")
    assert response.status_code == 201
    job_id = response.json()["id"]
    assert RenderJob.objects.get(id=job_id).status == "queued"  # queued on Redis, not run

    rq_queue.work()

    row = RenderJob.objects.get(id=job_id)
    assert (row.status, row.attempts) == ("done", 1), row.error
    assert default_storage.exists(row.output_name)
