from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from studio.models import Blob, Stem

pytestmark = pytest.mark.django_db


def upload(client, project, path: Path, name: str | None = None):
    with open(path, "rb") as f:
        data = {"file": f}
        if name:
            data["name"] = name
        return client.post(f"/api/projects/{project.id}/stems", data, format="multipart")


def stored_files(media_root: Path) -> list[Path]:
    return [p for p in media_root.rglob("*") if p.is_file()] if media_root.exists() else []


@pytest.fixture
def upload_ready(client_for, project, django_capture_on_commit_callbacks):
    """Upload as the editor and run the analysis job that commits queue."""

    def run(path: Path, name: str | None = None):
        with django_capture_on_commit_callbacks(execute=True):
            response = upload(client_for("editor"), project, path, name)
        assert response.status_code == 201, response.content
        return (
            client_for("viewer")
            .get(f"/api/projects/{project.id}/stems/{response.json()['id']}")
            .json()
        )

    return run


@pytest.mark.parametrize(
    "fmt, suffix, subtype",
    [
        ("WAV", "wav", "PCM_24"),
        ("AIFF", "aiff", "PCM_16"),
        ("FLAC", "flac", "PCM_16"),
        ("OGG", "ogg", "VORBIS"),
        ("MP3", "mp3", "MPEG_LAYER_III"),
    ],
)
def test_every_supported_format_uploads_and_is_analysed(
    upload_ready, audio_file, fmt, suffix, subtype
):
    path = audio_file(
        f"a.{suffix}",
        seconds=2.0,
        rate=44100,
        channels=2,
        freq=997.0,
        level_db=-20,
        fmt=fmt,
        subtype=subtype,
    )
    stem = upload_ready(path, "Guitar")
    assert stem["name"] == "Guitar"
    assert stem["format"] == suffix
    assert stem["sample_rate"] == 44100 and stem["channels"] == 2
    assert stem["status"] == "ready", stem["error"]
    assert stem["duration_s"] == pytest.approx(2.0, abs=0.03)
    assert stem["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert stem["size"] == path.stat().st_size
    # BS.1770 is calibrated so a 997 Hz sine at -20 dBFS on both channels of a
    # stereo file reads -20 LUFS; lossy codecs move it a little.
    assert stem["integrated_lufs"] == pytest.approx(
        -20.0, abs=0.1 if suffix in ("wav", "aiff", "flac") else 0.3
    )
    assert stem["sample_peak_dbfs"] == pytest.approx(
        -20.0, abs=0.05 if suffix in ("wav", "aiff", "flac") else 2.0
    )
    assert stem["true_peak_dbtp"] >= stem["sample_peak_dbfs"] - 1e-9
    assert stem["uploader"] == "eddie"


def test_analysis_gives_waveform_peaks_at_several_zooms(
    upload_ready, audio_file, client_for, project
):
    stem = upload_ready(audio_file(seconds=3.0, rate=48000, channels=1, level_db=-6))
    client = client_for("viewer")
    full = client.get(stem["peaks_url"]).json()
    assert len(full["levels"]) >= 3
    fine = client.get(stem["peaks_url"], {"samples_per_pixel": full["levels"][0]}).json()
    assert fine["samples_per_pixel"] == full["levels"][0]
    assert fine["channels"] == 1 and fine["bits"] == 8
    assert fine["length"] == -(-3 * 48000 // fine["samples_per_pixel"])
    assert len(fine["data"]) == 2 * fine["length"]
    # -6 dBFS is half scale: 8-bit peaks near +-64.
    assert max(fine["data"]) == pytest.approx(64, abs=2)
    assert min(fine["data"]) == pytest.approx(-64, abs=2)


def test_preview_is_browser_playable_audio(upload_ready, audio_file, client_for):
    stem = upload_ready(audio_file(seconds=1.0))
    response = client_for("viewer").get(stem["preview_url"])
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/ogg"
    body = b"".join(response)
    assert body[:4] == b"OggS"
    assert int(response["Content-Length"]) == len(body)


def test_download_returns_the_original_bytes(upload_ready, audio_file, client_for):
    path = audio_file("take 1.flac", fmt="FLAC")
    stem = upload_ready(path)
    response = client_for("viewer").get(stem["download_url"])
    assert response.status_code == 200
    assert b"".join(response) == path.read_bytes()
    assert 'filename="take 1.flac"' in response["Content-Disposition"]


def test_identical_uploads_are_stored_once(upload_ready, audio_file, media_root):
    path = audio_file()
    first = upload_ready(path, "One")
    second = upload_ready(path, "Two")
    assert first["sha256"] == second["sha256"]
    assert Blob.objects.count() == 1
    blobs = [p for p in stored_files(media_root) if "blobs" in p.parts]
    assert len(blobs) == 1


def test_deleting_a_stem_keeps_shared_bytes_until_the_last_user_goes(
    upload_ready, audio_file, client_for, project, media_root, django_capture_on_commit_callbacks
):
    path = audio_file()
    a, b = upload_ready(path), upload_ready(path)
    editor = client_for("editor")
    with django_capture_on_commit_callbacks(execute=True):
        assert editor.delete(f"/api/projects/{project.id}/stems/{a['id']}").status_code == 204
    assert Blob.objects.count() == 1
    still = client_for("viewer").get(b["download_url"])
    assert b"".join(still) == path.read_bytes()
    with django_capture_on_commit_callbacks(execute=True):
        assert editor.delete(f"/api/projects/{project.id}/stems/{b['id']}").status_code == 204
    assert Blob.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.parametrize(
    "who, status",
    [("owner", 201), ("editor", 201), ("viewer", 403), ("outsider", 404), ("anonymous", 401)],
)
def test_upload_needs_editor_or_owner(client_for, project, audio_file, who, status):
    assert upload(client_for(who), project, audio_file()).status_code == status
    assert Stem.objects.count() == (1 if status == 201 else 0)


@pytest.mark.parametrize("who, status", [("viewer", 200), ("outsider", 404), ("anonymous", 401)])
def test_listing_and_downloading_needs_membership(
    upload_ready, audio_file, client_for, project, who, status
):
    stem = upload_ready(audio_file())
    assert client_for(who).get(f"/api/projects/{project.id}/stems").status_code == status
    assert client_for(who).get(stem["download_url"]).status_code == status


@pytest.mark.parametrize("who, status", [("viewer", 403), ("outsider", 404), ("editor", 204)])
def test_deleting_needs_editor_or_owner(upload_ready, audio_file, client_for, project, who, status):
    stem = upload_ready(audio_file())
    assert (
        client_for(who).delete(f"/api/projects/{project.id}/stems/{stem['id']}").status_code
        == status
    )
    assert Stem.objects.filter(id=stem["id"]).exists() == (status != 204)


def test_renaming_a_stem(upload_ready, audio_file, client_for, project):
    stem = upload_ready(audio_file())
    url = f"/api/projects/{project.id}/stems/{stem['id']}"
    assert client_for("viewer").patch(url, {"name": "X"}, format="json").status_code == 403
    assert (
        client_for("editor").patch(url, {"name": "Lead vox"}, format="json").json()["name"]
        == "Lead vox"
    )
    assert client_for("editor").patch(url, {"name": ""}, format="json").status_code == 400


# --- bad uploads: a clear 4xx, and nothing left behind ----------------------------


def _text_as_wav(tmp: Path) -> Path:
    p = tmp / "notes.wav"
    p.write_text("these are my lyrics, not audio\n" * 50)
    return p


def _random_bytes(tmp: Path) -> Path:
    p = tmp / "noise.flac"
    p.write_bytes(np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    return p


def _empty(tmp: Path) -> Path:
    p = tmp / "empty.wav"
    p.write_bytes(b"")
    return p


def _truncated_wav(tmp: Path) -> Path:
    from tests.conftest import write_audio

    p = write_audio(tmp / "cut.wav", seconds=2.0)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 3])
    return p


def _truncated_flac(tmp: Path) -> Path:
    from tests.conftest import write_audio

    p = write_audio(tmp / "cut.flac", seconds=3.0, fmt="FLAC")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


def _corrupt_flac(tmp: Path) -> Path:
    from tests.conftest import write_audio

    p = write_audio(tmp / "bad.flac", seconds=3.0, fmt="FLAC")
    data = bytearray(p.read_bytes())
    rng = np.random.default_rng(3)
    start = len(data) // 3
    data[start : start + 4000] = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    p.write_bytes(bytes(data))
    return p


def _three_channels(tmp: Path) -> Path:
    p = tmp / "surround.wav"
    sf.write(str(p), np.zeros((4800, 3), dtype=np.float32), 48000)
    return p


def _odd_rate(tmp: Path) -> Path:
    p = tmp / "phone.wav"
    sf.write(str(p), np.zeros((8000, 1), dtype=np.float32), 8000)
    return p


@pytest.mark.parametrize(
    "make, status, words",
    [
        (_text_as_wav, 400, "not an audio file"),
        (_random_bytes, 400, "not an audio file"),
        (_empty, 400, "empty"),
        (_truncated_wav, 400, "truncated"),
        (_truncated_flac, 400, "truncated"),
        (_corrupt_flac, 400, "corrupt"),
        (_three_channels, 400, "3 channels"),
        (_odd_rate, 400, "sample rate 8000"),
    ],
    ids=[
        "text-renamed-wav",
        "random-bytes",
        "zero-length",
        "truncated-wav",
        "truncated-flac",
        "corrupt-flac",
        "three-channels",
        "unsupported-rate",
    ],
)
def test_bad_uploads_are_refused_and_leave_nothing(
    client_for, project, tmp_path, media_root, make, status, words
):
    response = upload(client_for("editor"), project, make(tmp_path))
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert words in error["message"]
    assert error["code"] == "bad_audio"
    assert Stem.objects.count() == 0 and Blob.objects.count() == 0
    assert stored_files(media_root) == []


def test_upload_over_the_size_limit_is_refused(
    client_for, project, audio_file, settings, media_root
):
    settings.ROOMTONE_MAX_UPLOAD_BYTES = 100_000
    settings.ROOMTONE_MAX_UPLOAD_MB = 0
    response = upload(client_for("editor"), project, audio_file(seconds=2.0))
    assert response.status_code == 413
    assert "upload limit" in response.json()["error"]["message"]
    assert Stem.objects.count() == 0 and stored_files(media_root) == []


def test_upload_over_the_duration_limit_is_refused(client_for, project, audio_file, settings):
    settings.ROOMTONE_MAX_DURATION_S = 1.0
    response = upload(client_for("editor"), project, audio_file(seconds=2.0))
    assert response.status_code == 400
    assert (
        "duration" in response.json()["error"]["message"]
        or "long" in response.json()["error"]["message"]
    )
    assert Stem.objects.count() == 0


def test_upload_without_a_file_is_refused(client_for, project):
    response = client_for("editor").post(
        f"/api/projects/{project.id}/stems", {"name": "x"}, format="multipart"
    )
    assert response.status_code == 400
    assert "no file" in response.json()["error"]["message"]


def test_mp3_is_decoded_sample_accurately(upload_ready, tmp_path):
    """libmpg123 trims the encoder delay that pedalboard's reader leaves in."""
    wav = tmp_path / "click.wav"
    data = np.zeros(48000, dtype=np.float32)
    data[12000] = 0.9
    sf.write(str(wav), data, 48000)
    mp3 = tmp_path / "click.mp3"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
            str(wav),
            "-c:a",
            "libmp3lame",
            "-b:a",
            "192k",
            str(mp3),
        ],
        check=True,
    )
    stem = upload_ready(mp3)
    assert abs(stem["frames"] - 48000) < 1152


