"""OpenTelemetry traces (OTLP) → answers with their stage trace. Pure: no ORM, no request.

A trace is one answer; its spans arrive over several requests in any order, so the mapping has
two halves: `spans_of` turns each span of a request into a `Span` (what the answer may take from
it, and its stage if it is one) as soon as it arrives, and `answer_payload` / `stages_placed`
put the spans of a trace together once its root span is there. The answer payload has exactly
the shape of `POST /api/v1/answers`, and goes through the same validation and insert.

The answer (one per trace id):
- `external_id`: the trace id as 32 lowercase hex characters, or the root span's attribute
  `feedback.external_id`, so a host app can send feedback for the trace id right away.
- `prompt`: the input of the root span; else of the outermost CHAIN / AGENT / invoke_agent
  span; else the input messages of the first generation. A string becomes one user message, a
  JSON list of messages stays messages; a JSON object takes its `input` / `question` / `query`
  text. Until some span gives a prompt the answer waits (an answer can't be without one).
- `response`: the output of the root; else of the outermost CHAIN / AGENT span; else the text
  of the generation that ended last.
- `model`: the root's model; else the first generation's; else "unknown", until a generation
  that names its model arrives.
- `conversation` (`session.id`, `gen_ai.conversation.id`) and `user_ref` (`user.id`): the
  root's, else the first span's that has one. `metadata`: the root's `metadata` attribute (a
  JSON object), with the trace id under `otel`.
- `created_at`: when the root span ended.

The stages, from the conventions of OpenInference (`openinference.span.kind`) and of
OpenTelemetry GenAI (`gen_ai.operation.name`); `feedback.stage_kind` on a span below the root
overrides them:

    RETRIEVER                     retrieval   documents from retrieval.documents.{i}.document.*
    RERANKER                      rerank      reranker.output_documents.{i}.document.*
    LLM; chat, text_completion,   generation  text of the output messages (or output.value)
      generate_content
    TOOL; execute_tool            tool        name, parameters/arguments, result
    AGENT, GUARDRAIL, EVALUATOR;  other       input.value and output.value
      invoke_agent below the root
    CHAIN or LLM whose output is  decomposition  subqueries; also a span whose name says
      a JSON list of strings                     decomposition / rewriting / sub-queries
    CHAIN, EMBEDDING, PROMPT;     not a stage (a CHAIN is glue: LangChain and LlamaIndex emit
      embeddings, create_agent    dozens), but kept so the stages below find their parent

A document's `title` and `url` come from its metadata; the URL goes through the same check as
on the answers API. Each stage's input keeps the span (`span`: id, start, end, latency, status)
and, for generations, the token counts (`tokens`). Stages are ordered by start time; a stage's
`parent` is the nearest ancestor span that is a stage (none when that is the root, which is the
answer itself). Stages that arrive after the answer exists are added after its last stage.

A span is refused, and counted in the reply's `partial_success` with the reason, when its ids
are malformed, when it follows neither convention (no `openinference.span.kind`,
`gen_ai.operation.name` or `feedback.stage_kind`; the root is exempt: it is the answer), or
when its stage fails the answers API's checks. A refused span is not kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from feedback.ingest import CLOCK_SKEW, EARLIEST, MAX_STAGES, STAGE_KINDS, validate_stage

UNKNOWN_MODEL = "unknown"
NOT_MAPPED = "no openinference.span.kind, gen_ai.operation.name or feedback.stage_kind attribute"
BAD_IDS = "malformed trace id or span id"
# OpenInference kinds of a span that speaks for the whole pipeline (its input and output).
_CHAIN_KINDS = {"CHAIN", "AGENT"}
_OPENINFERENCE_STAGES = {
    "RETRIEVER": "retrieval",
    "RERANKER": "rerank",
    "LLM": "generation",
    "TOOL": "tool",
    "AGENT": "other",
    "GUARDRAIL": "other",
    "EVALUATOR": "other",
}
_GENAI_STAGES = {
    "chat": "generation",
    "text_completion": "generation",
    "generate_content": "generation",
    "execute_tool": "tool",
    "invoke_agent": "other",
}
_DECOMPOSITION_NAME = re.compile(r"decompos|rewrit|sub[-_ ]?quer", re.IGNORECASE)
_ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "model": "assistant",
    "tool": "tool",
    "function": "tool",
    "ipython": "tool",
}
_PROMPT_KEYS = ("input", "question", "query", "prompt", "message")
_NAME_LENGTH = 200


class NotOtlp(ValueError):
    """The body is not an OTLP trace export request in the encoding it claims."""


# --- the wire ----------------------------------------------------------------------------------


def decode_request(body: bytes, *, json: bool) -> ExportTraceServiceRequest:
    """An `ExportTraceServiceRequest` from its protobuf or OTLP/JSON encoding, or NotOtlp."""
    try:
        if not json:
            return ExportTraceServiceRequest.FromString(body)
        parsed = orjson.loads(body)
        if not isinstance(parsed, dict):
            raise NotOtlp("The body must be a JSON object (an ExportTraceServiceRequest).")
        return json_format.ParseDict(
            _ids_as_base64(parsed), ExportTraceServiceRequest(), ignore_unknown_fields=True
        )
    except (DecodeError, json_format.ParseError, orjson.JSONDecodeError, RecursionError) as error:
        raise NotOtlp(f"The body is not an OTLP ExportTraceServiceRequest: {error}") from error


def _ids_as_base64(body: dict[str, Any]) -> dict[str, Any]:
    """OTLP/JSON writes trace and span ids as hex, where protobuf's JSON mapping of `bytes`
    (what the parser reads) is base64: rewrite them. An id that is not hex becomes empty, so
    its span is refused with the others of malformed ids, not the whole request."""
    for resource_spans in _dicts(body.get("resourceSpans", body.get("resource_spans"))):
        for scope_spans in _dicts(
            resource_spans.get("scopeSpans", resource_spans.get("scope_spans"))
        ):
            for span in _dicts(scope_spans.get("spans")):
                _rewrite_ids(span)
                for link in _dicts(span.get("links")):
                    _rewrite_ids(link)
    return body


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _rewrite_ids(item: dict[str, Any]) -> None:
    for key in ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"):
        value = item.get(key)
        if isinstance(value, str):
            try:
                item[key] = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError:
                item[key] = ""


def encode_response(rejections: Counter[str], *, json: bool) -> bytes:
    """The `ExportTraceServiceResponse`: `partial_success` counts the refused spans and says
    why (the commonest reasons first)."""
    response = ExportTraceServiceResponse()
    if rejections:
        response.partial_success.rejected_spans = sum(rejections.values())
        reasons = [f"{n} span(s): {reason}" for reason, n in rejections.most_common(10)]
        if len(rejections) > 10:
            reasons.append(f"and {len(rejections) - 10} other reasons")
        response.partial_success.error_message = "; ".join(reasons)
    if json:
        return orjson.dumps(json_format.MessageToDict(response))
    return response.SerializeToString()


# --- one span ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    """What the platform keeps of one span until its trace's answer takes it in."""

    trace_id: str
    span_id: str
    parent_span_id: str  # "": the trace's root
    start: int  # nanoseconds since the epoch
    end: int
    stage: dict[str, Any] | None  # {kind, name, input, output}, or None: not a stage
    offers: dict[str, Any] = field(default_factory=dict)  # answer fields it can supply
    chain: bool = False  # CHAIN / AGENT / invoke_agent: speaks for the whole pipeline

    @property
    def data(self) -> dict[str, Any]:
        """What is stored of the span besides its ids."""
        return {
            "start": self.start,
            "end": self.end,
            "stage": self.stage,
            "offers": self.offers,
            "chain": self.chain,
        }

    @classmethod
    def stored(
        cls, trace_id: str, span_id: str, parent_span_id: str, data: Mapping[str, Any]
    ) -> Span:
        return cls(trace_id, span_id, parent_span_id, **data)


