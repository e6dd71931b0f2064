"""Reads of the feedback app, always scoped to a project or to the projects of a user."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet

from feedback.models import (
    Answer,
    ApiKey,
    Comparison,
    Export,
    Exposure,
    FeedbackEvent,
    FollowUp,
    Membership,
    Project,
    Reaction,
    Stage,
)


def projects_for_user(*, user: Any) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(user_id=user.pk)
        .select_related("project")
        .annotate(answer_count=Count("project__answers"))
        .order_by("project__slug")
    )


def membership_get(*, user: Any, slug: str) -> Membership | None:
    """The user's membership in the project `slug`; None hides the project's existence."""
    if not user.is_authenticated:
        return None
    return (
        Membership.objects.select_related("project").filter(user=user, project__slug=slug).first()
    )


def answer_get_detailed(*, project: Project, external_id: str) -> Answer | None:
    """One answer with its trace, its revisions' external ids and its feedback counts."""
    return (
        Answer.objects.filter(project=project, external_id=external_id)
        .select_related("revision_of")
        .prefetch_related(
            Prefetch("stages", queryset=Stage.objects.order_by("position")),
            Prefetch("revisions", queryset=Answer.objects.only("id", "external_id", "revision_of")),
        )
        .first()
    )


def answers_for_project(*, project: Project) -> QuerySet[Answer]:
    return (
        Answer.objects.filter(project=project)
        .annotate(stage_count=Count("stages"))
        .order_by("-created_at", "-id")
    )


def api_keys_for_project(*, project: Project) -> QuerySet[ApiKey]:
    return (
        ApiKey.objects.filter(project=project).select_related("created_by").order_by("-created_at")
    )


def feedback_events_page(
    *,
    project: Project,
    after_id: int,
    limit: int,
    event_type: str | None = None,
    since: datetime | None = None,
    answer_external_id: str | None = None,
) -> list[FeedbackEvent]:
    """Up to `limit` events after `after_id`, in id order (stable: ids only grow)."""
    events = FeedbackEvent.objects.filter(project=project, id__gt=after_id)
    if event_type:
        events = events.filter(type=event_type)
    if since:
        events = events.filter(occurred_at__gte=since)
    if answer_external_id:
        events = events.filter(answer__external_id=answer_external_id)
    return list(
        events.select_related("answer")
        .only(*FEEDBACK_EVENT_FIELDS, "answer__external_id")
        .order_by("id")[:limit]
    )


FEEDBACK_EVENT_FIELDS = (
    "id",
    "event_id",
    "type",
    "answer",
    "viewer",
    "source",
    "occurred_at",
    "received_at",
    "data",
)


def reaction_counts(*, answers: list[Answer]) -> dict[int, dict[str, int]]:
    """Active reactions per answer and kind, in one query for any number of answers."""
    counts: dict[int, dict[str, int]] = {a.pk: {} for a in answers}
    rows = (
        Reaction.objects.filter(answer__in=answers, removed_at__isnull=True)
        .values_list("answer_id", "kind")
        .annotate(n=Count("id"))
        .values_list("answer_id", "kind", "n")
    )
    for answer_id, kind, n in rows:
        counts[answer_id][kind] = n
    return counts


def reactions_of_viewer(*, answers: list[Answer], viewer: str) -> dict[int, set[str]]:
    """The kinds `viewer` has active on each answer, in one query."""
    active: dict[int, set[str]] = {a.pk: set() for a in answers}
    for answer_id, kind in Reaction.objects.filter(
        answer__in=answers, viewer=viewer, removed_at__isnull=True
    ).values_list("answer_id", "kind"):
        active[answer_id].add(kind)
    return active


REACTION_FILTERS = {
    "": "All answers",
    "any": "With reactions",
    "none": "Without reactions",
}


