"""Reads of annotation: the pipeline connector, debug-mode interventions and re-runs, what end
users said about an answer (for the annotator correcting it), and the annotation queues with
their progress, agreement and an annotator's way through them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from feedback.agreement import krippendorff_alpha, pairwise_kappa
from feedback.core.jobs import ACTIVE_STATUSES
from feedback.models import (
    AnnotationQueue,
    Answer,
    Critique,
    FollowUp,
    Intervention,
    Outcome,
    PipelineConnector,
    Project,
    QueueAssignment,
    QueueItem,
    Reaction,
    Rerun,
    Source,
    Stage,
)


def connector_get(*, project: Project) -> PipelineConnector | None:
    """The pipeline the project registered, if any (else the demo pipeline answers)."""
    return PipelineConnector.objects.filter(project=project).first()


def interventions_by_annotator(*, answer: Answer, annotator: Any) -> list[Intervention]:
    """The annotator's corrections of the answer, oldest first (the order they apply in)."""
    return list(Intervention.objects.filter(answer=answer, annotator=annotator).order_by("id"))


def reruns_by_requester(*, answer: Answer, user: Any) -> list[Rerun]:
    """The re-runs `user` asked for on the answer's stages, oldest first, with their revisions."""
    return list(
        Rerun.objects.filter(answer=answer, requested_by=user)
        .select_related("revision")
        .order_by("created_at", "id")
    )


def rerun_get(*, project: Project, rerun_id: int) -> Rerun | None:
    return (
        Rerun.objects.select_related("stage", "answer", "revision")
        .filter(project=project, pk=rerun_id)
        .first()
    )


REACTION_STATES = {
    "any": "Any",
    "loved": "Loved",
    "positive": "Has a positive reaction",
    "negative": "Has a negative reaction",
    "none": "No reaction",
}


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """Which answers a queue is made of."""

    model: str = ""
    model_version: str = ""
    created_from: date | None = None
    created_to: date | None = None  # inclusive
    reaction_state: str = "any"  # one of REACTION_STATES
    has_trace: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_version": self.model_version,
            "created_from": self.created_from.isoformat() if self.created_from else None,
            "created_to": self.created_to.isoformat() if self.created_to else None,
            "reaction_state": self.reaction_state,
            "has_trace": self.has_trace,
        }


def answers_matching(*, project: Project, spec: QueueFilter) -> QuerySet[Answer]:
    """The project's answers that `spec` selects (dates are whole days in the current time
    zone)."""
    answers = Answer.objects.filter(project=project)
    if spec.model:
        answers = answers.filter(model=spec.model)
    if spec.model_version:
        answers = answers.filter(model_version=spec.model_version)
    tz = timezone.get_current_timezone()
    if spec.created_from:
        answers = answers.filter(
            created_at__gte=datetime.combine(spec.created_from, time.min, tzinfo=tz)
        )
    if spec.created_to:
        day_after = datetime.combine(spec.created_to + timedelta(days=1), time.min, tzinfo=tz)
        answers = answers.filter(created_at__lt=day_after)
    active = Reaction.objects.filter(answer=OuterRef("pk"), removed_at__isnull=True)
    if spec.reaction_state == "loved":
        answers = answers.filter(Exists(active.filter(kind="love")))
    elif spec.reaction_state == "positive":
        answers = answers.filter(Exists(active.filter(kind__in=project.positive_reactions)))
    elif spec.reaction_state == "negative":
        answers = answers.filter(Exists(active.filter(kind__in=project.negative_reactions)))
    elif spec.reaction_state == "none":
        answers = answers.exclude(Exists(active))
    if spec.has_trace:
        answers = answers.filter(Exists(Stage.objects.filter(answer=OuterRef("pk"))))
    return answers


def queues_with_progress(*, project: Project) -> list[AnnotationQueue]:
    """The project's queues, each with `total` items and `complete` ones (done by as many
    annotators as the queue's overlap asks), in one query whatever their number."""
    sql = f"""
        SELECT q.id,
               COUNT(i.id) AS total,
               COALESCE(SUM(CASE WHEN COALESCE(d.n, 0) >= q.overlap THEN 1 ELSE 0 END), 0)
        FROM {AnnotationQueue._meta.db_table} q
        LEFT JOIN {QueueItem._meta.db_table} i ON i.queue_id = q.id
        LEFT JOIN (
            SELECT item_id, COUNT(*) AS n FROM {QueueAssignment._meta.db_table}
            WHERE status = 'done' GROUP BY item_id
        ) d ON d.item_id = i.id
        WHERE q.project_id = %s
        GROUP BY q.id
    """  # noqa: S608 - table names come from our models, the value is a parameter
    with connection.cursor() as cursor:
        cursor.execute(sql, [project.pk])
        counts = {row[0]: (row[1], row[2]) for row in cursor.fetchall()}
    queues = list(AnnotationQueue.objects.filter(project=project).order_by("-created_at", "-id"))
    for queue in queues:
        queue.total, queue.complete = counts.get(queue.pk, (0, 0))  # type: ignore[attr-defined]
    return queues


