"""Reads of the embeddable widget: what it shows for an answer and a viewer, and the widget
demo's key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Min

from feedback.models import Answer, ApiKey, Exposure, FollowUp, Outcome, Project, Reaction
from feedback.services.tenancy import api_key_hash
from feedback.widget import demo_widget_key

FOLLOWUP_QUESTION = "Did this solve your problem?"


@dataclass(frozen=True, slots=True)
class WidgetState:
    """What the widget shows for one answer to one viewer."""

    answer: str
    reactions: list[dict[str, str]]  # {kind, label}, in the project's order
    active: list[str]  # the viewer's active reactions
    exposure_window_seconds: int
    followup: dict[str, object]
    anonymous_allowed: bool


def reaction_label(kind: str) -> str:
    """A reaction's name as buttons show it ("love" → "Love"), as on the answer page."""
    return kind.replace("_", " ").capitalize()


def widget_state(
    *, project: Project, external_id: str, viewer: str, now: datetime
) -> WidgetState | None:
    """The reactions to offer, the viewer's active ones, and whether the follow-up question is
    due: `due_in_seconds` is 0 once the project's delay has passed since the viewer first saw
    the answer, the seconds left before that, or null while they have not seen it; `answered`
    once they have answered it. None when the project has no such answer."""
    answer = Answer.objects.filter(project=project, external_id=external_id).only("id").first()
    if answer is None:
        return None
    active = sorted(
        Reaction.objects.filter(answer=answer, viewer=viewer, removed_at__isnull=True).values_list(
            "kind", flat=True
        )
    )
    first_seen = Exposure.objects.filter(answer=answer, viewer=viewer).aggregate(
        first=Min("shown_at")
    )["first"]
    answered = FollowUp.objects.filter(answer=answer, viewer=viewer).exists()
    delay = project.followup_delay.total_seconds()
    due_in = None
    if first_seen is not None:
        due_in = max(0, int(delay - (now - first_seen).total_seconds() + 0.999))
    return WidgetState(
        answer=external_id,
        reactions=[{"kind": k, "label": reaction_label(k)} for k in project.reaction_set],
        active=active,
        exposure_window_seconds=int(project.exposure_window.total_seconds()),
        followup={
            "question": FOLLOWUP_QUESTION,
            "outcomes": [{"value": o.value, "label": o.label} for o in Outcome],
            "delay_seconds": int(delay),
            "due_in_seconds": due_in,
            "answered": answered,
        },
        anonymous_allowed=project.allow_anonymous_viewers,
    )


def widget_demo_key_get(*, project: Project) -> tuple[str, ApiKey] | None:
    """The project's widget demo key (raw, and its row) while it is active; None otherwise."""
    raw_key = demo_widget_key(project.slug)
    key = ApiKey.objects.filter(
        project=project, key_hash=api_key_hash(raw_key), revoked_at__isnull=True
    ).first()
    return (raw_key, key) if key is not None else None