def spans_of(request: ExportTraceServiceRequest) -> tuple[list[Span], Counter[str]]:
    """Every span of the request as a `Span`, and the refused ones counted by reason."""
    spans: list[Span] = []
    refused: Counter[str] = Counter()
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for otlp_span in scope_spans.spans:
                mapped = span_of(otlp_span)
                if isinstance(mapped, Span):
                    spans.append(mapped)
                else:
                    refused[mapped] += 1
    return spans, refused


def span_of(otlp_span: OtlpSpan) -> Span | str:
    """One OTLP span as a `Span`, or the reason it is refused."""
    ids = (otlp_span.trace_id, otlp_span.span_id, otlp_span.parent_span_id)
    if (
        len(ids[0]) != 16
        or len(ids[1]) != 8
        or len(ids[2]) not in (0, 8)
        or not any(ids[0])
        or not any(ids[1])
    ):
        return BAD_IDS
    trace_id, span_id, parent_span_id = (binascii.hexlify(i).decode() for i in ids)
    if parent_span_id == "0" * 16:
        parent_span_id = ""
    attributes = {kv.key: _value(kv.value) for kv in otlp_span.attributes}
    is_root = not parent_span_id
    kind, chain = _stage_kind(attributes, otlp_span.name, is_root=is_root)
    if kind is None and not chain and not is_root and not _follows_a_convention(attributes):
        return NOT_MAPPED
    start, end = otlp_span.start_time_unix_nano, otlp_span.end_time_unix_nano
    stage = None
    if kind is not None:
        stage = {
            "kind": kind,
            "name": otlp_span.name[:_NAME_LENGTH],
            **_stage_content(kind, attributes, otlp_span.name),
        }
        stage["input"]["span"] = _span_facts(span_id, start, end, otlp_span.status)
        checked = validate_stage(stage, position=0, parent=None)
        if isinstance(checked, dict):
            field_path, messages = next(iter(checked.items()))
            return f"a {kind} stage with {field_path}: {messages[0]}"
    offers = _offers(attributes, kind=kind, chain=chain or is_root)
    if is_root:
        offers |= _root_offers(attributes, trace_id=trace_id, end=end)
    return Span(trace_id, span_id, parent_span_id, start, end, stage, offers, chain)


