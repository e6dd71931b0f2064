"""End users' pages: the answers list, an answer with its reaction bar, critique and
follow-up forms, and the A/B comparison page.

Every form also works without JavaScript (a plain POST and a redirect back); with htmx only the
partial that changed is swapped. Each form carries an `event_id` made when it was rendered, so a
double submit is recorded once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from feedback import selectors, services
from feedback.core.access import answer_or_404, membership_or_404, viewer_of
from feedback.core.csp import allow_remote_images
from feedback.core.pages import is_htmx, render_page
from feedback.debug_mode import word_diff
from feedback.events import OUTCOMES
from feedback.forms import AnswerFilterForm
from feedback.models import Answer, Membership, Outcome, Winner
from feedback.rendering import render_markdown
from feedback.selectors.dashboard import day_bounds
from feedback.services.signals import RATE_WINDOW, FeedbackResult

ANSWERS_PER_PAGE = 25
REACTION_EMOJI = {
    "love": "❤️",
    "like": "👍",
    "dislike": "👎",
    "laugh": "😂",
    "wow": "😮",
    "sad": "😢",
    "angry": "😠",
}
CRITIQUE_CATEGORIES = ["incorrect", "unhelpful", "incomplete", "too long", "unsafe", "style"]
COMPARE_KEYS = {"a": "1", "b": "2", "tie": "3", "both_bad": "4"}


def _new_event_id() -> str:
    return f"web:{uuid.uuid4()}"


def _result_status(result: FeedbackResult) -> int:
    if result.status != "error":
        return 200
    return 429 if result.limit == "rate_limited" else 400


def _error_text(result: FeedbackResult) -> str:
    return " ".join(m for messages_ in (result.errors or {}).values() for m in messages_)


# --- the answers list --------------------------------------------------------------------------


FILTER_FIELDS = ("q", "model", "version", "reaction", "critique", "since", "until")


def _filters(form: AnswerFilterForm) -> selectors.AnswerFilters:
    data = form.cleaned_data
    since, until = data.get("since"), data.get("until")
    start = day_bounds(since, since)[0] if since else None
    end = day_bounds(until, until)[1] if until else None
    return selectors.AnswerFilters(
        search=data.get("q", "").strip(),
        model=data.get("model", ""),
        model_version=data.get("version", ""),
        reaction=data.get("reaction", ""),
        critique=data.get("critique", ""),
        since=start,
        until=end,
    )


@require_GET
@login_required
def answer_list(request: HttpRequest, slug: str) -> HttpResponse:
    """The project's answers: search and filters, a preview of each response, and the re-runs
    of an answer beneath it. A filter that doesn't parse is shown beside its field (400)."""
    membership = membership_or_404(request, slug)
    project = membership.project
    form = AnswerFilterForm(request.GET, reactions=project.reaction_set)
    context: dict[str, Any] = {
        "membership": membership,
        "project": project,
        "form": form,
        "models": selectors.project_models(project=project),
        "versions": selectors.project_model_versions(project=project),
        "emoji": REACTION_EMOJI,
    }
    if not form.is_valid():
        context |= {"page": None, "rows": [], "filter_query": ""}
        return render_page(
            request, "feedback/answer_list.html", context, partial="answer-list", status=400
        )
    answers = selectors.answers_listed(project=project, filters=_filters(form))
    page = Paginator(answers, ANSWERS_PER_PAGE).get_page(request.GET.get("page"))
    originals = list(page.object_list)
    revisions = {a.pk: list(getattr(a, "listed_revisions", ())) for a in originals}
    shown = [a for original in originals for a in (original, *revisions[original.pk])]
    services.exposures_record_views(
        project=project, viewer=viewer_of(request), answers=shown, surface="list"
    )
    counts = selectors.reaction_counts(answers=shown)
    query = {k: v for k in FILTER_FIELDS if (v := request.GET.get(k, ""))}
    context |= {
        "page": page,
        "rows": [
            {
                "answer": original,
                "counts": counts[original.pk],
                "revisions": [(r, counts[r.pk]) for r in revisions[original.pk]],
            }
            for original in originals
        ],
        "filter_query": urlencode(query),
        "filtered": bool(query),
    }
    return render_page(request, "feedback/answer_list.html", context, partial="answer-list")


# --- one answer --------------------------------------------------------------------------------


def _bar_context(
    membership: Membership, answer: Answer, viewer: str, *, message: str = ""
) -> dict[str, Any]:
    counts = selectors.reaction_counts(answers=[answer])[answer.pk]
    mine = selectors.reactions_of_viewer(answers=[answer], viewer=viewer)[answer.pk]
    return {
        "project": membership.project,
        "answer": answer,
        "bar_event_id": _new_event_id(),
        "bar_message": message,
        "reactions": [
            {
                "kind": kind,
                "label": kind.replace("_", " ").capitalize(),
                "emoji": REACTION_EMOJI.get(kind, ""),
                "count": counts.get(kind, 0),
                "pressed": kind in mine,
            }
            for kind in membership.project.reaction_set
        ],
    }


