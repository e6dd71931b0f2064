"""Ingestion of answers with their traces: validated in one pass, written set-based; and of
OpenTelemetry spans, which become such answers (`feedback.otel` maps them)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from feedback import otel
from feedback.core.bulk import insert_ignoring_conflicts, lock_until_commit
from feedback.ingest import MAX_STAGES, ValidAnswer, ValidStage, validate_answer, validate_stage
from feedback.models import Answer, Project, Stage, TraceSpan

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
                [
                    (created_ids[a.external_id], a.stages)
                    for _, a in valid
                    if a.external_id in created_ids
                ]
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


def _insert_stages(stages: Sequence[tuple[int, Sequence[ValidStage]]]) -> None:
    """Each (answer id, its new stages)."""
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
        for answer_id, answer_stages in stages
        for s in answer_stages
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


# --- OpenTelemetry spans ---------------------------------------------------------------------


def otel_spans_ingest(*, project: Project, spans: Sequence[otel.Span]) -> Counter[str]:
    """Keep the spans not received before, and make or grow the answer of each trace they
    belong to; returns the spans refused here, counted by reason.

    A span sent again conflicts with its row (project, trace id, span id) and changes nothing.
    A trace's answer is made, through `answers_ingest`, once its root span is there (and some
    span gives a prompt); spans that arrive later become stages added to it, so feedback the
    answer has received stays. Requests carrying spans of the same trace take turns (a lock
    per trace from the insert to the commit), so each sees the spans the other kept: a root and
    its last child arriving at once still meet.
    """
    refused: Counter[str] = Counter()
    if not spans:
        return refused
    now = timezone.now()
    with transaction.atomic():
        lock_until_commit(f"otel-trace:{project.pk}:{t}" for t in {s.trace_id for s in spans})
        new = _insert_spans(project, spans, now=now)
        if not new:
            return refused
        rows_by_trace: dict[str, list[TraceSpan]] = defaultdict(list)
        for row in TraceSpan.objects.filter(project=project, trace_id__in={t for t, _ in new}):
            rows_by_trace[row.trace_id].append(row)
        for trace_id in sorted(rows_by_trace):
            for reason, span_ids in _trace_settle(project, rows_by_trace[trace_id], now=now):
                # Counted for the request that sent them only: a replay changes nothing.
                refused[reason] += sum((trace_id, span_id) in new for span_id in span_ids)
    return +refused


def _insert_spans(
    project: Project, spans: Sequence[otel.Span], *, now: datetime
) -> set[tuple[str, str]]:
    """Insert the spans not kept yet; returns the (trace id, span id) of those inserted."""
    rows = [
        (project.pk, s.trace_id, s.span_id, s.parent_span_id, orjson.dumps(s.data).decode(), now)
        for s in spans
    ]
    inserted = insert_ignoring_conflicts(
        "feedback_tracespan",
        "project_id, trace_id, span_id, parent_span_id, data, received_at",
        rows,
        conflict="project_id, trace_id, span_id",
        returning="trace_id, span_id",
    )
    return {(trace_id, span_id) for trace_id, span_id in inserted}


def _trace_settle(
    project: Project, rows: list[TraceSpan], *, now: datetime
) -> list[tuple[str, list[str]]]:
    """Make the trace's answer, or add its new stages to the answer it made (rows: every span
    of the trace kept, locked); returns the spans it could not use, by reason."""
    roots = [r for r in rows if not r.parent_span_id]
    if not roots:
        return []  # the answer waits for its root
    root = next((r for r in roots if r.answer_id), None) or min(roots, key=_start)
    changed = [r for r in rows if r.data is not None]
    pending = [_span(r) for r in changed if r is not root]
    if root.answer_id is None:
        built = otel.answer_payload(_span(root), pending, now=now)
        if built is None:
            return []  # no span gives a prompt yet
        payload, placed, over = built
        result = answers_ingest(project=project, items=[payload])[0]
        if result.id is None:
            if result.errors:
                field_path, messages = next(iter(result.errors.items()))
                reason = f"the trace's answer is invalid ({field_path}: {messages[0]})"
            else:
                reason = f"an answer with external_id {payload['external_id']!r} exists already"
            TraceSpan.objects.filter(pk__in=[r.pk for r in rows]).delete()
            return [(reason, [r.span_id for r in rows])]
        root.answer_id = result.id
    else:
        last = Stage.objects.filter(answer_id=root.answer_id).aggregate(Max("position"))
        links = {r.span_id: (r.parent_span_id, r.position) for r in rows}
        start = 0 if last["position__max"] is None else last["position__max"] + 1
        placed, over = otel.stages_placed(pending, links=links, first_position=start)
        checked = [
            validate_stage(stage, position=stage["position"], parent=stage["parent"])
            for _, stage in placed
        ]
        _insert_stages([(root.answer_id, [s for s in checked if isinstance(s, ValidStage)])])
        model = otel.model_of(pending)
        if model:  # the answer was made before any generation named its model
            Answer.objects.filter(pk=root.answer_id, model=otel.UNKNOWN_MODEL).update(model=model)
    positions = {span.span_id: stage["position"] for span, stage in placed}
    for row in changed:
        row.data, row.position = None, positions.get(row.span_id)
    TraceSpan.objects.bulk_update(changed, ["data", "position", "answer"])
    return [(f"an answer holds at most {MAX_STAGES} stages", [s.span_id for s in over])]


def _span(row: TraceSpan) -> otel.Span:
    return otel.Span.stored(row.trace_id, row.span_id, row.parent_span_id, row.data or {})


def _start(row: TraceSpan) -> int:
    return int((row.data or {}).get("start", 0))
