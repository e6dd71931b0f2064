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


def proposals_by_stage(*, answer: Answer) -> dict[int, list[SimulatedFeedback]]:
    """Every stage's proposals for debug mode in one query, by stage id, in the order of
    `proposals_for_stage`."""
    by_stage: dict[int, list[SimulatedFeedback]] = {}
    rows = (
        SimulatedFeedback.objects.filter(
            answer=answer, kind=SimulatedKind.INTERVENTION, stage__isnull=False
        )
        .select_related("decided_by")
        .order_by("stage_id", "-status", "-id")
    )
    for proposal in rows:
        by_stage.setdefault(proposal.stage_id, []).append(proposal)  # type: ignore[arg-type]
    return by_stage


def proposal_get(*, project: Project, answer: Answer, proposal_id: int) -> SimulatedFeedback | None:
    return (
        SimulatedFeedback.objects.filter(
            project=project, answer=answer, pk=proposal_id, kind=SimulatedKind.INTERVENTION
        )
        .select_related("stage", "answer")
        .first()
    )
