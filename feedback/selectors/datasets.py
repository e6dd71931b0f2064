"""Reads of datasets: a project's exports."""

from __future__ import annotations

from django.db.models import QuerySet

from feedback.models import (
    Export,
    Project,
)


def export_get(*, project: Project, export_id: int) -> Export | None:
    return Export.objects.filter(project=project, pk=export_id).first()


def exports_for_project(*, project: Project) -> QuerySet[Export]:
    return Export.objects.filter(project=project).order_by("-created_at", "-id")
