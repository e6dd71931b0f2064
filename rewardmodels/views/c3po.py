"""C3PO pages: verbal feedback (written, or promoted from a critique), generators, builds with
their progress, counts and samples, and the review queue where annotators approve, edit or
reject revised responses."""

from __future__ import annotations

from itertools import islice
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from feedback import datasets
from feedback import selectors as feedback_selectors
from feedback.core.access import found_or_404, membership_or_404
from feedback.core.pages import render_page, submit_form
from feedback.models import Membership, Role
from rewardmodels import c3po as c3po_rules
from rewardmodels import selectors, services
from rewardmodels.datasets import PARTS
from rewardmodels.forms import BuildForm, GeneratorForm, ReviewForm, VerbalFeedbackForm
from rewardmodels.models import BuildStatus, C3POBuild, C3POItem


def _feedback_context(membership: Membership, **extra: Any) -> dict[str, Any]:
    project = membership.project
    return {
        "membership": membership,
        "project": project,
        "feedback_list": selectors.verbal_feedback_for_project(project=project)[:50],
        "critiques": selectors.critiques_to_promote(project=project)[:20],
        "generators": selectors.generators_for_project(project=project),
        "builds": selectors.builds_for_project(project=project)[:20],
        "form": VerbalFeedbackForm(),
        "generator_form": GeneratorForm(),
        **extra,
    }


@require_GET
@login_required
def feedback_list(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.RESEARCHER)
    return render(request, "rewardmodels/feedback_list.html", _feedback_context(membership))


@require_POST
@login_required
def feedback_create(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.RESEARCHER)
    return submit_form(
        request,
        VerbalFeedbackForm(request.POST),
        lambda data: services.c3po.verbal_feedback_create(
            project=membership.project,
            text=data["text"],
            domain=data["domain"],
            effect=data["effect"],
            created_by=membership.user,
        ),
        template="rewardmodels/feedback_list.html",
        context=lambda form: _feedback_context(membership, form=form),
        done=lambda feedback: redirect("rewardmodels:feedback_detail", slug, feedback.pk),
    )


@require_POST
@login_required
def critique_promote(request: HttpRequest, slug: str, critique_id: int) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.RESEARCHER)
    critique = feedback_selectors.critique_get(project=membership.project, critique_id=critique_id)
    critique = found_or_404(critique, "No such critique.")
    feedback = services.c3po.critique_promote(critique=critique, created_by=membership.user)
    messages.success(request, "The critique is now verbal feedback; build its dataset below.")
    return redirect("rewardmodels:feedback_detail", slug, feedback.pk)


@require_POST
@login_required
def generator_save(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.RESEARCHER)
    return submit_form(
        request,
        GeneratorForm(request.POST),
        lambda data: services.c3po.generator_save(
            project=membership.project,
            name=data["name"],
            base_url=data["base_url"],
            model=data["model"],
            api_key=data["api_key"],  # None (left blank) keeps a stored key
            temperature=data["temperature"],
            concurrency=data["concurrency"],
        ),
        template="rewardmodels/feedback_list.html",
        # Shown again without a password in the URL (the key is never shown).
        context=lambda form: _feedback_context(membership, generator_form=form.redact()),
        message="Generator saved (its key is stored and not shown again).",
        done=lambda _: redirect("rewardmodels:feedback_list", slug),
    )


def _detail_context(membership: Membership, feedback_id: int, **extra: Any) -> dict[str, Any]:
    feedback = selectors.verbal_feedback_get(project=membership.project, feedback_id=feedback_id)
    feedback = found_or_404(feedback, "No such verbal feedback.")
    return {
        "membership": membership,
        "project": membership.project,
        "feedback": feedback,
        "builds": selectors.builds_for_feedback(feedback=feedback),
        "generators": selectors.generators_for_project(project=membership.project),
        "defaults": c3po_rules.DEFAULT_COUNTS,
        "form": BuildForm(),
        **extra,
    }


@require_GET
@login_required
def feedback_detail(request: HttpRequest, slug: str, feedback_id: int) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.RESEARCHER)
    context = _detail_context(membership, feedback_id)
    return render(request, "rewardmodels/feedback_detail.html", context)


