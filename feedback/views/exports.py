"""Researchers' page of dataset snapshots: request one, follow its progress, download it."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from feedback import datasets, selectors, services
from feedback.core.access import found_or_404, membership_or_404
from feedback.core.jobs import JobStatus
from feedback.core.pages import render_page, submit_form
from feedback.core.storage import download_response
from feedback.forms import ExportForm
from feedback.models import ExportFormat, Membership, Role

SHOWN_EXPORTS = 50


def _context(membership: Membership, *, form: ExportForm | None = None) -> dict[str, Any]:
    exports = list(selectors.exports_for_project(project=membership.project)[:SHOWN_EXPORTS])
    return {
        "membership": membership,
        "project": membership.project,
        "exports": exports,
        "working": any(not e.finished for e in exports),
        "datasets": [(d.name, d.description) for d in datasets.DATASETS.values()],
        "formats": ExportFormat.choices,
        "forms": datasets.FORMS,
        "export_form": form or ExportForm(),
    }


@require_GET
@login_required
def export_list(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.RESEARCHER)
    # With htmx: the poll while snapshots are being written.
    return render_page(
        request, "feedback/exports.html", _context(membership), partial="export-list"
    )


@require_POST
@login_required
def export_create(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.RESEARCHER)
    form = ExportForm(request.POST)
    return submit_form(
        request,
        form,
        lambda data: services.datasets.export_request(
            project=membership.project,
            dataset=data["dataset"],
            fmt=data["format"],
            form=data["form"],
            filters=form.filters(),
            requested_by=request.user.get_username(),
        ),
        template="feedback/exports.html",
        context=lambda form: _context(membership, form=form),
        message="Snapshot requested: a worker is writing it.",
        done=lambda _: redirect("feedback:export_list", slug=slug),
    )


@require_GET
@login_required
def export_download(request: HttpRequest, slug: str, export_id: int) -> HttpResponseBase:
    membership = membership_or_404(request, slug, Role.RESEARCHER)
    export = selectors.export_get(project=membership.project, export_id=export_id)
    export = found_or_404(export, "No such export.")
    if export.status != JobStatus.SUCCEEDED:
        return HttpResponse(f"The export is {export.status}.", status=409)
    return download_response(export.file)
