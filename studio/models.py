"""The studio's domain: projects, members and roles, share links, stems.

Writes go through studio.actions; this module holds the shapes and small
read-only helpers.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"


# Higher rank may do everything a lower rank may.
ROLE_RANK = {Role.VIEWER: 1, Role.EDITOR: 2, Role.OWNER: 3}

SAMPLE_RATES = (44100, 48000)
TIME_SIGNATURE_DENOMINATORS = (1, 2, 4, 8, 16)


class Project(models.Model):
    name = models.CharField(max_length=200)
    sample_rate = models.PositiveIntegerField(
        default=48000, choices=[(r, f"{r / 1000:g} kHz") for r in SAMPLE_RATES]
    )
    tempo_bpm = models.FloatField(
        default=120.0, validators=[MinValueValidator(20.0), MaxValueValidator(400.0)]
    )
    time_signature_num = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(1), MaxValueValidator(32)]
    )
    time_signature_den = models.PositiveSmallIntegerField(
        default=4, choices=[(d, str(d)) for d in TIME_SIGNATURE_DENOMINATORS]
    )
    master_gain_db = models.FloatField(default=0.0)
    # Bumped by every committed change to the project document or comments.
    revision = models.PositiveBigIntegerField(default=0)
    # The newest Version (any kind): when the next automatic checkpoint is due.
    checkpoint_revision = models.PositiveBigIntegerField(default=0)
    checkpoint_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")
        ]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.user} {self.role} of {self.project}"

    def allows(self, needed: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(needed)]


class ShareLink(models.Model):
    """An invitation carrying a role. The URL token is signed over the row id, so
    a guessed id is useless; expiry and revocation live on the row."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="share_links")
    role = models.CharField(
        max_length=10, choices=[(Role.EDITOR, "Editor"), (Role.VIEWER, "Viewer")]
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.role} link to {self.project}"


class Blob(models.Model):
    """Uploaded bytes, stored once per sha256 whatever how many stems use them."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.PositiveBigIntegerField()
    storage_name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.sha256


class StemStatus(models.TextChoices):
    ANALYSING = "analysing", "Analysing"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class Stem(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="stems")
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="stems")
    name = models.CharField(max_length=200)
    original_filename = models.CharField(max_length=255)
    format = models.CharField(max_length=10)
    subtype = models.CharField(max_length=40, blank=True)
    sample_rate = models.PositiveIntegerField()
    channels = models.PositiveSmallIntegerField()
    frames = models.PositiveBigIntegerField()
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(
        max_length=10, choices=StemStatus.choices, default=StemStatus.ANALYSING
    )
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    # None until analysed; -inf (silence) is stored as None with status ready.
    integrated_lufs = models.FloatField(null=True, blank=True)
    true_peak_dbtp = models.FloatField(null=True, blank=True)
    sample_peak_dbfs = models.FloatField(null=True, blank=True)
    peaks_name = models.CharField(max_length=200, blank=True)
    preview_name = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0

    @property
    def size(self) -> int:
        return self.blob.size


# --- the project document, stored normalised (docs/protocol.md §2) ----------------
# Objects carry the id their creating client chose (`uid`); references between
# them are by uid, as in the protocol, and studio.docstate keeps them whole.


class DocObject(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    uid = models.CharField(max_length=64)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.uid}"


class DocTrack(DocObject):
    name = models.CharField(max_length=200)
    order = models.CharField(max_length=64)
    gain_db = models.FloatField(default=0.0)
    pan = models.FloatField(default=0.0)
    mute = models.BooleanField(default=False)
    solo = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "uid"], name="track_uid")]


class DocClip(DocObject):
    track_uid = models.CharField(max_length=64)
    # RESTRICT: a stem in use by the current document cannot be deleted on its
    # own, yet deleting the whole project takes both with it.
    stem = models.ForeignKey(Stem, on_delete=models.RESTRICT, related_name="clips")
    start = models.FloatField(default=0.0)
    offset = models.FloatField(default=0.0)
    duration = models.FloatField(null=True, blank=True)
    gain_db = models.FloatField(default=0.0)
    fade_in = models.FloatField(default=0.0)
    fade_out = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "uid"], name="clip_uid")]
        indexes = [models.Index(fields=["project", "track_uid"])]


class DocEffect(DocObject):
    # Empty for the master bus.
    track_uid = models.CharField(max_length=64, blank=True)
    order = models.CharField(max_length=64)
    type = models.CharField(max_length=40)
    params = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "uid"], name="effect_uid")]
        indexes = [models.Index(fields=["project", "track_uid"])]


class DocMarker(DocObject):
    time = models.FloatField()
    name = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "uid"], name="marker_uid")]


class Comment(DocObject):
    time = models.FloatField()
    track_uid = models.CharField(max_length=64, blank=True)
    parent_uid = models.CharField(max_length=64, blank=True)
    text = models.TextField()
    resolved = models.BooleanField(default=False)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_name = models.CharField(max_length=150)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "uid"], name="comment_uid")]
        indexes = [models.Index(fields=["project", "parent_uid"])]


class EditKind(models.TextChoices):
    EDIT = "edit", "Edit"
    UNDO = "undo", "Undo"
    REDO = "redo", "Redo"
    RESTORE = "restore", "Restore"
    SETTINGS = "settings", "Settings"
    COMMENT = "comment", "Comment"


class Edit(models.Model):
    """The op log: one row per revision, with what undoes it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="edits")
    revision = models.PositiveBigIntegerField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    user_name = models.CharField(max_length=150, blank=True)
    client_op_id = models.CharField(max_length=64, blank=True)
    kind = models.CharField(max_length=10, choices=EditKind.choices)
    ops = models.JSONField()
    inverse = models.JSONField()
    # For undo and redo rows: the row they reverse.
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # An edit that was undone, or an undo that was redone.
    reversed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "revision"], name="one_edit_per_revision")
        ]
        indexes = [
            models.Index(fields=["project", "user", "client_op_id"]),
            models.Index(fields=["project", "user", "-revision"]),
        ]
        ordering = ["revision"]

    def __str__(self) -> str:
        return f"{self.kind} r{self.revision} of {self.project_id}"


