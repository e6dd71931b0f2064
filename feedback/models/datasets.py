"""Datasets: exports, immutable snapshots of a project's data written by a worker."""

from __future__ import annotations

from django.db import models

from feedback.core.constraints import choices_check
from feedback.core.jobs import Job, JobStatus, job_constraints
from feedback.models.tenancy import Project


class ExportFormat(models.TextChoices):
    JSONL = "jsonl", "JSON Lines"
    PARQUET = "parquet", "Parquet"
    CSV = "csv", "CSV"


def export_path(export: Export, filename: str) -> str:
    return f"exports/{export.project_id}/{filename}"


class Export(Job):
    """An immutable snapshot of a dataset, written by a worker. The file is attached only once
    it is complete, so nothing half-written is ever served."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exports")
    dataset = models.CharField(max_length=32)
    format = models.CharField(max_length=8, choices=ExportFormat.choices)
    form = models.CharField(max_length=16, default="conversational")
    filters = models.JSONField(default=dict)
    rows = models.PositiveBigIntegerField(default=0)
    total_rows = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    file = models.FileField(upload_to=export_path, blank=True)
    requested_by = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        constraints = [
            choices_check("format", ExportFormat, "export_format_valid"),
            *job_constraints("export", JobStatus.values),
        ]
        indexes = [models.Index(fields=["project", "-created_at"], name="export_newest")]

    def __str__(self) -> str:
        return f"{self.dataset}.{self.format} #{self.pk}"