def queue_progress(*, queue: AnnotationQueue) -> dict[str, Any]:
    """Items done and per-annotator counts (done, skipped, holding one now)."""
    now = timezone.now()
    [with_counts] = [q for q in queues_with_progress(project=queue.project) if q.pk == queue.pk]
    per_annotator = list(
        QueueAssignment.objects.filter(item__queue=queue)
        .values("annotator__username")
        .annotate(
            done=Count("id", filter=Q(status="done")),
            skipped=Count("id", filter=Q(status="skipped")),
            holding=Count("id", filter=Q(status="assigned", locked_until__gt=now)),
        )
        .order_by("annotator__username")
    )
    total = with_counts.total  # type: ignore[attr-defined]
    complete = with_counts.complete  # type: ignore[attr-defined]
    return {
        "total": total,
        "complete": complete,
        "fraction": complete / total if total else 0.0,
        "per_annotator": per_annotator,
    }


def queue_progress_for(*, queue: AnnotationQueue, annotator: Any) -> dict[str, int]:
    counts = QueueAssignment.objects.filter(item__queue=queue, annotator=annotator).aggregate(
        done=Count("id", filter=Q(status="done")),
        skipped=Count("id", filter=Q(status="skipped")),
    )
    return {"done": counts["done"], "skipped": counts["skipped"]}


def queue_get(*, project: Project, queue_id: int) -> AnnotationQueue | None:
    return AnnotationQueue.objects.filter(project=project, pk=queue_id).first()


def queue_item_count(*, queue: AnnotationQueue) -> int:
    return queue.items.count()


def queue_assignment_get(
    *, queue: AnnotationQueue, annotator: Any, assignment_id: int
) -> QueueAssignment | None:
    """The annotator's own assignment in this queue, with its answer."""
    return (
        QueueAssignment.objects.filter(pk=assignment_id, item__queue=queue, annotator=annotator)
        .select_related("item__answer")
        .first()
    )


def queue_assignment_of_answer(
    *, answer: Answer, annotator: Any, assignment_id: int
) -> QueueAssignment | None:
    """The annotator's own assignment of this very answer, in a queue of the answer's project,
    with its queue."""
    return (
        QueueAssignment.objects.filter(
            pk=assignment_id,
            annotator=annotator,
            item__answer=answer,
            item__queue__project_id=answer.project_id,
        )
        .select_related("item__queue")
        .first()
    )


RELEVANCE_ORDER = ("irrelevant", "partial", "relevant")


def queue_agreement(*, queue: AnnotationQueue) -> dict[str, Any]:
    """Agreement on document relevance among the annotators who finished the queue's items:
    each annotator's newest judgment per (answer, document) is one value of one unit."""
    finished = QueueAssignment.objects.filter(
        item__queue=queue,
        item__answer=OuterRef("answer"),
        annotator=OuterRef("annotator"),
        status="done",
    )
    judgments = (
        Intervention.objects.filter(project_id=queue.project_id, action="doc_relevance")
        .filter(Exists(finished))
        .order_by("id")
        .values_list("answer_id", "after", "annotator__username")
    )
    units: dict[tuple[int, str], dict[str, str]] = {}
    for answer_id, after, username in judgments.iterator(chunk_size=2000):
        units.setdefault((answer_id, str(after.get("doc_id"))), {})[username] = after["relevance"]
    return {
        "units": sum(1 for values in units.values() if len(values) >= 2),
        "alpha_nominal": krippendorff_alpha(units),
        "alpha_ordinal": krippendorff_alpha(units, metric="ordinal", order=RELEVANCE_ORDER),
        "pairs": pairwise_kappa(units),
    }


def stage_interventions(*, stage: Stage, annotator: Any) -> QuerySet[Intervention]:
    """One annotator's corrections of one stage, in the order they were made."""
    return Intervention.objects.filter(stage=stage, annotator=annotator).order_by("id")


def rerun_active(*, stage: Stage, user: Any) -> Rerun | None:
    """The user's re-run from this stage that is queued or running, if any."""
    return Rerun.objects.filter(stage=stage, requested_by=user, status__in=ACTIVE_STATUSES).first()


# --- what end users said, beside debug mode ---------------------------------------------------

# The newest critiques and follow-ups shown beside an answer; the counts cover all of them.
END_USER_LIST_LIMIT = 50


