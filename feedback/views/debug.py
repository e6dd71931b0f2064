"""Debug mode: an annotator sees the pipeline behind an answer, corrects each stage, and can
re-run the later stages from a corrected one; and the ask page, where anyone in the project
asks the project's pipeline a question.

The debug form posts every stage's editor at once. `feedback.debug_mode` turns what was
submitted into typed changes (only those that differ from what the page showed), and
`interventions_save` validates them all and stores all or none. The form carries a version of
what it showed; if the annotator's corrections changed since (another tab), the save is refused
with a prompt to reload instead of silently mixing two states.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

import orjson
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from feedback import selectors, services
from feedback.core.access import answer_or_404, found_or_404, membership_or_404, viewer_of
from feedback.core.pages import is_htmx
from feedback.debug_mode import (
    RELEVANCE_LABELS,
    AnswerState,
    Correction,
    DocumentRow,
    SubqueryRow,
    answer_changes,
    corrected_answer,
    corrected_documents,
    corrected_subqueries,
    document_changes,
    form_index,
    subquery_changes,
    word_diff,
)
from feedback.forms import AssignmentForm, CorrectionsForm, StageForm
from feedback.models import (
    Answer,
    AssignmentStatus,
    Intervention,
    Membership,
    QueueAssignment,
    Role,
    Stage,
)
from feedback.pipelines.protocol import PipelineError
from feedback.pipelines.resolve import pipeline_for, rerun_unavailable_reason
from feedback.selectors.proposals import proposals_by_stage
from feedback.services.annotation import (
    RERUNNABLE_KINDS,
    AssignmentExpired,
    RerunUnavailable,
    interventions_save,
)
from feedback.views.queues import to_following_item

ANSWER_PREFIX = "answer-"  # the editor of an answer without a trace

# What the buttons of the debug form ask for besides saving (`then`): stay on the answer
# ("Save"); save and go on to the next queue item ("Save and next"); or finish the queue item
# without saving anything ("Done, nothing (more) to correct", "Skip").
THEN_SAVE, THEN_NEXT, THEN_DONE, THEN_SKIP = "save", "next", "done", "skip"
UNSAVED = "unsaved"


def _assignment(
    request: HttpRequest, membership: Membership, answer: Answer
) -> QueueAssignment | None:
    """The queue item this page is being worked on as, when it came from a queue: only the
    annotator's own assignment of this very answer."""
    form = AssignmentForm(
        {"assignment": request.POST.get("assignment") or request.GET.get("assignment")}
    )
    if not form.is_valid():
        return None
    return selectors.queue_assignment_of_answer(
        answer=answer, annotator=membership.user, assignment_id=form.cleaned_data["assignment"]
    )


def _version(stages: list[Stage], mine: list[Intervention]) -> str:
    """What the page showed: the stages and the newest of the annotator's corrections."""
    digest = hashlib.sha256(orjson.dumps([[s.position, s.kind, s.output] for s in stages]))
    digest.update(str(mine[-1].pk if mine else 0).encode())
    return digest.hexdigest()[:20]


def _corrections(rows: list[Intervention]) -> list[Correction]:
    return [Correction(i.action, i.before, i.after, i.created_at) for i in rows]


def _form_lists(request: HttpRequest) -> dict[str, list[str]]:
    return {key: request.POST.getlist(key) for key in request.POST}


def _editor_state(
    kind: str,
    output: dict[str, Any],
    corrections: list[Correction],
    *,
    fallback_text: str = "",
) -> dict[str, Any]:
    """What one stage's editor shows: the annotator's corrected state of the stage."""
    if kind == "decomposition":
        subqueries = [q for q in output.get("subqueries", []) if isinstance(q, str)]
        return {"subqueries": corrected_subqueries(subqueries, corrections)}
    if kind in ("retrieval", "rerank"):
        documents = [d for d in output.get("documents", []) if isinstance(d, dict)]
        return {"documents": corrected_documents(documents, corrections)}
    if kind == "generation":
        original = str(output.get("text", fallback_text))
        state = corrected_answer(original, corrections)
        return {"answer": state, "original_text": original}
    return {}


