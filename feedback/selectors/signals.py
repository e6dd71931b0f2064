"""Reads of signals: the event log, reactions, follow-ups, comparisons, critiques and the
feedback counts of an answer."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from feedback.models import (
    Answer,
    Comparison,
    Critique,
    Exposure,
    FeedbackEvent,
    FollowUp,
    Project,
    Reaction,
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


def critique_get(*, project: Project, critique_id: int) -> Critique | None:
    return Critique.objects.filter(project=project, pk=critique_id).first()