def _critique_context(
    membership: Membership,
    answer: Answer,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
    message: str = "",
) -> dict[str, Any]:
    return {
        "project": membership.project,
        "answer": answer,
        "critique_event_id": _new_event_id(),
        "critique_values": values or {},
        "critique_errors": errors or {},
        "critique_message": message,
        "categories": CRITIQUE_CATEGORIES,
    }


def _followup_context(
    membership: Membership,
    answer: Answer,
    viewer: str,
    *,
    errors: dict[str, list[str]] | None = None,
    message: str = "",
) -> dict[str, Any]:
    due = selectors.followup_due(
        answer=answer,
        viewer=viewer,
        delay=membership.project.followup_delay,
        now=timezone.now(),
    )
    return {
        "project": membership.project,
        "answer": answer,
        "followup_due": due,
        "followup_event_id": _new_event_id(),
        "followup_errors": errors or {},
        "followup_message": message,
        "outcomes": Outcome.choices,
    }


def _lineage_context(answer: Answer) -> dict[str, Any]:
    """A re-run's original, with what changed word by word; an answer's own re-runs."""
    original = selectors.answer_original(answer=answer)
    return {
        "original": original,
        "diff": word_diff(original.response, answer.response) if original else [],
        "revisions": selectors.answer_revisions(answer=answer),
    }


@require_GET
@login_required
def answer_detail(request: HttpRequest, slug: str, external_id: str) -> HttpResponse:
    membership = membership_or_404(request, slug)
    answer = answer_or_404(membership, external_id)
    viewer = viewer_of(request)
    # The follow-up is decided before this view is recorded as a new exposure.
    context = {
        "membership": membership,
        **_followup_context(membership, answer, viewer),
        **_bar_context(membership, answer, viewer),
        **_critique_context(membership, answer),
        "rendered_response": render_markdown(
            answer.response, allow_images=membership.project.allow_images
        ),
        "can_compare": selectors.has_same_prompt_answer(answer=answer),
        **_lineage_context(answer),
        "history": selectors.viewer_history(answer=answer, viewer=viewer),
    }
    services.exposures_record_views(
        project=membership.project, viewer=viewer, answers=[answer], surface="answer"
    )
    return allow_remote_images(
        render(request, "feedback/answer_detail.html", context),
        allowed=membership.project.allow_images,
    )


def _answer_url(answer: Answer) -> str:
    return reverse("feedback:answer_detail", args=[answer.project.slug, answer.external_id])


def _form_event_id(request: HttpRequest) -> str:
    """The event_id of a submitted form (a double submit repeats it), in the viewer's own
    namespace so one user can't claim another's event ids."""
    return f"{viewer_of(request)}:{request.POST.get('event_id') or _new_event_id()}"[:255]


def _record_one(request: HttpRequest, membership: Membership, **event: Any) -> FeedbackResult:
    """One browser event for the signed-in viewer."""
    event["event_id"] = _form_event_id(request)
    return services.feedback_record(
        project=membership.project, items=[event], source="browser", viewer=viewer_of(request)
    )[0]


def _feedback_response(
    request: HttpRequest,
    result: FeedbackResult,
    *,
    partial: str,
    context_for: Callable[[bool], dict[str, Any]],
    redirect_to: str,
    thanks: str = "",
) -> HttpResponse:
    """Without htmx: a message and a redirect back (the page works without JavaScript). With
    htmx: the partial, rendered for success or failure, with the failure's status code."""
    ok = result.status != "error"
    if not is_htmx(request):
        if not ok:
            messages.error(request, _error_text(result))
        elif thanks:
            messages.success(request, thanks)
        return redirect(redirect_to)
    response = render(request, partial, context_for(ok), status=_result_status(result))
    if result.limit == "rate_limited":
        response["Retry-After"] = str(int(RATE_WINDOW.total_seconds()))
    return response


# What a form on an answer's page recorded, and the context its partial is shown again with
# (given whether it was recorded).
Recorded = tuple[FeedbackResult, Callable[[bool], dict[str, Any]]]


def _answer_feedback(
    request: HttpRequest,
    slug: str,
    external_id: str,
    *,
    form_id: str,
    record: Callable[[Membership, Answer], Recorded],
    thanks: str = "",
) -> HttpResponse:
    """The answer to a form on an answer's page, whose partial (and root element's id) is
    `form_id`. A stale page posting after the answer was deleted gets a 404; with htmx, an
    inline message in place of the form."""
    membership = membership_or_404(request, slug)
    answer = selectors.answer_for_page(project=membership.project, external_id=external_id)
    if answer is None:
        if not is_htmx(request):
            raise Http404("This answer does not exist (any more).")
        context = {"target_id": form_id, "slug": membership.project.slug}
        return render(request, "feedback/answer_gone.html", context, status=404)
    result, context_for = record(membership, answer)
    return _feedback_response(
        request,
        result,
        partial=f"feedback/answer_detail.html#{form_id}",
        context_for=context_for,
        redirect_to=_answer_url(answer),
        thanks=thanks,
    )


