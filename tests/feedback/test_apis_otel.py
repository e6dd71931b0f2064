"""POST /api/v1/otel/v1/traces: pipelines instrumented with the real OpenTelemetry SDK send their
traces with its OTLP exporter, and each trace reads back as an answer with its stages."""

from __future__ import annotations

import base64
import gzip
import json
import random
import threading
import urllib.request
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer
from rest_framework.test import APIClient

from feedback.models import Answer, Project, Reaction, Stage, TraceSpan
from tests.conftest import bearer_client
from tests.factories import ProjectFactory, answer_payload, api_key_for, member
from tests.tcp_proxy import TcpProxy

URL = "/api/v1/otel/v1/traces"
PROTOBUF = "application/x-protobuf"
QUESTION = "How do I oil a bicycle chain?"
ANSWER = "Wipe the chain, then one drop on each link."
DOCS = [
    ("doc-1", "Oil sparingly.", 0.91, {"title": "Chains", "url": "https://bikes.example/chains"}),
    ("doc-2", "Wipe it first.", 0.74, {"title": "Cleaning"}),
    ("doc-3", "Tyres need air.", 0.12, {}),
]


# --- pipelines, instrumented as their frameworks do it --------------------------------------------


def recorder() -> tuple[Tracer, InMemorySpanExporter]:
    """A real SDK tracer whose finished spans are kept, to be exported as the test chooses."""
    recorded = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bikes"}))
    provider.add_span_processor(SimpleSpanProcessor(recorded))
    return provider.get_tracer("tests"), recorded


def rag_pipeline(tracer: Tracer) -> str:
    """A RAG pipeline with OpenInference attributes; returns its trace id."""
    root_attributes = {
        "openinference.span.kind": "CHAIN",
        "input.value": QUESTION,
        "session.id": "conv-1",
        "user.id": "u-1",
        "metadata": json.dumps({"app": "bikes"}),
    }
    with tracer.start_as_current_span("rag", attributes=root_attributes) as root:
        with tracer.start_as_current_span(
            "decompose",
            attributes={
                "openinference.span.kind": "LLM",
                "llm.model_name": "demo-small",
                "output.value": json.dumps(["chain oil", "how often"]),
            },
        ):
            pass
        with tracer.start_as_current_span(
            "retrieve", attributes={"openinference.span.kind": "RETRIEVER"}
        ) as retriever:
            retriever.set_attribute("input.value", "chain oil")
            for i, (doc_id, text, score, metadata) in enumerate(DOCS):
                prefix = f"retrieval.documents.{i}.document"
                retriever.set_attribute(f"{prefix}.id", doc_id)
                retriever.set_attribute(f"{prefix}.content", text)
                retriever.set_attribute(f"{prefix}.score", score)
                retriever.set_attribute(f"{prefix}.metadata", json.dumps(metadata))
        with tracer.start_as_current_span(
            "rerank",
            attributes={
                "openinference.span.kind": "RERANKER",
                "reranker.query": "chain oil",
                "reranker.output_documents.0.document.id": "doc-2",
                "reranker.output_documents.0.document.content": "Wipe it first.",
                "reranker.output_documents.0.document.score": 0.9,
                "reranker.output_documents.1.document.id": "doc-1",
                "reranker.output_documents.1.document.content": "Oil sparingly.",
                "reranker.output_documents.1.document.score": 0.8,
            },
        ):
            pass
        with tracer.start_as_current_span(
            "generate",
            attributes={
                "openinference.span.kind": "LLM",
                "llm.model_name": "demo-large",
                "llm.input_messages.0.message.role": "user",
                "llm.input_messages.0.message.content": QUESTION,
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": ANSWER,
                "llm.token_count.prompt": 120,
                "llm.token_count.completion": 14,
            },
        ):
            pass
        root.set_attribute("output.value", ANSWER)
    return f"{root.get_span_context().trace_id:032x}"


