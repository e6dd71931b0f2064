"""Ingestion of answers with their traces: validated in one pass, written set-based."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from django.db import connection, transaction
from django.utils import timezone

from feedback.core.bulk import insert_ignoring_conflicts
from feedback.ingest import ValidAnswer, validate_answer
from feedback.models import Project

# --- answers ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IngestResult:
    index: int
    status: Literal["created", "duplicate", "error"]
    external_id: str | None = None
    id: int | None = None
    errors: dict[str, list[str]] | None = None


def answers_ingest(*, project: Project, items: Sequence[Any]) -> list[IngestResult]:
    """Validate every item, then write all valid ones together in one transaction.

    Idempotent on (project, external_id): a replay, a repeat within the batch, or a concurrent
    request that committed the same external_id first reports `duplicate` and writes nothing.
    The database's unique constraint decides (INSERT … ON CONFLICT DO NOTHING), not a prior read.
    """
    now = timezone.now()
    results: list[IngestResult | None] = [None] * len(items)
    valid: list[tuple[int, ValidAnswer]] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        checked = validate_answer(item, now=now)
        if isinstance(checked, dict):
            external_id = item.get("external_id") if isinstance(item, dict) else None
            results[index] = IngestResult(
                index,
                "error",
                external_id=external_id if isinstance(external_id, str) else None,
                errors=checked,
            )
        elif checked.external_id in seen:
            results[index] = IngestResult(index, "duplicate", external_id=checked.external_id)
        else:
            seen.add(checked.external_id)
            valid.append((index, checked))

    if valid:
        with transaction.atomic():
            created_ids = _insert_answers(project=project, answers=[a for _, a in valid], now=now)
            _insert_stages(
                [(created_ids[a.external_id], a) for _, a in valid if a.external_id in created_ids]
            )
        for index, answer in valid:
            answer_id = created_ids.get(answer.external_id)
            status: Literal["created", "duplicate"] = "created" if answer_id else "duplicate"
            results[index] = IngestResult(
                index, status, external_id=answer.external_id, id=answer_id
            )
    return [r for r in results if r is not None]


_ANSWER_COLUMNS = (
    "project_id, external_id, conversation, user_ref, prompt, prompt_hash, response, model, "
    "model_version, metadata, created_at"
)


def _insert_answers(
    *, project: Project, answers: list[ValidAnswer], now: datetime
) -> dict[str, int]:
    """Insert the answers that don't exist yet; returns {external_id: id} of those inserted."""
    rows = [
        (
            a.external_id,
            a.conversation,
            a.user_ref,
            a.prompt_json,
            a.prompt_hash,
            a.response,
            a.model,
            a.model_version,
            a.metadata_json,
            a.created_at or now,
        )
        # Sorted by external_id, so two batches sharing answers lock them in the same order.
        for a in sorted(answers, key=lambda a: a.external_id)
    ]
    if connection.vendor == "postgresql":
        # One statement for the whole batch: arrays in, the inserted rows' ids out.
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO feedback_answer ({_ANSWER_COLUMNS}) "  # noqa: S608 (constant)
                "SELECT %s, * FROM unnest(%s::text[], %s::text[], %s::text[], %s::jsonb[], "
                "%s::text[], %s::text[], %s::text[], %s::text[], %s::jsonb[], %s::timestamptz[]) "
                "ON CONFLICT (project_id, external_id) DO NOTHING RETURNING id, external_id",
                [project.pk, *(list(column) for column in zip(*rows, strict=True))],
            )
            return {external_id: answer_id for answer_id, external_id in cursor.fetchall()}
    # Portable path (the embedded SQLite default).
    inserted = insert_ignoring_conflicts(
        "feedback_answer",
        _ANSWER_COLUMNS,
        [(project.pk, *row) for row in rows],
        conflict="project_id, external_id",
        returning="external_id, id",
    )
    return dict(inserted)


_STAGE_COLUMNS = "answer_id, position, kind, name, parent_position, input, output"


def _insert_stages(answers: list[tuple[int, ValidAnswer]]) -> None:
    rows = [
        (
            answer_id,
            s.position,
            s.kind,
            s.name,
            s.parent_position,
            s.input_json,
            s.output_json,
        )
        for answer_id, answer in answers
        for s in answer.stages
    ]
    if not rows:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            raw_cursor = cursor.cursor  # psycopg's own cursor, for COPY
            with raw_cursor.copy(f"COPY feedback_stage ({_STAGE_COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.executemany(
                f"INSERT INTO feedback_stage ({_STAGE_COLUMNS}) "  # noqa: S608 (constant)
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
