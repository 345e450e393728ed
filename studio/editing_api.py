"""REST side of co-editing: the document at a revision, edits for scripts,
versions (list, preview, save, restore). Same actions as the WebSocket."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import actions, editing
from .api import ERR, OBJ, _body
from .errors import Invalid, NotFound
from .models import Version


def _revision_param(request: Request) -> int | None:
    raw = request.query_params.get("revision")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise Invalid("revision must be a whole number")
    return int(raw)


class DocumentView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("revision", OpenApiTypes.INT, required=False)],
        responses={200: OBJ, **ERR},
        summary="The project document in the renderer's shape, now or at a revision",
    )
    def get(self, request: Request, project_id: int) -> Response:
        access = actions.access_project(request.user, project_id)
        at, document = editing.export_at(access.project, _revision_param(request))
        return Response({"revision": at, "document": document})


class EditListView(APIView):
    @extend_schema(
        request=inline_serializer(
            "EditRequest",
            {
                "ops": serializers.ListField(child=serializers.DictField()),
                "client_op_id": serializers.CharField(required=False),
                "base_revision": serializers.IntegerField(required=False),
            },
        ),
        responses={200: OBJ, **ERR},
        summary="Apply one edit (docs/protocol.md §3), as the WebSocket does",
    )
    def post(self, request: Request, project_id: int) -> Response:
        body = _body(request)
        client_op_id = body.get("client_op_id", "")
        base_revision = body.get("base_revision")
        if not isinstance(client_op_id, str) or len(client_op_id) > 64:
            raise Invalid("client_op_id must be a string of at most 64 characters")
        if base_revision is not None and (
            isinstance(base_revision, bool) or not isinstance(base_revision, int)
        ):
            raise Invalid("base_revision must be a whole number")
        result = editing.do_edit(
            request.user,
            project_id,
            body.get("ops"),
            client_op_id=client_op_id,
            base_revision=base_revision,
        )
        return Response({"revision": result.revision, "duplicate": result.duplicate})


class VersionListView(APIView):
    @extend_schema(
        responses={200: OBJ, **ERR}, summary="Versions, newest first, with who changed what"
    )
    def get(self, request: Request, project_id: int) -> Response:
        access = actions.access_project(request.user, project_id)
        return Response(editing.version_list(access.project))

    @extend_schema(
        request=inline_serializer("VersionSave", {"name": serializers.CharField()}),
        responses={201: OBJ, **ERR},
        summary="Save the current document as a named version (editors and owners)",
    )
    def post(self, request: Request, project_id: int) -> Response:
        version = editing.do_save_version(request.user, project_id, _body(request).get("name"))
        return Response(editing.version_payload(version), status=http.HTTP_201_CREATED)


def _version(request: Request, project_id: int, version_id: int) -> Version:
    access = actions.access_project(request.user, project_id)
    version = Version.objects.filter(project=access.project, id=version_id).first()
    if version is None:
        raise NotFound("version not found")
    return version


class VersionDetailView(APIView):
    @extend_schema(responses={200: OBJ, **ERR}, summary="One version with its state, for preview")
    def get(self, request: Request, project_id: int, version_id: int) -> Response:
        version = _version(request, project_id, version_id)
        return Response(editing.version_payload(version, with_state=True))


class VersionRestoreView(APIView):
    @extend_schema(
        request=None, responses={200: OBJ, **ERR}, summary="Restore a version (undoable)"
    )
    def post(self, request: Request, project_id: int, version_id: int) -> Response:
        result = editing.do_restore(request.user, project_id, version_id)
        return Response({"revision": result.revision})
