"""Researchers' pages for shadow runs: start one over the exposures nobody reacted to, follow
it (htmx polling), and read how far it agrees with real reactions."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from feedback.core.access import found_or_404, membership_or_404
from feedback.core.errors import ValidationFailed
from feedback.core.jobs import JobStatus
from feedback.core.pages import render_page, submit_form
from feedback.models import Membership, Role
from rewardmodels import selectors, services
from rewardmodels.forms_shadow import ShadowRunForm
from rewardmodels.models import ShadowRun


def _researcher(request: HttpRequest, slug: str) -> Membership:
    return membership_or_404(request, slug, Role.RESEARCHER)


def _run_or_404(membership: Membership, run_id: int) -> ShadowRun:
    run = selectors.shadow_run_get(project=membership.project, run_id=run_id)
    return found_or_404(run, "No such shadow run.")


def _list_context(membership: Membership, **extra: Any) -> dict[str, Any]:
    project = membership.project
    return {
        "membership": membership,
        "project": project,
        "runs": selectors.shadow_runs_for_project(project=project),
        "models": selectors.p_love_models_with_version(project=project),
        "form": ShadowRunForm(),
        **extra,
    }


@require_GET
@login_required
def shadow_list(request: HttpRequest, slug: str) -> HttpResponse:
    membership = _researcher(request, slug)
    return render(request, "rewardmodels/shadow_runs.html", _list_context(membership))


@require_POST
@login_required
def shadow_create(request: HttpRequest, slug: str) -> HttpResponse:
    membership = _researcher(request, slug)
    form = ShadowRunForm(request.POST)

    def start(data: dict[str, Any]) -> ShadowRun:
        model = selectors.reward_model_get(
            project=membership.project, model_id=data["reward_model"]
        )
        if model is None:
            raise ValidationFailed(
                {"reward_model": ["No such reward model in this project."]},
                services.shadow.INVALID,
            )
        return services.shadow.shadow_run_start(
            reward_model=model,
            since=data["since"],
            until=data["until"],
            threshold=data["threshold"],
            requested_by=membership.user,
        )

    return submit_form(
        request,
        form,
        start,
        template="rewardmodels/shadow_runs.html",
        context=lambda form: _list_context(membership, form=form),
        message="Shadow run queued.",
        done=lambda run: redirect("rewardmodels:shadow_detail", slug, run.pk),
    )


@require_GET
@login_required
def shadow_detail(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    membership = _researcher(request, slug)
    run = _run_or_404(membership, run_id)
    context = {"membership": membership, "project": membership.project, "run": run}
    return render_page(request, "rewardmodels/shadow_run.html", context, partial="shadow-status")


@require_POST
@login_required
def shadow_cancel(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    membership = _researcher(request, slug)
    run = services.shadow.shadow_run_cancel(run=_run_or_404(membership, run_id))
    messages.info(request, "Cancelled." if run.status == JobStatus.CANCELLED else "Cancelling…")
    return redirect("rewardmodels:shadow_detail", slug, run.pk)
