"""How long OTLP spans are kept: `otel_spans_expire` forgets whole traces once their newest span
is older than the retention, whether they still wait for their root or made their answer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from rest_framework.test import APIClient

from feedback.models import Answer, Project, Stage, TraceSpan
from feedback.services.traces import otel_spans_expire
from tests.feedback.otlp_spans import export, span

RETENTION = timedelta(days=7)
ROOT = {
    "openinference.span.kind": "CHAIN",
    "input.value": "How do I oil a bicycle chain?",
    "output.value": "Wipe it, then one drop per link.",
}
GENERATION = {"openinference.span.kind": "LLM", "output.value": "Wipe it, then one drop per link."}


def trace_id(n: int) -> str:
    return f"{n:032x}"


def send(api: APIClient, *spans: Any) -> ExportTraceServiceResponse:
    response = api.post(
        "/api/v1/otel/v1/traces",
        export(*spans).SerializeToString(),
        content_type="application/x-protobuf",
    )
    assert response.status_code == 200, response.content
    return ExportTraceServiceResponse.FromString(response.content)


def age(trace: str, by: timedelta, *span_ids: str) -> None:
    """Make the trace's spans (or only `span_ids`) look as if they arrived `by` ago."""
    rows = TraceSpan.objects.filter(trace_id=trace)
    if span_ids:
        rows = rows.filter(span_id__in=[s.rjust(16, "0") for s in span_ids])
    rows.update(received_at=timezone.now() - by)


def kept(trace: str) -> set[str]:
    return {
        s.lstrip("0")
        for s in TraceSpan.objects.filter(trace_id=trace).values_list("span_id", flat=True)
    }


@pytest.mark.django_db
def test_a_trace_whose_root_never_came_is_forgotten_after_the_retention(
    api: APIClient, project: Project
) -> None:
    # given two traces still waiting for their root: one old, one that arrived just now
    old, fresh = trace_id(1), trace_id(2)
    send(api, span("b1", "a0", trace=old, attributes=GENERATION))
    send(api, span("b1", "a0", trace=fresh, attributes=GENERATION))
    age(old, RETENTION + timedelta(hours=1))

    # when the expiry runs
    expired = otel_spans_expire(older_than=RETENTION)

    # then only the old trace's spans are gone
    assert expired == 1
    assert (kept(old), kept(fresh)) == (set(), {"b1"})


@pytest.mark.django_db
def test_a_trace_with_a_recent_span_is_kept_whole(api: APIClient, project: Project) -> None:
    # given a waiting trace whose first child is old but whose second came recently
    trace = trace_id(3)
    send(api, span("b1", "a0", trace=trace, attributes=GENERATION))
    send(api, span("b2", "a0", trace=trace, attributes=GENERATION))
    age(trace, RETENTION + timedelta(days=1), "b1")

    # when the expiry runs
    assert otel_spans_expire(older_than=RETENTION) == 0

    # then nothing of it went, and its root still makes the whole answer
    assert kept(trace) == {"b1", "b2"}
    send(api, span("a0", trace=trace, attributes=ROOT))
    answer = Answer.objects.get(external_id=trace)
    assert Stage.objects.filter(answer=answer).count() == 2


@pytest.mark.django_db
def test_an_answered_trace_keeps_its_answer_and_a_late_replay_adds_nothing(
    api: APIClient, project: Project
) -> None:
    # given an answered trace from long ago
    trace = trace_id(4)
    spans = [
        span("a0", trace=trace, attributes=ROOT),
        span("b1", "a0", trace=trace, attributes=GENERATION),
    ]
    send(api, *spans)
    age(trace, RETENTION * 2)
    answer = Answer.objects.get(external_id=trace)
    stages = list(Stage.objects.filter(answer=answer).values_list("position", "name"))

    # when the expiry runs, and the exporter later sends the same spans again
    assert otel_spans_expire(older_than=RETENTION) == 1
    reply = send(api, *spans)

    # then the spans' record went but the answer stayed, and the replay was refused, not added
    assert kept(trace) == set()
    assert Answer.objects.filter(external_id=trace).count() == 1
    assert list(Stage.objects.filter(answer=answer).values_list("position", "name")) == stages
    assert reply.partial_success.rejected_spans == 2
    assert kept(trace) == set()


@pytest.mark.django_db
def test_expiry_goes_through_the_traces_in_batches(
    api: APIClient, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given more old waiting traces than one batch takes
    monkeypatch.setattr("feedback.services.traces.EXPIRE_TRACES_PER_BATCH", 2)
    traces = [trace_id(10 + n) for n in range(5)]
    send(api, *(span("b1", "a0", trace=t, attributes=GENERATION) for t in traces))
    for t in traces:
        age(t, RETENTION + timedelta(hours=1))

    # when the expiry runs, then every one of them goes
    assert otel_spans_expire(older_than=RETENTION) == 5
    assert not TraceSpan.objects.exists()