def test_deleting_a_project_removes_its_files(
    upload_ready, audio_file, client_for, project, media_root, django_capture_on_commit_callbacks
):
    upload_ready(audio_file())
    upload_ready(audio_file(seconds=0.5))
    assert stored_files(media_root)
    with django_capture_on_commit_callbacks(execute=True):
        assert client_for("owner").delete(f"/api/projects/{project.id}").status_code == 204
    assert stored_files(media_root) == []
    assert Blob.objects.count() == 0


def test_a_stem_used_by_a_clip_cannot_be_deleted_but_its_project_can(
    upload_ready, audio_file, client_for, project, media_root
):
    stem = upload_ready(audio_file(seconds=1.0))
    ops = [
        {"op": "create", "kind": "track", "id": "t1", "props": {"name": "Gtr", "order": "V"}},
        {
            "op": "create",
            "kind": "clip",
            "id": "c1",
            "props": {"track": "t1", "source": f"stem:{stem['id']}"},
        },
    ]
    edited = client_for("editor").post(
        f"/api/projects/{project.id}/edits", {"ops": ops}, format="json"
    )
    assert edited.status_code == 200, edited.content
    refused = client_for("editor").delete(f"/api/projects/{project.id}/stems/{stem['id']}")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "stem_in_use"
    assert Stem.objects.filter(id=stem["id"]).exists()
    gone = client_for("owner").delete(f"/api/projects/{project.id}")
    assert gone.status_code == 204
    assert not Stem.objects.filter(id=stem["id"]).exists()
