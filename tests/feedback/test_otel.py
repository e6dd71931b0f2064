"""The mapping of OTLP spans to answers and stages (`feedback.otel`), on hand-built spans."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from feedback import otel
from feedback.ingest import MAX_STAGES, ValidAnswer, validate_answer
from tests.feedback.otlp_spans import TRACE, export, span

NOW = datetime(2026, 1, 31, 12, tzinfo=UTC)
T0 = 1_769_860_000_000_000_000  # 2026-01-31 11:46:40 UTC, in nanoseconds
MS = 1_000_000


def mapped(*spans: Any) -> list[otel.Span]:
    result, refused = otel.spans_of(export(*spans))
    assert not refused, refused
    return result


def built(*spans: Any) -> tuple[dict[str, Any], list[otel.Span]]:
    """The answer payload of a trace whose first span is the root."""
    root, *others = mapped(*spans)
    made = otel.answer_payload(root, others, now=NOW)
    assert made is not None
    payload, _, over = made
    assert over == []
    return payload, others


def documents(prefix: str, *docs: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for i, doc in enumerate(docs):
        for key, value in doc.items():
            flat[f"{prefix}.{i}.document.{key}"] = value
    return flat


RAG_ROOT = {
    "openinference.span.kind": "CHAIN",
    "input.value": "How do I oil a bicycle chain?",
    "output.value": "Wipe it, then one drop per link.",
    "session.id": "conv-1",
    "user.id": "u-7",
    "metadata": json.dumps({"app": "bikes"}),
}


def rag_trace() -> list[Any]:
    return [
        span("a0", name="rag", start=T0, end=T0 + 900 * MS, attributes=RAG_ROOT),
        span(
            "a1",
            "a0",
            name="decompose",
            start=T0 + 1 * MS,
            attributes={
                "openinference.span.kind": "LLM",
                "llm.model_name": "small",
                "output.value": json.dumps(["chain oil", "how often"]),
            },
        ),
        span(
            "a2",
            "a0",
            name="retrieve",
            start=T0 + 2 * MS,
            attributes={
                "openinference.span.kind": "RETRIEVER",
                "input.value": "chain oil",
                **documents(
                    "retrieval.documents",
                    {
                        "id": "doc-1",
                        "content": "Oil sparingly.",
                        "score": 0.9,
                        "metadata": json.dumps({"title": "Chains", "url": "https://b.example/c"}),
                    },
                    {"id": "doc-2", "content": "Wipe first.", "score": 0.5},
                ),
            },
        ),
        span(
            "a3",
            "a0",
            name="rerank",
            start=T0 + 3 * MS,
            attributes={
                "openinference.span.kind": "RERANKER",
                "reranker.query": "chain oil",
                **documents("reranker.input_documents", {"id": "doc-1"}, {"id": "doc-2"}),
                **documents("reranker.output_documents", {"id": "doc-2", "score": 0.8}),
            },
        ),
        span(
            "a4",
            "a0",
            name="generate",
            start=T0 + 4 * MS,
            end=T0 + 800 * MS,
            attributes={
                "openinference.span.kind": "LLM",
                "llm.model_name": "demo-large",
                "llm.input_messages.0.message.role": "system",
                "llm.input_messages.0.message.content": "Be brief.",
                "llm.input_messages.1.message.role": "user",
                "llm.input_messages.1.message.content": "How do I oil a bicycle chain?",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": "Wipe it, then one drop per link.",
                "llm.token_count.prompt": 120,
                "llm.token_count.completion": 12,
            },
        ),
    ]


def test_an_openinference_rag_trace_is_an_answer_the_answers_api_takes() -> None:
    # given a root chain with a decomposition, a retriever, a reranker and an LLM below it
    # when its spans are mapped and put together
    payload, _ = built(*rag_trace())

    # then the root gives the answer, and each child a stage in start order under no parent
    assert payload["external_id"] == TRACE
    assert payload["prompt"] == "How do I oil a bicycle chain?"
    assert payload["response"] == "Wipe it, then one drop per link."
    assert payload["model"] == "demo-large"  # the generation's: the root names none
    assert (payload["conversation"], payload["user_ref"]) == ("conv-1", "u-7")
    assert payload["metadata"] == {"app": "bikes", "otel": {"trace_id": TRACE}}
    assert payload["created_at"] == "2026-01-31T11:46:40.900000+00:00"  # when the root ended
    stages = payload["trace"]
    assert [(s["position"], s["kind"], s["name"], s["parent"]) for s in stages] == [
        (0, "decomposition", "decompose", None),
        (1, "retrieval", "retrieve", None),
        (2, "rerank", "rerank", None),
        (3, "generation", "generate", None),
    ]
    assert stages[0]["output"] == {"subqueries": ["chain oil", "how often"]}
    assert stages[1]["input"]["query"] == "chain oil"
    assert stages[1]["output"]["documents"][0] == {
        "id": "doc-1",
        "text": "Oil sparingly.",
        "score": 0.9,
        "title": "Chains",
        "url": "https://b.example/c",
        "metadata": {"title": "Chains", "url": "https://b.example/c"},
    }
    assert stages[2]["input"]["documents"] == ["doc-1", "doc-2"]
    assert [d["id"] for d in stages[2]["output"]["documents"]] == ["doc-2"]
    generation = stages[3]
    assert generation["output"] == {"text": "Wipe it, then one drop per link."}
    assert generation["input"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert generation["input"]["tokens"] == {"prompt": 120, "completion": 12}
    assert generation["input"]["span"] == {
        "span_id": "00000000000000a4",
        "start": "2026-01-31T11:46:40.004000+00:00",
        "end": "2026-01-31T11:46:40.800000+00:00",
        "latency_ms": 796.0,
        "status": "unset",
    }
    # and the payload passes the answers API's validation as it is
    assert isinstance(validate_answer(payload, now=NOW), ValidAnswer)


def genai_trace() -> list[Any]:
    question = [{"role": "user", "parts": [{"type": "text", "content": "Rain in Paris?"}]}]
    call = {"type": "tool_call", "id": "call-1", "name": "weather", "arguments": {"city": "Paris"}}
    return [
        span(
            "b0",
            name="invoke_agent helper",
            start=T0,
            end=T0 + 900 * MS,
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.conversation.id": "c-2"},
        ),
        span(
            "b1",
            "b0",
            name="chat gpt-x",
            start=T0 + 1 * MS,
            end=T0 + 100 * MS,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-x",
                "gen_ai.response.model": "gpt-x-2026",
                "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Brief."}]),
                "gen_ai.input.messages": json.dumps(question),
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [call]}]),
                "gen_ai.usage.input_tokens": 20,
            },
        ),
        span(
            "b2",
            "b0",
            name="execute_tool weather",
            start=T0 + 101 * MS,
            end=T0 + 200 * MS,
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "weather",
                "gen_ai.tool.call.id": "call-1",
                "gen_ai.tool.call.arguments": json.dumps({"city": "Paris"}),
                "gen_ai.tool.call.result": json.dumps({"rain": True}),
            },
        ),
        span(
            "b3",
            "b0",
            name="chat gpt-x",
            start=T0 + 201 * MS,
            end=T0 + 800 * MS,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-x",
                "gen_ai.output.messages": json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": "Yes: a coat."}]}]
                ),
            },
        ),
        span(
            "b4",
            "b0",
            name="embeddings",
            start=T0 + 2 * MS,
            attributes={"gen_ai.operation.name": "embeddings"},
        ),
    ]


def test_a_genai_agent_trace_takes_its_prompt_and_response_from_the_chats() -> None:
    # given an invoke_agent root without messages, two chats, a tool call and an embedding
    payload, _ = built(*genai_trace())

    # then the first chat gives the prompt, the last one the response, the model is the
    # response model of the first chat, and the embedding is no stage
    assert payload["prompt"] == [
        {"role": "system", "content": "Brief."},
        {"role": "user", "content": "Rain in Paris?"},
    ]
    assert payload["response"] == "Yes: a coat."
    assert payload["model"] == "gpt-x-2026"
    assert payload["conversation"] == "c-2"
    assert [(s["kind"], s["name"]) for s in payload["trace"]] == [
        ("generation", "chat gpt-x"),
        ("tool", "execute_tool weather"),
        ("generation", "chat gpt-x"),
    ]
    tool = payload["trace"][1]
    assert tool["input"]["name"] == "weather"
    assert tool["input"]["parameters"] == {"city": "Paris"}
    assert tool["output"] == {"result": {"rain": True}}
    assert payload["trace"][0]["input"]["tokens"] == {"prompt": 20}
    assert isinstance(validate_answer(payload, now=NOW), ValidAnswer)


def test_a_stage_hangs_under_its_nearest_ancestor_that_is_a_stage() -> None:
    # given root → agent → chain (no stage) → tool, and root → llm
    spans = [
        span("c0", attributes=RAG_ROOT),
        span("c1", "c0", name="agent", start=T0, attributes={"openinference.span.kind": "AGENT"}),
        span(
            "c2", "c1", name="glue", start=T0 + 1, attributes={"openinference.span.kind": "CHAIN"}
        ),
        span("c3", "c2", name="tool", start=T0 + 2, attributes={"openinference.span.kind": "TOOL"}),
        span("c4", "c0", name="llm", start=T0 + 3, attributes={"openinference.span.kind": "LLM"}),
    ]

    payload, _ = built(*spans)

    assert [(s["name"], s["kind"], s["parent"]) for s in payload["trace"]] == [
        ("agent", "other", None),
        ("tool", "tool", 0),
        ("llm", "generation", None),
    ]


def test_late_stages_follow_the_last_one_under_their_ancestors_positions() -> None:
    # given an answer whose stages 0 (agent c1) and 1 are placed, and a tool under c1 arriving
    late = mapped(
        span("c3", "c1", name="tool", start=T0, attributes={"openinference.span.kind": "TOOL"})
    )
    links = {"00000000000000c0": ("", None), "00000000000000c1": ("00000000000000c0", 0)}
    links["00000000000000c3"] = ("00000000000000c1", None)

    placed, over = otel.stages_placed(late, links=links, first_position=2)

    assert [(stage["position"], stage["parent"]) for _, stage in placed] == [(2, 0)]
    assert over == []


def test_the_root_can_name_the_external_id() -> None:
    payload, _ = built(span("d0", attributes={**RAG_ROOT, "feedback.external_id": "msg-42"}))

    assert payload["external_id"] == "msg-42"


@pytest.mark.parametrize(
    ("name", "attributes"),
    [
        ("step", {"openinference.span.kind": "CHAIN", "feedback.stage_kind": "decomposition"}),
        ("split", {"openinference.span.kind": "CHAIN", "output.value": '["a", "b"]'}),
        ("query rewriting", {"openinference.span.kind": "LLM", "output.value": "a\nb"}),
    ],
)
def test_decomposition_is_recognised(name: str, attributes: dict[str, Any]) -> None:
    if "feedback.stage_kind" in attributes:
        attributes = {**attributes, "output.value": '["a", "b"]'}
    payload, _ = built(
        span("e0", attributes=RAG_ROOT), span("e1", "e0", name=name, attributes=attributes)
    )

    assert payload["trace"][0]["kind"] == "decomposition"
    assert payload["trace"][0]["output"] == {"subqueries": ["a", "b"]}


def test_a_trace_without_a_prompt_waits() -> None:
    # given a GenAI root and a tool call, but no chat yet
    root, tool = mapped(genai_trace()[0], genai_trace()[2])

    assert otel.answer_payload(root, [tool], now=NOW) is None


def test_spans_it_cannot_use_are_refused_with_the_reason() -> None:
    bad_url = documents("retrieval.documents", {"id": "d", "metadata": '{"url": "javascript:x"}'})
    request = export(
        span("f0", attributes=RAG_ROOT),
        span("f1", "f0", name="GET /health", attributes={"http.method": "GET"}),
        span("f2", "f0", attributes={"openinference.span.kind": "RETRIEVER", **bad_url}),
        span("f3", "f0", trace="0" * 32, attributes={"openinference.span.kind": "TOOL"}),
        span("f4", "f0", attributes={"openinference.span.kind": "TOOL"}),
    )

    spans, refused = otel.spans_of(request)

    assert [s.span_id[-2:] for s in spans] == ["f0", "f4"]
    assert refused[otel.NOT_MAPPED] == 1
    assert refused[otel.BAD_IDS] == 1
    (url_reason,) = set(refused) - {otel.NOT_MAPPED, otel.BAD_IDS}
    assert url_reason.startswith("a retrieval stage with output.documents[0].url: ")


def test_an_answer_holds_at_most_the_stage_limit() -> None:
    tools = [
        span(f"{i + 1:x}", "ff", start=T0 + i, attributes={"openinference.span.kind": "TOOL"})
        for i in range(MAX_STAGES + 2)
    ]
    root, *others = mapped(span("ff", attributes=RAG_ROOT), *tools)

    made = otel.answer_payload(root, others, now=NOW)

    assert made is not None
    payload, _, over = made
    assert len(payload["trace"]) == MAX_STAGES
    assert len(over) == 2


def test_otlp_json_ids_are_hex() -> None:
    # given an OTLP/JSON body, whose ids are hex (protobuf's JSON mapping would say base64)
    message = json_format.MessageToDict(export(span("a1", "a0", attributes=RAG_ROOT)))
    spans = message["resourceSpans"][0]["scopeSpans"][0]["spans"]
    for item in spans:
        for key in ("traceId", "spanId", "parentSpanId"):
            item[key] = base64.b64decode(item[key]).hex()

    request = otel.decode_request(orjson.dumps(message), json=True)

    (mapped_span,) = otel.spans_of(request)[0]
    assert (mapped_span.trace_id, mapped_span.span_id) == (TRACE, "00000000000000a1")
    assert mapped_span.parent_span_id == "00000000000000a0"


@pytest.mark.parametrize(
    ("body", "json"),
    [
        (b"\xff\xff\xff", False),
        (b"not json", True),
        (b"[1]", True),
        (b'{"resourceSpans": 5}', True),
    ],
)
def test_a_body_that_is_not_otlp_is_refused(body: bytes, json: bool) -> None:
    with pytest.raises(otel.NotOtlp):
        otel.decode_request(body, json=json)


def test_the_reply_counts_the_refused_spans_in_either_encoding() -> None:
    refused = otel.Counter({otel.NOT_MAPPED: 2, otel.BAD_IDS: 1})

    reply = ExportTraceServiceResponse.FromString(otel.encode_response(refused, json=False))
    as_json = orjson.loads(otel.encode_response(refused, json=True))

    assert reply.partial_success.rejected_spans == 3
    assert reply.partial_success.error_message.startswith(f"2 span(s): {otel.NOT_MAPPED}")
    assert as_json["partialSuccess"]["rejectedSpans"] == "3"
    assert orjson.loads(otel.encode_response(otel.Counter(), json=True)) == {}
