"""Annotation queues and the rows around them, made for tests: what the tests of the queue
service, its reads and its pages share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from feedback.models import (
    AnnotationQueue,
    Answer,
    AssignmentStatus,
    FeedbackEvent,
    Project,
    QueueAssignment,
    QueueItem,
    Reaction,
)
from feedback.services.annotation import QueueFilter, queue_create
from tests.factories import MembershipFactory, UserFactory


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


def answers_of(queue: AnnotationQueue) -> list[str]:
    """The external ids of the queue's answers, in the order they are handed out."""
    return list(queue.items.order_by("id").values_list("answer__external_id", flat=True))


def make_queue(
    project: Project,
    *,
    name: str = "Q",
    overlap: int = 1,
    guidelines: str = "",
    spec: QueueFilter | None = None,
) -> AnnotationQueue:
    return queue_create(
        project=project,
        created_by=UserFactory.create(),
        name=name,
        guidelines=guidelines,
        overlap=overlap,
        spec=spec or QueueFilter(),
    )


def react(answer: Answer, kind: str, *, removed: bool = False) -> Reaction:
    """A reaction of `kind` to `answer`; `removed` ones are history, not active."""
    n = Reaction.objects.count()
    event = FeedbackEvent.objects.create(
        project=answer.project,
        event_id=f"reaction-{n}",
        type="reaction",
        answer=answer,
        viewer=f"viewer-{n}",
        source="api",
        occurred_at=timezone.now(),
        received_at=timezone.now(),
    )
    return Reaction.objects.create(
        project=answer.project,
        answer=answer,
        viewer=f"viewer-{n}",
        kind=kind,
        source="api",
        event=event,
        created_at=timezone.now(),
        removed_at=timezone.now() if removed else None,
    )


def annotators(project: Project, *names: str) -> list[User]:
    users = [UserFactory.create(username=name) for name in names]
    for user in users:
        MembershipFactory.create(user=user, project=project, role="annotator")
    return users


def finish(queue: AnnotationQueue, answer: Answer, annotator: User, status: str) -> None:
    """Record the annotator's turn at the queue's item for `answer` directly."""
    QueueAssignment.objects.create(
        item=QueueItem.objects.get(queue=queue, answer=answer),
        annotator=annotator,
        status=status,
        locked_until=timezone.now() + timedelta(minutes=30),
        assigned_at=timezone.now(),
        finished_at=None if status == AssignmentStatus.ASSIGNED else timezone.now(),
    )
