"""One JSON shape per object, shared by the REST API and broadcast events."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from .models import Membership, Project, ShareLink, Stem


def project_payload(project: Project, role: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": project.id,
        "name": project.name,
        "sample_rate": project.sample_rate,
        "tempo_bpm": project.tempo_bpm,
        "time_signature": [project.time_signature_num, project.time_signature_den],
        "revision": project.revision,
        "created_at": project.created_at.isoformat(),
        "updated_at": project.updated_at.isoformat(),
    }
    if role is not None:
        data["role"] = role
    return data


def member_payload(membership: Membership) -> dict[str, Any]:
    return {
        "user_id": membership.user_id,
        "username": membership.user.get_username(),
        "role": membership.role,
        "joined_at": membership.created_at.isoformat(),
    }


def share_link_payload(link: ShareLink, token: str) -> dict[str, Any]:
    return {
        "id": link.id,
        "role": link.role,
        "token": token,
        "url": reverse("join", args=[token]),
        "created_at": link.created_at.isoformat(),
        "expires_at": link.expires_at.isoformat(),
        "revoked": link.revoked_at is not None,
    }


def stem_payload(stem: Stem) -> dict[str, Any]:
    base = f"/api/projects/{stem.project_id}/stems/{stem.id}"
    return {
        "id": stem.id,
        "project_id": stem.project_id,
        "name": stem.name,
        "original_filename": stem.original_filename,
        "format": stem.format,
        "subtype": stem.subtype,
        "sample_rate": stem.sample_rate,
        "channels": stem.channels,
        "frames": stem.frames,
        "duration_s": round(stem.duration_s, 6),
        "size": stem.blob.size,
        "sha256": stem.blob_id,
        "uploader": stem.uploader.get_username() if stem.uploader else None,
        "created_at": stem.created_at.isoformat(),
        "status": stem.status,
        "progress": round(stem.progress, 4),
        "error": stem.error,
        "integrated_lufs": stem.integrated_lufs,
        "true_peak_dbtp": stem.true_peak_dbtp,
        "sample_peak_dbfs": stem.sample_peak_dbfs,
        "download_url": f"{base}/download",
        "peaks_url": f"{base}/peaks" if stem.peaks_name else None,
        "preview_url": f"{base}/preview" if stem.preview_name else None,
    }