def _state_from_form(view: dict[str, Any], form: dict[str, list[str]]) -> None:
    """After a refused save, show what the annotator submitted rather than losing it."""
    prefix = view["prefix"]
    if "subqueries" in view:
        texts, origins = form.get(f"{prefix}subquery", []), form.get(f"{prefix}origin", [])
        view["subqueries"] = [
            SubqueryRow(form_index(o), t)
            for t, o in zip(texts, origins + ["new"] * len(texts), strict=False)
        ]
    if "documents" in view:
        rows: dict[str, DocumentRow] = {d.id: d for d in view["documents"]}
        order = [i for i in form.get(f"{prefix}doc-order", []) if i in rows]
        rest = [d for d in view["documents"] if d.id not in order]
        view["documents"] = [rows[i] for i in order] + rest
        for d in view["documents"]:
            values = form.get(f"{prefix}rel-{d.id}")
            if values:
                d.relevance = values[-1]
        view["add"] = {
            field: (form.get(f"{prefix}add-{field}") or [""])[0]
            for field in ("title", "text", "url")
        }
    if "answer" in view:
        texts = form.get(f"{prefix}answer", [])
        state = AnswerState(texts[-1] if texts else view["answer"].text, list(view["answer"].flags))
        view["answer"] = state
        view["new_flags"] = [
            {"span": s, "reason": r}
            for s, r in zip(
                form.get(f"{prefix}flag-span", []),
                form.get(f"{prefix}flag-reason", []),
                strict=False,
            )
            if s or r
        ]


def _debug_context(
    request: HttpRequest,
    membership: Membership,
    answer: Answer,
    *,
    form: dict[str, list[str]] | None = None,
    errors: dict[str, list[str]] | None = None,
    assignment: QueueAssignment | None = None,
) -> dict[str, Any]:
    stages = selectors.stages_for_answer(answer=answer)
    mine = selectors.interventions_by_annotator(answer=answer, annotator=membership.user)
    by_stage: dict[int | None, list[Intervention]] = defaultdict(list)
    for intervention in mine:
        by_stage[intervention.stage_id].append(intervention)
    pipeline = pipeline_for(membership.project)
    rerun_reason = rerun_unavailable_reason(answer, pipeline)
    reruns = {
        r.stage_id: r for r in selectors.reruns_by_requester(answer=answer, user=membership.user)
    }
    proposals = proposals_by_stage(answer=answer)
    errors = errors or {}
    views: list[dict[str, Any]] = []
    editable: list[Stage | None] = [*stages] or [
        None
    ]  # an answer without a trace: its text is the one stage
    for number, stage in enumerate(editable, start=1):
        prefix = f"s{stage.position}-" if stage else ANSWER_PREFIX
        kind = stage.kind if stage else "generation"
        rows = by_stage[stage.pk if stage else None]
        view: dict[str, Any] = {
            "stage": stage,
            "number": number,  # stages are numbered from 1 on the page
            "kind": kind,
            "prefix": prefix,
            "saved": rows,
            "errors": {k: v for k, v in errors.items() if k.startswith(prefix)},
            "rerunnable": stage is not None and kind in RERUNNABLE_KINDS,
            "rerun": reruns.get(stage.pk) if stage else None,
            "proposals": proposals.get(stage.pk, []) if stage else [],
            "add": {"title": "", "text": "", "url": ""},
            "new_flags": [],
            **_editor_state(
                kind,
                stage.output if stage else {},
                _corrections(rows),
                fallback_text=answer.response,
            ),
        }
        if form is not None:
            _state_from_form(view, form)
        if "answer" in view:
            view["diff"] = word_diff(view["original_text"], view["answer"].text)
            view["changed"] = any(op != "equal" for op, _ in view["diff"])
        views.append(view)
    return {
        "membership": membership,
        "project": membership.project,
        "answer": answer,
        "stages": views,
        "has_trace": bool(stages),
        "version": _version(stages, mine),
        "errors": errors,
        "general_errors": {
            k: v for k, v in errors.items() if k != UNSAVED and not k.startswith(("s", "answer-"))
        },
        "rationale": (form or {}).get("rationale", [""])[0],
        "relevance_labels": RELEVANCE_LABELS.items(),
        "rerun_reason": rerun_reason,
        "pipeline_name": pipeline.name,
        "assignment": assignment,
        "position": selectors.queue_position(assignment=assignment) if assignment else None,
        "saved_count": len(mine),
        "end_users": selectors.answer_end_user_feedback(answer=answer),
        # A refused form shows what was submitted: those corrections are not saved yet.
        "unsaved": form is not None,
        "show_discard": UNSAVED in errors,
    }


def _debug_url(answer: Answer, assignment: QueueAssignment | None = None) -> str:
    url = reverse("feedback:answer_debug", args=[answer.project.slug, answer.external_id])
    return f"{url}?{urlencode({'assignment': assignment.pk})}" if assignment else url


@require_GET
@login_required
def answer_debug(request: HttpRequest, slug: str, external_id: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.ANNOTATOR)
    answer = answer_or_404(membership, external_id)
    context = _debug_context(
        request, membership, answer, assignment=_assignment(request, membership, answer)
    )
    return render(request, "feedback/answer_debug.html", context)


