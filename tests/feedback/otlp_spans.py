"""OTLP spans built by hand, for the tests of the mapping (`feedback.otel`) and its endpoint."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

TRACE = "5b8efff798038103d269b633813fc60c"


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list):
        wrapped = AnyValue()
        wrapped.array_value.values.extend(any_value(v) for v in value)
        return wrapped
    return AnyValue(string_value=str(value))


def span(
    span_id: str,
    parent: str = "",
    *,
    name: str = "span",
    start: int = 1_700_000_000_000_000_000,
    end: int | None = None,
    trace: str = TRACE,
    attributes: dict[str, Any] | None = None,
) -> Span:
    """A span with ids written short (`"a1"` is span 00000000000000a1)."""
    built = Span(
        trace_id=bytes.fromhex(trace),
        span_id=bytes.fromhex(span_id.rjust(16, "0")),
        parent_span_id=bytes.fromhex(parent.rjust(16, "0")) if parent else b"",
        name=name,
        start_time_unix_nano=start,
        end_time_unix_nano=end if end is not None else start + 250_000_000,
    )
    built.attributes.extend(
        KeyValue(key=key, value=any_value(value)) for key, value in (attributes or {}).items()
    )
    return built


def export(*spans: Span) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=list(spans))])]
    )
