"""Annotation: debug-mode corrections, queues of items for annotators, the project's pipeline
connector and re-runs of an answer's stages."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from config.celery_app import Queue
from feedback import selectors
from feedback.core import outbound
from feedback.core.errors import ServiceError, ValidationFailed
from feedback.core.jobs import Attempt, JobFailed, JobKind, job_enqueue, job_execute
from feedback.debug_mode import Correction, corrected_output
from feedback.interventions import StageView, validate_change
from feedback.models import (
    AnnotationQueue,
    Answer,
    AssignmentStatus,
    Intervention,
    PipelineConnector,
    Project,
    QueueAssignment,
    QueueItem,
    Rerun,
    Stage,
)
from feedback.pipelines.http import MAX_TIMEOUT_SECONDS, worst_case_seconds
from feedback.pipelines.protocol import PipelineError, checked_reply
from feedback.pipelines.resolve import pipeline_for, rerun_unavailable_reason

# The filter a queue is made from is a read; queue_create takes it as its input.
from feedback.selectors import REACTION_STATES, QueueFilter, answers_matching
from feedback.services.traces import answers_ingest

# --- debug-mode corrections ------------------------------------------------------------------
# Saving debug-mode corrections: every change validated, then all written in one statement.


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


# --- queues ----------------------------------------------------------------------------------
# Annotation queues: creating one from a filter, handing out items, skipping and submitting.
#
# Handing out work is the concurrent part. An item may be held by at most `overlap` annotators
# (done, or assigned with a lock that has not expired) and never twice by one annotator. The
# unique constraint on (item, annotator) enforces the second rule; the first is kept by locking
# the item row (`select_for_update(skip_locked=True)`: annotators pulling at the same moment get
# different items instead of waiting) and counting its holders again *after* the lock is held, in
# a statement that sees every assignment committed before it.


QUEUE_INVALID = "The queue could not be created."
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
        raise ValidationFailed(errors, QUEUE_INVALID)
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
            {"name": ["The project already has a queue with this name."]}, QUEUE_INVALID
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


def queue_item_following(*, assignment: QueueAssignment) -> QueueAssignment | None:
    """Where "next" leads from one of the annotator's items: the item they had after it (when
    they went back to an earlier one), else the item they hold or a new one, else None."""
    later = selectors.queue_assignment_after(assignment=assignment)
    if later is not None:
        return later
    return queue_item_next_for(queue=assignment.item.queue, annotator=assignment.annotator)


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


# --- asking the pipeline and re-runs ---------------------------------------------------------
# Online adaptation: asking the project's pipeline, and re-running an answer's later stages
# from an annotator's corrected stage. The re-run itself runs in a Celery task (`rerun_execute`);
# its row is the truth about its progress.


# The re-run task's limits allow every connector attempt at the longest timeout a project may
# set; a re-run running longer than the hard limit (plus a margin) has lost its worker.
RERUN_SOFT_TIME_LIMIT = int(worst_case_seconds(MAX_TIMEOUT_SECONDS)) + 30
RERUN_TIME_LIMIT = RERUN_SOFT_TIME_LIMIT + 30
RERUN_STALE = timedelta(seconds=RERUN_TIME_LIMIT + 60)
RERUNNABLE_KINDS = ("decomposition", "retrieval", "rerank")

RERUN_JOB = JobKind(
    name="rerun",
    model=Rerun,
    task="feedback.tasks.rerun_execute",
    queue=Queue.DEFAULT,
    stale_after=lambda: RERUN_STALE,
    # A re-run asks the project's pipeline: it is never asked twice behind the annotator's back.
    max_attempts=1,
    gave_up="The re-run did not finish (its worker stopped); start it again.",
    queued_lost_after=lambda: 2 * RERUN_STALE,
    time_limit_error="The re-run took longer than the worker allows; try again.",
    on_claim={"progress": 0.1, "message": "Asking the pipeline…"},
    select_related=("answer__project", "stage"),
)


class RerunUnavailable(ServiceError):
    pass


def question_of(answer: Answer) -> str:
    """The last user turn of the prompt: what the pipeline is asked."""
    for message in reversed(answer.prompt):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def answer_ask(*, project: Project, question: str, user_ref: str) -> Answer:
    """Ask the project's pipeline and store its answer with the full trace. Raises
    PipelineError (nothing stored) when the pipeline fails or replies with an invalid answer."""
    question = question.strip()
    if not question:
        raise PipelineError("Type a question first.")
    reply = pipeline_for(project).ask(question)
    payload, _ = checked_reply(reply, external_id=f"ask-{uuid.uuid4().hex}", now=timezone.now())
    payload["user_ref"] = user_ref
    [result] = answers_ingest(project=project, items=[payload])
    if result.id is None:
        raise PipelineError(f"The answer could not be stored: {result.errors}")
    return selectors.answer_get(answer_id=result.id)


def corrections_of(*, stage: Stage, annotator: User) -> list[Correction]:
    return [
        Correction(i.action, i.before, i.after, i.created_at)
        for i in selectors.stage_interventions(stage=stage, annotator=annotator)
    ]


def rerun_request(*, answer: Answer, stage: Stage, user: User) -> Rerun:
    """Queue a re-run from `stage` with the user's corrections of it. A second request while
    one is queued or running returns that one."""
    reason = rerun_unavailable_reason(answer, pipeline_for(answer.project))
    if reason:
        raise RerunUnavailable(reason)
    if stage.kind not in RERUNNABLE_KINDS:
        raise RerunUnavailable("Only a decomposition or retrieval stage can be re-run from.")
    corrections = corrections_of(stage=stage, annotator=user)
    if not corrections:
        raise RerunUnavailable("Save a correction of this stage first; then re-run from it.")
    output = corrected_output(stage.kind, stage.output, corrections)
    for _ in range(3):
        try:
            with transaction.atomic():
                rerun = Rerun.objects.create(
                    project_id=answer.project_id,
                    answer=answer,
                    stage=stage,
                    requested_by=user,
                    corrected_output=output,
                    message="Waiting for a worker…",
                )
                job_enqueue(kind=RERUN_JOB, job_id=rerun.pk)
            return rerun
        except IntegrityError:  # one is already queued or running for this stage and user
            active = selectors.rerun_active(stage=stage, user=user)
            if active is not None:
                return active
            # ...and it finished between our insert and that read: ask for a new one again.
    raise RerunUnavailable("Another re-run of this stage was starting; try again.")


def rerun_execute(*, rerun_id: int) -> None:
    """Run a queued re-run: only a `queued` row is claimed, so a second delivery does nothing."""
    job_execute(kind=RERUN_JOB, job_id=rerun_id, work=_rerun)


def _rerun(attempt: Attempt[Rerun]) -> None:
    rerun = attempt.job
    answer = rerun.answer
    trace = [
        {
            "kind": s.kind,
            "position": s.position,
            **({"parent": s.parent_position} if s.parent_position is not None else {}),
            **({"name": s.name} if s.name else {}),
            "input": s.input,
            "output": rerun.corrected_output if s.pk == rerun.stage_id else s.output,
        }
        for s in selectors.answer_stages(answer=answer)
    ]
    try:
        reply = pipeline_for(answer.project).rerun(
            question_of(answer), trace, from_position=rerun.stage.position
        )
        attempt.progress(0.7, "Storing the revised answer…")
        payload, _ = checked_reply(
            reply, external_id=f"{answer.external_id}~rerun-{rerun.pk}", now=timezone.now()
        )
        payload["user_ref"] = answer.user_ref
        payload["conversation"] = answer.conversation
        payload["metadata"] = {
            **(payload.get("metadata") or {}),
            "rerun": {"of": answer.external_id, "from_position": rerun.stage.position},
        }
        # One transaction: when the sweeper gave up on this run meanwhile, the finish raises
        # and the revised answer is not kept either.
        with transaction.atomic():
            [result] = answers_ingest(project=answer.project, items=[payload])
            if result.id is None:
                raise PipelineError("The revised answer could not be stored.")
            Answer.objects.filter(pk=result.id).update(revision_of=answer)
            attempt.finish(revision_id=result.id)
    except PipelineError as error:
        raise JobFailed(str(error)) from error


# --- the project's pipeline connector ---------------------------------------------------------


def connector_save(
    *, project: Project, url: str, secret: str | None, timeout_seconds: int
) -> PipelineConnector:
    """Register or change the project's pipeline. `secret=None` keeps the stored secret.
    A URL the platform may not call (credentials in it, or an internal address) is refused
    here, and checked again on every call."""
    problem = outbound.destination_problem(url)
    if problem:
        raise ValidationFailed.of("url", problem)
    defaults: dict[str, Any] = {"url": url, "timeout_seconds": timeout_seconds}
    if secret is not None:
        defaults["secret"] = secret
    connector, _ = PipelineConnector.objects.update_or_create(project=project, defaults=defaults)
    return connector


def connector_remove(*, project: Project) -> None:
    PipelineConnector.objects.filter(project=project).delete()
