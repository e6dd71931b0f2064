"""Researchers' pages for LLM judges: create one, run it over answers (htmx polling), and see
how far it agrees with people."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from feedback.core.access import found_or_404, membership_or_404
from feedback.core.pages import render_page, submit_form
from feedback.models import Membership, Role
from rewardmodels import selectors, services
from rewardmodels.forms_shadow import JudgeForm, JudgeRunForm
from rewardmodels.models import Judge, JudgeRun, JudgeTarget


def _researcher(request: HttpRequest, slug: str) -> Membership:
    return membership_or_404(request, slug, Role.RESEARCHER)


def _judge_or_404(membership: Membership, judge_id: int) -> Judge:
    judge = selectors.judge_get(project=membership.project, judge_id=judge_id)
    return found_or_404(judge, "No such judge.")


def _list_context(membership: Membership, **extra: Any) -> dict[str, Any]:
    project = membership.project
    return {
        "membership": membership,
        "project": project,
        "judges": selectors.judges_for_project(project=project),
        "generators": selectors.generators_for_project(project=project),
        "targets": JudgeTarget.choices,
        "form": JudgeForm(),
        **extra,
    }


@require_GET
@login_required
def judge_list(request: HttpRequest, slug: str) -> HttpResponse:
    membership = _researcher(request, slug)
    return render(request, "rewardmodels/judges.html", _list_context(membership))


@require_POST
@login_required
def judge_create(request: HttpRequest, slug: str) -> HttpResponse:
    membership = _researcher(request, slug)
    form = JudgeForm(request.POST)
    return submit_form(
        request,
        form,
        lambda data: services.judges.judge_create(
            project=membership.project,
            name=data["name"],
            generator_id=data["generator"],
            rubric=data["rubric"],
            target=data["target"],
            viewer=data["viewer"],
            created_by=membership.user,
        ),
        template="rewardmodels/judges.html",
        context=lambda form: _list_context(membership, form=form),
        message=lambda judge: f"Judge “{judge.name}” created.",
        done=lambda judge: redirect("rewardmodels:judge_detail", slug, judge.pk),
    )


def _detail_context(membership: Membership, judge: Judge, **extra: Any) -> dict[str, Any]:
    return {
        "membership": membership,
        "project": membership.project,
        "judge": judge,
        "runs": selectors.judge_runs_of(judge=judge),
        "agreement": selectors.judge_agreement(judge=judge),
        "form": JudgeRunForm(),
        **extra,
    }


@require_GET
@login_required
def judge_detail(request: HttpRequest, slug: str, judge_id: int) -> HttpResponse:
    membership = _researcher(request, slug)
    judge = _judge_or_404(membership, judge_id)
    return render(request, "rewardmodels/judge.html", _detail_context(membership, judge))


@require_POST
@login_required
def judge_run_create(request: HttpRequest, slug: str, judge_id: int) -> HttpResponse:
    membership = _researcher(request, slug)
    judge = _judge_or_404(membership, judge_id)
    form = JudgeRunForm(request.POST)
    return submit_form(
        request,
        form,
        lambda data: services.judges.judge_run_start(
            judge=judge, filters=form.filters(), requested_by=membership.user
        ),
        template="rewardmodels/judge.html",
        context=lambda form: _detail_context(membership, judge, form=form),
        message="Judge run queued.",
        done=lambda run: redirect("rewardmodels:judge_run_detail", slug, run.pk),
    )


@require_GET
@login_required
def judge_run_detail(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    membership = _researcher(request, slug)
    run: JudgeRun = found_or_404(
        selectors.judge_run_get(project=membership.project, run_id=run_id), "No such judge run."
    )
    context = {"membership": membership, "project": membership.project, "run": run}
    return render_page(request, "rewardmodels/judge_run.html", context, partial="judge-run-status")
