"""Validation of debug-mode corrections, one rule set per action. Pure: the stage arrives as
its kind and output, so these functions run on plain data.

Shapes (`before` is what the stage showed, `after` the correction):
- subquery_add: after {"text", "position"?} (its place in the corrected list; else appended);
  subquery_remove: before {"index", "text"};
  subquery_edit: before {"index", "text"}, after {"text"};
  subquery_reorder: after {"order": [sub-queries]}, the same sub-queries in a new order
- doc_relevance: after {"doc_id", "relevance": relevant | partial | irrelevant}
- doc_rerank: after {"order": [doc ids]}, the same documents in a new order
- doc_add: after {"title", "text", "url"?}
- answer_edit: after {"text"}; claim_flag: after {"span", "reason"}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from feedback.core.validators import url_problem

RELEVANCE = ("relevant", "partial", "irrelevant")
MAX_TEXT = 200_000
STAGE_KINDS = {
    "subquery_add": ("decomposition",),
    "subquery_remove": ("decomposition",),
    "subquery_edit": ("decomposition",),
    "subquery_reorder": ("decomposition",),
    "doc_relevance": ("retrieval", "rerank"),
    "doc_rerank": ("retrieval", "rerank"),
    "doc_add": ("retrieval", "rerank"),
    "answer_edit": ("generation", None),
    "claim_flag": ("generation", None),
}
ACTIONS = tuple(STAGE_KINDS)


@dataclass(frozen=True, slots=True)
class StageView:
    kind: str
    output: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ValidChange:
    action: str
    before: dict[str, Any]
    after: dict[str, Any]


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip() and len(value) <= MAX_TEXT and "\x00" not in value:
        return value.strip()
    return None


def validate_change(
    change: Any, *, stage: StageView | None, response: str
) -> ValidChange | dict[str, list[str]]:
    """One correction → a ValidChange, or errors keyed by field. `stage` is None for an answer
    without a trace (only answer_edit and claim_flag apply then)."""
    if not isinstance(change, dict):
        return {"non_field_errors": ["Each change must be an object."]}
    action = change.get("action")
    if action not in STAGE_KINDS:
        return {"action": [f"Must be one of: {', '.join(ACTIONS)}."]}
    if (stage.kind if stage else None) not in STAGE_KINDS[action]:
        return {
            "stage": [f"{action} applies to a {' or '.join(map(str, STAGE_KINDS[action]))} stage."]
        }
    raw_after = change.get("after")
    after: dict[str, Any] = raw_after if isinstance(raw_after, dict) else {}
    output = stage.output if stage else {}
    subqueries = [q for q in output.get("subqueries", []) if isinstance(q, str)]
    doc_ids = [d.get("id") for d in output.get("documents", []) if isinstance(d, dict)]

    if action == "subquery_add":
        text = _text(after.get("text"))
        if text is None:
            return {"after.text": ["Must be a non-empty sub-query."]}
        position = after.get("position")
        if position is None:
            return ValidChange(action, {}, {"text": text})
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            return {"after.position": ["Must be the new sub-query's place, counted from 0."]}
        return ValidChange(action, {}, {"text": text, "position": position})
    if action in ("subquery_remove", "subquery_edit"):
        index = change.get("index")
        if (
            isinstance(index, bool)
            or not isinstance(index, int)
            or not 0 <= index < len(subqueries)
        ):
            return {"index": ["Must be the position of one of the stage's sub-queries."]}
        before = {"index": index, "text": subqueries[index]}
        if action == "subquery_remove":
            return ValidChange(action, before, {})
        text = _text(after.get("text"))
        if text is None:
            return {"after.text": ["Must be a non-empty sub-query."]}
        return ValidChange(action, before, {"text": text})
    if action in ("subquery_reorder", "doc_rerank"):
        current = subqueries if action == "subquery_reorder" else doc_ids
        order = after.get("order")
        if not isinstance(order, list) or sorted(map(str, order)) != sorted(map(str, current)):
            return {"after.order": ["Must list the stage's items, each once, in the new order."]}
        return ValidChange(action, {"order": current}, {"order": order})
    if action == "doc_relevance":
        if after.get("doc_id") not in doc_ids:
            return {"after.doc_id": ["Must be the id of one of the stage's documents."]}
        if after.get("relevance") not in RELEVANCE:
            return {"after.relevance": [f"Must be one of: {', '.join(RELEVANCE)}."]}
        return ValidChange(action, {}, {"doc_id": after["doc_id"], "relevance": after["relevance"]})
    if action == "doc_add":
        title, text = _text(after.get("title")), _text(after.get("text"))
        errors = {}
        if title is None:
            errors["after.title"] = ["Must not be blank."]
        if text is None:
            errors["after.text"] = ["Must not be blank."]
        url = after.get("url") or ""
        if not isinstance(url, str):
            errors["after.url"] = ["Must be an http(s) URL."]
        elif url and (problem := url_problem(url)):
            # Debug mode shows it as the document's link: refuse what a click would run.
            errors["after.url"] = [problem]
        if title and any(d.get("title") == title for d in output.get("documents", [])):
            errors["after.title"] = ["The stage already has a document with this title."]
        if errors:
            return errors
        return ValidChange(action, {}, {"title": title, "text": text, "url": url})
    if action == "answer_edit":
        text = _text(after.get("text"))
        if text is None:
            return {"after.text": ["The corrected answer must not be blank."]}
        original = output.get("text", response) if stage else response
        if text == original.strip():
            return {"after.text": ["The corrected answer is the same as the original."]}
        return ValidChange(action, {"text": original}, {"text": text})
    # claim_flag
    span, reason = _text(after.get("span")), _text(after.get("reason"))
    original = output.get("text", response) if stage else response
    if span is None or span not in original:
        return {"after.span": ["Must be a passage of the answer."]}
    if reason is None:
        return {"after.reason": ["Say why the passage is unsupported or wrong."]}
    return ValidChange(action, {}, {"span": span, "reason": reason})
