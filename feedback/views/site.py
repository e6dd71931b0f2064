"""Site pages: home, projects, API keys; the health endpoint; the error handlers."""

from __future__ import annotations

import logging
import sys

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
from feedback.forms import ApiKeyForm, ConnectorForm, ProjectSettingsForm
from feedback.models import ApiKey, Membership, Role, Scope

logger = logging.getLogger(__name__)


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
    project = membership.project
    status = 200
    if request.method == "POST":
        form = ProjectSettingsForm(request.POST)
        if form.is_valid():
            services.project_settings_update(project=project, **form.settings())
            messages.success(request, "Settings saved.")
            return redirect("feedback:project_settings", slug=slug)
        status = 400
    else:
        form = ProjectSettingsForm.for_project(project)
    return _render_settings(request, membership, form=form, status=status)


def _render_settings(
    request: HttpRequest,
    membership: Membership,
    *,
    form: ProjectSettingsForm | None = None,
    connector_form: ConnectorForm | None = None,
    status: int = 200,
) -> HttpResponse:
    project = membership.project
    connector = selectors.connector_get(project=project)
    if connector_form is None:
        initial = (
            {"url": connector.url, "timeout_seconds": connector.timeout_seconds}
            if connector
            else {}
        )
        connector_form = ConnectorForm(initial=initial)
    context = {
        "membership": membership,
        "project": project,
        "form": form or ProjectSettingsForm.for_project(project),
        "connector": connector,
        "connector_form": connector_form,
    }
    return render(request, "feedback/project_settings.html", context, status=status)


@require_POST
@login_required
def connector_save(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)
    form = ConnectorForm(request.POST)
    if not form.is_valid():
        return _render_settings(request, membership, connector_form=form.redact(), status=400)
    if form.cleaned_data["remove"]:
        services.connector_remove(project=membership.project)
        messages.success(request, "Connector removed: the demo pipeline answers questions again.")
    else:
        saved = form.submit(
            lambda data: services.connector_save(
                project=membership.project,
                url=data["url"],
                secret=data["secret"] or None,
                timeout_seconds=data["timeout_seconds"],
            )
        )
        if saved is None:
            return _render_settings(request, membership, connector_form=form.redact(), status=400)
        messages.success(request, "Connector saved.")
    return redirect("feedback:project_settings", slug=slug)


@require_GET
@login_required
def api_keys(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)
    return _render_api_keys(request, membership)


def _render_api_keys(
    request: HttpRequest, membership: Membership, *, new_key: str | None = None, status: int = 200
) -> HttpResponse:
    context = {
        "membership": membership,
        "project": membership.project,
        "keys": selectors.api_keys_for_project(project=membership.project),
        "scopes": Scope.choices,
        "new_key": new_key,
    }
    return render(request, "feedback/api_keys.html", context, status=status)


@require_POST
@login_required
def api_key_create(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)
    form = ApiKeyForm(request.POST)
    created = form.submit(
        lambda data: services.api_key_create(
            project=membership.project,
            name=data["name"],
            scopes=data["scopes"],
            created_by=membership.user,
        )
    )
    if created is None:
        for text in form.error_texts():
            messages.error(request, text)
        return _render_api_keys(request, membership, status=400)
    _, raw_key = created
    # The raw key is rendered once, in this response, and never again.
    response = _render_api_keys(request, membership, new_key=raw_key)
    response["Cache-Control"] = "no-store"
    return response


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