def agent_pipeline(tracer: Tracer) -> str:
    """An agent with GenAI attributes: a chat asking for a tool, the tool, the final chat."""
    question = [{"role": "user", "parts": [{"type": "text", "content": "Rain in Paris?"}]}]
    call = {"type": "tool_call", "id": "call-1", "name": "weather", "arguments": {"city": "Paris"}}
    reply = [{"role": "assistant", "parts": [{"type": "text", "content": "Yes: take a coat."}]}]
    with tracer.start_as_current_span(
        "invoke_agent helper",
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.conversation.id": "c-2"},
    ) as root:
        with tracer.start_as_current_span(
            "chat gpt-x",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-x",
                "gen_ai.input.messages": json.dumps(question),
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [call]}]),
            },
        ):
            pass
        with tracer.start_as_current_span(
            "execute_tool weather",
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "weather",
                "gen_ai.tool.call.arguments": json.dumps({"city": "Paris"}),
                "gen_ai.tool.call.result": json.dumps({"rain": True}),
            },
        ):
            pass
        with tracer.start_as_current_span(
            "chat gpt-x",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-x",
                "gen_ai.output.messages": json.dumps(reply),
            },
        ):
            pass
    return f"{root.get_span_context().trace_id:032x}"


# --- sending -------------------------------------------------------------------------------------


