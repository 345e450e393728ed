"""REST side of rendering: request, list, follow, cancel and download renders.
Thin: authenticate, parse, call one action in studio.renders."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import renders
from .api import ERR, OBJ, _body, _stream
from .errors import Conflict, NotFound
from .models import RenderStatus

ERRORS = {**ERR, 409: OBJ, 429: OBJ}


class RenderListView(APIView):
    @extend_schema(
        operation_id="projects_renders_list",
        responses={200: OBJ, **ERR},
        summary="Renders of the project, newest first",
    )
    def get(self, request: Request, project_id: int) -> Response:
        jobs = renders.renders_for(request.user, project_id)
        return Response({"renders": [renders.render_payload(j) for j in jobs]})

    @extend_schema(
        request=inline_serializer(
            "RenderRequest",
            {
                "format": serializers.ChoiceField(["wav", "flac", "mp3"], required=False),
                "bit_depth": serializers.ChoiceField(["16", "24", "32f"], required=False),
                "mp3_quality": serializers.ChoiceField(["320", "V2"], required=False),
                "master": serializers.CharField(
                    required=False,
                    help_text="none, streaming, apple, ebu, or a LUFS number from -60 to 0",
                ),
                "stems": serializers.BooleanField(
                    required=False, help_text="a zip of the mix and one file per track"
                ),
                "revision": serializers.IntegerField(
                    required=False, help_text="default: the current revision"
                ),
                "version": serializers.IntegerField(
                    required=False, help_text="id of a saved version (instead of a revision)"
                ),
            },
        ),
        responses={201: OBJ, 200: OBJ, **ERRORS},
        summary=(
            "Render the project (any member). 201 with a new job (already done when "
            "served from the cache), 200 with the identical render already in progress"
        ),
    )
    def post(self, request: Request, project_id: int) -> Response:
        job = renders.do_request_render(request.user, project_id, _body(request))
        return Response(
            renders.render_payload(job),
            status=http.HTTP_200_OK if job.reused else http.HTTP_201_CREATED,
        )


class RenderDetailView(APIView):
    @extend_schema(responses={200: OBJ, **ERR}, summary="One render and its progress")
    def get(self, request: Request, project_id: int, render_id: int) -> Response:
        job = renders.access_render(request.user, project_id, render_id)
        return Response(renders.render_payload(job))


class RenderCancelView(APIView):
    @extend_schema(
        request=None,
        responses={200: OBJ, **ERRORS},
        summary="Cancel a queued or running render (whoever asked for it, editors, owners)",
    )
    def post(self, request: Request, project_id: int, render_id: int) -> Response:
        job = renders.do_cancel_render(request.user, project_id, render_id)
        return Response(renders.render_payload(job))


class RenderDownloadView(APIView):
    @extend_schema(
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, **ERRORS},
        summary="Download a finished render (any member)",
    )
    def get(self, request: Request, project_id: int, render_id: int) -> Any:
        job = renders.access_render(request.user, project_id, render_id)
        if job.status != RenderStatus.DONE:
            raise Conflict(f"the render is {job.status}, not done", code="render_not_done")
        if not job.output_name or not renders.is_stored(job.output_name):
            raise NotFound("the rendered file is no longer stored: render again")
        ext = renders.output_extension(job)
        return _stream(
            job.output_name,
            renders.CONTENT_TYPES.get(ext, "application/octet-stream"),
            job.filename,
        )
