"""What end users said about an answer, written directly as rows: reactions, critiques and
follow-ups from a given source (a browser, the API, or simulated by a judge)."""

from __future__ import annotations

import itertools

from django.utils import timezone

from feedback.models import Answer, Critique, FeedbackEvent, FollowUp, Reaction

_numbers = itertools.count()


def _event(answer: Answer, kind: str, source: str) -> tuple[FeedbackEvent, str]:
    n = next(_numbers)
    viewer = f"viewer-{n}"
    event = FeedbackEvent.objects.create(
        project=answer.project,
        event_id=f"{kind}-{n}",
        type=kind,
        answer=answer,
        viewer=viewer,
        source=source,
        occurred_at=timezone.now(),
        received_at=timezone.now(),
    )
    return event, viewer


def reaction(answer: Answer, kind: str, *, source: str = "api", removed: bool = False) -> Reaction:
    event, viewer = _event(answer, "reaction", source)
    return Reaction.objects.create(
        project=answer.project,
        answer=answer,
        viewer=viewer,
        kind=kind,
        source=source,
        event=event,
        created_at=timezone.now(),
        removed_at=timezone.now() if removed else None,
    )


def critique(
    answer: Answer, text: str, *, quote: str = "", category: str = "", source: str = "api"
) -> Critique:
    event, viewer = _event(answer, "critique", source)
    return Critique.objects.create(
        project=answer.project,
        answer=answer,
        viewer=viewer,
        source=source,
        event=event,
        text=text,
        quote=quote,
        category=category,
        created_at=timezone.now(),
    )


def followup(answer: Answer, outcome: str, text: str = "", *, source: str = "api") -> FollowUp:
    event, viewer = _event(answer, "followup", source)
    return FollowUp.objects.create(
        project=answer.project,
        answer=answer,
        viewer=viewer,
        outcome=outcome,
        text=text,
        source=source,
        event=event,
        created_at=timezone.now(),
    )