def _follows_a_convention(attributes: Mapping[str, Any]) -> bool:
    return any(
        key in attributes
        for key in ("openinference.span.kind", "gen_ai.operation.name", "feedback.stage_kind")
    )


def _stage_kind(
    attributes: Mapping[str, Any], name: str, *, is_root: bool
) -> tuple[str | None, bool]:
    """(the stage kind or None, whether the span speaks for the whole pipeline)."""
    openinference = str(attributes.get("openinference.span.kind") or "").upper()
    operation = str(attributes.get("gen_ai.operation.name") or "")
    chain = openinference in _CHAIN_KINDS or operation == "invoke_agent"
    if is_root:
        return None, chain
    forced = attributes.get("feedback.stage_kind")
    if forced in STAGE_KINDS:
        return str(forced), chain
    kind = _OPENINFERENCE_STAGES.get(openinference) or _GENAI_STAGES.get(operation)
    may_decompose = kind == "generation" or (kind is None and openinference == "CHAIN")
    if may_decompose and _decomposition_output(attributes, name) is not None:
        return "decomposition", chain
    return kind, chain


def _decomposition_output(attributes: Mapping[str, Any], name: str) -> list[str] | None:
    """The sub-queries of a span that decomposes or rewrites the question, else None."""
    text = _output_text(attributes)
    parsed = _parsed(text)
    if isinstance(parsed, list) and parsed and all(isinstance(q, str) for q in parsed):
        return parsed
    if _DECOMPOSITION_NAME.search(name) and isinstance(text, str) and text.strip():
        return [line.strip() for line in text.splitlines() if line.strip()]
    return None