def otlp_json(spans: Sequence[ReadableSpan]) -> bytes:
    """The SDK's own export request in OTLP/JSON: protobuf's JSON mapping, with the trace and
    span ids in hex, as the OTLP specification has them."""
    message = json_format.MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for resource_spans in message["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for item in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in item:
                        item[key] = base64.b64decode(item[key]).hex()
    return orjson.dumps(message)


def send(client: APIClient, spans: Sequence[ReadableSpan], *, json: bool = False) -> Any:
    if json:
        return client.post(URL, otlp_json(spans), content_type="application/json")
    return client.post(URL, encode_spans(spans).SerializeToString(), content_type=PROTOBUF)


def reply_of(response: Any) -> ExportTraceServiceResponse:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == PROTOBUF
    return ExportTraceServiceResponse.FromString(response.content)


def detail(client: APIClient, external_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/answers/{quote(external_id)}")
    assert response.status_code == 200, response.content
    shown: dict[str, Any] = response.json()
    return shown


# --- the tests -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_an_endpoint_and_a_key_are_all_an_instrumented_pipeline_needs(
    live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a project's ingest key, and the exporter configured only by the standard variables
    project = ProjectFactory.create(slug="acme")
    key = api_key_for(project, "ingest", "export")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"{live_server.url}/api/v1/otel")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Bearer%20{key}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    tracer, recorded = recorder()

    # when a RAG pipeline runs and the real OTLP exporter sends its spans (protobuf, gzip)
    trace_id = rag_pipeline(tracer)
    result = OTLPSpanExporter().export(recorded.get_finished_spans())

    # then the trace reads back as an answer, by its trace id
    assert result is SpanExportResult.SUCCESS
    answer = detail(bearer_client(key), trace_id)
    assert answer["prompt"] == [{"role": "user", "content": QUESTION}]
    assert answer["response"] == ANSWER
    assert answer["model"] == "demo-large"
    assert (answer["conversation"], answer["user_ref"]) == ("conv-1", "u-1")
    assert answer["metadata"] == {"app": "bikes", "otel": {"trace_id": trace_id}}
    trace = answer["trace"]
    assert [(s["position"], s["kind"], s["name"], s["parent"]) for s in trace] == [
        (0, "decomposition", "decompose", None),
        (1, "retrieval", "retrieve", None),
        (2, "rerank", "rerank", None),
        (3, "generation", "generate", None),
    ]
    assert trace[0]["output"] == {"subqueries": ["chain oil", "how often"]}
    documents = trace[1]["output"]["documents"]
    assert [(d["id"], d["text"], d["score"]) for d in documents] == [d[:3] for d in DOCS]
    assert [(d.get("title"), d.get("url")) for d in documents] == [
        ("Chains", "https://bikes.example/chains"),
        ("Cleaning", None),
        (None, None),
    ]
    assert [d["id"] for d in trace[2]["output"]["documents"]] == ["doc-2", "doc-1"]
    assert trace[3]["output"] == {"text": ANSWER}
    assert trace[3]["input"]["tokens"] == {"prompt": 120, "completion": 14}
    assert trace[3]["input"]["span"]["status"] == "unset"


def test_a_genai_agent_trace_in_otlp_json_is_answered_in_json(
    api: APIClient, project: Project
) -> None:
    tracer, recorded = recorder()
    trace_id = agent_pipeline(tracer)

    response = send(api, recorded.get_finished_spans(), json=True)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {}  # nothing refused
    answer = detail(api, trace_id)
    assert answer["prompt"] == [{"role": "user", "content": "Rain in Paris?"}]
    assert answer["response"] == "Yes: take a coat."
    assert answer["model"] == "gpt-x"
    assert answer["conversation"] == "c-2"
    assert [(s["kind"], s["name"]) for s in answer["trace"]] == [
        ("generation", "chat gpt-x"),
        ("tool", "execute_tool weather"),
        ("generation", "chat gpt-x"),
    ]
    assert answer["trace"][1]["input"]["parameters"] == {"city": "Paris"}
    assert answer["trace"][1]["output"] == {"result": {"rain": True}}


def _content(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without what differs between two projects, its stages keyed by span with
    their parent's span, so two answers compare whatever order their stages arrived in."""
    span_of = {s["position"]: s["input"]["span"]["span_id"] for s in answer["trace"]}
    stages = {
        s["input"]["span"]["span_id"]: {
            **{k: v for k, v in s.items() if k not in ("position", "parent")},
            "parent": span_of.get(s["parent"]),
        }
        for s in answer["trace"]
    }
    return {**{k: v for k, v in answer.items() if k not in ("id", "trace")}, "trace": stages}


@pytest.mark.parametrize("root_arrives", ["last", "first", "in the middle"])
@pytest.mark.parametrize("seed", [1, 2])
def test_spans_split_over_three_requests_in_any_order_make_the_same_answer(
    root_arrives: str, seed: int, db: None
) -> None:
    # given one pipeline run, sent whole to one project
    tracer, recorded = recorder()
    trace_id = rag_pipeline(tracer)
    spans = list(recorded.get_finished_spans())
    whole, split = (bearer_client(api_key_for(ProjectFactory.create())) for _ in range(2))
    reply_of(send(whole, spans))

    # when another project gets it over three requests, shuffled, the root where the case says
    root, children = spans[-1], spans[:-1]
    random.Random(seed).shuffle(children)
    order = {
        "last": [*children, root],
        "first": [root, *children],
        "in the middle": [*children[:2], root, *children[2:]],
    }[root_arrives]
    for batch in (order[:2], order[2:4], order[4:]):
        assert reply_of(send(split, batch)).partial_success.rejected_spans == 0

    # then both answers say the same; arriving before the root, stages are in start order
    assert _content(detail(split, trace_id)) == _content(detail(whole, trace_id))
    if root_arrives == "last":
        assert detail(split, trace_id)["trace"] == detail(whole, trace_id)["trace"]


def test_a_replay_changes_nothing(api: APIClient, project: Project) -> None:
    tracer, recorded = recorder()
    trace_id = rag_pipeline(tracer)
    spans = recorded.get_finished_spans()
    reply_of(send(api, spans))
    before = (detail(api, trace_id), Stage.objects.count(), TraceSpan.objects.count())

    replies = [reply_of(send(api, spans)), reply_of(send(api, spans[1:3]))]

    assert all(not reply.HasField("partial_success") for reply in replies)
    assert (detail(api, trace_id), Stage.objects.count(), TraceSpan.objects.count()) == before
    assert Answer.objects.count() == 1


def test_a_late_stage_joins_the_answer_which_keeps_its_feedback(
    api: APIClient, project: Project
) -> None:
    # given the root and two stages, and a reaction sent for the trace id right away
    tracer, recorded = recorder()
    trace_id = rag_pipeline(tracer)
    *children, root = recorded.get_finished_spans()
    reply_of(send(api, [children[0], root, children[3]]))
    reacted = api.post(
        "/api/v1/feedback",
        orjson.dumps(
            {
                "events": [
                    {
                        "event_id": "e-1",
                        "type": "reaction",
                        "answer": trace_id,
                        "user_ref": "u-1",
                        "reaction": "love",
                    }
                ]
            }
        ),
        content_type="application/json",
    )
    assert reacted.status_code == 201, reacted.content

    # when the other stages arrive later
    reply_of(send(api, [children[2], children[1]]))

    # then they follow the first ones, and the reaction is still on the answer
    answer = detail(api, trace_id)
    assert [s["name"] for s in answer["trace"]] == ["decompose", "generate", "retrieve", "rerank"]
    assert answer["feedback_counts"]["reactions"] == {"love": 1}
    assert Reaction.objects.get().answer.external_id == trace_id


def test_debug_mode_shows_the_stages_of_a_trace(api: APIClient, project: Project) -> None:
    tracer, recorded = recorder()
    trace_id = rag_pipeline(tracer)
    reply_of(send(api, recorded.get_finished_spans()))

    page = member(project, "annotator", "ann").get(
        f"/projects/{project.slug}/answers/{trace_id}/debug/"
    )

    html = page.content.decode()
    assert page.status_code == 200
    for shown in ("chain oil", "how often", "Chains", "Cleaning", "Oil sparingly.", ANSWER):
        assert shown in html


def test_spans_it_cannot_use_are_counted_with_the_reason(api: APIClient, project: Project) -> None:
    # given a trace with a plain HTTP span and a retriever whose document links to a script
    tracer, recorded = recorder()
    with tracer.start_as_current_span("rag", attributes={"input.value": QUESTION}):
        with tracer.start_as_current_span("GET /health", attributes={"http.method": "GET"}):
            pass
        with tracer.start_as_current_span(
            "retrieve",
            attributes={
                "openinference.span.kind": "RETRIEVER",
                "retrieval.documents.0.document.id": "d",
                "retrieval.documents.0.document.metadata": '{"url": "javascript:alert(1)"}',
            },
        ):
            pass

    reply = reply_of(send(api, recorded.get_finished_spans()))

    # then the answer is made without them, and the reply says why
    assert reply.partial_success.rejected_spans == 2
    assert "no openinference.span.kind" in reply.partial_success.error_message
    assert "output.documents[0].url" in reply.partial_success.error_message
    assert Answer.objects.get().stages.count() == 0


@pytest.mark.parametrize(
    ("coding", "compress"), [("gzip", gzip.compress), ("deflate", zlib.compress)]
)
def test_a_compressed_body_is_read(api: APIClient, coding: str, compress: Any) -> None:
    tracer, recorded = recorder()
    trace_id = rag_pipeline(tracer)
    body = compress(encode_spans(recorded.get_finished_spans()).SerializeToString())

    response = api.post(URL, body, content_type=PROTOBUF, HTTP_CONTENT_ENCODING=coding)

    reply_of(response)
    assert detail(api, trace_id)["response"] == ANSWER


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\x0a\xff\xff", PROTOBUF),
        (b"{nope", "application/json"),
        (b"[]", "application/json"),
        (b"", PROTOBUF),
    ],
)
def test_a_body_that_is_not_otlp_is_a_400(api: APIClient, body: bytes, content_type: str) -> None:
    response = api.post(URL, body, content_type=content_type)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
    assert TraceSpan.objects.count() == 0


