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
    # Bumped by every committed change to the project document.
    revision = models.PositiveBigIntegerField(default=0)
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


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
