from django.contrib import admin

from .models import Blob, Membership, Project, ShareLink, Stem


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin[Project]):
    list_display = ["name", "sample_rate", "tempo_bpm", "revision", "updated_at"]


admin.site.register([Membership, ShareLink, Blob, Stem])
