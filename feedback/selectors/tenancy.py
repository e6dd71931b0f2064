"""Reads of tenancy: a user's projects and memberships, a project's API keys."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet

from feedback.models import (
    ApiKey,
    Membership,
    Project,
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


def api_keys_for_project(*, project: Project) -> QuerySet[ApiKey]:
    return (
        ApiKey.objects.filter(project=project).select_related("created_by").order_by("-created_at")
    )