class VersionKind(models.TextChoices):
    NAMED = "named", "Named"
    AUTO = "auto", "Checkpoint"


class Version(models.Model):
    """The document (comments aside) at one revision."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="versions")
    revision = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=10, choices=VersionKind.choices)
    name = models.CharField(max_length=200, blank=True)
    state = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-revision", "-id"]
        indexes = [models.Index(fields=["project", "-revision"])]

    def __str__(self) -> str:
        return self.name or f"checkpoint r{self.revision}"


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


# --- render jobs (issue #3) ---------------------------------------------------------


class RenderFormat(models.TextChoices):
    WAV = "wav", "WAV"
    FLAC = "flac", "FLAC"
    MP3 = "mp3", "MP3"


class RenderMaster(models.TextChoices):
    NONE = "none", "Not mastered"
    STREAMING = "streaming", "Streaming (-14 LUFS)"
    APPLE = "apple", "Apple Music (-16 LUFS)"
    EBU = "ebu", "EBU R128 (-23 LUFS)"
    CUSTOM = "custom", "Custom LUFS"


class RenderStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class RenderJob(models.Model):
    """One bounce of a project document to a file (or a zip of stems).

    The document and the blobs its clips use are frozen on the row at request
    time, so what is rendered is exactly what `cache_key` names.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="renders")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    revision = models.PositiveBigIntegerField()
    version = models.ForeignKey(
        Version, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    format = models.CharField(max_length=4, choices=RenderFormat.choices)
    bit_depth = models.CharField(max_length=3, blank=True)  # "16", "24", "32f"; "" for MP3
    mp3_quality = models.CharField(max_length=3, blank=True)  # "320", "V2"; "" otherwise
    master = models.CharField(
        max_length=10, choices=RenderMaster.choices, default=RenderMaster.NONE
    )
    master_lufs = models.FloatField(null=True, blank=True)
    stems = models.BooleanField(default=False)
    document = models.JSONField()
    # Clip source ("stem:<id>") -> sha256 of the blob it read at request time.
    sources = models.JSONField(default=dict)
    cache_key = models.CharField(max_length=64)
    status = models.CharField(
        max_length=10, choices=RenderStatus.choices, default=RenderStatus.QUEUED
    )
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    # Served from an earlier render of the same cache key, without running.
    cached = models.BooleanField(default=False)
    filename = models.CharField(max_length=255)  # what a download is called
    output_name = models.CharField(max_length=400, blank=True)  # in default_storage
    size = models.PositiveBigIntegerField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    lufs = models.FloatField(null=True, blank=True)
    true_peak_dbtp = models.FloatField(null=True, blank=True)
    peak_dbfs = models.FloatField(null=True, blank=True)
    pcm_sha256 = models.CharField(max_length=64, blank=True)
    # Each run of the task claims the job by bumping `attempts`; its writes
    # only land while the row still carries that number (a lease).
    attempts = models.PositiveSmallIntegerField(default=0)
    heartbeat_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # Not stored: set by studio.renders.do_request_render when it answers with
    # an identical render already in flight instead of a new row.
    reused: bool = False

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "-created_at"]),
            models.Index(fields=["project", "cache_key", "status"]),
            models.Index(fields=["status", "heartbeat_at"]),
        ]

    def __str__(self) -> str:
        return f"render {self.id} of {self.project_id} ({self.status})"
