"""Annotation: debug-mode corrections of an answer's stages, the queues annotators work
through, the project's pipeline connector, and re-runs of the stages after a correction.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from feedback.core.constraints import choices_check
from feedback.core.fields import EncryptedTextField
from feedback.core.jobs import ACTIVE_STATUSES, Job, JobStatus, job_constraints
from feedback.models.tenancy import Project
from feedback.models.traces import Answer, Stage


class InterventionAction(models.TextChoices):
    SUBQUERY_ADD = "subquery_add"
    SUBQUERY_REMOVE = "subquery_remove"
    SUBQUERY_EDIT = "subquery_edit"
    SUBQUERY_REORDER = "subquery_reorder"
    DOC_RELEVANCE = "doc_relevance"
    DOC_RERANK = "doc_rerank"
    DOC_ADD = "doc_add"
    ANSWER_EDIT = "answer_edit"
    CLAIM_FLAG = "claim_flag"


class Intervention(models.Model):
    """One debug-mode correction of one stage of an answer's pipeline, by an annotator.
    `before` and `after` are validated per action (feedback.interventions)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="interventions")
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="interventions")
    stage = models.ForeignKey(
        Stage, null=True, blank=True, on_delete=models.CASCADE, related_name="interventions"
    )
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=24, choices=InterventionAction.choices)
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    rationale = models.TextField(blank=True, default="")
    event_id = models.CharField(max_length=255)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            choices_check("action", InterventionAction, "intervention_action_valid"),
            models.UniqueConstraint(
                fields=["project", "event_id"], name="intervention_event_id_unique"
            ),
        ]
        indexes = [models.Index(fields=["project", "action", "id"], name="intervention_action")]

    def __str__(self) -> str:
        return f"{self.action} on {self.answer_id}"


class PipelineConnector(models.Model):
    """A project's own pipeline, reached over HTTP (protocol: feedback/pipelines/protocol.py).
    A project without one is answered by the built-in demo pipeline."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="connector")
    url = models.URLField(max_length=500)
    # Sent as a Bearer token to the pipeline; written by owners, never rendered back, stored
    # encrypted. At most 500 characters (ConnectorForm).
    secret = EncryptedTextField(blank=True, default="")
    timeout_seconds = models.PositiveSmallIntegerField(default=10)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    timeout_seconds__gte=1, timeout_seconds__lte=120
                ),  # http.MAX_TIMEOUT_SECONDS
                name="connector_timeout_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} → {self.url}"


class AnnotationQueue(models.Model):
    """Answers that annotators work through in debug mode, each seen by `overlap` annotators.
    `filters` records how the items were chosen when the queue was created."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="queues")
    name = models.CharField(max_length=200)
    guidelines = models.TextField(blank=True, default="")
    overlap = models.PositiveSmallIntegerField(default=1)
    lock_minutes = models.PositiveSmallIntegerField(default=30)
    filters = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="queue_name_unique"),
            models.CheckConstraint(
                condition=Q(overlap__gte=1, overlap__lte=10), name="queue_overlap_range"
            ),
            models.CheckConstraint(
                condition=Q(lock_minutes__gte=1, lock_minutes__lte=24 * 60),
                name="queue_lock_minutes_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class QueueItem(models.Model):
    queue = models.ForeignKey(AnnotationQueue, on_delete=models.CASCADE, related_name="items")
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="queue_items")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["queue", "answer"], name="queue_item_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.queue_id}:{self.answer_id}"


class AssignmentStatus(models.TextChoices):
    ASSIGNED = "assigned"
    DONE = "done"
    SKIPPED = "skipped"


class QueueAssignment(models.Model):
    """One annotator's turn at one item. An `assigned` row holds a place in the item's overlap
    until `locked_until`; after that the place is free again."""

    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=AssignmentStatus.choices, default=AssignmentStatus.ASSIGNED
    )
    locked_until = models.DateTimeField()
    assigned_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Never the same item twice to one annotator.
            models.UniqueConstraint(fields=["item", "annotator"], name="assignment_once_each"),
            choices_check("status", AssignmentStatus, "assignment_status_valid"),
        ]
        indexes = [models.Index(fields=["item", "status"], name="assignment_item_status")]

    def __str__(self) -> str:
        return f"{self.item_id} → {self.annotator_id} ({self.status})"


class Rerun(Job):
    """Re-running the stages after a corrected one. The stage-level pair is the original
    `stage` (before) and `corrected_output` (after); `revision` is the new answer."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reruns")
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="reruns")
    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="reruns")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    corrected_output = models.JSONField()
    revision = models.OneToOneField(
        Answer, null=True, blank=True, on_delete=models.SET_NULL, related_name="rerun_source"
    )

    class Meta:
        constraints = [
            *job_constraints("rerun", JobStatus.values),
            # A double click starts one re-run, not two.
            models.UniqueConstraint(
                fields=["stage", "requested_by"],
                condition=Q(status__in=ACTIVE_STATUSES),
                name="rerun_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"rerun of {self.answer_id} from {self.stage_id} ({self.status})"
