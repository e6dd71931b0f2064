"""Webhooks: the endpoints a project's owners register, and the deliveries of events to them.

A delivery is a job (feedback.core.jobs): its row is the truth, a worker sends it, and a send
that fails puts it back in the queue with the time of its next try."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from feedback.core.constraints import choices_check
from feedback.core.fields import EncryptedTextField
from feedback.core.jobs import Job, JobStatus, job_constraints
from feedback.models.tenancy import Project


class WebhookEventType(models.TextChoices):
    FEEDBACK_CREATED = "feedback.created", "Feedback recorded (browser, widget or API)"
    ANSWER_CREATED = "answer.created", "Answer ingested"
    EXPORT_SUCCEEDED = "export.succeeded", "Export ready"
    TRAINING_RUN_FINISHED = "training_run.finished", "Training run finished"
    C3PO_BUILD_FINISHED = "c3po_build.finished", "C3PO build finished"


class WebhookEndpoint(models.Model):
    """A URL that hears about the events it subscribes to, signed with its own secret."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list)  # WebhookEventType values
    description = models.CharField(max_length=200, blank=True, default="")
    # The signing secret (`whsec_…`), shown once when the endpoint is made; stored encrypted.
    secret = EncryptedTextField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=255, blank=True, default="")
    # Deliveries given up on (every retry failed) since the last one that arrived.
    failed_in_row = models.PositiveIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    # Set when the endpoint failed too often; nothing is sent to it until an owner enables it.
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["project", "disabled_at"], name="webhook_endpoint_live")]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(Job):
    """One event for one endpoint. `message_id` is the `webhook-id` header, the same on every
    try, so a receiver can tell a retry from a new event. `attempts` counts the sends;
    `next_attempt_at` is when a queued delivery is due."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_type = models.CharField(max_length=32, choices=WebhookEventType.choices)
    message_id = models.CharField(max_length=64)
    payload = models.JSONField()
    next_attempt_at = models.DateTimeField()
    # The status code of the last reply (None: no reply, or not tried yet). Bodies are never kept.
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            choices_check("event_type", WebhookEventType, "webhook_delivery_event_type_valid"),
            models.UniqueConstraint(
                fields=["endpoint", "message_id"], name="webhook_delivery_message_unique"
            ),
            *job_constraints("webhook_delivery", JobStatus.values),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="queued"),
                name="webhook_delivery_due",
            ),
            models.Index(fields=["endpoint", "-id"], name="webhook_delivery_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id} → {self.endpoint_id}"
