"""Site pages: home, projects, API keys; the health endpoint; the error handlers."""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.shortcuts import redirect, render
from django.template import loader
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.celery_app import app as celery_app
from feedback import selectors, services
from feedback.core.access import RoleRequired, membership_of, membership_or_404
from feedback.core.api import error_body, is_database_outage
from feedback.core.middleware import database_unavailable_response, is_api
from feedback.core.pages import is_htmx, submit_form
from feedback.forms import ApiKeyForm, ConnectorForm, ProjectCreateForm, ProjectSettingsForm
from feedback.models import ApiKey, Membership, Role
from feedback.services import tenancy

logger = logging.getLogger(__name__)

SETTINGS_PAGE = "feedback/project_settings.html"
API_KEYS_PAGE = "feedback/api_keys.html"


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return redirect("feedback:project_list" if request.user.is_authenticated else "login")


PROJECTS_PAGE = "feedback/project_list.html"


@login_required
@require_http_methods(["GET", "POST"])
def project_list(request: HttpRequest) -> HttpResponse:
    """The signed-in user's projects, and a form to start one (they become its owner)."""
    if request.method == "GET":
        return render(request, PROJECTS_PAGE, _projects_context(request, ProjectCreateForm()))
    form = ProjectCreateForm(request.POST)
    return submit_form(
        request,
        form,
        lambda data: tenancy.project_create_owned(
            owner=request.user, name=data["name"], slug=data["slug"]
        ),
        template=PROJECTS_PAGE,
        context=lambda form: _projects_context(request, form),
        message=lambda project: f"Project {project.name} created: you are its owner.",
        done=lambda project: redirect("feedback:project_detail", slug=project.slug),
    )


def _projects_context(request: HttpRequest, form: ProjectCreateForm) -> dict[str, Any]:
    return {"memberships": selectors.projects_for_user(user=request.user), "form": form}


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


# The session key under which a key just created waits for the page that shows it once.
NEW_API_KEY = "new_api_key"


@require_GET
@login_required
def api_keys(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)
    # A key created a moment ago is shown on this page once: taken out of the session as it is
    # shown, so a reload (or the back button) shows it no more. Only its own project's page
    # takes it.
    created = request.session.get(NEW_API_KEY)
    new_key = None
    if isinstance(created, dict) and created.get("project") == membership.project.pk:
        new_key = request.session.pop(NEW_API_KEY)
    response = render(request, API_KEYS_PAGE, _api_keys_context(membership, new_key=new_key))
    response["Cache-Control"] = "no-store"
    return response


def _api_keys_context(membership: Membership, **extra: Any) -> dict[str, Any]:
    return {
        "membership": membership,
        "project": membership.project,
        "keys": selectors.api_keys_for_project(project=membership.project),
        "form": ApiKeyForm(),
        **extra,
    }


@require_POST
@login_required
def api_key_create(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)

    def show_once(created: tuple[ApiKey, str]) -> HttpResponse:
        # The raw key is never stored; it waits in the session for the page the redirect opens.
        key, raw_key = created
        request.session[NEW_API_KEY] = {
            "project": membership.project.pk,
            "name": key.name,
            "key": raw_key,
        }
        return redirect("feedback:api_keys", slug=slug)

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
        message=lambda created: f"Key “{created[0].name}” created.",
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


def _error_page(request: HttpRequest, template: str, status: int, **context: Any) -> HttpResponse:
    """An error page in the site's layout, with a way back: to the project the URL names when
    the caller is a member of it. An htmx request gets only the message, which it swaps where
    the answer was to go."""
    membership = membership_of(request)
    if membership is not None:
        context.setdefault("membership", membership)
        context["back_url"] = reverse("feedback:project_detail", args=[membership.project.slug])
        context["back_label"] = f"Back to {membership.project.name}"
    if is_htmx(request):
        template = "includes/error_message.html"
    return render(request, template, {"status": status, **context}, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """400 for a request Django itself refused (a suspicious operation, a malformed body)."""
    if is_api(request):
        return JsonResponse(error_body("bad_request", "The request is malformed."), status=400)
    return _error_page(request, "400.html", 400)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """403: the member's role is too small for the page. Shown in the layout in DEBUG too
    (Django answers a PermissionDenied with this handler whatever DEBUG says)."""
    if is_api(request):
        return JsonResponse(
            error_body("permission_denied", "You do not have permission to do this."), status=403
        )
    needed = exception.role if isinstance(exception, RoleRequired) else None
    return _error_page(request, "403.html", 403, needed_role=needed)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for URLs no view matched and objects that are not the caller's: the JSON error shape
    under /api/, a page elsewhere. The exception's own text (which may name a model) is never
    shown."""
    if is_api(request):
        return JsonResponse(error_body("not_found", "No such API endpoint or object."), status=404)
    return _error_page(request, "404.html", 404)


def server_error(request: HttpRequest) -> HttpResponse:
    """500, unless the error being handled is the database being down: raised outside any view
    (by a middleware reading the session before the view, or saving it after), it arrives here
    rather than at the middleware that answers 503 for views. The page is rendered without the
    request: whatever failed may fail again while looking up the user or the session."""
    exception = sys.exc_info()[1]
    if is_database_outage(exception):
        return database_unavailable_response(request, exception)
    if is_api(request):
        return JsonResponse(error_body("server_error", "Internal server error."), status=500)
    return HttpResponseServerError(loader.get_template("500.html").render())
