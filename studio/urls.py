from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import api, views

api_patterns = [
    path("api/auth/token", api.ObtainTokenView.as_view(), name="api-obtain-token"),
    path("api/me/token", api.TokenView.as_view(), name="api-token"),
    path("api/projects", api.ProjectListView.as_view(), name="api-projects"),
    path("api/projects/<int:project_id>", api.ProjectDetailView.as_view(), name="api-project"),
    path(
        "api/projects/<int:project_id>/members",
        api.MemberListView.as_view(),
        name="api-members",
    ),
    path(
        "api/projects/<int:project_id>/members/<int:user_id>",
        api.MemberDetailView.as_view(),
        name="api-member",
    ),
    path(
        "api/projects/<int:project_id>/links",
        api.ShareLinkListView.as_view(),
        name="api-links",
    ),
    path(
        "api/projects/<int:project_id>/links/<int:link_id>",
        api.ShareLinkDetailView.as_view(),
        name="api-link",
    ),
    path("api/join", api.JoinView.as_view(), name="api-join"),
    path("api/projects/<int:project_id>/stems", api.StemListView.as_view(), name="api-stems"),
    path(
        "api/projects/<int:project_id>/stems/<int:stem_id>",
        api.StemDetailView.as_view(),
        name="api-stem",
    ),
    path(
        "api/projects/<int:project_id>/stems/<int:stem_id>/download",
        api.StemDownloadView.as_view(),
        name="api-stem-download",
    ),
    path(
        "api/projects/<int:project_id>/stems/<int:stem_id>/preview",
        api.StemPreviewView.as_view(),
        name="api-stem-preview",
    ),
    path(
        "api/projects/<int:project_id>/stems/<int:stem_id>/peaks",
        api.StemPeaksView.as_view(),
        name="api-stem-peaks",
    ),
    path("api/schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]

urlpatterns = [
    path("", views.project_list, name="project-list"),
    path("projects/<int:project_id>/", views.project_detail, name="project-detail"),
    path("join/<str:token>/", views.join, name="join"),
    path("account/", views.account, name="account"),
    path("account/token", views.rotate_token, name="rotate-token"),
    path("signup/", views.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    *api_patterns,
]