def _stage_content(kind: str, attributes: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The stage's input and output, in the shapes the answers API takes for its kind."""
    value_in, value_out = attributes.get("input.value"), attributes.get("output.value")
    if kind == "retrieval":
        return {
            "input": _without_none({"query": value_in}),
            "output": {"documents": _documents(attributes, "retrieval.documents")},
        }
    if kind == "rerank":
        query = attributes.get("reranker.query", value_in)
        before = [d["id"] for d in _documents(attributes, "reranker.input_documents")]
        return {
            "input": _without_none(
                {
                    "query": query,
                    "documents": before or None,
                    "model": attributes.get("reranker.model_name"),
                    "top_k": attributes.get("reranker.top_k"),
                }
            ),
            "output": {"documents": _documents(attributes, "reranker.output_documents")},
        }
    if kind == "generation":
        return {
            "input": _without_none(
                {
                    "messages": _input_messages(attributes),
                    "model": _model(attributes),
                    "tokens": _tokens(attributes),
                }
            ),
            "output": {"text": _output_text(attributes) or ""},
        }
    if kind == "decomposition":
        return {
            "input": _without_none({"question": value_in}),
            "output": {"subqueries": _decomposition_output(attributes, name) or []},
        }
    if kind == "tool":
        parameters = attributes.get("gen_ai.tool.call.arguments", attributes.get("tool.parameters"))
        result = attributes.get("gen_ai.tool.call.result", value_out)
        return {
            "input": _without_none(
                {
                    "name": attributes.get("gen_ai.tool.name", attributes.get("tool.name")),
                    "call_id": attributes.get("gen_ai.tool.call.id"),
                    "parameters": _parsed(parameters if parameters is not None else value_in),
                }
            ),
            "output": _without_none({"result": _parsed(result)}),
        }
    return {
        "input": _without_none({"value": _parsed(value_in)}),
        "output": _without_none({"value": _parsed(value_out)}),
    }


def _span_facts(span_id: str, start: int, end: int, status: Status) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "span_id": span_id,
        "start": _iso(start),
        "end": _iso(end),
        "latency_ms": round((end - start) / 1e6, 3) if end >= start else None,
        "status": {Status.STATUS_CODE_OK: "ok", Status.STATUS_CODE_ERROR: "error"}.get(
            status.code, "unset"
        ),
    }
    if status.message:
        facts["status_message"] = status.message
    return facts


def _offers(attributes: Mapping[str, Any], *, kind: str | None, chain: bool) -> dict[str, Any]:
    """The answer fields this span can supply (which span's win is `answer_payload`'s rule)."""
    offers: dict[str, Any] = {}
    if chain or kind == "generation":
        offers["prompt"] = _prompt(attributes)
        offers["response"] = _output_text(attributes)
        offers["model"] = _model(attributes)
    conversation = attributes.get("session.id", attributes.get("gen_ai.conversation.id"))
    if isinstance(conversation, str) and conversation:
        offers["conversation"] = conversation
    user = attributes.get("user.id")
    if isinstance(user, str) and user:
        offers["user_ref"] = user
    return _without_none(offers)


def _root_offers(attributes: Mapping[str, Any], *, trace_id: str, end: int) -> dict[str, Any]:
    metadata = _parsed(attributes.get("metadata"))
    offers: dict[str, Any] = {
        "external_id": str(attributes.get("feedback.external_id") or trace_id),
        "metadata": {
            **(metadata if isinstance(metadata, dict) else {}),
            "otel": {"trace_id": trace_id},
        },
    }
    if end:
        offers["created_at"] = end
    return offers


