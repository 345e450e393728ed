"""The jam page: a project's live room in the browser.

Signalling and everything live travel over the project WebSocket (the
`jam.*` messages of docs/protocol.md); the page starts with who I am, my
role, the project's tempo and the ICE servers the browser should use.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from . import actions
from .errors import NotFound
from .payloads import project_payload


@login_required
def project_jam(request: HttpRequest, project_id: int) -> HttpResponse:
    try:
        access = actions.access_project(request.user, project_id)
    except NotFound:
        raise Http404("project not found") from None
    project = access.project
    state = {
        "project": project_payload(project, access.role),
        "me": {"id": request.user.pk, "username": request.user.get_username()},
        "ice_servers": settings.ROOMTONE_ICE_SERVERS,
        "max_players": settings.ROOMTONE_JAM_MAX_PLAYERS,
    }
    return render(
        request,
        "studio/jam.html",
        {"project": project, "role": access.role, "state": state},
    )
