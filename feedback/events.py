"""Validation of feedback events, shared by `POST /api/v1/feedback` and the pages.

Pure functions over parsed JSON, no ORM. What needs the database (does the answer exist, do two
answers share a prompt, is the viewer over a limit) is checked by `services.signals`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from feedback.core.validators import bidi_problem
from feedback.ingest import Errors, parse_timestamp

EVENT_TYPES = ("exposure", "reaction", "unreaction", "critique", "comparison", "followup")
WINNERS = ("a", "b", "tie", "both_bad")
OUTCOMES = ("solved", "partly", "not_solved")
MAX_ID_LENGTH = 255
MAX_CRITIQUE_LENGTH = 5000
MAX_CATEGORY_LENGTH = 64
MAX_SURFACE_LENGTH = 32
PAGE_VIEW_PREFIX = "view:"
"""How the event_id of an exposure a page records starts (`page_view_event_id`). Those ids are
made by the server, one per viewer, answer and exposure window, so a reload is a duplicate; a
client that could send one first would make the page's exposure a duplicate of its own, hiding
it or recording another answer in its place. Events from clients may not use it."""


def page_view_event_id(*, viewer: str, answer_id: int, window_start: int) -> str:
    return f"{PAGE_VIEW_PREFIX}{viewer}:{answer_id}:{window_start}"


@dataclass(frozen=True, slots=True)
class ValidEvent:
    event_id: str
    type: str
    answer: str  # external_id
    viewer: str
    at: datetime | None
    data: dict[str, Any] = field(default_factory=dict)


def _text(errors: Errors, name: str, value: Any, *, max_length: int, required: bool) -> str:
    if value is None or (value == "" and not required):
        if required:
            errors[name] = ["This field is required."]
        return ""
    if not isinstance(value, str):
        errors[name] = ["Must be a string."]
        return ""
    if required and not value.strip():
        errors[name] = ["Must not be blank."]
    elif len(value) > max_length:
        errors[name] = [f"Must be at most {max_length} characters."]
    elif "\x00" in value:
        errors[name] = ["Must not contain NUL characters."]
    return value.strip() if required else value


def _identifier(errors: Errors, name: str, value: Any) -> str:
    """An id or name people see in lists: shown as it is, so no bidi controls."""
    text = _text(errors, name, value, max_length=MAX_ID_LENGTH, required=True)
    if name not in errors and (problem := bidi_problem(text)):
        errors[name] = [problem]
    return text


def validate_event(
    item: Any,
    *,
    reactions: list[str],
    now: datetime,
    viewer: str | None = None,
    page_view: bool = False,
) -> ValidEvent | Errors:
    """One event → a `ValidEvent` or errors keyed by field. `viewer` is set by the server for
    browser events; API events name theirs in `user_ref`. Only a page's own exposure
    (`page_view`) may have an event_id that starts with PAGE_VIEW_PREFIX."""
    if not isinstance(item, dict):
        return {"non_field_errors": ["Each event must be a JSON object."]}
    errors: Errors = {}
    event_id = _identifier(errors, "event_id", item.get("event_id"))
    if event_id.startswith(PAGE_VIEW_PREFIX) and not page_view:
        errors["event_id"] = [
            f"Must not start with {PAGE_VIEW_PREFIX!r}: such ids name the exposures pages record."
        ]
    event_type = item.get("type")
    if event_type not in EVENT_TYPES:
        errors["type"] = [f"Unknown type; use one of: {', '.join(EVENT_TYPES)}."]
    answer = _identifier(errors, "answer", item.get("answer"))
    if viewer is None:
        viewer = _identifier(errors, "user_ref", item.get("user_ref"))
    at = None
    if item.get("at") is not None:
        at, error = parse_timestamp(item["at"], now=now)
        if error:
            errors["at"] = [error]

    data: dict[str, Any] = {}
    if event_type == "exposure":
        surface = _text(
            errors, "surface", item.get("surface"), max_length=MAX_SURFACE_LENGTH, required=False
        )
        data["surface"] = surface or "api"
    elif event_type in ("reaction", "unreaction"):
        reaction = item.get("reaction")
        if reaction is None:
            errors["reaction"] = ["This field is required."]
        elif isinstance(reaction, str) and (problem := bidi_problem(reaction)):
            errors["reaction"] = [problem]
        elif reaction not in reactions:
            errors["reaction"] = [
                f"Unknown reaction for this project; use one of: {', '.join(reactions)}."
            ]
        data["reaction"] = reaction
    elif event_type == "critique":
        data["text"] = _text(
            errors, "text", item.get("text"), max_length=MAX_CRITIQUE_LENGTH, required=True
        )
        data["quote"] = _text(
            errors, "quote", item.get("quote"), max_length=MAX_CRITIQUE_LENGTH, required=False
        )
        data["category"] = _text(
            errors,
            "category",
            item.get("category"),
            max_length=MAX_CATEGORY_LENGTH,
            required=False,
        )
    elif event_type == "comparison":
        data["other_answer"] = _identifier(errors, "other_answer", item.get("other_answer"))
        if item.get("winner") not in WINNERS:
            errors["winner"] = [f"Must be one of: {', '.join(WINNERS)}."]
        data["winner"] = item.get("winner")
        if data["other_answer"] and data["other_answer"] == answer:
            errors["other_answer"] = ["Must be a different answer."]
    elif event_type == "followup":
        if item.get("outcome") not in OUTCOMES:
            errors["outcome"] = [f"Must be one of: {', '.join(OUTCOMES)}."]
        data["outcome"] = item.get("outcome")
        data["text"] = _text(
            errors, "text", item.get("text"), max_length=MAX_CRITIQUE_LENGTH, required=False
        )
    if errors:
        return errors
    return ValidEvent(
        event_id=event_id, type=str(event_type), answer=answer, viewer=viewer, at=at, data=data
    )
