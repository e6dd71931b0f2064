"""Proposals in debug mode: a judge's (or shadow's) proposed correction of a stage, which an
annotator accepts (it becomes the annotator's own intervention, with the proposal's id as its
provenance) or rejects (kept, and counted as a disagreement in the judge's agreement).

The first annotator to decide settles a proposal; the decision and the proposal are locked
together, so two annotators deciding at once can't both accept it.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from feedback.core.errors import NotReady, ValidationFailed
from feedback.models import ProposalStatus, SimulatedFeedback
from feedback.services.annotation import interventions_save

INVALID = "The proposal can't be accepted."


def proposal_event_id(proposal: SimulatedFeedback, annotator: User, n: int = 0) -> str:
    """The provenance an accepted proposal's interventions carry (also their idempotency key)."""
    return f"proposal:{proposal.pk}:{annotator.pk}:{n}"


def _changes(proposal: SimulatedFeedback) -> list[dict[str, Any]]:
    """The intervention(s) that apply the proposal to its stage."""
    position = proposal.stage.position if proposal.stage else None
    if proposal.action == "doc_relevance":
        return [{"stage": position, "action": "doc_relevance", "after": proposal.after}]
    if proposal.action == "subqueries":
        before = (
            [s for s in (proposal.stage.output or {}).get("subqueries", [])]
            if proposal.stage
            else []
        )
        after = list(proposal.after.get("subqueries") or [])
        if sorted(before) == sorted(after) and before != after:
            return [{"stage": position, "action": "subquery_reorder", "after": {"order": after}}]
        if len(before) != len(after):
            raise ValidationFailed(
                {"proposal": ["It changes how many sub-queries there are; edit them by hand."]},
                INVALID,
            )
        return [
            {
                "stage": position,
                "action": "subquery_edit",
                "index": i,
                "after": {"text": new},
            }
            for i, (old, new) in enumerate(zip(before, after, strict=True))
            if old != new
        ]
    raise ValidationFailed({"proposal": ["Only stage corrections can be accepted."]}, INVALID)


def proposal_decide(
    *, proposal: SimulatedFeedback, annotator: User, accept: bool
) -> SimulatedFeedback:
    """Accept or reject a pending proposal; NotReady when someone decided it already."""
    with transaction.atomic():
        locked = SimulatedFeedback.objects.select_for_update().get(pk=proposal.pk)
        if locked.status != ProposalStatus.PENDING:
            raise NotReady("This proposal was decided already.")
        intervention = None
        if accept:
            changes = _changes(locked)
            for n, change in enumerate(changes):
                change["event_id"] = proposal_event_id(locked, annotator, n)
            if changes:
                made = interventions_save(
                    answer=locked.answer,
                    annotator=annotator,
                    changes=changes,
                    rationale=f"Accepted proposal {locked.pk} of {locked.producer}.",
                )
                intervention = made[0] if made else None
        locked.status = ProposalStatus.ACCEPTED if accept else ProposalStatus.REJECTED
        locked.decided_by = annotator
        locked.decided_at = timezone.now()
        locked.intervention = intervention
        locked.save(update_fields=["status", "decided_by", "decided_at", "intervention"])
    return locked
