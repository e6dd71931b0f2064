"""Reward models and their training runs.

A run is the unit of work and the truth about it: the Celery task only carries its id. A run
that succeeds becomes a *version* of its model (numbered per model, at most one per run), and
one version is the model's active one, used for scoring.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from feedback.models import Project


class Objective(models.TextChoices):
    P_LOVE = "p_love", "P[Love]"
    PREFERENCE = "preference", "Preference (Bradley-Terry)"


class RewardModel(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reward_models")
    name = models.CharField(max_length=200)
    objective = models.CharField(max_length=16, choices=Objective.choices)
    config = models.JSONField(default=dict, blank=True)
    active_run = models.ForeignKey(
        "TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="reward_model_name_unique"),
            models.CheckConstraint(
                condition=Q(objective__in=Objective.values), name="reward_model_objective_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


def _artifact_path(run: TrainingRun, filename: str) -> str:
    return f"reward-models/{run.project_id}/{run.reward_model_id}/{filename}"


class TrainingRun(models.Model):
    reward_model = models.ForeignKey(RewardModel, on_delete=models.CASCADE, related_name="runs")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_runs")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=500, blank=True, default="")
    error = models.TextField(blank=True, default="")
    # The model's config when the run was requested: a version records what it was trained with.
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    artifact = models.FileField(upload_to=_artifact_path, blank=True)
    version = models.PositiveIntegerField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="training_run_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(progress__gte=0.0, progress__lte=1.0),
                name="training_run_progress_range",
            ),
            # A version belongs to exactly one succeeded run.
            models.UniqueConstraint(
                fields=["reward_model", "version"],
                condition=Q(version__isnull=False),
                name="training_run_version_unique",
            ),
            models.CheckConstraint(
                condition=Q(version__isnull=True) | Q(status=RunStatus.SUCCEEDED),
                name="training_run_version_only_when_succeeded",
            ),
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="training_run_stale")]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.reward_model_id} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status not in ACTIVE_RUN_STATUSES