def test_a_body_over_the_limit_is_a_413_also_once_decompressed(
    api: APIClient, settings: Any
) -> None:
    settings.API_MAX_BODY_BYTES = 1000
    inflating = gzip.compress(b"\x00" * 5000)  # 5 kB of zeros: a small body, large inflated

    too_long = api.post(URL, b"\x00" * 1001, content_type=PROTOBUF)
    too_large = api.post(URL, inflating, content_type=PROTOBUF, HTTP_CONTENT_ENCODING="gzip")

    assert (too_long.status_code, too_large.status_code) == (413, 413)
    assert "once decoded" in too_large.json()["error"]["message"]


def test_a_key_without_ingest_is_403_and_no_key_401(project: Project) -> None:
    tracer, recorded = recorder()
    rag_pipeline(tracer)
    spans = recorded.get_finished_spans()

    refused = send(bearer_client(api_key_for(project, "feedback", "export")), spans)
    anonymous = send(APIClient(), spans)

    assert refused.status_code == 403
    assert anonymous.status_code == 401
    assert TraceSpan.objects.count() == 0


def test_a_database_outage_is_a_503_and_the_retry_lands(proxied_database: TcpProxy) -> None:
    project = Project.objects.create(slug="acme", name="Acme")
    client = bearer_client(api_key_for(project, "ingest", "export"))
    tracer, recorded = recorder()
    trace_id = rag_pipeline(tracer)

    proxied_database.stop()
    down = send(client, recorded.get_finished_spans())
    proxied_database.start()
    back = send(client, recorded.get_finished_spans())

    assert (down.status_code, down["Retry-After"]) == (503, "5")
    reply_of(back)
    assert detail(client, trace_id)["response"] == ANSWER


