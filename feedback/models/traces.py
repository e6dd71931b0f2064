"""Traces: the answers a project's system produced, the pipeline stages behind each, and the
OpenTelemetry spans they are built from when they arrive over OTLP.

One answer per external_id and project, and one span per span id and trace, held by the
database.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from feedback.core.constraints import choices_check
from feedback.models.tenancy import Project


class Answer(models.Model):
    """One generated response, as the client's system produced it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="answers")
    external_id = models.CharField(max_length=255)
    conversation = models.CharField(max_length=255, blank=True, default="")
    user_ref = models.CharField(max_length=255, blank=True, default="")
    prompt = models.JSONField()  # [{"role", "content"}] up to this turn
    # SHA-256 of the prompt's canonical JSON: finds answers to the same prompt with an index.
    prompt_hash = models.CharField(max_length=64, db_index=False)
    response = models.TextField()
    model = models.CharField(max_length=200)
    model_version = models.CharField(max_length=200, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    # The answer this one was re-run from after a debug-mode correction (online adaptation).
    revision_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="revisions"
    )
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"], name="answer_external_id_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["project", "-created_at", "-id"], name="answer_newest"),
            models.Index(fields=["project", "model", "model_version"], name="answer_model"),
            models.Index(fields=["project", "prompt_hash"], name="answer_same_prompt"),
        ]

    def __str__(self) -> str:
        return self.external_id


class StageKind(models.TextChoices):
    DECOMPOSITION = "decomposition"
    RETRIEVAL = "retrieval"
    RERANK = "rerank"
    GENERATION = "generation"
    TOOL = "tool"
    OTHER = "other"


class Stage(models.Model):
    """One step of the pipeline trace that produced an answer."""

    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="stages")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=StageKind.choices)
    name = models.CharField(max_length=200, blank=True, default="")
    parent_position = models.PositiveIntegerField(null=True, blank=True)
    input = models.JSONField(default=dict)
    output = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["answer", "position"], name="stage_position_unique"),
            choices_check("kind", StageKind, "stage_kind_valid"),
            models.CheckConstraint(
                condition=Q(parent_position__isnull=True)
                | Q(parent_position__lt=models.F("position")),
                name="stage_parent_before_child",
            ),
        ]
        ordering = ["answer", "position"]

    def __str__(self) -> str:
        return f"{self.answer_id}#{self.position} {self.kind}"


class TraceSpan(models.Model):
    """A span received over OTLP (`feedback.otel` maps it). The spans of one trace arrive in
    several requests in any order; each is kept here until the trace's answer takes it in, and
    its row stays afterwards as the record that it was received: a span sent again conflicts
    with it and changes nothing. A trace's rows are deleted together once the newest is older
    than OTEL_SPAN_RETENTION_DAYS (`otel_spans_expire`)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    trace_id = models.CharField(max_length=32)  # 32 lowercase hex characters
    span_id = models.CharField(max_length=16)
    parent_span_id = models.CharField(max_length=16, blank=True, default="")  # "": a root
    # What the answer takes from the span (`feedback.otel.Span`); null once the answer exists.
    data = models.JSONField(null=True)
    # The answer the trace made: set on its root span.
    answer = models.ForeignKey(Answer, null=True, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField(null=True)  # the span's stage in the answer
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "trace_id", "span_id"], name="trace_span_unique"
            ),
        ]
        # The expiry finds old traces by it (`otel_spans_expire`).
        indexes = [models.Index(fields=["received_at"], name="trace_span_received")]

    def __str__(self) -> str:
        return f"{self.trace_id}/{self.span_id}"
