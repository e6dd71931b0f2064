"""Reads of the feedback app, always scoped to a project or to the projects of a user."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Prefetch, QuerySet

from feedback.models import Answer, ApiKey, Membership, Project, Stage


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