def test_a_trace_naming_an_answer_that_exists_is_refused_and_not_kept(
    api: APIClient, project: Project
) -> None:
    # given an answer sent to the answers API, and a trace whose root names its external_id
    created = api.post(
        "/api/v1/answers", orjson.dumps(answer_payload("msg-1")), content_type="application/json"
    )
    assert created.status_code == 201
    tracer, recorded = recorder()
    with (
        tracer.start_as_current_span(
            "rag", attributes={"input.value": QUESTION, "feedback.external_id": "msg-1"}
        ),
        tracer.start_as_current_span("tool", attributes={"openinference.span.kind": "TOOL"}),
    ):
        pass

    reply = reply_of(send(api, recorded.get_finished_spans()))

    # then both spans are refused with the reason, and the answer is as it was
    assert reply.partial_success.rejected_spans == 2
    assert "external_id 'msg-1' exists already" in reply.partial_success.error_message
    assert TraceSpan.objects.count() == 0
    assert detail(api, "msg-1")["response"] == answer_payload()["response"]


@pytest.mark.slow
def test_a_root_and_its_children_sent_at_once_still_meet(live_server: Any) -> None:
    # given traces whose root and children go out in two requests at the same moment
    project = ProjectFactory.create(slug="acme")
    key = api_key_for(project, "ingest", "export")
    runs = []
    for _ in range(6):
        tracer, recorded = recorder()
        trace_id = rag_pipeline(tracer)
        *children, root = recorded.get_finished_spans()
        runs.append((trace_id, [children, [root]]))

    def post(spans: Sequence[ReadableSpan], start: threading.Barrier) -> int:
        request = urllib.request.Request(
            f"{live_server.url}{URL}",
            data=encode_spans(spans).SerializeToString(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": PROTOBUF},
        )
        start.wait()
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)

    # when each pair is sent from two threads released together
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _, halves in runs:
            start = threading.Barrier(2)
            statuses = list(pool.map(post, halves, [start, start]))
            assert statuses == [200, 200]

    # then every answer has all its stages: neither request missed the other's spans
    client = bearer_client(key)
    for trace_id, _ in runs:
        assert len(detail(client, trace_id)["trace"]) == 4
