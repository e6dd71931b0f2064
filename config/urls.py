from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, reverse_lazy
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from feedback.views import site as site_views
from feedback.views import widget as widget_views

urlpatterns = [
    path("", site_views.home, name="home"),
    path("healthz", site_views.healthz, name="healthz"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # A new member's one-time link to choose their password (Django's password-reset token:
    # it stops working once the password is set).
    path(
        "accounts/set-password/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="registration/password_set_form.html",
            success_url=reverse_lazy("password_set_done"),
        ),
        name="password_set",
    ),
    path(
        "accounts/set-password/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="registration/password_set_done.html"
        ),
        name="password_set_done",
    ),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script from its own URL (?script), so the page
    # needs no inline script under the Content-Security-Policy.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api_docs.html"),
        name="api-docs",
    ),
    path("api/v1/", include("feedback.api_urls")),
    path("api/v1/", include("rewardmodels.api_urls")),
    path("projects/", include("feedback.urls")),
    path("projects/", include("rewardmodels.urls")),
    path("widget.js", widget_views.widget_script, name="widget-script"),
    path("widget/demo/<slug:slug>/", widget_views.widget_demo, name="widget-demo"),
]

handler400 = "feedback.views.site.bad_request"
handler403 = "feedback.views.site.permission_denied"
handler404 = "feedback.views.site.not_found"
handler500 = "feedback.views.site.server_error"
