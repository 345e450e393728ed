"""REST API. Thin: authenticate, parse, call one action, answer with a payload."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.files.storage import default_storage
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.exceptions import APIException
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from audio.engine.codecs import AudioFormatError, validate
from audio.engine.preview import PREVIEW_MIME_TYPE

from . import actions
from .errors import Invalid, NotFound, StudioError, TooLarge
from .models import Membership, Role, ShareLink
from .payloads import member_payload, project_payload, share_link_payload, stem_payload
from .uploads import HashingUploadHandler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """One error shape for the whole API: {"error": {"code", "message"}}."""
    if isinstance(exc, StudioError):
        return Response({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, APIException):
        detail = exc.detail
        message = detail if isinstance(detail, str) else json.dumps(detail)
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "invalid"
        response.data = {"error": {"code": code, "message": str(message)}}
    return response


OBJ = OpenApiTypes.OBJECT
ERR = {400: OBJ, 403: OBJ, 404: OBJ}


def _body(request: Request) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict):
        if hasattr(data, "dict"):
            return dict(data.dict())
        raise Invalid("request body must be a JSON object")
    return dict(data)


def _settings() -> dict[str, Any]:
    """Schema of the optional project settings (checked by the actions)."""
    return {
        "sample_rate": serializers.ChoiceField(choices=[44100, 48000], required=False),
        "tempo_bpm": serializers.FloatField(required=False),
        "time_signature": serializers.ListField(child=serializers.IntegerField(), required=False),
    }


class ProjectListView(APIView):
    @extend_schema(responses={200: OBJ}, summary="Projects you are a member of")
    def get(self, request: Request) -> Response:
        items = [project_payload(p, role) for p, role in actions.projects_for(request.user)]
        return Response({"projects": items})

    @extend_schema(
        request=inline_serializer(
            "ProjectCreate", {"name": serializers.CharField(), **_settings()}
        ),
        responses={201: OBJ, **ERR},
        summary="Create a project (you become its owner)",
    )
    def post(self, request: Request) -> Response:
        body = _body(request)
        name = body.pop("name", None)
        project = actions.do_create_project(request.user, name, body)
        return Response(project_payload(project, Role.OWNER), status=http.HTTP_201_CREATED)


class ProjectDetailView(APIView):
    @extend_schema(responses={200: OBJ, **ERR}, summary="A project")
    def get(self, request: Request, project_id: int) -> Response:
        access = actions.access_project(request.user, project_id)
        return Response(project_payload(access.project, access.role))

    @extend_schema(
        request=inline_serializer(
            "ProjectUpdate", {"name": serializers.CharField(required=False), **_settings()}
        ),
        responses={200: OBJ, **ERR},
        summary="Rename or change settings (editors and owners)",
    )
    def patch(self, request: Request, project_id: int) -> Response:
        access = actions.access_project(request.user, project_id, Role.EDITOR)
        project = actions.do_update_project(access, _body(request))
        return Response(project_payload(project, access.role))

    @extend_schema(responses={204: None, **ERR}, summary="Delete a project (owners)")
    def delete(self, request: Request, project_id: int) -> Response:
        access = actions.access_project(request.user, project_id, Role.OWNER)
        actions.do_delete_project(access)
        return Response(status=http.HTTP_204_NO_CONTENT)


class MemberListView(APIView):
    @extend_schema(responses={200: OBJ, **ERR}, summary="Members and their roles")
    def get(self, request: Request, project_id: int) -> Response:
        access = actions.access_project(request.user, project_id)
        members = Membership.objects.filter(project=access.project).select_related("user")
        return Response({"members": [member_payload(m) for m in members]})

    @extend_schema(
        request=inline_serializer(
            "MemberAdd",
            {"username": serializers.CharField(), "role": serializers.ChoiceField(Role.choices)},
        ),
        responses={201: OBJ, **ERR},
        summary="Invite a registered user by username (owners)",
    )
    def post(self, request: Request, project_id: int) -> Response:
        access = actions.access_project(request.user, project_id, Role.OWNER)
        body = _body(request)
        membership = actions.do_add_member(access, body.get("username"), body.get("role"))
        return Response(member_payload(membership), status=http.HTTP_201_CREATED)


class MemberDetailView(APIView):
    @extend_schema(
        request=inline_serializer("MemberRole", {"role": serializers.ChoiceField(Role.choices)}),
        responses={200: OBJ, **ERR},
        summary="Change a member's role (owners)",
    )
    def patch(self, request: Request, project_id: int, user_id: int) -> Response:
        access = actions.access_project(request.user, project_id, Role.OWNER)
        membership = actions.do_change_role(access, user_id, _body(request).get("role"))
        return Response(member_payload(membership))

    @extend_schema(responses={204: None, **ERR}, summary="Remove a member (owners), or leave")
    def delete(self, request: Request, project_id: int, user_id: int) -> Response:
        access = actions.access_project(request.user, project_id)
        actions.do_remove_member(access, user_id)
        return Response(status=http.HTTP_204_NO_CONTENT)


class ShareLinkListView(APIView):
    @extend_schema(responses={200: OBJ, **ERR}, summary="Share links (owners)")
    def get(self, request: Request, project_id: int) -> Response:
        access = actions.access_project(request.user, project_id, Role.OWNER)
        links = ShareLink.objects.filter(project=access.project)
        return Response(
            {"links": [share_link_payload(x, actions.share_link_token(x)) for x in links]}
        )

    @extend_schema(
        request=inline_serializer(
            "ShareLinkCreate",
            {
                "role": serializers.ChoiceField([Role.EDITOR, Role.VIEWER]),
                "expires_in_days": serializers.IntegerField(required=False),
            },
        ),
        responses={201: OBJ, **ERR},
        summary="Create a signed, expiring share link carrying a role (owners)",
    )
    def post(self, request: Request, project_id: int) -> Response:
        access = actions.access_project(request.user, project_id, Role.OWNER)
        body = _body(request)
        link = actions.do_create_share_link(access, body.get("role"), body.get("expires_in_days"))
        return Response(
            share_link_payload(link, actions.share_link_token(link)),
            status=http.HTTP_201_CREATED,
        )


class ShareLinkDetailView(APIView):
    @extend_schema(responses={204: None, **ERR}, summary="Revoke a share link (owners)")
    def delete(self, request: Request, project_id: int, link_id: int) -> Response:
        access = actions.access_project(request.user, project_id, Role.OWNER)
        actions.do_revoke_share_link(access, link_id)
        return Response(status=http.HTTP_204_NO_CONTENT)


class JoinView(APIView):
    @extend_schema(
        request=inline_serializer("Join", {"token": serializers.CharField()}),
        responses={200: OBJ, **ERR},
        summary="Join a project with a share link's token",
    )
    def post(self, request: Request) -> Response:
        token = _body(request).get("token")
        if not isinstance(token, str):
            raise Invalid("token is required")
        membership = actions.do_join_by_link(request.user, token)
        return Response(project_payload(membership.project, membership.role))


class StemListView(APIView):
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def initialize_request(self, request: Any, *args: Any, **kwargs: Any) -> Request:
        # Must be set before anything reads the body (authentication's CSRF
        # check does), or Django buffers uploads its own way.
        request.upload_handlers = [HashingUploadHandler(request)]
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(responses={200: OBJ, **ERR}, summary="The project's stems")
    def get(self, request: Request, project_id: int) -> Response:
        access = actions.access_project(request.user, project_id)
        stems = access.project.stems.select_related("blob", "uploader")
        return Response({"stems": [stem_payload(s) for s in stems]})

    @extend_schema(
        request={
            "multipart/form-data": inline_serializer(
                "StemUpload",
                {"file": serializers.FileField(), "name": serializers.CharField(required=False)},
            )
        },
        responses={201: OBJ, 400: OBJ, 403: OBJ, 404: OBJ, 413: OBJ, 415: OBJ},
        summary="Upload a stem (WAV, AIFF, FLAC, OGG Vorbis, MP3; mono or stereo)",
    )
    def post(self, request: Request, project_id: int) -> Response:
        access = actions.access_project(request.user, project_id, Role.EDITOR)
        handler = request._request.upload_handlers[0]
        try:
            upload = request.FILES.get("file")
        finally:
            if handler.too_large:
                raise TooLarge(
                    f"file is larger than the {handler.limit // (1024 * 1024)} MB upload limit"
                )
        if upload is None:
            raise Invalid("no file: send the audio as multipart form field 'file'")
        try:
            path = upload.temporary_file_path()
            if upload.size == 0:
                raise StudioError(f"{upload.name}: the file is empty", code="bad_audio")
            try:
                info = validate(path, max_duration_s=_max_duration())
            except AudioFormatError as exc:
                raise StudioError(f"{upload.name}: {exc}", code="bad_audio") from None
            name = request.data.get("name")
            stem = actions.do_add_stem(
                access,
                path=path,
                sha256=upload.sha256,
                size=upload.size,
                filename=upload.name or "upload",
                name=name if isinstance(name, str) else None,
                info=info,
            )
        finally:
            upload.close()
        return Response(stem_payload(stem), status=http.HTTP_201_CREATED)


def _max_duration() -> float:
    from django.conf import settings

    return float(settings.ROOMTONE_MAX_DURATION_S)


class StemDetailView(APIView):
    @extend_schema(responses={200: OBJ, **ERR}, summary="A stem and its analysis")
    def get(self, request: Request, project_id: int, stem_id: int) -> Response:
        return Response(stem_payload(actions.access_stem(request.user, project_id, stem_id)))

    @extend_schema(
        request=inline_serializer("StemRename", {"name": serializers.CharField()}),
        responses={200: OBJ, **ERR},
        summary="Rename a stem (editors and owners)",
    )
    def patch(self, request: Request, project_id: int, stem_id: int) -> Response:
        stem = actions.access_stem(request.user, project_id, stem_id, Role.EDITOR)
        return Response(stem_payload(actions.do_rename_stem(stem, _body(request).get("name"))))

    @extend_schema(responses={204: None, **ERR}, summary="Delete a stem (editors and owners)")
    def delete(self, request: Request, project_id: int, stem_id: int) -> Response:
        stem = actions.access_stem(request.user, project_id, stem_id, Role.EDITOR)
        actions.do_delete_stem(stem)
        return Response(status=http.HTTP_204_NO_CONTENT)


CONTENT_TYPES = {
    "wav": "audio/wav",
    "aiff": "audio/aiff",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "mp3": "audio/mpeg",
}


def _stream(storage_name: str, content_type: str, filename: str | None = None) -> Any:
    """A stored file as a streamed response, or a redirect to a signed URL on
    object storage so big files never pass through the web process."""
    disposition = (
        content_disposition_header(as_attachment=True, filename=filename) if filename else None
    )
    try:
        default_storage.path(storage_name)
    except NotImplementedError:
        params = {"ResponseContentType": content_type}
        if disposition:
            params["ResponseContentDisposition"] = disposition
        return HttpResponseRedirect(default_storage.url(storage_name, parameters=params))  # type: ignore[call-arg]  # S3Storage takes them
    size = default_storage.size(storage_name)

    async def chunks() -> AsyncIterator[bytes]:
        # An async iterator: under ASGI, Django would otherwise read a sync
        # file iterator into memory whole before sending it.
        f = await sync_to_async(default_storage.open)(storage_name, "rb")
        try:
            while chunk := await sync_to_async(f.read)(1 << 20):
                yield chunk
        finally:
            await sync_to_async(f.close)()

    response = StreamingHttpResponse(chunks(), content_type=content_type)
    response["Content-Length"] = str(size)
    if disposition:
        response["Content-Disposition"] = disposition
    return response


class StemDownloadView(APIView):
    @extend_schema(
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, **ERR},
        summary="Download the original file",
    )
    def get(self, request: Request, project_id: int, stem_id: int) -> Any:
        stem = actions.access_stem(request.user, project_id, stem_id)
        filename = stem.original_filename or f"{stem.name}.{stem.format}"
        return _stream(
            stem.blob.storage_name,
            CONTENT_TYPES.get(stem.format, "application/octet-stream"),
            filename,
        )


class StemPreviewView(APIView):
    @extend_schema(
        responses={(200, "audio/mpeg"): OpenApiTypes.BINARY, **ERR},
        summary="Browser-playable preview",
    )
    def get(self, request: Request, project_id: int, stem_id: int) -> Any:
        stem = actions.access_stem(request.user, project_id, stem_id)
        if not stem.preview_name:
            raise NotFound("the preview is not ready yet")
        return _stream(stem.preview_name, PREVIEW_MIME_TYPE)


class StemPeaksView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("samples_per_pixel", int, required=False)],
        responses={200: OBJ, **ERR},
        summary="Waveform peaks (BBC audiowaveform JSON) at the zoom nearest samples_per_pixel",
    )
    def get(self, request: Request, project_id: int, stem_id: int) -> Response:
        stem = actions.access_stem(request.user, project_id, stem_id)
        if not stem.peaks_name:
            raise NotFound("the waveform is not ready yet")
        with default_storage.open(stem.peaks_name, "rb") as f:
            available: list[int] = sorted(json.load(f)["levels"])
        wanted_raw = request.query_params.get("samples_per_pixel")
        if wanted_raw is None:
            chosen = available[-1]
        else:
            try:
                wanted = int(wanted_raw)
            except ValueError:
                raise Invalid("samples_per_pixel must be a whole number") from None
            # The coarsest level no coarser than asked for, so drawing never
            # has to invent detail; the finest of all if asked for finer.
            chosen = max([a for a in available if a <= wanted], default=available[0])
        folder = os.path.dirname(stem.peaks_name)
        with default_storage.open(f"{folder}/peaks-{chosen}.json", "rb") as f:
            level = json.load(f)
        return Response({"levels": available, **level})


class TokenView(APIView):
    @extend_schema(responses={200: OBJ}, summary="Your API token (created on first use)")
    def get(self, request: Request) -> Response:
        return Response({"token": actions.do_get_api_token(request.user)})

    @extend_schema(request=None, responses={200: OBJ}, summary="Replace your API token")
    def post(self, request: Request) -> Response:
        return Response({"token": actions.do_rotate_api_token(request.user)})


class ObtainTokenView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(
        request=inline_serializer(
            "Credentials",
            {"username": serializers.CharField(), "password": serializers.CharField()},
        ),
        responses={200: OBJ, 400: OBJ},
        summary="Exchange username and password for an API token",
    )
    def post(self, request: Request) -> Response:
        from django.contrib.auth import authenticate

        body = _body(request)
        user = authenticate(
            request._request, username=body.get("username"), password=body.get("password")
        )
        if user is None:
            raise StudioError("wrong username or password", code="bad_credentials")
        return Response({"token": actions.do_get_api_token(user)})
