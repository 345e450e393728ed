"""Server-rendered pages. Thin: look up with access_*, write with do_*."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from . import actions
from .errors import NotFound, StudioError
from .models import Membership, Role, ShareLink
from .payloads import member_payload, project_payload, share_link_payload, stem_payload


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # login_required ran first
    return request.user


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form: UserCreationForm[Any] = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        target = request.GET.get("next", "")
        if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
            target = "project-list"
        return redirect(target)
    return render(request, "studio/signup.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def project_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            fields: dict[str, Any] = {}
            if request.POST.get("sample_rate"):
                fields["sample_rate"] = int(request.POST["sample_rate"])
            if request.POST.get("tempo_bpm"):
                fields["tempo_bpm"] = float(request.POST["tempo_bpm"])
            project = actions.do_create_project(_user(request), request.POST.get("name"), fields)
        except (StudioError, ValueError) as exc:
            messages.error(request, getattr(exc, "message", "invalid number"))
        else:
            return redirect("project-detail", project.id)
    projects = actions.projects_for(request.user)
    return render(request, "studio/project_list.html", {"projects": projects})


def _access_or_404(request: HttpRequest, project_id: int) -> actions.ProjectAccess:
    try:
        return actions.access_project(request.user, project_id)
    except NotFound:
        raise Http404("project not found") from None


def _project_page(
    request: HttpRequest, project_id: int, template: str, extra: Callable[[Any], dict[str, Any]]
) -> HttpResponse:
    """A page of one project: its payload, who I am and `extra(access)` as the
    page's initial state (json_script), for members only."""
    access = _access_or_404(request, project_id)
    state = {
        "project": project_payload(access.project, access.role),
        "me": {"id": request.user.pk, "username": request.user.get_username()},
        **extra(access),
    }
    return render(
        request, template, {"project": access.project, "role": access.role, "state": state}
    )


def _stems(project: Any) -> list[dict[str, Any]]:
    return [stem_payload(s) for s in project.stems.select_related("blob", "uploader")]


@login_required
def project_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    def extra(access: actions.ProjectAccess) -> dict[str, Any]:
        project = access.project
        members = Membership.objects.filter(project=project).select_related("user")
        links = ShareLink.objects.filter(project=project) if access.role == Role.OWNER else []
        return {
            "members": [member_payload(m) for m in members],
            "links": [share_link_payload(x, actions.share_link_token(x)) for x in links],
            "stems": _stems(project),
        }

    return _project_page(request, project_id, "studio/project_detail.html", extra)


@login_required
def project_editor(request: HttpRequest, project_id: int) -> HttpResponse:
    """The multitrack editor. The document itself arrives over the project
    WebSocket (a `sync` snapshot); the page starts with the project's stems."""
    return _project_page(
        request, project_id, "studio/editor.html", lambda a: {"stems": _stems(a.project)}
    )


@login_required
def project_jam(request: HttpRequest, project_id: int) -> HttpResponse:
    """The jam room. Signalling travels over the project WebSocket (`jam.*`
    messages); the page starts with the ICE servers the browser should use."""
    return _project_page(
        request,
        project_id,
        "studio/jam.html",
        lambda a: {
            "ice_servers": settings.ROOMTONE_ICE_SERVERS,
            "max_players": settings.ROOMTONE_JAM_MAX_PLAYERS,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, token: str) -> HttpResponse:
    try:
        link = actions.access_share_link(token)
    except StudioError as exc:
        return render(request, "studio/join.html", {"error": exc.message}, status=exc.status)
    if request.method == "POST":
        membership = actions.do_join_by_link(_user(request), token)
        messages.success(request, f"You joined {link.project.name} as {membership.role}.")
        return redirect("project-detail", link.project_id)
    return render(request, "studio/join.html", {"link": link})


@login_required
def account(request: HttpRequest) -> HttpResponse:
    from rest_framework.authtoken.models import Token

    token = Token.objects.filter(user=request.user).first()
    return render(request, "studio/account.html", {"token": token.key if token else None})


@login_required
@require_POST
def rotate_token(request: HttpRequest) -> HttpResponse:
    actions.do_rotate_api_token(_user(request))
    messages.success(request, "A new API token was created; the old one no longer works.")
    return redirect("account")