def answers_filtered(*, project: Project, model: str = "", reaction: str = "") -> QuerySet[Answer]:
    """The answers list: newest first, by model and by reaction state ("any", "none", or one
    reaction kind)."""
    answers = Answer.objects.filter(project=project).order_by("-created_at", "-id")
    if model:
        answers = answers.filter(model=model)
    if reaction:
        active = Reaction.objects.filter(answer=OuterRef("pk"), removed_at__isnull=True)
        if reaction == "none":
            answers = answers.filter(~Exists(active))
        elif reaction == "any":
            answers = answers.filter(Exists(active))
        else:
            answers = answers.filter(Exists(active.filter(kind=reaction)))
    return answers


def project_models(*, project: Project) -> list[str]:
    return list(
        Answer.objects.filter(project=project)
        .order_by("model")
        .values_list("model", flat=True)
        .distinct()
    )


def answer_for_page(*, project: Project, external_id: str) -> Answer | None:
    return Answer.objects.filter(project=project, external_id=external_id).first()


def followup_due(*, answer: Answer, viewer: str, delay: timedelta, now: datetime) -> bool:
    """Ask "did this solve your problem?" once the viewer saw the answer at least `delay`
    ago and has not answered yet."""
    seen_long_ago = Exposure.objects.filter(answer=answer, viewer=viewer, shown_at__lte=now - delay)
    answered = FollowUp.objects.filter(answer=answer, viewer=viewer)
    return bool(
        Answer.objects.filter(pk=answer.pk)
        .filter(Exists(seen_long_ago), ~Exists(answered))
        .exists()
    )


def has_same_prompt_answer(*, answer: Answer) -> bool:
    """Is there another answer to this prompt in the project (something to compare with)?"""
    return (
        Answer.objects.filter(project_id=answer.project_id, prompt_hash=answer.prompt_hash)
        .exclude(pk=answer.pk)
        .exists()
    )


def comparison_pair(
    *, project: Project, viewer: str, answer: Answer | None = None
) -> tuple[Answer, Answer] | None:
    """Two answers to the same prompt, preferring pairs the viewer has not compared; in random
    order, so position says nothing about the model."""
    if answer is not None:
        candidates = list(
            Answer.objects.filter(project=project, prompt_hash=answer.prompt_hash)
            .exclude(pk=answer.pk)
            .order_by("?")[:1]
        )
        if not candidates:
            return None
        pair = [answer, candidates[0]]
    else:
        compared = Comparison.objects.filter(project=project, viewer=viewer).values("answer_a")
        group = (
            Answer.objects.filter(project=project)
            .exclude(pk__in=compared)
            .values("prompt_hash")
            .annotate(n=Count("id"))
            .filter(n__gte=2)
            .order_by("?")
            .first()
        )
        if group is None:
            return None
        pair = list(
            Answer.objects.filter(project=project, prompt_hash=group["prompt_hash"]).order_by("?")[
                :2
            ]
        )
    random.shuffle(pair)
    return pair[0], pair[1]


def answer_feedback_counts(*, answer: Answer) -> dict[str, Any]:
    """What people did with an answer: exposures, active reactions by kind, critiques,
    comparisons it took part in, follow-up outcomes."""
    return {
        "exposures": Exposure.objects.filter(answer=answer).count(),
        "reactions": reaction_counts(answers=[answer])[answer.pk],
        "critiques": answer.critiques.count(),
        "comparisons": Comparison.objects.filter(Q(answer_a=answer) | Q(answer_b=answer)).count(),
        "followups": dict(
            FollowUp.objects.filter(answer=answer)
            .values_list("outcome")
            .annotate(n=Count("id"))
            .values_list("outcome", "n")
        ),
    }


def export_get(*, project: Project, export_id: int) -> Export | None:
    return Export.objects.filter(project=project, pk=export_id).first()


def exports_for_project(*, project: Project) -> QuerySet[Export]:
    return Export.objects.filter(project=project).order_by("-created_at", "-id")