def _changes_from_form(
    answer: Answer, stages: list[Stage], mine: list[Intervention], form: dict[str, list[str]]
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Every stage's submitted editor → typed changes against the state the page showed (the
    stages and the annotator's own corrections), and errors the form alone reveals."""
    by_stage: dict[int | None, list[Correction]] = defaultdict(list)
    for i in mine:
        by_stage[i.stage_id].append(Correction(i.action, i.before, i.after, i.created_at))
    changes: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    for stage in stages or [None]:  # type: ignore[list-item]
        kind = stage.kind if stage else "generation"
        prefix = f"s{stage.position}-" if stage else ANSWER_PREFIX
        position = stage.position if stage else None
        output = stage.output if stage else {}
        if f"{prefix}editor" not in form:
            continue  # this stage's editor was not on the submitted form: leave it alone
        state = _editor_state(
            kind, output, by_stage[stage.pk if stage else None], fallback_text=answer.response
        )
        if kind == "decomposition":
            subqueries = [q for q in output.get("subqueries", []) if isinstance(q, str)]
            changes += subquery_changes(
                position or 0, subqueries, state["subqueries"], form, prefix
            )
        elif kind in ("retrieval", "rerank"):
            found, problems = document_changes(position or 0, state["documents"], form, prefix)
            changes += found
            errors.update(problems)
        elif kind == "generation":
            changes += answer_changes(position, state["answer"], form, prefix)
    return changes, errors


def _refused(
    request: HttpRequest,
    membership: Membership,
    answer: Answer,
    assignment: QueueAssignment | None,
    form: dict[str, list[str]],
    errors: dict[str, list[str]],
    *,
    status: int = 400,
) -> HttpResponse:
    """The page again with what was submitted and why it was refused; nothing was saved."""
    context = _debug_context(
        request, membership, answer, form=form, errors=errors, assignment=assignment
    )
    return render(request, "feedback/answer_debug.html", context, status=status)


def _finish_item(
    request: HttpRequest, membership: Membership, assignment: QueueAssignment, then: str
) -> HttpResponse:
    """Finish the queue item as done or skipped (only one still held; a finished one the
    annotator came back to stays as it was) and go on to the item after it."""
    if assignment.status == AssignmentStatus.ASSIGNED:
        try:
            if then == THEN_SKIP:
                services.annotation.queue_item_skip(assignment=assignment)
            else:
                services.annotation.queue_item_submit(assignment=assignment)
        except AssignmentExpired as expired:
            messages.warning(request, str(expired))
    return to_following_item(request, membership, assignment)


@require_POST
@login_required
def answer_debug_save(request: HttpRequest, slug: str, external_id: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.ANNOTATOR)
    answer = answer_or_404(membership, external_id)
    assignment = _assignment(request, membership, answer)
    form = _form_lists(request)
    then = request.POST.get("then", THEN_SAVE)
    if assignment is None or then not in (THEN_NEXT, THEN_DONE, THEN_SKIP):
        then = THEN_SAVE
    stages = selectors.stages_for_answer(answer=answer)
    mine = selectors.interventions_by_annotator(answer=answer, annotator=membership.user)
    if request.POST.get("version") != _version(stages, mine):
        context = _debug_context(
            request,
            membership,
            answer,
            form=form,
            assignment=assignment,
            errors={
                "version": [
                    "Your corrections of this answer changed since this page was loaded "
                    "(in another tab?). Reload the page to see them; nothing was saved."
                ]
            },
        )
        context["version"] = request.POST.get("version", "")
        return render(request, "feedback/answer_debug.html", context, status=409)
    changes, errors = _changes_from_form(answer, stages, mine, form)
    if assignment is not None and then in (THEN_DONE, THEN_SKIP):
        # Finishing an item never drops corrections without the annotator saying so.
        if (changes or errors) and request.POST.get("discard") != "1":
            n = len(changes)
            what = "Skip" if then == THEN_SKIP else "Done, nothing (more) to correct"
            return _refused(
                request,
                membership,
                answer,
                assignment,
                form,
                {
                    UNSAVED: [
                        f"This item has {n} unsaved correction{'s' if n != 1 else ''}; nothing "
                        f"was saved or finished. Save them, or tick “Discard my unsaved "
                        f"corrections” and press “{what}” again."
                    ]
                },
            )
        return _finish_item(request, membership, assignment, then)
    corrections = CorrectionsForm(
        request.POST,
        changes=changes,
        prefix_of=lambda position: (
            f"s{position}-" if position is not None and stages else ANSWER_PREFIX
        ),
    )
    saved = (
        None
        if errors
        else corrections.submit(
            lambda data: interventions_save(
                answer=answer,
                annotator=membership.user,
                changes=changes,
                rationale=data["rationale"],
            )
        )
    )
    if saved is None:
        return _refused(
            request, membership, answer, assignment, form, errors or corrections.page_errors()
        )
    if assignment is not None and then == THEN_NEXT:
        if saved:
            messages.success(
                request,
                f"Saved {len(saved)} correction(s) on the previous item ({answer.external_id}).",
            )
        return _finish_item(request, membership, assignment, THEN_DONE)
    messages.success(
        request,
        f"Saved {len(saved)} correction(s)." if saved else "Nothing changed, nothing to save.",
    )
    return redirect(_debug_url(answer, assignment))


@require_POST
@login_required
def answer_debug_diff(request: HttpRequest, slug: str, external_id: str) -> HttpResponse:
    """The live diff under the "Corrected answer" field."""
    membership = membership_or_404(request, slug, Role.ANNOTATOR)
    answer = answer_or_404(membership, external_id)
    prefix = request.POST.get("prefix", ANSWER_PREFIX)
    stage = None
    if prefix != ANSWER_PREFIX:
        position = form_index(prefix.removeprefix("s").removesuffix("-"))
        if position is not None:
            stage = selectors.stage_get(answer=answer, position=position)
    original = str(stage.output.get("text", "")) if stage else answer.response
    corrected = request.POST.get(f"{prefix}answer", original)
    view = {"prefix": prefix, "diff": word_diff(original, corrected.replace("\r\n", "\n"))}
    return render(request, "feedback/answer_debug.html#answer-diff", {"view": view})


@require_POST
@login_required
def answer_rerun(request: HttpRequest, slug: str, external_id: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.ANNOTATOR)
    answer = answer_or_404(membership, external_id)
    form = StageForm(request.POST)
    stage = (
        selectors.stage_get(answer=answer, position=form.cleaned_data["stage"])
        if form.is_valid()
        else None
    )
    stage = found_or_404(stage, "No stage at that position.")
    try:
        rerun = services.annotation.rerun_request(answer=answer, stage=stage, user=membership.user)
    except RerunUnavailable as unavailable:
        if is_htmx(request):
            context: dict[str, Any] = {
                "view": {"stage": stage, "rerun": None},
                "rerun_error": str(unavailable),
                "project": membership.project,
            }
            return render(request, "feedback/answer_debug.html#rerun-status", context, status=409)
        messages.error(request, str(unavailable))
        return redirect(_debug_url(answer))
    if is_htmx(request):
        context = {"view": {"stage": stage, "rerun": rerun}, "project": membership.project}
        return render(request, "feedback/answer_debug.html#rerun-status", context)
    messages.success(request, "Re-run started; this page shows its progress.")
    return redirect(_debug_url(answer))


@require_GET
@login_required
def rerun_status(request: HttpRequest, slug: str, rerun_id: int) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.ANNOTATOR)
    rerun = found_or_404(
        selectors.rerun_get(project=membership.project, rerun_id=rerun_id), "No such re-run."
    )
    context = {"view": {"stage": rerun.stage, "rerun": rerun}, "project": membership.project}
    if not is_htmx(request):
        return redirect(_debug_url(rerun.answer))
    return render(request, "feedback/answer_debug.html#rerun-status", context)


@require_http_methods(["GET", "POST"])
@login_required
def ask(request: HttpRequest, slug: str) -> HttpResponse:
    """Ask the project's pipeline (the demo pipeline unless the project registered its own);
    the answer is stored with its trace and opens ready to be rated."""
    membership = membership_or_404(request, slug)
    context: dict[str, Any] = {
        "membership": membership,
        "project": membership.project,
        "pipeline_name": pipeline_for(membership.project).name,
        "question": "",
    }
    if request.method == "POST":
        question = request.POST.get("question", "")
        if not question.strip():
            context["error"] = "Type a question first."
            return render(request, "feedback/ask.html", context, status=400)
        try:
            answer = services.annotation.answer_ask(
                project=membership.project, question=question, user_ref=viewer_of(request)
            )
        except PipelineError as error:
            # The pipeline failed, not the asker: a gateway error, with the question kept.
            context |= {"question": question, "error": str(error)}
            return render(request, "feedback/ask.html", context, status=502)
        return redirect("feedback:answer_detail", slug, answer.external_id)
    return render(request, "feedback/ask.html", context)