@require_POST
@login_required
def answer_react(request: HttpRequest, slug: str, external_id: str) -> HttpResponse:
    viewer = viewer_of(request)
    kind = request.POST.get("reaction", "")

    def react(membership: Membership, answer: Answer) -> Recorded:
        if kind not in membership.project.reaction_set:
            result = FeedbackResult(0, "error", errors={"reaction": ["Unknown reaction."]})
        else:
            result = services.reaction_toggle(
                project=membership.project,
                answer=answer,
                viewer=viewer,
                kind=kind,
                event_id=_form_event_id(request),
            )
        return result, lambda ok: _bar_context(
            membership, answer, viewer, message="" if ok else _error_text(result)
        )

    return _answer_feedback(request, slug, external_id, form_id="reaction-bar", record=react)


@require_POST
@login_required
def answer_critique(request: HttpRequest, slug: str, external_id: str) -> HttpResponse:
    values = {key: request.POST.get(key, "") for key in ("text", "quote", "category")}
    thanks = "Thanks: your critique was sent."

    def critique(membership: Membership, answer: Answer) -> Recorded:
        result = _record_one(
            request, membership, type="critique", answer=answer.external_id, **values
        )
        return result, lambda ok: _critique_context(
            membership,
            answer,
            values=None if ok else values,
            errors=None if ok else result.errors,
            message=thanks if ok else "",
        )

    return _answer_feedback(
        request, slug, external_id, form_id="critique-form", record=critique, thanks=thanks
    )


@require_POST
@login_required
def answer_followup(request: HttpRequest, slug: str, external_id: str) -> HttpResponse:
    viewer = viewer_of(request)
    outcome = request.POST.get("outcome", "")
    thanks = "Thanks for telling us."

    def followup(membership: Membership, answer: Answer) -> Recorded:
        project = membership.project
        if not selectors.followup_due(
            answer=answer, viewer=viewer, delay=project.followup_delay, now=timezone.now()
        ):
            result = FeedbackResult(
                0, "error", errors={"outcome": ["There is no follow-up to answer for this answer."]}
            )
        else:
            result = _record_one(
                request,
                membership,
                type="followup",
                answer=answer.external_id,
                outcome=outcome if outcome in OUTCOMES else None,
                text=request.POST.get("text", ""),
            )
        return result, lambda ok: _followup_context(
            membership,
            answer,
            viewer,
            errors=None if ok else result.errors,
            message=thanks if ok else "",
        )

    return _answer_feedback(
        request, slug, external_id, form_id="followup", record=followup, thanks=thanks
    )


# --- comparisons -------------------------------------------------------------------------------


def _compare_context(
    request: HttpRequest, membership: Membership, answer: Answer | None = None, **extra: Any
) -> dict[str, Any]:
    viewer = viewer_of(request)
    pair = selectors.comparison_pair(project=membership.project, viewer=viewer, answer=answer)
    if pair is not None:
        services.exposures_record_views(
            project=membership.project, viewer=viewer, answers=list(pair), surface="compare"
        )
    images = membership.project.allow_images
    return {
        "membership": membership,
        "project": membership.project,
        "pair": pair,
        "sides": [
            {
                "key": key,
                "answer": a,
                "html": render_markdown(a.response, allow_images=images),
            }
            for key, a in zip(("A", "B"), pair or (), strict=False)
        ],
        "prompt": pair[0].prompt if pair else [],
        "choices": [(w.value, w.label, COMPARE_KEYS[w.value]) for w in Winner],
        "compare_event_id": _new_event_id(),
        **extra,
    }


@require_GET
@login_required
def compare(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug)
    answer = None
    if request.GET.get("answer"):
        answer = answer_or_404(membership, request.GET["answer"])
    return allow_remote_images(
        render(request, "feedback/compare.html", _compare_context(request, membership, answer)),
        allowed=membership.project.allow_images,
    )


@require_POST
@login_required
def compare_submit(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug)
    result = _record_one(
        request,
        membership,
        type="comparison",
        answer=request.POST.get("answer_a", ""),
        other_answer=request.POST.get("answer_b", ""),
        winner=request.POST.get("winner"),
    )
    thanks = "Thanks: recorded. Here is the next pair."
    return _feedback_response(
        request,
        result,
        partial="feedback/compare.html#comparison",
        context_for=lambda ok: _compare_context(
            request,
            membership,
            compare_message=thanks if ok else _error_text(result),
            compare_failed=not ok,
        ),
        redirect_to=reverse("feedback:compare", args=[slug]),
        thanks=thanks,
    )