# --- attributes --------------------------------------------------------------------------------


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, which) if which else None


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _parsed(value: Any) -> Any:
    """A JSON string's value (instrumentations flatten objects to JSON strings), else as is."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _indexed(attributes: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """OpenInference flattens lists: `prefix.{i}.rest` → [{rest: value}, ...] in index order."""
    items: dict[int, dict[str, Any]] = {}
    start = prefix + "."
    for key, value in attributes.items():
        if not key.startswith(start):
            continue
        index, _, rest = key[len(start) :].partition(".")
        if index.isdigit() and rest:
            items.setdefault(int(index), {})[rest] = value
    return [items[i] for i in sorted(items)]


def _documents(attributes: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    documents = []
    for item in _indexed(attributes, prefix):
        text = item.get("document.content")
        text = text if isinstance(text, str) else ""
        doc_id = item.get("document.id")
        if doc_id is None or doc_id == "":
            doc_id = "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]
        document: dict[str, Any] = {"id": str(doc_id), "text": text}
        score = item.get("document.score")
        if isinstance(score, int | float) and not isinstance(score, bool):
            document["score"] = score
        metadata = _parsed(item.get("document.metadata"))
        if isinstance(metadata, dict):
            for key in ("title", "url"):
                if isinstance(metadata.get(key), str):
                    document[key] = metadata[key]
        if metadata is not None:
            document["metadata"] = metadata
        documents.append(document)
    return documents


def _model(attributes: Mapping[str, Any]) -> str | None:
    for key in ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name"):
        if isinstance(attributes.get(key), str) and attributes[key]:
            return str(attributes[key])
    return None


def _tokens(attributes: Mapping[str, Any]) -> dict[str, int] | None:
    tokens = {
        "prompt": attributes.get(
            "llm.token_count.prompt", attributes.get("gen_ai.usage.input_tokens")
        ),
        "completion": attributes.get(
            "llm.token_count.completion", attributes.get("gen_ai.usage.output_tokens")
        ),
        "total": attributes.get("llm.token_count.total"),
    }
    counted = {k: v for k, v in tokens.items() if isinstance(v, int) and not isinstance(v, bool)}
    return counted or None


def _message(role: Any, content: Any) -> dict[str, str]:
    return {
        "role": _ROLES.get(str(role).lower(), "user"),
        "content": content if isinstance(content, str) else "",
    }


def _parts_text(parts: Any) -> str:
    """The text of GenAI message parts (`[{"type": "text", "content": ...}, ...]`)."""
    if isinstance(parts, str):
        return parts
    if not isinstance(parts, list):
        return ""
    return "\n".join(
        str(p.get("content"))
        for p in parts
        if isinstance(p, dict) and p.get("type") == "text" and p.get("content") is not None
    )


def _openinference_messages(attributes: Mapping[str, Any], prefix: str) -> list[dict[str, str]]:
    messages = []
    for item in _indexed(attributes, prefix):
        content = item.get("message.content")
        if content is None:  # multi-part: message.contents.{j}.message_content.text
            parts = _indexed(item, "message.contents")
            content = "\n".join(
                str(p["message_content.text"]) for p in parts if "message_content.text" in p
            )
        messages.append(_message(item.get("message.role", "user"), content))
    return messages


def _genai_messages(value: Any) -> list[dict[str, str]]:
    parsed = _parsed(value)
    if not isinstance(parsed, list):
        return []
    return [
        _message(m.get("role", "user"), m.get("content", _parts_text(m.get("parts"))))
        for m in parsed
        if isinstance(m, dict)
    ]


def _input_messages(attributes: Mapping[str, Any]) -> list[dict[str, str]] | None:
    messages = _openinference_messages(attributes, "llm.input_messages")
    if not messages and "gen_ai.input.messages" in attributes:
        messages = _genai_messages(attributes["gen_ai.input.messages"])
        instructions = _parts_text(_parsed(attributes.get("gen_ai.system_instructions")))
        if instructions:
            messages.insert(0, {"role": "system", "content": instructions})
    return messages or None


def _output_text(attributes: Mapping[str, Any]) -> str | None:
    messages = _openinference_messages(attributes, "llm.output_messages")
    if not messages and "gen_ai.output.messages" in attributes:
        messages = _genai_messages(attributes["gen_ai.output.messages"])
    if messages:
        return "\n".join(m["content"] for m in messages if m["content"])
    value = attributes.get("output.value")
    return _text_of(value) if value is not None else None


def _text_of(value: Any) -> str | None:
    """A value as text: a JSON object's `input` / `output` / ... text, else the value."""
    parsed = _parsed(value)
    if isinstance(parsed, dict):
        for key in (*_PROMPT_KEYS, "output", "answer", "response", "result"):
            if isinstance(parsed.get(key), str):
                return str(parsed[key])
    return value if isinstance(value, str) else None


def _prompt(attributes: Mapping[str, Any]) -> str | list[dict[str, str]] | None:
    messages = _input_messages(attributes)
    if messages:
        return messages
    value = attributes.get("input.value")
    parsed = _parsed(value)
    if isinstance(parsed, list) and parsed and all(isinstance(m, dict) for m in parsed):
        return _genai_messages(parsed) or None
    text = _text_of(value)
    return text if text and text.strip() else None


def _iso(nanoseconds: int) -> str:
    return datetime.fromtimestamp(nanoseconds / 1e9, tz=UTC).isoformat()


# --- a trace -----------------------------------------------------------------------------------


