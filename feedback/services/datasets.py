"""Dataset snapshots: requested here, written by a worker on the `exports` queue.

An export is a job (feedback.core.jobs): its row is the truth, a second delivery of the task
does nothing, a redelivery (or the sweeper) takes over only an export whose heartbeat is stale,
and only the current attempt's writes land, so a worker presumed dead can't overwrite a retry
or a failure.
"""

from __future__ import annotations

import tempfile
from collections.abc import Collection
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.files import File
from django.db import transaction
from django.urls import reverse

from config.celery_app import Queue
from feedback import datasets
from feedback.core.databases import heavy_reads
from feedback.core.errors import ValidationFailed
from feedback.core.jobs import (
    Attempt,
    JobCancelled,
    JobKind,
    JobSuperseded,
    job_enqueue,
    job_execute,
)
from feedback.datasets import files
from feedback.ingest import parse_timestamp
from feedback.models import Export, ExportFormat, Project, WebhookEventType
from feedback.services.webhooks import webhook_events_emit

EXPORT_TIME_LIMIT = timedelta(hours=2)

EXPORT_JOB = JobKind(
    name="export",
    model=Export,
    task="feedback.tasks.export_build",
    queue=Queue.EXPORTS,
    # A running export silent for this long lost its worker: queued again once, then failed.
    stale_after=lambda: timedelta(minutes=5),
    max_attempts=2,
    gave_up="The worker writing this export stopped (it was retried once).",
    select_related=("project",),
)


def export_filters(raw: object) -> tuple[datasets.Filters, dict[str, list[str]]]:
    """`{"model", "model_version", "since", "until", "include_simulated"}` → Filters, or the
    errors by field."""
    errors: dict[str, list[str]] = {}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return datasets.Filters(), {"filters": ["Must be an object."]}
    unknown = set(raw) - {"model", "model_version", "since", "until", "include_simulated"}
    if unknown:
        errors["filters"] = [f"Unknown filters: {', '.join(sorted(unknown))}."]
    values: dict[str, Any] = {}
    for name in ("model", "model_version"):
        value = raw.get(name)
        if value is not None and (not isinstance(value, str) or "\x00" in value):
            errors[f"filters.{name}"] = ["Must be a string."]
        values[name] = value or None
    for name in ("since", "until"):
        values[name] = None
        if raw.get(name) is not None:
            values[name], error = parse_timestamp(raw[name], now=None, allow_future=True)
            if error:
                errors[f"filters.{name}"] = [error]
    values["include_simulated"] = raw.get("include_simulated", False)
    if not isinstance(values["include_simulated"], bool):
        errors["filters.include_simulated"] = ["Must be true or false."]
    return datasets.Filters(**values), errors


def _one_of(value: object, names: Collection[str]) -> str:
    """`value` if it is one of `names`, else ""."""
    return value if isinstance(value, str) and value in names else ""


def export_request(
    *,
    project: Project,
    dataset: object,
    fmt: object,
    form: object,
    filters: object,
    requested_by: str,
) -> Export:
    """Validate and queue a snapshot; the worker starts once the row is committed. The values
    are checked here, types included, whoever calls: a page's form passes text, a blank filter
    left out, and `form=None` for the default."""
    errors: dict[str, list[str]] = {}
    clean_dataset = _one_of(dataset, datasets.DATASETS)
    if not clean_dataset:
        errors["dataset"] = [f"Must be one of: {', '.join(sorted(datasets.DATASETS))}."]
    clean_format = _one_of(fmt, ExportFormat.values)
    if not clean_format:
        errors["format"] = [f"Must be one of: {', '.join(ExportFormat.values)}."]
    clean_form = _one_of("conversational" if form is None else form, datasets.FORMS)
    if not clean_form:
        errors["form"] = [f"Must be one of: {', '.join(datasets.FORMS)}."]
    parsed, filter_errors = export_filters(filters)
    errors.update(filter_errors)
    if errors:
        raise ValidationFailed(errors, "The export request has invalid fields.")
    stored_filters = {
        k: (v.isoformat() if hasattr(v, "isoformat") else v)
        for k, v in vars(parsed).items()
        if v is not None and v is not False  # people's feedback only is the default
    }
    export = Export.objects.create(
        project=project,
        dataset=clean_dataset,
        format=clean_format,
        form=clean_form,
        filters=stored_filters,
        requested_by=requested_by,
    )
    job_enqueue(kind=EXPORT_JOB, job_id=export.pk)
    return export


def export_build(*, export_id: int) -> None:
    """Write the snapshot's file. Does nothing for an export that is done or being written
    (its heartbeat is fresh): a second delivery of the task is harmless."""
    job_execute(kind=EXPORT_JOB, job_id=export_id, work=_write_file)


def _write_file(attempt: Attempt[Export]) -> None:
    """Write and store the file; only this attempt's writes land (JobSuperseded otherwise)."""
    export = attempt.job
    filters, _ = export_filters(export.filters)
    # The snapshot's "now" is when it was requested, so p_love's label cut-off is fixed. Its
    # rows are read from the replica when there is one; the job's own row stays on the primary.
    rows = (
        datasets.DATASETS[export.dataset]
        .rows(export.project, filters, export.form, export.created_at)
        .using(heavy_reads())
    )
    total = rows.count()
    attempt.progress(total_rows=total, force=True)

    def progress(count: int) -> None:
        attempt.progress(min(1.0, count / total) if total else 0.0, rows=count)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{export.dataset}.{export.format}"
        with path.open("wb") as out:
            count = files.write(rows, export.format, out, progress)
        digest = files.sha256_of(path)
        name = f"{export.project.slug}-{export.dataset}-{export.pk}.{export.format}"
        with path.open("rb") as data:
            export.file.save(name, File(data), save=False)
    # Only now, with the whole file stored, does the export become downloadable.
    try:
        with transaction.atomic():
            attempt.finish(file=export.file.name, rows=count, total_rows=count, sha256=digest)
            webhook_events_emit(
                project=export.project_id,
                event_type=WebhookEventType.EXPORT_SUCCEEDED,
                payloads=[
                    {
                        "id": export.pk,
                        "dataset": export.dataset,
                        "format": export.format,
                        "rows": count,
                        "sha256": digest,
                        "download": reverse("api-export-download", args=[export.pk]),
                    }
                ],
            )
    except (JobSuperseded, JobCancelled):  # the attempt's result stands no more: no file kept
        export.file.delete(save=False)
        raise
