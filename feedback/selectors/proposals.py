"""Reads of proposals (simulated stage corrections) for debug mode."""

from __future__ import annotations

from django.db.models import QuerySet

from feedback.models import Answer, Project, SimulatedFeedback, SimulatedKind, Stage


def proposals_for_stage(*, stage: Stage) -> QuerySet[SimulatedFeedback]:
    """A stage's proposals, pending first, newest first."""
    return (
        SimulatedFeedback.objects.filter(stage=stage, kind=SimulatedKind.INTERVENTION)
        .select_related("decided_by")
        .order_by("-status", "-id")
    )


def proposal_get(*, project: Project, answer: Answer, proposal_id: int) -> SimulatedFeedback | None:
    return (
        SimulatedFeedback.objects.filter(
            project=project, answer=answer, pk=proposal_id, kind=SimulatedKind.INTERVENTION
        )
        .select_related("stage", "answer")
        .first()
    )
