"""Researchers' pages for reward models: create one, train it, follow a run (htmx polling),
cancel it, read its metrics and plots, compare versions, pick the active one, try a score."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from feedback.core.access import found_or_404, membership_or_404
from feedback.core.jobs import JobStatus
from feedback.core.pages import render_page, submit_form
from feedback.models import Membership, Role
from rewardmodels import plots, run_checks, selectors, services
from rewardmodels.forms import ActivateForm, RewardModelForm, ScoreForm
from rewardmodels.models import Objective, RewardModel, TrainingRun


def _researcher(request: HttpRequest, slug: str) -> Membership:
    return membership_or_404(request, slug, Role.RESEARCHER)


def _model_or_404(membership: Membership, model_id: int) -> RewardModel:
    model = selectors.reward_model_get(project=membership.project, model_id=model_id)
    return found_or_404(model, "No such reward model.")


def _run_or_404(membership: Membership, run_id: int) -> TrainingRun:
    run = selectors.training_run_get(project=membership.project, run_id=run_id)
    return found_or_404(run, "No such training run.")


def _list_context(membership: Membership, **extra: Any) -> dict[str, Any]:
    return {
        "membership": membership,
        "project": membership.project,
        "models": [
            (model, run_checks.run_warnings(model.active_run.metrics) if model.active_run else [])
            for model in selectors.reward_models_for_project(project=membership.project)
        ],
        "objectives": Objective.choices,
        "form": RewardModelForm(),
        **extra,
    }


@require_GET
@login_required
def model_list(request: HttpRequest, slug: str) -> HttpResponse:
    membership = _researcher(request, slug)
    return render(request, "rewardmodels/models.html", _list_context(membership))


@require_POST
@login_required
def model_create(request: HttpRequest, slug: str) -> HttpResponse:
    membership = _researcher(request, slug)
    form = RewardModelForm(request.POST)
    return submit_form(
        request,
        form,
        lambda data: services.reward_model_create(
            project=membership.project,
            name=data["name"],
            objective=data["objective"],
            config=form.config(),
            created_by=membership.user,
        ),
        template="rewardmodels/models.html",
        context=lambda form: _list_context(membership, form=form),
        message=lambda model: f"Reward model “{model.name}” created. Train it to get a version.",
        done=lambda model: redirect("rewardmodels:model_detail", slug, model.pk),
    )


def _detail_context(membership: Membership, model: RewardModel, **extra: Any) -> dict[str, Any]:
    return {
        "membership": membership,
        "project": membership.project,
        "model": model,
        "versions": [
            (run, run_checks.run_warnings(run.metrics))
            for run in selectors.versions_of(reward_model=model)
        ],
        "settings": run_checks.config_table(model.config),
        "runs": list(selectors.runs_of(reward_model=model)[:20]),
        "score_form": ScoreForm(),
        **extra,
    }


@require_GET
@login_required
def model_detail(request: HttpRequest, slug: str, model_id: int) -> HttpResponse:
    membership = _researcher(request, slug)
    model = _model_or_404(membership, model_id)
    return render(request, "rewardmodels/model_detail.html", _detail_context(membership, model))


@require_POST
@login_required
def model_train(request: HttpRequest, slug: str, model_id: int) -> HttpResponse:
    membership = _researcher(request, slug)
    model = _model_or_404(membership, model_id)
    run = services.training_run_start(reward_model=model, requested_by=membership.user)
    return redirect("rewardmodels:run_detail", slug, run.pk)


@require_POST
@login_required
def model_activate(request: HttpRequest, slug: str, model_id: int) -> HttpResponse:
    membership = _researcher(request, slug)
    model = _model_or_404(membership, model_id)
    form = ActivateForm(request.POST)
    activated = form.submit(
        lambda data: services.reward_model_activate(reward_model=model, version=data["version"])
    )
    if activated is None:
        messages.error(request, " ".join(form.error_texts()))
    else:
        version = form.cleaned_data["version"]
        messages.success(request, f"Version {version} is now the active one (used for scoring).")
    return redirect("rewardmodels:model_detail", slug, model.pk)


@require_POST
@login_required
def model_score(request: HttpRequest, slug: str, model_id: int) -> HttpResponse:
    """Try the active version on one response, on the model's page (only its form for htmx)."""
    membership = _researcher(request, slug)
    model = _model_or_404(membership, model_id)
    form = ScoreForm(request.POST)

    def show(scored: tuple[int, list[dict[str, float]]]) -> HttpResponse:
        version, [score] = scored
        context = _detail_context(
            membership, model, score_form=form, score={"version": version, **score}
        )
        return render_page(request, "rewardmodels/model_detail.html", context, partial="score")

    return submit_form(
        request,
        form,
        lambda data: services.reward_model_score(
            reward_model=model, items=[{"prompt": data["prompt"], "response": data["response"]}]
        ),
        template="rewardmodels/model_detail.html",
        context=lambda form: _detail_context(membership, model, score_form=form),
        partial="score",
        done=show,
    )


@require_GET
@login_required
def run_detail(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    membership = _researcher(request, slug)
    run = _run_or_404(membership, run_id)
    context = {
        "membership": membership,
        "project": membership.project,
        "run": run,
        "settings": run_checks.config_table(run.config),
        "warnings": run_checks.run_warnings(run.metrics)
        if run.status == JobStatus.SUCCEEDED
        else [],
        "feature_prefixes": run_checks.FEATURE_PREFIXES,
    }
    return render_page(request, "rewardmodels/run_detail.html", context, partial="run-status")


@require_POST
@login_required
def run_cancel(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    membership = _researcher(request, slug)
    run = services.training_run_cancel(run=_run_or_404(membership, run_id))
    messages.info(request, "Cancelled." if run.status == JobStatus.CANCELLED else "Cancelling…")
    return redirect("rewardmodels:run_detail", slug, run.pk)


PLOTS = {"reliability": plots.reliability_png, "distribution": plots.score_distribution_png}


@require_GET
@login_required
def run_plot(request: HttpRequest, slug: str, run_id: int, name: str) -> HttpResponse:
    membership = _researcher(request, slug)
    run = _run_or_404(membership, run_id)
    draw = PLOTS.get(name)
    if draw is None or "histogram" not in run.metrics:
        raise Http404("No such plot for this run (P[Love] runs that succeeded have two).")
    response = HttpResponse(draw(run.metrics), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"  # a finished run's metrics never change
    return response
