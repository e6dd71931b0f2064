"""Reads of the feedback app, always scoped to a project or to the projects of a user."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Prefetch, QuerySet

from feedback.models import Answer, ApiKey, FeedbackEvent, Membership, Project, Reaction, Stage


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
        .annotate(exposure_count=Count("exposures"))
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
