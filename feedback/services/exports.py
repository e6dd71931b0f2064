"""Dataset snapshots: requested here, written by a worker on the `exports` queue.

The Export row is the truth; the broker only carries its id. Building guards on the status, so a
second delivery does nothing, and a redelivery (or the sweeper) takes over only an export whose
heartbeat is stale. Each claim is an attempt; an attempt's final write only lands while it is
still the current one, so a worker presumed dead can't overwrite a retry or a failure.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.core.files import File
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from feedback import datasets
from feedback.datasets import files
from feedback.ingest import parse_timestamp
from feedback.models import Export, ExportFormat, ExportStatus, Project
from feedback.services.errors import ServiceError

logger = logging.getLogger(__name__)

EXPORT_TIME_LIMIT = timedelta(hours=2)
PROGRESS_EVERY_ROWS = 10_000
HEARTBEAT_EVERY = timedelta(seconds=30)
# A running export whose heartbeat is older than this lost its worker.
HEARTBEAT_STALE = timedelta(minutes=5)
MAX_ATTEMPTS = 2


def export_filters(raw: Any) -> tuple[datasets.Filters, dict[str, list[str]]]:
    """`{"model", "model_version", "since", "until"}` → Filters, or the errors by field."""
    errors: dict[str, list[str]] = {}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return datasets.Filters(), {"filters": ["Must be an object."]}
    unknown = set(raw) - {"model", "model_version", "since", "until"}
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
    return datasets.Filters(**values), errors


def export_request(
    *, project: Project, dataset: Any, fmt: Any, form: Any, filters: Any, requested_by: str
) -> Export:
    """Validate and queue a snapshot; the worker starts once the row is committed."""
    errors: dict[str, list[str]] = {}
    if not isinstance(dataset, str) or dataset not in datasets.DATASETS:
        errors["dataset"] = [f"Must be one of: {', '.join(sorted(datasets.DATASETS))}."]
    if not isinstance(fmt, str) or fmt not in ExportFormat.values:
        errors["format"] = [f"Must be one of: {', '.join(ExportFormat.values)}."]
    form = "conversational" if form is None else form
    if not isinstance(form, str) or form not in datasets.FORMS:
        errors["form"] = [f"Must be one of: {', '.join(datasets.FORMS)}."]
    parsed, filter_errors = export_filters(filters)
    errors.update(filter_errors)
    if errors:
        raise ExportInvalid(errors)
    stored_filters = {
        k: (v.isoformat() if hasattr(v, "isoformat") else v)
        for k, v in vars(parsed).items()
        if v is not None
    }
    export = Export.objects.create(
        project=project,
        dataset=dataset,
        format=fmt,
        form=form,
        filters=stored_filters,
        requested_by=requested_by,
    )
    from feedback.tasks import export_build  # tasks call services; services only enqueue

    transaction.on_commit(lambda: export_build.delay(export.pk))
    return export


class ExportInvalid(ServiceError):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("The export request has invalid fields.")
        self.errors = errors


def export_build(*, export_id: int) -> None:
    """Write the snapshot's file. Does nothing for an export that is done or being written
    (its heartbeat is fresh): a second delivery of the task is harmless."""
    now = timezone.now()
    claimed = (
        Export.objects.filter(pk=export_id)
        .filter(
            Q(status=ExportStatus.QUEUED)
            | Q(status=ExportStatus.RUNNING, heartbeat_at__lt=now - HEARTBEAT_STALE)
        )
        .update(
            status=ExportStatus.RUNNING,
            started_at=now,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
            error="",
        )
    )
    if not claimed:
        return
    export = Export.objects.select_related("project").get(pk=export_id)
    mine = Export.objects.filter(
        pk=export_id, status=ExportStatus.RUNNING, attempts=export.attempts
    )
    try:
        _write_file(export, mine)
    except Exception as error:  # recorded on the row; the task itself must not retry
        logger.exception("export %s failed", export_id)
        mine.update(
            status=ExportStatus.FAILED,
            error=f"{type(error).__name__}: {error}"[:2000],
            finished_at=timezone.now(),
        )


def _write_file(export: Export, mine: QuerySet[Export]) -> None:
    """Write and store the file; `mine` selects the row only while this attempt is current."""
    filters, _ = export_filters(export.filters)
    # The snapshot's "now" is when it was requested, so p_love's label cut-off is fixed.
    rows = datasets.DATASETS[export.dataset].rows(
        export.project, filters, export.form, export.created_at
    )
    total = rows.count()
    mine.update(total_rows=total, heartbeat_at=timezone.now())
    reported, beat = 0, timezone.now()

    def progress(count: int) -> None:
        nonlocal reported, beat
        now = timezone.now()
        if count - reported >= PROGRESS_EVERY_ROWS or now - beat >= HEARTBEAT_EVERY:
            reported, beat = count, now
            mine.update(
                rows=count, progress=min(1.0, count / total) if total else 0.0, heartbeat_at=now
            )

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{export.dataset}.{export.format}"
        with path.open("wb") as out:
            count = files.write(rows, export.format, out, progress)
        digest = files.sha256_of(path)
        name = f"{export.project.slug}-{export.dataset}-{export.pk}.{export.format}"
        with path.open("rb") as data:
            export.file.save(name, File(data), save=False)
    # Only now, with the whole file stored, does the export become downloadable.
    landed = mine.update(
        status=ExportStatus.SUCCEEDED,
        file=export.file.name,
        rows=count,
        total_rows=count,
        progress=1.0,
        sha256=digest,
        finished_at=timezone.now(),
    )
    if not landed:  # another attempt took over meanwhile: its result stands, not ours
        export.file.delete(save=False)


def exports_sweep(*, now: datetime | None = None) -> tuple[int, int]:
    """Find exports whose worker died (running, heartbeat stale): queue them again once, then
    mark them failed. Returns (requeued, failed). Beat runs this every few minutes."""
    now = now or timezone.now()
    stale = Export.objects.filter(
        status=ExportStatus.RUNNING, heartbeat_at__lt=now - HEARTBEAT_STALE
    )
    failed = stale.filter(attempts__gte=MAX_ATTEMPTS).update(
        status=ExportStatus.FAILED,
        error="The worker writing this export stopped (it was retried once).",
        finished_at=now,
    )
    requeued = list(stale.filter(attempts__lt=MAX_ATTEMPTS).values_list("pk", flat=True))
    from feedback.tasks import export_build

    for export_id in requeued:
        # The task claims it again, since its heartbeat is stale.
        export_build.delay(export_id)
    return len(requeued), failed
