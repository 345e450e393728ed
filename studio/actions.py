"""Every write in the studio goes through a do_* function here.

access_* look rows up with a permission check and raise; check_* validate input
and raise; do_* write in one transaction and broadcast after commit. Views,
consumers and tasks call these and nothing else writes.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser, User
from django.core import signing
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from collab.broadcast import send_on_commit

from . import editing
from .errors import Conflict, Forbidden, Invalid, NotFound
from .models import (
    ROLE_RANK,
    SAMPLE_RATES,
    TIME_SIGNATURE_DENOMINATORS,
    Blob,
    Membership,
    Project,
    Role,
    ShareLink,
    Stem,
    StemStatus,
    finite_or_none,
)
from .payloads import project_payload, stem_payload

AnyUser = AbstractBaseUser | AnonymousUser
SHARE_LINK_SALT = "roomtone.share-link"


# --- access -------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectAccess:
    project: Project
    membership: Membership

    @property
    def role(self) -> str:
        return str(self.membership.role)


def access_project(user: AnyUser, project_id: int, needed: str = Role.VIEWER) -> ProjectAccess:
    """The project as seen by `user`, who must hold at least `needed`.

    Outsiders get NotFound, not Forbidden, so project ids reveal nothing.
    """
    if not user.is_authenticated:
        raise NotFound("project not found")
    try:
        membership = Membership.objects.select_related("project").get(
            project_id=project_id, user_id=user.pk
        )
    except Membership.DoesNotExist:
        raise NotFound("project not found") from None
    if not membership.allows(needed):
        raise Forbidden(f"this needs the {needed} role; you are {membership.role}")
    return ProjectAccess(membership.project, membership)


def access_stem(user: AnyUser, project_id: int, stem_id: int, needed: str = Role.VIEWER) -> Stem:
    access_project(user, project_id, needed)
    try:
        return Stem.objects.select_related("blob", "uploader").get(
            id=stem_id, project_id=project_id
        )
    except Stem.DoesNotExist:
        raise NotFound("stem not found") from None


def projects_for(user: AnyUser) -> list[tuple[Project, str]]:
    if not user.is_authenticated:
        return []
    rows = Membership.objects.filter(user_id=user.pk).select_related("project")
    rows = rows.order_by("-project__updated_at", "-project_id")
    return [(m.project, m.role) for m in rows]


# --- checks -------------------------------------------------------------------


def check_name(value: Any, what: str = "name") -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{what} must be a non-empty string")
    text: str = value.strip()
    if len(text) > 200:
        raise Invalid(f"{what} is too long (at most 200 characters)")
    return text


def check_project_settings(fields: dict[str, Any]) -> dict[str, Any]:
    allowed = {"name", "sample_rate", "tempo_bpm", "time_signature"}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(unknown)}")
    out: dict[str, Any] = {}
    if "name" in fields:
        out["name"] = check_name(fields["name"])
    if "sample_rate" in fields:
        rate = fields["sample_rate"]
        if isinstance(rate, bool) or rate not in SAMPLE_RATES:
            raise Invalid("sample_rate must be 44100 or 48000")
        out["sample_rate"] = int(rate)
    if "tempo_bpm" in fields:
        tempo = fields["tempo_bpm"]
        if (
            isinstance(tempo, bool)
            or not isinstance(tempo, int | float)
            or not 20.0 <= tempo <= 400.0  # also false for NaN, and never overflows
        ):
            raise Invalid("tempo_bpm must be a number from 20 to 400")
        out["tempo_bpm"] = float(tempo)
    if "time_signature" in fields:
        ts = fields["time_signature"]
        if (
            not isinstance(ts, list | tuple)
            or len(ts) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in ts)
            or not 1 <= ts[0] <= 32
            or ts[1] not in TIME_SIGNATURE_DENOMINATORS
        ):
            raise Invalid(
                "time_signature must be [beats, note value] with beats 1-32 "
                "and note value 1, 2, 4, 8 or 16"
            )
        out["time_signature_num"], out["time_signature_den"] = int(ts[0]), int(ts[1])
    return out


def check_role(value: Any, allow_owner: bool = True) -> str:
    choices = [Role.OWNER, Role.EDITOR, Role.VIEWER] if allow_owner else [Role.EDITOR, Role.VIEWER]
    if value not in choices:
        raise Invalid(f"role must be one of {', '.join(choices)}")
    return str(value)


# --- projects -----------------------------------------------------------------


def do_create_project(user: User, name: Any, fields: dict[str, Any] | None = None) -> Project:
    values = check_project_settings({**(fields or {}), "name": name})
    with transaction.atomic():
        project = Project.objects.create(created_by=user, **values)
        Membership.objects.create(project=project, user=user, role=Role.OWNER)
        editing.create_initial_version(project, user)
    return project


def do_update_project(access: ProjectAccess, fields: dict[str, Any]) -> Project:
    if ROLE_RANK[Role(access.role)] < ROLE_RANK[Role.EDITOR]:
        raise Forbidden("viewers cannot change project settings")
    values = check_project_settings(fields)
    with transaction.atomic():
        project = Project.objects.select_for_update().get(id=access.project.id)
        # Settings the document holds change through the op log, so they are
        # undoable and replayable; the name is not part of the document.
        settings_ops: dict[str, Any] = {}
        for key in ("sample_rate", "tempo_bpm"):
            if key in values:
                settings_ops[key] = values[key]
        if "time_signature_num" in values:
            settings_ops["time_signature"] = [
                values["time_signature_num"],
                values["time_signature_den"],
            ]
        if settings_ops:
            editing.do_update_settings(project, access.membership.user, settings_ops)
        if "name" in values and values["name"] != project.name:
            project.name = values["name"]
            project.save(update_fields=["name", "updated_at"])
            send_on_commit(
                project.id, {"type": "project.updated", "project": project_payload(project)}
            )
    return project


def do_delete_project(access: ProjectAccess) -> None:
    if access.role != Role.OWNER:
        raise Forbidden("only owners can delete a project")
    project = access.project
    with transaction.atomic():
        stems = list(project.stems.values_list("id", "blob_id"))
        rendered = list(project.renders.values_list("output_name", flat=True))
        project_id = project.id
        project.delete()
        send_on_commit(project_id, {"type": "project.deleted", "project_id": project_id})
        transaction.on_commit(
            lambda: _collect_blobs([b for _, b in stems], [derived_folder(s) for s, _ in stems]),
            robust=True,
        )
        from .renders import collect_render_files

        transaction.on_commit(lambda: collect_render_files(rendered), robust=True)


# --- members ------------------------------------------------------------------


def _require_owner(access: ProjectAccess, what: str) -> None:
    if access.role != Role.OWNER:
        raise Forbidden(f"only owners can {what}")


def do_add_member(access: ProjectAccess, username: Any, role: Any) -> Membership:
    _require_owner(access, "add members")
    role = check_role(role)
    if not isinstance(username, str) or not username:
        raise Invalid("username is required")
    User = get_user_model()
    try:
        user = User.objects.get(**{User.USERNAME_FIELD: username})
    except User.DoesNotExist:
        raise Invalid(f"no user named {username!r}") from None
    try:
        with transaction.atomic():
            membership = Membership.objects.create(project=access.project, user=user, role=role)
            _broadcast_members(access.project.id)
    except IntegrityError:
        raise Invalid(f"{username} is already a member") from None
    return membership


def _owner_count(project_id: int) -> int:
    return Membership.objects.filter(project_id=project_id, role=Role.OWNER).count()


def do_change_role(access: ProjectAccess, user_id: int, role: Any) -> Membership:
    _require_owner(access, "change roles")
    role = check_role(role)
    with transaction.atomic():
        membership = _lock_membership(access.project.id, user_id)
        if (
            membership.role == Role.OWNER
            and role != Role.OWNER
            and _owner_count(access.project.id) == 1
        ):
            raise Invalid("a project needs at least one owner")
        membership.role = role
        membership.save(update_fields=["role"])
        _broadcast_members(access.project.id)
    return membership


def do_remove_member(access: ProjectAccess, user_id: int) -> None:
    leaving_self = access.membership.user_id == user_id
    if not leaving_self:
        _require_owner(access, "remove members")
    with transaction.atomic():
        membership = _lock_membership(access.project.id, user_id)
        if membership.role == Role.OWNER and _owner_count(access.project.id) == 1:
            raise Invalid("a project needs at least one owner: delete it or name another owner")
        membership.delete()
        _broadcast_members(access.project.id)


def _lock_membership(project_id: int, user_id: int) -> Membership:
    # Lock the project first: two owners stepping down at once must not both
    # see the other still there and leave it with none.
    Project.objects.select_for_update().filter(id=project_id).first()
    try:
        return Membership.objects.select_for_update().get(project_id=project_id, user_id=user_id)
    except Membership.DoesNotExist:
        raise NotFound("member not found") from None


def _broadcast_members(project_id: int) -> None:
    send_on_commit(project_id, {"type": "members.changed", "project_id": project_id})


# --- share links --------------------------------------------------------------


def share_link_token(link: ShareLink) -> str:
    return signing.dumps({"l": link.id, "p": link.project_id}, salt=SHARE_LINK_SALT, compress=True)


def do_create_share_link(
    access: ProjectAccess, role: Any, expires_in_days: Any = None
) -> ShareLink:
    _require_owner(access, "create share links")
    role = check_role(role, allow_owner=False)
    days = settings.ROOMTONE_SHARE_LINK_DAYS if expires_in_days is None else expires_in_days
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 365:
        raise Invalid("expires_in_days must be a whole number from 1 to 365")
    return ShareLink.objects.create(
        project=access.project,
        role=role,
        created_by=access.membership.user,
        expires_at=timezone.now() + timedelta(days=days),
    )


def do_revoke_share_link(access: ProjectAccess, link_id: int) -> ShareLink:
    _require_owner(access, "revoke share links")
    with transaction.atomic():
        try:
            link = ShareLink.objects.select_for_update().get(id=link_id, project=access.project)
        except ShareLink.DoesNotExist:
            raise NotFound("share link not found") from None
        if link.revoked_at is None:
            link.revoked_at = timezone.now()
            link.save(update_fields=["revoked_at"])
    return link


def access_share_link(token: str) -> ShareLink:
    try:
        data = signing.loads(token, salt=SHARE_LINK_SALT)
        link = ShareLink.objects.select_related("project").get(id=data["l"], project_id=data["p"])
    except (signing.BadSignature, ShareLink.DoesNotExist, KeyError, TypeError):
        raise NotFound("this share link is not valid") from None
    if link.revoked_at is not None:
        raise Invalid("this share link was revoked", code="link_revoked")
    if link.expires_at <= timezone.now():
        raise Invalid("this share link has expired", code="link_expired")
    return link


def do_join_by_link(user: User, token: str) -> Membership:
    """Join with the link's role; a member already holding more keeps it."""
    link = access_share_link(token)
    with transaction.atomic():
        membership, created = Membership.objects.select_for_update().get_or_create(
            project=link.project, user=user, defaults={"role": link.role}
        )
        if not created and ROLE_RANK[Role(membership.role)] < ROLE_RANK[Role(link.role)]:
            membership.role = link.role
            membership.save(update_fields=["role"])
        _broadcast_members(link.project_id)
    return membership


