"""Site pages: home, projects, API keys; the health endpoint; the error handlers."""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.defaults import page_not_found
from django.views.defaults import server_error as django_server_error

from config.celery_app import app as celery_app
from feedback import selectors, services
from feedback.core.access import membership_or_404
from feedback.core.api import error_body, is_database_outage
from feedback.core.middleware import database_unavailable_response, is_api
from feedback.core.pages import submit_form
from feedback.forms import ApiKeyForm, ConnectorForm, ProjectSettingsForm
from feedback.models import ApiKey, Membership, Role, Scope

logger = logging.getLogger(__name__)

SETTINGS_PAGE = "feedback/project_settings.html"
API_KEYS_PAGE = "feedback/api_keys.html"


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return redirect("feedback:project_list" if request.user.is_authenticated else "login")


@require_GET
@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    memberships = selectors.projects_for_user(user=request.user)
    return render(request, "feedback/project_list.html", {"memberships": memberships})


@login_required
@require_http_methods(["GET", "POST"])
def project_settings(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)
    if request.method == "GET":
        return render(request, SETTINGS_PAGE, _settings_context(membership))
    form = ProjectSettingsForm(request.POST)
    return submit_form(
        request,
        form,
        lambda _: services.project_settings_update(project=membership.project, **form.settings()),
        template=SETTINGS_PAGE,
        context=lambda form: _settings_context(membership, form=form),
        message="Settings saved.",
        done=lambda _: redirect("feedback:project_settings", slug=slug),
    )


def _settings_context(
    membership: Membership,
    *,
    form: ProjectSettingsForm | None = None,
    connector_form: ConnectorForm | None = None,
) -> dict[str, Any]:
    project = membership.project
    connector = selectors.connector_get(project=project)
    return {
        "membership": membership,
        "project": project,
        "form": form or ProjectSettingsForm.for_project(project),
        "connector": connector,
        "connector_form": (
            connector_form or ConnectorForm.for_connector(connector)
        ).noting_secret_of(connector),
    }


@require_POST
@login_required
def connector_save(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)
    form = ConnectorForm(request.POST)
    if form.is_valid() and form.cleaned_data["remove"]:
        services.connector_remove(project=membership.project)
        messages.success(request, "Connector removed: the demo pipeline answers questions again.")
        return redirect("feedback:project_settings", slug=slug)
    return submit_form(
        request,
        form,
        lambda data: services.connector_save(
            project=membership.project,
            url=data["url"],
            secret=data["secret"] or None,
            timeout_seconds=data["timeout_seconds"],
        ),
        template=SETTINGS_PAGE,
        context=lambda form: _settings_context(membership, connector_form=form.redact()),
        message="Connector saved.",
        done=lambda _: redirect("feedback:project_settings", slug=slug),
    )


@require_GET
@login_required
def api_keys(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)
    return render(request, API_KEYS_PAGE, _api_keys_context(membership))


def _api_keys_context(membership: Membership, **extra: Any) -> dict[str, Any]:
    return {
        "membership": membership,
        "project": membership.project,
        "keys": selectors.api_keys_for_project(project=membership.project),
        "scopes": Scope.choices,
        **extra,
    }


@require_POST
@login_required
def api_key_create(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)

    def show_once(created: tuple[ApiKey, str]) -> HttpResponse:
        # The raw key is rendered once, in this response, and never again.
        response = render(request, API_KEYS_PAGE, _api_keys_context(membership, new_key=created[1]))
        response["Cache-Control"] = "no-store"
        return response

    return submit_form(
        request,
        ApiKeyForm(request.POST),
        lambda data: services.api_key_create(
            project=membership.project,
            name=data["name"],
            scopes=data["scopes"],
            created_by=membership.user,
            origins=data["origins"],
        ),
        template=API_KEYS_PAGE,
        context=lambda form: _api_keys_context(membership, form=form),
        done=show_once,
    )


@require_POST
@login_required
def api_key_revoke(request: HttpRequest, slug: str, key_id: int) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)
    try:
        key = services.api_key_revoke(project=membership.project, key_id=key_id)
    except ApiKey.DoesNotExist as error:
        raise Http404("No such key.") from error
    messages.success(request, f"Key {key.prefix}… revoked.")
    return redirect("feedback:api_keys", slug=slug)


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            client = getattr(conn.default_channel, "client", None)
            if client is not None and hasattr(client, "ping"):
                client.ping()
        return True
    except Exception:  # any failure means the broker can't take work
        logger.warning("broker health check failed", exc_info=True)
        return False


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness of the database and the broker (503 when either is down), and how long ago a
    worker last ran its heartbeat task."""
    checks: dict[str, object] = {}
    try:
        # Reading the newest heartbeat is the database's check too: it answered.
        heartbeat = selectors.worker_heartbeat_latest()
        checks["database"] = "ok"
        checks["worker_last_seen_seconds"] = (
            round((timezone.now() - heartbeat.seen_at).total_seconds()) if heartbeat else None
        )
    except DatabaseError:
        checks["database"] = "unavailable"
    checks["broker"] = "ok" if _broker_ok() else "unavailable"
    healthy = checks["database"] == "ok" and checks["broker"] == "ok"
    checks["status"] = "ok" if healthy else "unavailable"
    return JsonResponse(checks, status=200 if healthy else 503)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for URLs no view matched: the JSON error shape under /api/, a page elsewhere."""
    if is_api(request):
        return JsonResponse(error_body("not_found", "No such API endpoint or object."), status=404)
    return page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """500, unless the error being handled is the database being down: raised outside any view
    (by a middleware reading the session before the view, or saving it after), it arrives here
    rather than at the middleware that answers 503 for views."""
    exception = sys.exc_info()[1]
    if is_database_outage(exception):
        return database_unavailable_response(request, exception)
    if is_api(request):
        return JsonResponse(error_body("server_error", "Internal server error."), status=500)
    return django_server_error(request)
