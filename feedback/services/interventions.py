"""Saving debug-mode corrections: every change validated, then all written in one statement."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from feedback.core.errors import ValidationFailed
from feedback.interventions import StageView, validate_change
from feedback.models import Answer, Intervention


def interventions_save(
    *,
    answer: Answer,
    annotator: User,
    changes: Sequence[Mapping[str, Any]],
    rationale: str = "",
) -> list[Intervention]:
    """Validate every change against the answer's stages (addressed by `stage` position) and
    store them all, or none (ValidationFailed naming `changes[i].<field>`). A change may carry
    its own `event_id` (idempotency)."""
    stages = {s.position: s for s in answer.stages.all()}
    errors: dict[str, list[str]] = {}
    rows: list[Intervention] = []
    now = timezone.now()
    for i, change in enumerate(changes):
        position = change.get("stage") if isinstance(change, dict) else None
        stage = stages.get(position) if isinstance(position, int) else None
        if position is not None and stage is None:
            errors[f"changes[{i}].stage"] = ["No stage at that position."]
            continue
        event_id = change.get("event_id") if isinstance(change, dict) else None
        if event_id is not None and (
            not isinstance(event_id, str)
            or not event_id
            or len(event_id) > 255
            or "\x00" in event_id
        ):
            errors[f"changes[{i}].event_id"] = ["Must be a string of 1 to 255 characters."]
            continue
        checked = validate_change(
            change,
            stage=StageView(stage.kind, stage.output) if stage else None,
            response=answer.response,
        )
        if isinstance(checked, dict):
            errors.update({f"changes[{i}].{field}": m for field, m in checked.items()})
            continue
        rows.append(
            Intervention(
                project_id=answer.project_id,
                answer=answer,
                stage=stage,
                annotator=annotator,
                action=checked.action,
                before=checked.before,
                after=checked.after,
                rationale=rationale,
                event_id=event_id or f"debug:{uuid.uuid4()}",
                created_at=now,
            )
        )
    if errors:
        raise ValidationFailed(errors, "Some corrections are invalid; nothing was saved.")
    with transaction.atomic():
        # A change replayed with the same event_id is skipped by the unique constraint.
        Intervention.objects.bulk_create(rows, ignore_conflicts=True)
    return list(
        Intervention.objects.filter(
            project_id=answer.project_id, answer=answer, event_id__in=[r.event_id for r in rows]
        ).order_by("id")
    )