# --- stems --------------------------------------------------------------------


def blob_storage_name(sha256: str) -> str:
    return f"blobs/{sha256[:2]}/{sha256}"


def sha256_of(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def do_add_stem(
    access: ProjectAccess,
    *,
    path: str,
    sha256: str,
    size: int,
    filename: str,
    name: str | None,
    info: Any,
) -> Stem:
    """Store an upload that has passed validation and queue its analysis.

    `info` is the engine's AudioInfo from validating the file at `path`.
    """
    if ROLE_RANK[Role(access.role)] < ROLE_RANK[Role.EDITOR]:
        raise Forbidden("viewers cannot upload stems")
    stem_name = check_name(name or os.path.splitext(os.path.basename(filename))[0] or filename)
    # Copy the bytes before opening a transaction: a long copy must not hold
    # the database's write lock. Same name, same bytes, so a racing upload of
    # the same file is harmless.
    storage_name = _store_blob_file(path, sha256, size)
    with transaction.atomic():
        blob, _ = Blob.objects.get_or_create(
            sha256=sha256, defaults={"size": size, "storage_name": storage_name}
        )
        stem = Stem.objects.create(
            project=access.project,
            blob=blob,
            name=stem_name,
            original_filename=os.path.basename(filename)[:255],
            format=info.format,
            subtype=info.subtype or "",
            sample_rate=info.sample_rate,
            channels=info.channels,
            frames=info.frames,
            uploader=access.membership.user,
        )
        send_on_commit(access.project.id, {"type": "stem.added", "stem": stem_payload(stem)})
        from .tasks import enqueue_ingest

        # robust: the upload is committed even if the queue is down; the stem
        # then stays "analysing" until resume_analysis picks it up.
        transaction.on_commit(lambda: enqueue_ingest(stem.id), robust=True)
    return stem


def do_add_stem_from_file(
    access: ProjectAccess, path: str | os.PathLike[str], *, name: str | None = None
) -> Stem:
    """A stem from an audio file on this machine (demo seed, jam takes,
    scripts): validated and hashed here, as an upload is while it streams.
    Raises the engine's AudioFormatError for a file that is not usable audio."""
    from audio.engine.codecs import validate

    path = os.fspath(path)
    info = validate(path)
    return do_add_stem(
        access,
        path=path,
        sha256=sha256_of(path),
        size=os.path.getsize(path),
        filename=os.path.basename(path),
        name=name,
        info=info,
    )


def _store_blob_file(path: str, sha256: str, size: int) -> str:
    name = blob_storage_name(sha256)
    if default_storage.exists(name):
        if default_storage.size(name) == size:
            return name
        default_storage.delete(name)  # a copy a crash left half written
    with open(path, "rb") as f:
        saved = default_storage.save(name, File(f))
    if saved != name:  # another upload of the same bytes finished first
        default_storage.delete(saved)
    return name


def do_rename_stem(stem: Stem, name: Any) -> Stem:
    stem.name = check_name(name)
    stem.save(update_fields=["name"])
    send_on_commit(stem.project_id, {"type": "stem.updated", "stem": stem_payload(stem)})
    return stem


def do_delete_stem(stem: Stem) -> None:
    project_id, stem_id, blob_id = stem.project_id, stem.id, stem.blob_id
    with transaction.atomic():
        in_use = editing.clips_using(stem)
        if in_use:
            raise Conflict(
                f"{stem.name} is used by {in_use} clip{'s' if in_use != 1 else ''} "
                "in the project: remove them first",
                code="stem_in_use",
            )
        stem.delete()
        send_on_commit(project_id, {"type": "stem.deleted", "stem_id": stem_id})
        transaction.on_commit(
            lambda: _collect_blobs([blob_id], [derived_folder(stem_id)]), robust=True
        )


def derived_folder(stem_id: int) -> str:
    """Where a stem's analysis results (peaks, preview) are stored."""
    return f"derived/stem-{stem_id}"


def delete_derived(stem_id: int) -> None:
    _delete_folder(derived_folder(stem_id))


def _delete_folder(folder: str) -> None:
    try:
        _dirs, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        default_storage.delete(f"{folder}/{name}")


def _collect_blobs(blob_ids: list[str], derived_folders: list[str] | None = None) -> None:
    """Delete stored bytes no stem refers to any more."""
    for folder in derived_folders or []:
        _delete_folder(folder)
    for sha in set(blob_ids):
        with transaction.atomic():
            blob = Blob.objects.select_for_update().filter(sha256=sha).first()
            if blob is None or blob.stems.exists():
                continue
            default_storage.delete(blob.storage_name)
            blob.delete()


def do_stem_progress(stem_id: int, fraction: float) -> None:
    """Progress of a running analysis: cheap, one UPDATE and one event."""
    fraction = min(max(fraction, 0.0), 1.0)
    with transaction.atomic():
        updated = Stem.objects.filter(id=stem_id, status=StemStatus.ANALYSING).update(
            progress=fraction
        )
        if updated:
            project_id = Stem.objects.values_list("project_id", flat=True).get(id=stem_id)
            send_on_commit(
                project_id, {"type": "stem.progress", "stem_id": stem_id, "progress": fraction}
            )


def do_finish_stem_analysis(
    stem_id: int,
    *,
    integrated_lufs: float,
    true_peak_dbtp: float,
    sample_peak_dbfs: float,
    peaks_name: str,
    preview_name: str,
) -> Stem | None:
    with transaction.atomic():
        stem = _lock_stem(stem_id)
        if stem is None:  # deleted while it was being analysed
            transaction.on_commit(lambda: _delete_folder(derived_folder(stem_id)))
            return None
        stem.integrated_lufs = finite_or_none(integrated_lufs)
        stem.true_peak_dbtp = finite_or_none(true_peak_dbtp)
        stem.sample_peak_dbfs = finite_or_none(sample_peak_dbfs)
        stem.peaks_name = peaks_name
        stem.preview_name = preview_name
        stem.status = StemStatus.READY
        stem.progress = 1.0
        stem.error = ""
        stem.save()
        send_on_commit(stem.project_id, {"type": "stem.updated", "stem": stem_payload(stem)})
    return stem


def _lock_stem(stem_id: int) -> Stem | None:
    rows = Stem.objects.select_for_update(of=("self",)).select_related("blob", "uploader")
    return rows.filter(id=stem_id).first()


def do_fail_stem_analysis(stem_id: int, message: str) -> None:
    with transaction.atomic():
        stem = _lock_stem(stem_id)
        if stem is None:
            return
        stem.status = StemStatus.FAILED
        stem.error = message[:2000]
        stem.save(update_fields=["status", "error"])
        send_on_commit(stem.project_id, {"type": "stem.updated", "stem": stem_payload(stem)})


# --- account ------------------------------------------------------------------


def do_get_api_token(user: AbstractBaseUser) -> str:
    from rest_framework.authtoken.models import Token

    token, _ = Token.objects.get_or_create(user=user)
    return str(token.key)


def do_rotate_api_token(user: AbstractBaseUser) -> str:
    from rest_framework.authtoken.models import Token

    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return str(Token.objects.create(user=user).key)
