"""OTLP ingestion throughput: spans per second through the OpenTelemetry endpoint against the
answers API on the same content.

What is compared
    * otlp:    `POST /api/v1/otel/v1/traces` with protobuf `ExportTraceServiceRequest`s of
      `--batch` traces each. A trace is what an OpenInference-instrumented RAG pipeline sends:
      a CHAIN root (question, answer, user, metadata), an LLM decomposing the question into
      three sub-queries, a RETRIEVER with three documents and an LLM generating the answer: 4
      spans that make one answer with 3 stages. Every reply must be 200 without rejected spans.
    * answers: `POST /api/v1/answers` with the same traces as the answers the endpoint makes of
      them (the payloads come from `feedback.otel`'s own mapping, so both write the same
      answers and stages), `--batch` answers per request.
Both are sent by `--clients` threads that each keep their own HTTP connection, to the real web
process (gunicorn with `platform/gunicorn.conf.py`); the request bodies are serialised before
the clock starts. Each rate is spans per second (for the answers API, the spans its answers
carry), the best of `--repeat` rounds, each run starting from an empty, vacuumed bench project;
the row counts (N answers, 3N stages, and 4N kept spans for otlp) are checked after every run.
The last line is `ratio=<otlp_rate / answers_rate>`: the share of the answers API's throughput
the OTLP endpoint reaches, with its mapping, its span bookkeeping and the same answers insert.

Setup, done by the script: the database in DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/feedback_bench) is created when missing and migrated; the
project `bench` and an ingest API key are made with the management commands; the rows of
earlier runs in that project are deleted. PostgreSQL and Redis (CELERY_BROKER_URL, default
redis://127.0.0.1:6379/14, which /healthz checks) must be running.

Run from the project root:

    .venv/bin/python benchmarks/otlp.py [--traces 4000] [--batch 250] [--clients 4]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from common import ROOT, bench_setup, clear_project, gunicorn, post_concurrently
from ingest import Phase, text  # the same words, and the best of the runs
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

sys.path.insert(0, str(ROOT))
from feedback import otel  # once the project root is on the path

PROJECT_SLUG = "bench"
SEED = 20260131
SPANS_PER_TRACE = 4
STAGES_PER_TRACE = 3
OTLP_PATH = "/api/v1/otel/v1/traces"
MS = 1_000_000

# --- the content -----------------------------------------------------------------------------


def attribute(key: str, value: Any) -> KeyValue:
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def span(
    trace_id: bytes, span_id: int, parent: int, start: int, name: str, attributes: dict[str, Any]
) -> Span:
    built = Span(
        trace_id=trace_id,
        span_id=span_id.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name=name,
        start_time_unix_nano=start,
        end_time_unix_nano=start + 100 * MS,
    )
    built.attributes.extend(attribute(key, value) for key, value in attributes.items())
    return built


def make_trace(rng: random.Random, number: int, start: int) -> list[Span]:
    """One RAG pipeline run as OpenInference spans, root last (as a batching exporter sends)."""
    trace_id = rng.getrandbits(128).to_bytes(16, "big")
    root = rng.getrandbits(62) + 1
    response = text(rng, 600)
    retrieval: dict[str, Any] = {
        "openinference.span.kind": "RETRIEVER",
        "input.value": text(rng, 50),
    }
    for i in range(3):
        prefix = f"retrieval.documents.{i}.document"
        retrieval[f"{prefix}.id"] = f"doc-{rng.randrange(1_000_000)}"
        retrieval[f"{prefix}.content"] = text(rng, 200)
        retrieval[f"{prefix}.score"] = round(rng.random(), 4)
        retrieval[f"{prefix}.metadata"] = json.dumps({"title": text(rng, 40)})
    decomposition = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "bench-small",
        "output.value": json.dumps([text(rng, 50) for _ in range(3)]),
    }
    generation = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "bench-model",
        "output.value": response,
        "llm.token_count.prompt": rng.randrange(100, 2000),
    }
    chain = {
        "openinference.span.kind": "CHAIN",
        "input.value": text(rng, 200),
        "output.value": response,
        "user.id": f"user-{rng.randrange(1000)}",
        "metadata": json.dumps({"locale": rng.choice(("en", "de", "fr")), "run": number}),
    }
    return [
        span(trace_id, root + 1, root, start + 1 * MS, "planner", decomposition),
        span(trace_id, root + 2, root, start + 2 * MS, "search", retrieval),
        span(trace_id, root + 3, root, start + 3 * MS, "llm", generation),
        span(trace_id, root, 0, start, "rag", chain),
    ]


def make_traces(count: int) -> list[list[Span]]:
    """`count` traces, the same on every run (seeded), that ended in the last minutes."""
    rng = random.Random(SEED)
    start = int(datetime.now(UTC).timestamp() * 1e9) - count * MS - 60_000 * MS
    return [make_trace(rng, i, start + i * MS) for i in range(count)]


def otlp_bodies(traces: Sequence[list[Span]], size: int) -> list[bytes]:
    bodies = []
    for i in range(0, len(traces), size):
        spans = [s for trace in traces[i : i + size] for s in trace]
        request = ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
        )
        bodies.append(request.SerializeToString())
    return bodies


def answer_bodies(traces: Sequence[list[Span]], size: int) -> list[bytes]:
    """The answers the endpoint makes of the traces, by its own mapping, as answers-API bodies."""
    now = datetime.now(UTC)
    payloads = []
    for trace in traces:
        request = ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=trace)])]
        )
        spans, refused = otel.spans_of(request)
        assert not refused, refused
        root = next(s for s in spans if not s.parent_span_id)
        made = otel.answer_payload(root, [s for s in spans if s is not root], now=now)
        assert made is not None
        payloads.append(made[0])
    return [
        orjson.dumps({"answers": payloads[i : i + size]}) for i in range(0, len(payloads), size)
    ]


# --- the two ways in -------------------------------------------------------------------------


def post_otlp(port: int, api_key: str, bodies: Sequence[bytes], clients: int) -> float:
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/x-protobuf"}
    elapsed, replies = post_concurrently(port, OTLP_PATH, headers, bodies, clients)
    for status, content in replies:
        if status != 200:
            sys.exit(f"POST {OTLP_PATH} answered {status}: {content[:500]!r}")
        reply = ExportTraceServiceResponse.FromString(content)
        if reply.partial_success.rejected_spans:
            sys.exit(f"spans rejected: {reply.partial_success.error_message}")
    return elapsed


def post_answers(port: int, api_key: str, bodies: Sequence[bytes], clients: int) -> float:
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    elapsed, replies = post_concurrently(port, "/api/v1/answers", headers, bodies, clients)
    for status, content in replies:
        if status != 201 or orjson.loads(content)["errors"]:
            sys.exit(f"POST /api/v1/answers answered {status}: {content[:500]!r}")
    return elapsed


def check_counts(database_url: str, project_id: int, traces: int, spans_kept: int) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM feedback_answer WHERE project_id = %(p)s), "
            "(SELECT count(*) FROM feedback_stage s JOIN feedback_answer a ON a.id = s.answer_id "
            "WHERE a.project_id = %(p)s), "
            "(SELECT count(*) FROM feedback_tracespan WHERE project_id = %(p)s)",
            {"p": project_id},
        ).fetchone()
    expected = (traces, traces * STAGES_PER_TRACE, spans_kept)
    if row != expected:
        sys.exit(f"rows (answers, stages, spans): {row}; expected {expected}")


# --- main ------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--traces", type=int, default=4000, help="traces (answers) per run")
    parser.add_argument("--batch", type=int, default=250, help="traces per request (<= 1000)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--repeat", type=int, default=2, help="rounds; the best run counts")
    args = parser.parse_args()
    if args.traces < 1 or not 1 <= args.batch <= 1000 or args.clients < 1 or args.repeat < 1:
        parser.error("--traces, --clients and --repeat must be >= 1; --batch 1..1000")
    return args


def main() -> None:
    args = parse_args()
    bench = bench_setup(PROJECT_SLUG, scopes="ingest")
    database_url, project_id, api_key = bench.database_url, bench.project_id, bench.api_key
    traces = make_traces(args.traces)
    ways: dict[str, tuple[list[bytes], Callable[..., float], int]] = {
        "otlp": (otlp_bodies(traces, args.batch), post_otlp, args.traces * SPANS_PER_TRACE),
        "answers": (answer_bodies(traces, args.batch), post_answers, 0),
    }
    phases = {name: Phase(name, []) for name in ways}
    spans = args.traces * SPANS_PER_TRACE

    with gunicorn(bench.env) as (port, workers):
        print(
            f"traces={args.traces} spans={spans} batch={args.batch} clients={args.clients} "
            f"repeat={args.repeat} gunicorn_workers={workers}"
        )
        for round_number in range(1, args.repeat + 1):
            for name, (bodies, post, spans_kept) in ways.items():
                clear_project(
                    database_url,
                    project_id,
                    ("feedback_tracespan", "feedback_stage", "feedback_answer"),
                )
                phases[name].seconds.append(post(port, api_key, bodies, args.clients))
                check_counts(database_url, project_id, args.traces, spans_kept)
            print(
                f"round {round_number}: "
                + ", ".join(f"{p.name} {p.seconds[-1]:.3f} s" for p in phases.values()),
                flush=True,
            )

    for phase in phases.values():
        print(
            f"{phase.name}: {phase.rate(spans):,.0f} spans/s "
            f"(best of {len(phase.seconds)}: {phase.best():.3f} s)"
        )
    print(f"ratio={phases['otlp'].rate(spans) / phases['answers'].rate(spans):.3f}")


if __name__ == "__main__":
    main()
