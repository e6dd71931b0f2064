"""Reads of tenancy: a user's projects and memberships, a project's API keys."""

from __future__ import annotations

from typing import Any

from django.db.models import Case, Count, IntegerField, QuerySet, Value, When

from feedback.models import (
    ROLE_RANK,
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


def members_for_project(*, project: Project) -> QuerySet[Membership]:
    """The project's members with their accounts, owners first, then by username."""
    rank = Case(
        *(When(role=role, then=Value(-n)) for role, n in ROLE_RANK.items()),
        output_field=IntegerField(),
    )
    return (
        Membership.objects.filter(project=project)
        .select_related("user")
        .order_by(rank, "user__username")
    )


def member_get(*, project: Project, membership_id: int) -> Membership | None:
    """A membership of the project; None for an unknown one or another project's."""
    return (
        Membership.objects.select_related("user").filter(project=project, pk=membership_id).first()
    )
