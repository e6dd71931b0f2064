"""Annotation queues: creating one from a filter, handing out items, skipping and submitting.

Handing out work is the concurrent part. An item may be held by at most `overlap` annotators
(done, or assigned with a lock that has not expired) and never twice by one annotator. The
unique constraint on (item, annotator) enforces the second rule; the first is kept by locking
the item row (`select_for_update(skip_locked=True)`: annotators pulling at the same moment get
different items instead of waiting) and counting its holders again *after* the lock is held, in
a statement that sees every assignment committed before it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from feedback.core.errors import ServiceError, ValidationFailed
from feedback.models import (
    AnnotationQueue,
    AssignmentStatus,
    Project,
    QueueAssignment,
    QueueItem,
)

# The filter a queue is made from is a read; queue_create takes it as its input.
from feedback.selectors import REACTION_STATES, QueueFilter, answers_matching

INVALID = "The queue could not be created."
OVERLAP_RULE = "Must be between 1 and 10 annotators per item."


def queue_create(
    *,
    project: Project,
    created_by: User,
    name: str,
    guidelines: str,
    overlap: int,
    spec: QueueFilter,
) -> AnnotationQueue:
    """A queue holding every answer that matches `spec` now, oldest first."""
    errors: dict[str, list[str]] = {}
    if not name.strip():
        errors["name"] = ["Give the queue a name."]
    elif AnnotationQueue.objects.filter(project=project, name=name.strip()).exists():
        errors["name"] = ["The project already has a queue with this name."]
    if not 1 <= overlap <= 10:
        errors["overlap"] = [OVERLAP_RULE]
    if spec.reaction_state not in REACTION_STATES:
        errors["reaction_state"] = [f"Must be one of: {', '.join(REACTION_STATES)}."]
    if spec.created_from and spec.created_to and spec.created_from > spec.created_to:
        errors["created_to"] = ["Must not be before the start date."]
    if errors:
        raise ValidationFailed(errors, INVALID)
    try:
        with transaction.atomic():
            queue = AnnotationQueue.objects.create(
                project=project,
                name=name.strip(),
                guidelines=guidelines.strip(),
                overlap=overlap,
                filters=spec.as_json(),
                created_by=created_by,
            )
            ids = answers_matching(project=project, spec=spec).order_by("created_at", "id")
            batch: list[QueueItem] = []
            for answer_id in ids.values_list("id", flat=True).iterator(chunk_size=5000):
                batch.append(QueueItem(queue=queue, answer_id=answer_id))
                if len(batch) == 5000:
                    QueueItem.objects.bulk_create(batch)
                    batch = []
            QueueItem.objects.bulk_create(batch)
    except IntegrityError:  # a concurrent create with the same name won
        raise ValidationFailed(
            {"name": ["The project already has a queue with this name."]}, INVALID
        ) from None
    return queue


def _holders(now: datetime) -> Q:
    """Assignments that take up one of an item's `overlap` places."""
    return Q(status=AssignmentStatus.DONE) | Q(
        status=AssignmentStatus.ASSIGNED, locked_until__gt=now
    )


def queue_item_next_for(
    *, queue: AnnotationQueue, annotator: User, attempts: int = 20
) -> QueueAssignment | None:
    """The annotator's current item if they hold one, else a new one, else None (the queue
    has nothing left for them)."""
    now = timezone.now()
    current = (
        QueueAssignment.objects.filter(
            item__queue=queue,
            annotator=annotator,
            status=AssignmentStatus.ASSIGNED,
            locked_until__gt=now,
        )
        .select_related("item__answer")
        .order_by("assigned_at")
        .first()
    )
    if current is not None:
        return current
    lock = timedelta(minutes=queue.lock_minutes)
    mine = QueueAssignment.objects.filter(
        item=OuterRef("pk"), annotator=annotator, status__in=["done", "skipped"]
    )
    for _ in range(attempts):
        with transaction.atomic():
            now = timezone.now()
            holders = QueueAssignment.objects.filter(_holders(now), item=OuterRef("pk"))
            held_by_others = (
                holders.exclude(annotator=annotator)
                .values("item")
                .annotate(n=Count("id"))
                .values("n")
            )
            candidates = (
                QueueItem.objects.filter(queue=queue)
                .exclude(Exists(mine))
                .annotate(held=Coalesce(Subquery(held_by_others), 0))
                .filter(held__lt=queue.overlap)
            )
            item = candidates.order_by("id").select_for_update(skip_locked=True).first()
            if item is None:
                if not candidates.exists():
                    return None
                # Every candidate is being handed to someone else this instant: wait for the
                # oldest rather than tell this annotator the queue is finished.
                item = candidates.order_by("id").select_for_update().first()
                if item is None:
                    continue
            # Counted again under the item's lock: the candidate query's snapshot may predate
            # an assignment another annotator committed just before we got the lock.
            others = (
                QueueAssignment.objects.filter(_holders(now), item=item)
                .exclude(annotator=annotator)
                .count()
            )
            if others >= queue.overlap:
                continue
            assignment, _ = QueueAssignment.objects.update_or_create(
                item=item,
                annotator=annotator,
                defaults={
                    "status": AssignmentStatus.ASSIGNED,
                    "locked_until": now + lock,
                    "assigned_at": now,
                    "finished_at": None,
                },
            )
            assignment.item = item
            return assignment
    return None


class AssignmentExpired(ServiceError):
    pass


def _finish(*, assignment: QueueAssignment, status: str) -> QueueAssignment:
    with transaction.atomic():
        # The item's lock first (the order queue_item_next_for takes them in), then the row.
        item = (
            QueueItem.objects.select_for_update().select_related("queue").get(pk=assignment.item_id)
        )
        locked = QueueAssignment.objects.select_for_update().get(pk=assignment.pk)
        if locked.status != AssignmentStatus.ASSIGNED:
            return locked
        now = timezone.now()
        if status == AssignmentStatus.DONE and locked.locked_until <= now:
            # The hold expired, so the place may have gone to someone else meanwhile.
            others = (
                QueueAssignment.objects.filter(_holders(now), item=item)
                .exclude(pk=locked.pk)
                .count()
            )
            if others >= item.queue.overlap:
                raise AssignmentExpired(
                    "Your hold on this item expired and other annotators have finished it; "
                    "your corrections are saved, but the item no longer counts for you."
                )
        locked.status = status
        locked.finished_at = now
        locked.save(update_fields=["status", "finished_at"])
    return locked


def queue_item_skip(*, assignment: QueueAssignment) -> QueueAssignment:
    """The annotator passes on the item: it leaves their queue and frees its place."""
    return _finish(assignment=assignment, status=AssignmentStatus.SKIPPED)


def queue_item_submit(*, assignment: QueueAssignment) -> QueueAssignment:
    """The annotator is done with the item (with or without corrections). After the hold
    expired it still counts if a place is free; if the item is full: AssignmentExpired."""
    return _finish(assignment=assignment, status=AssignmentStatus.DONE)
