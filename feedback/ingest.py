"""Validation of answer payloads, shared by the ingestion API and `import_answers`.

Optional fields may be absent or null. Pure functions over parsed JSON, no ORM: each item
becomes either a `ValidAnswer` ready for a set-based insert, or a dict of error messages keyed
by the field's path (`trace[1].output.text`). This is the hot path of ingestion, so it is one
hand-written pass rather than a serializer per item; `feedback.schemas` documents exactly the
same shape for the OpenAPI schema.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from feedback.core.validators import bidi_problem, url_problem

MAX_ID_LENGTH = 255
MAX_MODEL_LENGTH = 200
MAX_TEXT_LENGTH = 200_000
MAX_MESSAGES = 500
MAX_STAGES = 100
MAX_DOCUMENTS = 1000
MESSAGE_ROLES = ("system", "user", "assistant", "tool")
STAGE_KINDS = ("decomposition", "retrieval", "rerank", "generation", "tool", "other")
# Clocks drift: a timestamp this far in the future is still accepted.
CLOCK_SKEW = timedelta(minutes=5)
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)

Errors = dict[str, list[str]]
NON_STAGE = "stage"  # the key of what is wrong with a stage as a whole
UNSTORABLE = "Must not contain NUL characters or nest deeper than 250 levels."
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class ValidStage:
    position: int
    kind: str
    name: str
    parent_position: int | None
    input_json: str
    output_json: str


@dataclass(frozen=True, slots=True)
class ValidAnswer:
    external_id: str
    conversation: str
    user_ref: str
    prompt_json: str
    prompt_hash: str
    response: str
    model: str
    model_version: str
    metadata_json: str
    created_at: datetime | None
    stages: tuple[ValidStage, ...]


def _json(value: Any) -> str | None:
    """Serialise for a JSON column; None when it can't be stored (a NUL character, which
    PostgreSQL refuses, or nesting deeper than the serialiser goes)."""
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError:
        return None
    if b"\\u0000" in encoded:
        return None
    return encoded.decode()


def _string(
    errors: Errors,
    field: str,
    value: Any,
    *,
    max_length: int,
    required: bool,
    allow_empty: bool = False,
) -> str:
    if value is None:
        if required:
            errors[field] = ["This field is required."]
        return ""
    if not isinstance(value, str):
        errors[field] = ["Must be a string."]
        return ""
    if not value.strip() and required and not allow_empty:
        errors[field] = ["Must not be blank."]
    elif len(value) > max_length:
        errors[field] = [f"Must be at most {max_length} characters."]
    elif "\x00" in value:
        errors[field] = ["Must not contain NUL characters."]
    return value


def _name(errors: Errors, field: str, value: Any, *, max_length: int, required: bool) -> str:
    """A name or id that pages show in lists: no characters that change how it displays."""
    text = _string(errors, field, value, max_length=max_length, required=required)
    if field not in errors and (problem := bidi_problem(text)):
        errors[field] = [problem]
    return text


def _identifier(errors: Errors, field: str, value: Any) -> str:
    """An id that also appears in URLs: no control characters, and shown as it is."""
    text = _name(errors, field, value, max_length=MAX_ID_LENGTH, required=True)
    if field not in errors and _CONTROL.search(text):
        errors[field] = ["Must not contain control characters (newlines, tabs, ...)."]
    return text


def _one_of(errors: Errors, field: str, value: Any, choices: tuple[str, ...]) -> str:
    if value in choices:
        return str(value)
    errors[field] = [f"Must be one of: {', '.join(choices)}."]
    return ""


def _objects(
    errors: Errors, path: str, value: Any, *, noun: str, limit: int, keys: str
) -> list[tuple[int, str, dict[str, Any]]]:
    """The objects of the list at `path`, each with its index and path. A value that is not a
    list of at most `limit` (`noun`) is an error of `path`; an item that is not an object (with
    `keys`, the ones that matter) is an error of that item."""
    if not isinstance(value, list):
        errors[path] = [f"Must be a list of {noun}."]
        return []
    if len(value) > limit:
        errors[path] = [f"Must contain at most {limit} {noun}."]
        return []
    objects = []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            objects.append((i, f"{path}[{i}]", item))
        else:
            errors[f"{path}[{i}]"] = [f"Must be an object with {keys}."]
    return objects


def parse_timestamp(
    value: Any, *, now: datetime | None, allow_future: bool = False
) -> tuple[datetime | None, str | None]:
    """An ISO 8601 time with a UTC offset, from 1900 on and, unless `allow_future`, not in the
    future. Returns (time, error)."""
    if not isinstance(value, str):
        return None, "Must be an ISO 8601 date-time string."
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            return None, "Must include a UTC offset, e.g. Z or +02:00."
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None, "Must be an ISO 8601 date-time such as 2026-01-31T12:00:00Z."
    if not EARLIEST <= parsed <= LATEST:
        return None, f"Must be between {EARLIEST.year} and {LATEST.year}."
    if not allow_future and now is not None and parsed > now + CLOCK_SKEW:
        return None, "Must not be in the future."
    return parsed, None


def _prompt(errors: Errors, value: Any) -> str:
    if value is None:
        errors["prompt"] = ["This field is required."]
        return ""
    if isinstance(value, str):
        _string(errors, "prompt", value, max_length=MAX_TEXT_LENGTH, required=True)
        messages: list[dict[str, Any]] = [{"role": "user", "content": value}]
    elif isinstance(value, list):
        if not value:
            errors["prompt"] = ["Must contain at least one message."]
            return ""
        messages = []
        for _, path, message in _objects(
            errors, "prompt", value, noun="messages", limit=MAX_MESSAGES, keys="role and content"
        ):
            role = _one_of(errors, f"{path}.role", message.get("role"), MESSAGE_ROLES)
            content = _string(
                errors,
                f"{path}.content",
                message.get("content"),
                max_length=MAX_TEXT_LENGTH,
                required=True,
                allow_empty=True,
            )
            messages.append({"role": role, "content": content})
    else:
        errors["prompt"] = ["Must be a string or a list of {role, content} messages."]
        return ""
    return orjson.dumps(messages).decode()


def prompt_digest(messages: list[dict[str, Any]]) -> str:
    """The `prompt_hash` of stored messages: the same bytes `validate_answer` hashes."""
    canonical = [{"role": m["role"], "content": m["content"]} for m in messages]
    return hashlib.sha256(orjson.dumps(canonical)).hexdigest()


def _documents_errors(errors: Errors, path: str, output: dict[str, Any]) -> None:
    documents = _objects(
        errors,
        f"{path}.documents",
        output.get("documents"),
        noun="documents",
        limit=MAX_DOCUMENTS,
        keys="id and text",
    )
    for _, doc_path, document in documents:
        doc_id = document.get("id")
        if not isinstance(doc_id, str) or not doc_id or len(doc_id) > MAX_ID_LENGTH:
            errors[f"{doc_path}.id"] = [f"Must be a non-empty string of at most {MAX_ID_LENGTH}."]
        if not isinstance(document.get("text"), str):
            errors[f"{doc_path}.text"] = ["Must be a string."]
        if not isinstance(document.get("title"), str | None):
            errors[f"{doc_path}.title"] = ["Must be a string."]
        url = document.get("url")
        if not isinstance(url, str | None):
            errors[f"{doc_path}.url"] = ["Must be a string."]
        elif url and (problem := url_problem(url)):
            # Pages render it as a link: only one a click can't turn into a script.
            errors[f"{doc_path}.url"] = [problem]
        score = document.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
            errors[f"{doc_path}.score"] = ["Must be a number."]


def _stage_output_errors(errors: Errors, path: str, kind: str, output: dict[str, Any]) -> None:
    """The per-kind shape of a stage's output: decomposition has `subqueries` (strings),
    retrieval and rerank have `documents`, generation has a `text`; tool and other stages can
    output any object."""
    if kind == "decomposition":
        subqueries = output.get("subqueries")
        if not isinstance(subqueries, list) or not all(isinstance(q, str) for q in subqueries):
            errors[f"{path}.subqueries"] = ["Must be a list of strings."]
    elif kind in ("retrieval", "rerank"):
        _documents_errors(errors, path, output)
    elif kind == "generation" and not isinstance(output.get("text"), str):
        errors[f"{path}.text"] = ["Must be a string."]


def _trace(errors: Errors, value: Any) -> tuple[ValidStage, ...]:
    if value is None:
        return ()
    stages: list[ValidStage] = []
    positions: set[int] = set()
    for i, path, stage in _objects(
        errors, "trace", value, noun="stages", limit=MAX_STAGES, keys="kind and output"
    ):
        kind = _one_of(errors, f"{path}.kind", stage.get("kind"), STAGE_KINDS)
        position = stage.get("position")
        if position is None:
            position = i
        if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < 2**31:
            errors[f"{path}.position"] = ["Must be a non-negative integer."]
            position = -1
        elif position in positions:
            errors[f"{path}.position"] = ["Must be unique within the trace."]
        positions.add(position)
        parent = stage.get("parent")
        if parent is not None and (
            isinstance(parent, bool) or not isinstance(parent, int) or not 0 <= parent < position
        ):
            errors[f"{path}.parent"] = ["Must be the position of an earlier stage."]
            parent = None
        name = _string(errors, f"{path}.name", stage.get("name"), max_length=200, required=False)
        stage_input = stage.get("input")
        if stage_input is None:
            stage_input = {}
        elif not isinstance(stage_input, dict):
            errors[f"{path}.input"] = ["Must be an object."]
            stage_input = {}
        output = stage.get("output")
        if not isinstance(output, dict):
            errors[f"{path}.output"] = ["Must be an object."]
            output = {}
        elif kind:
            _stage_output_errors(errors, f"{path}.output", kind, output)
        input_json, output_json = _json(stage_input), _json(output)
        if input_json is None:
            errors[f"{path}.input"] = [UNSTORABLE]
        if output_json is None:
            errors[f"{path}.output"] = [UNSTORABLE]
        stages.append(
            ValidStage(position, kind, name, parent, input_json or "{}", output_json or "{}")
        )
    # A parent must name a stage that exists, not just an earlier number.
    for i, valid in enumerate(stages):
        if valid.parent_position is not None and valid.parent_position not in positions:
            errors.setdefault(f"trace[{i}].parent", ["Must be the position of an earlier stage."])
    return tuple(stages)


def validate_stage(stage: Any, *, position: int, parent: int | None) -> ValidStage | Errors:
    """One stage on its own, checked as a stage of an answer's trace is, placed at `position`
    under `parent` (a stage added to an answer that exists); errors are keyed by the field's
    path within the stage (`output.documents[0].url`)."""
    errors: Errors = {}
    stages = _trace(
        errors, [{**stage, "position": 0, "parent": None}] if isinstance(stage, dict) else [stage]
    )
    if errors:
        return {
            key.removeprefix("trace[0]").removeprefix(".") or NON_STAGE: messages
            for key, messages in errors.items()
        }
    return replace(stages[0], position=position, parent_position=parent)


def validate_answer(item: Any, *, now: datetime) -> ValidAnswer | Errors:
    """One answer payload → a `ValidAnswer`, or the errors keyed by field path."""
    if not isinstance(item, dict):
        return {"non_field_errors": ["Each answer must be a JSON object."]}
    errors: Errors = {}
    external_id = _identifier(errors, "external_id", item.get("external_id"))
    prompt_json = _prompt(errors, item.get("prompt"))
    response = _string(
        errors,
        "response",
        item.get("response"),
        max_length=MAX_TEXT_LENGTH,
        required=True,
        allow_empty=True,
    )
    model = _name(errors, "model", item.get("model"), max_length=MAX_MODEL_LENGTH, required=True)
    model_version = _name(
        errors,
        "model_version",
        item.get("model_version"),
        max_length=MAX_MODEL_LENGTH,
        required=False,
    )
    conversation = _name(
        errors, "conversation", item.get("conversation"), max_length=MAX_ID_LENGTH, required=False
    )
    user_ref = _name(
        errors, "user_ref", item.get("user_ref"), max_length=MAX_ID_LENGTH, required=False
    )
    metadata = item.get("metadata")
    metadata_json: str | None = "{}"
    if metadata is not None:
        if not isinstance(metadata, dict):
            errors["metadata"] = ["Must be an object."]
        else:
            metadata_json = _json(metadata)
            if metadata_json is None:
                errors["metadata"] = [UNSTORABLE]
    created_at = None
    if item.get("created_at") is not None:
        created_at, error = parse_timestamp(item["created_at"], now=now)
        if error:
            errors["created_at"] = [error]
    stages = _trace(errors, item.get("trace"))
    if errors:
        return errors
    return ValidAnswer(
        external_id=external_id,
        conversation=conversation,
        user_ref=user_ref,
        prompt_json=prompt_json,
        prompt_hash=hashlib.sha256(prompt_json.encode()).hexdigest(),
        response=response,
        model=model,
        model_version=model_version,
        metadata_json=metadata_json or "{}",
        created_at=created_at,
        stages=stages,
    )