@dataclass(frozen=True, slots=True)
class EndUserFeedback:
    """End users' feedback on one answer; simulated feedback (from judges) is left out."""

    reactions: list[tuple[str, int]]  # (kind, active reactions), in the project's order
    critiques: list[Critique]  # newest first, at most END_USER_LIST_LIMIT
    critique_count: int
    followups: list[FollowUp]  # newest first, at most END_USER_LIST_LIMIT
    followup_outcomes: list[tuple[str, int]]  # (outcome label, follow-ups)

    @property
    def empty(self) -> bool:
        return not (self.reactions or self.critique_count or self.followup_outcomes)


def answer_end_user_feedback(*, answer: Answer) -> EndUserFeedback:
    """Reaction counts per kind, critiques with their quotes and follow-ups with their outcome
    and text: four queries however many there are."""
    real = ~Q(source=Source.SIMULATED)
    by_kind = dict(
        Reaction.objects.filter(real, answer=answer, removed_at__isnull=True)
        .values_list("kind")
        .annotate(n=Count("id"))
        .values_list("kind", "n")
    )
    order = {kind: i for i, kind in enumerate(answer.project.reaction_set)}
    reactions = sorted(by_kind.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
    critiques = list(
        Critique.objects.filter(real, answer=answer)
        .only("text", "quote", "category", "created_at")
        .order_by("-created_at", "-id")[:END_USER_LIST_LIMIT]
    )
    critique_count = (
        len(critiques)
        if len(critiques) < END_USER_LIST_LIMIT
        else Critique.objects.filter(real, answer=answer).count()
    )
    followups = list(
        FollowUp.objects.filter(real, answer=answer)
        .only("outcome", "text", "created_at")
        .order_by("-created_at", "-id")[:END_USER_LIST_LIMIT]
    )
    outcomes = dict(
        FollowUp.objects.filter(real, answer=answer)
        .values_list("outcome")
        .annotate(n=Count("id"))
        .values_list("outcome", "n")
    )
    return EndUserFeedback(
        reactions=reactions,
        critiques=critiques,
        critique_count=critique_count,
        followups=followups,
        followup_outcomes=[
            (label, outcomes[value]) for value, label in Outcome.choices if value in outcomes
        ],
    )


# --- an annotator's way through a queue -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueuePosition:
    """Where an item stands in its annotator's way through the queue: the annotator's items in
    the order they were handed out (the ones they finished, skipped, or hold)."""

    number: int  # 1 for the annotator's first item
    total: int  # items in the queue
    previous: QueueAssignment | None  # the annotator's item before this one, with its answer
    next: QueueAssignment | None  # ...and after it


def _mine(assignment: QueueAssignment) -> QuerySet[QueueAssignment]:
    return QueueAssignment.objects.filter(
        item__queue_id=assignment.item.queue_id, annotator_id=assignment.annotator_id
    )


def _before(assignment: QueueAssignment) -> Q:
    return Q(assigned_at__lt=assignment.assigned_at) | Q(
        assigned_at=assignment.assigned_at, id__lt=assignment.pk
    )


def _after(assignment: QueueAssignment) -> Q:
    return Q(assigned_at__gt=assignment.assigned_at) | Q(
        assigned_at=assignment.assigned_at, id__gt=assignment.pk
    )


def queue_assignment_after(*, assignment: QueueAssignment) -> QueueAssignment | None:
    """The same annotator's next item in the same queue, in the order they had them."""
    return (
        _mine(assignment)
        .filter(_after(assignment))
        .select_related("item__answer")
        .order_by("assigned_at", "id")
        .first()
    )


def queue_assignment_last(*, queue: AnnotationQueue, annotator: Any) -> QueueAssignment | None:
    """The annotator's most recent item in the queue (whatever became of it), with its answer."""
    return (
        QueueAssignment.objects.filter(item__queue=queue, annotator=annotator)
        .select_related("item__answer")
        .order_by("-assigned_at", "-id")
        .first()
    )


def queue_position(*, assignment: QueueAssignment) -> QueuePosition:
    """ "Item N of M" with the annotator's previous and next items: four queries."""
    mine = (
        _mine(assignment)
        .select_related("item__answer")
        .only("id", "item__id", "item__answer__id", "item__answer__external_id")
    )
    return QueuePosition(
        number=_mine(assignment).filter(_before(assignment)).count() + 1,
        total=QueueItem.objects.filter(queue_id=assignment.item.queue_id).count(),
        previous=mine.filter(_before(assignment)).order_by("-assigned_at", "-id").first(),
        next=mine.filter(_after(assignment)).order_by("assigned_at", "id").first(),
    )
