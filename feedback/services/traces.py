"""Ingestion of answers with their traces: validated in one pass, written set-based; and of
OpenTelemetry spans, which become such answers (`feedback.otel` maps them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from feedback import otel
from feedback.core.bulk import insert_ignoring_conflicts, lock_until_commit
from feedback.ingest import MAX_STAGES, ValidAnswer, ValidStage, validate_answer, validate_stage
from feedback.models import Answer, Project, Stage, TraceSpan, WebhookEventType
from feedback.services.webhooks import webhook_events_emit

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
            webhook_events_emit(
                project=project,
                event_type=WebhookEventType.ANSWER_CREATED,
                payloads=[
                    {
                        "external_id": a.external_id,
                        "conversation": a.conversation,
                        "user_ref": a.user_ref,
                        "model": a.model,
                        "model_version": a.model_version,
                        "created_at": a.created_at or now,
                    }
                    for _, a in valid
                    if a.external_id in created_ids
                ],
            )
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
_ANSWER_TYPES = (
    "bigint", "text", "text", "text", "jsonb", "text", "text", "text", "text", "jsonb",
    "timestamptz",
)  # fmt: skip


def _insert_answers(
    *, project: Project, answers: list[ValidAnswer], now: datetime
) -> dict[str, int]:
    """Insert the answers that don't exist yet; returns {external_id: id} of those inserted."""
    rows = [
        (
            project.pk,
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
    inserted = insert_ignoring_conflicts(
        "feedback_answer",
        _ANSWER_COLUMNS,
        rows,
        conflict="project_id, external_id",
        returning="external_id, id",
        array_types=_ANSWER_TYPES,
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


@dataclass(slots=True)
class _Kept:
    """A span of a trace as the platform has it: kept from an earlier request (`row`), or
    arriving now."""

    span_id: str
    parent_span_id: str
    span: otel.Span | None  # None once the answer took it in
    position: int | None = None  # its stage in the answer
    answer_id: int | None = None  # on the root: the trace's answer
    row: TraceSpan | None = None
    settled: bool = False  # the answer takes it in now


@dataclass
class _Trace:
    trace_id: str
    kept: list[_Kept]
    root: _Kept
    refused: list[tuple[str, list[str]]] = field(default_factory=list)  # (reason, span ids)
    dropped: bool = False  # its answer can't be made: its spans go

    @property
    def pending(self) -> list[otel.Span]:
        """Its spans not in the answer yet, but the root."""
        return [k.span for k in self.kept if k.span is not None and k is not self.root]


def otel_spans_ingest(*, project: Project, spans: Sequence[otel.Span]) -> Counter[str]:
    """Keep the spans not received before, and make or grow the answer of each trace they
    belong to; returns the spans refused here, counted by reason.

    A span sent again changes nothing: the trace's kept spans say it arrived before (and its
    row's unique key, project + trace id + span id, holds that). A trace's answer is made,
    through `answers_ingest`, once its root span is there (and some span gives a prompt); spans
    that arrive later become stages added to it, so feedback the answer has received stays.
    Requests carrying spans of the same trace take turns (a lock per trace until the commit),
    so each sees the spans the other kept: a root and its last child arriving at once still
    meet. The traces of a request are written together: one `answers_ingest` for the new
    answers, one COPY for the late stages, one insert for the spans, which arrive already
    settled when their answer is made in the same request (the common case: a batching
    exporter sends the root with or after its children).
    """
    if not spans:
        return Counter()
    now = timezone.now()
    with transaction.atomic():
        trace_ids = {s.trace_id for s in spans}
        lock_until_commit(f"otel-trace:{project.pk}:{t}" for t in trace_ids)
        kept: dict[str, dict[str, _Kept]] = {t: {} for t in trace_ids}
        for row in TraceSpan.objects.filter(project=project, trace_id__in=trace_ids):
            stored = _span(row) if row.data is not None else None
            kept[row.trace_id][row.span_id] = _Kept(
                row.span_id, row.parent_span_id, stored, row.position, row.answer_id, row
            )
        arrived: set[tuple[str, str]] = set()
        for span in spans:
            if span.span_id not in kept[span.trace_id]:
                kept[span.trace_id][span.span_id] = _Kept(span.span_id, span.parent_span_id, span)
                arrived.add((span.trace_id, span.span_id))
        if not arrived:
            return Counter()
        traces = [
            trace
            for trace_id in sorted({t for t, _ in arrived})
            if (trace := _trace_of(trace_id, list(kept[trace_id].values())))
        ]
        growing = [t for t in traces if t.root.answer_id is not None]
        _answers_make(project, [t for t in traces if t.root.answer_id is None], now=now)
        _stages_add(growing)
        dropped = {t.trace_id for t in traces if t.dropped}
        TraceSpan.objects.filter(project=project, trace_id__in=dropped).delete()
        _spans_keep(
            project,
            [(t, k) for t in kept if t not in dropped for k in kept[t].values()],
            arrived,
            now=now,
        )
    refused: Counter[str] = Counter()
    for trace in traces:
        for reason, span_ids in trace.refused:
            refused[reason] += sum((trace.trace_id, i) in arrived for i in span_ids)
    return refused


def _trace_of(trace_id: str, kept: list[_Kept]) -> _Trace | None:
    """The trace with its root, or None while its root has not arrived."""
    roots = [k for k in kept if not k.parent_span_id]
    if not roots:
        return None
    root = next((k for k in roots if k.answer_id), None) or min(
        roots, key=lambda k: k.span.start if k.span else 0
    )
    return _Trace(trace_id, kept, root)


def _answers_make(project: Project, traces: list[_Trace], *, now: datetime) -> None:
    """The answers of traces whose root has arrived, in one `answers_ingest`; a trace whose
    answer can't be made (invalid, or its external_id taken) is dropped with its spans."""
    built = []
    for trace in traces:
        assert trace.root.span is not None  # a root without an answer is pending
        built.append((trace, otel.answer_payload(trace.root.span, trace.pending, now=now)))
    ready = [(t, made) for t, made in built if made is not None]  # others wait for a prompt
    results = answers_ingest(project=project, items=[payload for _, (payload, _, _) in ready])
    for (trace, (payload, placed, over)), result in zip(ready, results, strict=True):
        if result.id is None:
            if result.errors:
                field_path, messages = next(iter(result.errors.items()))
                reason = f"the trace's answer is invalid ({field_path}: {messages[0]})"
            else:
                reason = f"an answer with external_id {payload['external_id']!r} exists already"
            trace.refused.append((reason, [k.span_id for k in trace.kept]))
            trace.dropped = True
            continue
        trace.root.answer_id = result.id
        _settle(trace, placed, over)


def _stages_add(traces: list[_Trace]) -> None:
    """The new stages of answers that exist, after their last stages, in one COPY."""
    if not traces:
        return
    last = dict(
        Stage.objects.filter(answer_id__in=[t.root.answer_id for t in traces])
        .values("answer_id")
        .annotate(last=Max("position"))
        .values_list("answer_id", "last")
    )
    added = []
    for trace in traces:
        answer_id = trace.root.answer_id
        assert answer_id is not None
        links = {k.span_id: (k.parent_span_id, k.position) for k in trace.kept}
        first = last[answer_id] + 1 if answer_id in last else 0
        placed, over = otel.stages_placed(trace.pending, links=links, first_position=first)
        checked = [
            validate_stage(stage, position=stage["position"], parent=stage["parent"])
            for _, stage in placed
        ]
        added.append((answer_id, [s for s in checked if isinstance(s, ValidStage)]))
        model = otel.model_of(trace.pending)
        if model:  # the answer was made before any generation named its model
            Answer.objects.filter(pk=answer_id, model=otel.UNKNOWN_MODEL).update(model=model)
        _settle(trace, placed, over)
    _insert_stages(added)


def _settle(
    trace: _Trace, placed: list[tuple[otel.Span, dict[str, Any]]], over: list[otel.Span]
) -> None:
    """The answer takes in the trace's pending spans: their stage positions are noted; those
    over the stage limit are refused."""
    positions = {span.span_id: stage["position"] for span, stage in placed}
    for k in trace.kept:
        if k.span is not None:
            k.settled, k.position = True, positions.get(k.span_id)
    if over:
        trace.refused.append(
            (f"an answer holds at most {MAX_STAGES} stages", [s.span_id for s in over])
        )


def _spans_keep(
    project: Project,
    kept: list[tuple[str, _Kept]],
    arrived: set[tuple[str, str]],
    *,
    now: datetime,
) -> None:
    """Insert the spans that arrived (their data only while their answer waits for them), and
    note on the rows kept before what the answer made of them."""
    new = [
        (
            trace_id,
            k.span_id,
            k.parent_span_id,
            None if k.settled or k.span is None else orjson.dumps(k.span.data).decode(),
            k.position,
            k.answer_id,
        )
        for trace_id, k in kept
        if (trace_id, k.span_id) in arrived
    ]
    _insert_spans(project, new, now=now)
    settled = [(k.row.pk, k.position, k.answer_id) for _, k in kept if k.row and k.settled]
    if not settled:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "UPDATE feedback_tracespan AS t SET data = NULL, position = u.position, "
                "answer_id = u.answer_id FROM unnest(%s::bigint[], %s::integer[], %s::bigint[]) "
                "AS u(id, position, answer_id) WHERE t.id = u.id",
                [list(column) for column in zip(*settled, strict=True)],
            )
        else:
            cursor.executemany(
                "UPDATE feedback_tracespan SET data = NULL, position = %s, answer_id = %s "
                "WHERE id = %s",
                [(position, answer_id, pk) for pk, position, answer_id in settled],
            )


def _insert_spans(project: Project, rows: list[tuple[Any, ...]], *, now: datetime) -> None:
    """Insert the spans (trace id, span id, parent span id, data JSON, position, answer id);
    one already kept is left as it is."""
    insert_ignoring_conflicts(
        "feedback_tracespan",
        "project_id, trace_id, span_id, parent_span_id, data, position, answer_id, received_at",
        [(project.pk, *row, now) for row in rows],
        conflict="project_id, trace_id, span_id",
        returning="id",
        array_types=("bigint", "text", "text", "text", "jsonb", "integer", "bigint", "timestamptz"),
    )


def _span(row: TraceSpan) -> otel.Span:
    return otel.Span.stored(row.trace_id, row.span_id, row.parent_span_id, row.data or {})


# Traces whose spans one expiry run deletes at most in one transaction.
EXPIRE_TRACES_PER_BATCH = 500


def otel_spans_expire(*, older_than: timedelta, now: datetime | None = None) -> int:
    """Delete the kept spans of every trace whose newest span arrived before `now -
    older_than`; returns how many traces went. A trace goes whole or not at all: a trace waiting
    for a root that never came, and the record of a settled one (its answer stays; a replay of
    its spans after this is refused as naming an answer that exists, not added twice). Each
    batch takes the traces' locks, as ingestion does, so a span arriving meanwhile keeps its
    trace."""
    cutoff = (now or timezone.now()) - older_than
    newer = TraceSpan.objects.filter(
        project_id=OuterRef("project_id"), trace_id=OuterRef("trace_id"), received_at__gte=cutoff
    )
    expired = 0
    while True:
        with transaction.atomic():
            traces = list(
                TraceSpan.objects.filter(received_at__lt=cutoff)
                .exclude(Exists(newer))
                .values_list("project_id", "trace_id")
                .distinct()[:EXPIRE_TRACES_PER_BATCH]
            )
            if not traces:
                return expired
            lock_until_commit(f"otel-trace:{project}:{trace}" for project, trace in traces)
            for project_id, trace_ids in _by_project(traces).items():
                TraceSpan.objects.filter(project_id=project_id, trace_id__in=trace_ids).exclude(
                    Exists(newer)
                ).delete()
            expired += len(traces)


def _by_project(traces: list[tuple[int, str]]) -> dict[int, list[str]]:
    grouped: dict[int, list[str]] = {}
    for project_id, trace_id in traces:
        grouped.setdefault(project_id, []).append(trace_id)
    return grouped