def stages_placed(
    spans: Iterable[Span], *, links: Mapping[str, tuple[str, int | None]], first_position: int
) -> tuple[list[tuple[Span, dict[str, Any]]], list[Span]]:
    """The stages of `spans` (those that are stages) in start order from `first_position`,
    each with `position` and `parent`, the position of its nearest ancestor that is a stage;
    and the spans left out because the answer would hold more than MAX_STAGES stages.

    `links` maps every span of the trace the platform has (these too) to its parent span id and
    its stage position if it already is one."""
    positions = {span_id: position for span_id, (_, position) in links.items()}

    def depth(span: Span) -> int:
        found, parent, seen = 0, span.parent_span_id, {span.span_id}
        while parent in links and parent not in seen:
            seen.add(parent)
            found, parent = found + 1, links[parent][0]
        return found

    staged = sorted(
        (s for s in spans if s.stage is not None), key=lambda s: (s.start, depth(s), s.span_id)
    )
    placed: list[tuple[Span, dict[str, Any]]] = []
    over: list[Span] = []
    for span in staged:
        position = first_position + len(placed)
        if position >= MAX_STAGES:
            over.append(span)
            continue
        positions[span.span_id] = position
        parent = _nearest_stage(span, position, links, positions)
        assert span.stage is not None
        placed.append((span, {**span.stage, "position": position, "parent": parent}))
    return placed, over


def _nearest_stage(
    span: Span,
    position: int,
    links: Mapping[str, tuple[str, int | None]],
    positions: Mapping[str, int | None],
) -> int | None:
    parent, seen = span.parent_span_id, {span.span_id}
    while parent in links and parent not in seen:
        seen.add(parent)
        ancestor = positions.get(parent)
        if ancestor is not None:
            # An ancestor that started after its child (clocks of two processes) can't be the
            # parent: a stage's parent comes before it.
            return ancestor if ancestor < position else None
        parent = links[parent][0]
    return None


def model_of(spans: Iterable[Span]) -> str | None:
    """The model of the first generation that names one: the answer's, when the root names
    none (an answer made before any generation arrived takes it from the first that does)."""
    generations = (s for s in spans if s.stage is not None and s.stage["kind"] == "generation")
    return next(
        (s.offers["model"] for s in sorted(generations, key=_by_start) if "model" in s.offers),
        None,
    )


def _by_start(span: Span) -> tuple[int, str]:
    return span.start, span.span_id


def answer_payload(
    root: Span, spans: Sequence[Span], *, now: datetime
) -> tuple[dict[str, Any], list[tuple[Span, dict[str, Any]]], list[Span]] | None:
    """The answers-API payload of a trace whose root span is `root` (`spans`: the others),
    the spans placed as its stages, and those left out over MAX_STAGES; None while no span
    gives a prompt."""
    by_start = sorted(spans, key=_by_start)
    chains = [s for s in by_start if s.chain]
    generations = [s for s in by_start if s.stage is not None and s.stage["kind"] == "generation"]
    prompt_from = [root, *chains, *generations]
    response_from = [root, *chains, *sorted(generations, key=lambda s: -s.end)]
    everyone = [root, *by_start]

    def first(field_name: str, candidates: Sequence[Span]) -> Any:
        return next((s.offers[field_name] for s in candidates if field_name in s.offers), None)

    prompt = first("prompt", prompt_from)
    if prompt is None:
        return None
    links = {s.span_id: (s.parent_span_id, None) for s in everyone}
    placed, over = stages_placed(by_start, links=links, first_position=0)
    payload: dict[str, Any] = {
        "external_id": root.offers.get("external_id", root.trace_id),
        "prompt": prompt,
        "response": first("response", response_from) or "",
        "model": root.offers.get("model") or model_of(spans) or UNKNOWN_MODEL,
        "conversation": first("conversation", everyone),
        "user_ref": first("user_ref", everyone),
        "metadata": root.offers.get("metadata", {}),
        "trace": [stage for _, stage in placed],
    }
    ended = root.offers.get("created_at")
    if ended:
        created = datetime.fromtimestamp(ended / 1e9, tz=UTC)
        if EARLIEST <= created <= now + CLOCK_SKEW:  # a clock gone wrong: stamped on arrival
            payload["created_at"] = created.isoformat()
    return payload, placed, over
