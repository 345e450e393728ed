from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import api, editing_api, render_api, views


class IdConverter:
    """A database id: digits that fit a 64-bit key, so a huge number in a URL
    is a 404 rather than an overflow in the database driver."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

api_patterns = [
    path("api/auth/token", api.ObtainTokenView.as_view(), name="api-obtain-token"),
    path("api/me/token", api.TokenView.as_view(), name="api-token"),
    path("api/projects", api.ProjectListView.as_view(), name="api-projects"),
    path("api/projects/<id:project_id>", api.ProjectDetailView.as_view(), name="api-project"),
    path(
        "api/projects/<id:project_id>/members",
        api.MemberListView.as_view(),
        name="api-members",
    ),
    path(
        "api/projects/<id:project_id>/members/<id:user_id>",
        api.MemberDetailView.as_view(),
        name="api-member",
    ),
    path(
        "api/projects/<id:project_id>/links",
        api.ShareLinkListView.as_view(),
        name="api-links",
    ),
    path(
        "api/projects/<id:project_id>/links/<id:link_id>",
        api.ShareLinkDetailView.as_view(),
        name="api-link",
    ),
    path("api/join", api.JoinView.as_view(), name="api-join"),
    path("api/projects/<id:project_id>/stems", api.StemListView.as_view(), name="api-stems"),
    path(
        "api/projects/<id:project_id>/stems/<id:stem_id>",
        api.StemDetailView.as_view(),
        name="api-stem",
    ),
    path(
        "api/projects/<id:project_id>/stems/<id:stem_id>/download",
        api.StemDownloadView.as_view(),
        name="api-stem-download",
    ),
    path(
        "api/projects/<id:project_id>/stems/<id:stem_id>/preview",
        api.StemPreviewView.as_view(),
        name="api-stem-preview",
    ),
    path(
        "api/projects/<id:project_id>/stems/<id:stem_id>/peaks",
        api.StemPeaksView.as_view(),
        name="api-stem-peaks",
    ),
    path(
        "api/projects/<id:project_id>/document",
        editing_api.DocumentView.as_view(),
        name="api-document",
    ),
    path(
        "api/projects/<id:project_id>/edits", editing_api.EditListView.as_view(), name="api-edits"
    ),
    path(
        "api/projects/<id:project_id>/versions",
        editing_api.VersionListView.as_view(),
        name="api-versions",
    ),
    path(
        "api/projects/<id:project_id>/versions/<id:version_id>",
        editing_api.VersionDetailView.as_view(),
        name="api-version",
    ),
    path(
        "api/projects/<id:project_id>/versions/<id:version_id>/restore",
        editing_api.VersionRestoreView.as_view(),
        name="api-version-restore",
    ),
    path(
        "api/projects/<id:project_id>/renders",
        render_api.RenderListView.as_view(),
        name="api-renders",
    ),
    path(
        "api/projects/<id:project_id>/renders/<id:render_id>",
        render_api.RenderDetailView.as_view(),
        name="api-render",
    ),
    path(
        "api/projects/<id:project_id>/renders/<id:render_id>/cancel",
        render_api.RenderCancelView.as_view(),
        name="api-render-cancel",
    ),
    path(
        "api/projects/<id:project_id>/renders/<id:render_id>/download",
        render_api.RenderDownloadView.as_view(),
        name="api-render-download",
    ),
    path("api/schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]

urlpatterns = [
    path("", views.project_list, name="project-list"),
    path("projects/<id:project_id>/", views.project_detail, name="project-detail"),
    path("projects/<id:project_id>/editor/", views.project_editor, name="project-editor"),
    path("projects/<id:project_id>/jam/", views.project_jam, name="project-jam"),
    path("join/<str:token>/", views.join, name="join"),
    path("account/", views.account, name="account"),
    path("account/token", views.rotate_token, name="rotate-token"),
    path("signup/", views.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    *api_patterns,
]