@require_POST
@login_required
def build_create(request: HttpRequest, slug: str, feedback_id: int) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.RESEARCHER)
    context = _detail_context(membership, feedback_id)
    form = BuildForm(request.POST)

    def start(data: dict[str, Any]) -> C3POBuild:
        return services.c3po.build_start(
            feedback=context["feedback"],
            generator_id=data["generator"],
            counts=form.counts(),
            review=data["review"],
            created_by=membership.user,
        )

    return submit_form(
        request,
        form,
        start,
        template="rewardmodels/feedback_detail.html",
        context=lambda form: {**context, "form": form},
        done=lambda build: redirect("rewardmodels:build_detail", slug, build.pk),
    )


def _build_or_404(membership: Membership, build_id: int) -> C3POBuild:
    build = selectors.build_get(project=membership.project, build_id=build_id)
    return found_or_404(build, "No such build.")


@require_GET
@login_required
def build_detail(request: HttpRequest, slug: str, build_id: int) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.RESEARCHER)
    build = _build_or_404(membership, build_id)
    samples = {}
    if build.status == BuildStatus.SUCCEEDED:
        samples = {
            part: list(islice(selectors.build_dataset_rows(build=build, part=part), 3))
            for part in PARTS
        }
    context = {
        "membership": membership,
        "project": membership.project,
        "build": build,
        "stages": [
            {"number": i + 1, "name": name, "done": i < build.stage}
            for i, name in enumerate(C3POBuild.STAGES)
        ],
        "counts": selectors.build_counts(build=build),
        "samples": samples,
        "parts": PARTS,
    }
    return render_page(request, "rewardmodels/build_detail.html", context, partial="build-status")


@require_POST
@login_required
def build_resume(request: HttpRequest, slug: str, build_id: int) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.RESEARCHER)
    build = services.c3po.build_resume(build=_build_or_404(membership, build_id))
    if build.status == BuildStatus.QUEUED:
        messages.info(request, f"Resuming from stage {build.stage + 1}.")
    return redirect("rewardmodels:build_detail", slug, build.pk)


@require_GET
@login_required
def build_dataset(request: HttpRequest, slug: str, build_id: int) -> StreamingHttpResponse:
    """The same JSON Lines as the API, for a researcher in the browser."""
    membership = membership_or_404(request, slug, Role.RESEARCHER)
    build = _build_or_404(membership, build_id)
    part = request.GET.get("part", "")
    if part not in PARTS or build.status != BuildStatus.SUCCEEDED:
        raise Http404("No such part, or the build has not succeeded.")
    rows = selectors.build_dataset(build=build, part=part)
    return datasets.jsonl_response(rows, f"c3po-{build.pk}-{part}.jsonl", download=True)


@require_GET
@login_required
def review_list(request: HttpRequest, slug: str) -> HttpResponse:
    """Builds waiting for annotators: where the review queue starts."""
    membership = membership_or_404(request, slug, Role.ANNOTATOR)
    builds = selectors.builds_in_review(project=membership.project)
    context = {"membership": membership, "project": membership.project, "builds": builds}
    return render(request, "rewardmodels/reviews.html", context)


@require_GET
@login_required
def review(request: HttpRequest, slug: str, build_id: int) -> HttpResponse:
    """The next revised response waiting for an annotator."""
    membership = membership_or_404(request, slug, Role.ANNOTATOR)
    build = _build_or_404(membership, build_id)
    return render(request, "rewardmodels/review.html", _review_context(membership, build))


def _review_context(
    membership: Membership, build: C3POBuild, *, item: C3POItem | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "membership": membership,
        "project": membership.project,
        "build": build,
        "item": item or selectors.build_item_next_for_review(build=build),
        "pending": selectors.build_pending_review_count(build=build),
        **extra,
    }


@require_POST
@login_required
def review_submit(request: HttpRequest, slug: str, build_id: int, item_id: int) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.ANNOTATOR)
    build = _build_or_404(membership, build_id)
    item = found_or_404(
        selectors.build_item_get(build=build, item_id=item_id), "No such item in this build."
    )
    form = ReviewForm(request.POST, item=item)

    def refused(form: ReviewForm) -> dict[str, Any]:
        item.revised = form.data.get("revised") or item.revised  # what the annotator wrote
        return _review_context(membership, build, item=item, form=form)

    return submit_form(
        request,
        form,
        lambda data: services.c3po.item_review(
            item=item, reviewer=membership.user, action=data["action"], revised=data["revised"]
        ),
        template="rewardmodels/review.html",
        context=refused,
        done=lambda _: redirect("rewardmodels:review", slug, build.pk),
    )
