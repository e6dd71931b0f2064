"""What an annotator's corrections make of a stage, and which corrections a debug form holds.

Pure functions over plain data, used by the debug page, the re-run service and their tests.

How corrections add up, per stage kind (an annotator's own corrections only):
- decomposition: each save is a snapshot of the whole corrected list, expressed against the
  system's sub-queries (reorder, edits and removals by original position, additions at their
  place in the corrected list).
  The annotator's newest save on the stage is the corrected list.
- retrieval / rerank: the newest relevance per document and the newest order win; documents the
  annotator added are appended; documents judged irrelevant are dropped from what a re-run sees.
- generation: the newest answer edit is the corrected answer; flagged passages accumulate.

The form side (`*_changes`) compares what the annotator submitted with what the page showed and
returns raw change dicts in the shape `feedback.interventions.validate_change` checks, so the
page, the API and re-saves of an unchanged form all go through one validation and create nothing
twice.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

RELEVANCE_LABELS = {
    "relevant": "Relevant",
    "partial": "Partly relevant",
    "irrelevant": "Irrelevant",
}


@dataclass(frozen=True, slots=True)
class Correction:
    """One stored intervention as these functions need it (oldest first in every list)."""

    action: str
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    saved_at: Any = None  # corrections saved together share this value


@dataclass(frozen=True, slots=True)
class SubqueryRow:
    origin: int | None  # position among the system's sub-queries; None for an added one
    text: str


@dataclass(slots=True)
class DocumentRow:
    id: str
    title: str
    text: str
    url: str = ""
    score: float | None = None
    relevance: str | None = None
    added: bool = False

    def as_trace_document(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "text": self.text, "url": self.url} | (
            {"score": self.score} if self.score is not None else {}
        )


@dataclass(slots=True)
class AnswerState:
    text: str
    flags: list[dict[str, str]] = field(default_factory=list)


def _newest_save(corrections: Sequence[Correction]) -> list[Correction]:
    if not corrections:
        return []
    newest = corrections[-1].saved_at
    return [c for c in corrections if c.saved_at == newest]


def corrected_subqueries(
    subqueries: Sequence[str], corrections: Sequence[Correction]
) -> list[SubqueryRow]:
    rows = [SubqueryRow(i, text) for i, text in enumerate(subqueries)]
    save = _newest_save([c for c in corrections if c.action.startswith("subquery_")])
    for c in save:
        if c.action == "subquery_reorder":
            # The order lists texts; map each back to the first unused original position.
            unused = list(rows)
            ordered = []
            for text in c.after.get("order", []):
                match = next((r for r in unused if r.text == text), None)
                if match is not None:
                    unused.remove(match)
                    ordered.append(match)
            rows = ordered + unused
    edits = {c.before.get("index"): c.after["text"] for c in save if c.action == "subquery_edit"}
    removed = {c.before.get("index") for c in save if c.action == "subquery_remove"}
    rows = [
        SubqueryRow(r.origin, edits.get(r.origin, r.text)) for r in rows if r.origin not in removed
    ]
    additions = [c.after for c in save if c.action == "subquery_add"]
    for added in sorted(additions, key=lambda a: a.get("position", len(subqueries) + len(rows))):
        rows.insert(added.get("position", len(rows)), SubqueryRow(None, added["text"]))
    return rows


def corrected_documents(
    documents: Sequence[Mapping[str, Any]], corrections: Sequence[Correction]
) -> list[DocumentRow]:
    rows = [
        DocumentRow(
            id=str(d.get("id", "")),
            title=str(d.get("title") or d.get("id") or ""),
            text=str(d.get("text", "")),
            url=str(d.get("url") or ""),
            score=d.get("score"),
        )
        for d in documents
    ]
    added = 0
    for c in corrections:
        if c.action == "doc_add":
            added += 1
            rows.append(
                DocumentRow(
                    id=f"added-{added}",
                    title=c.after["title"],
                    text=c.after["text"],
                    url=c.after.get("url", ""),
                    added=True,
                )
            )
    by_id = {r.id: r for r in rows}
    for c in corrections:
        if c.action == "doc_relevance" and c.after.get("doc_id") in by_id:
            by_id[c.after["doc_id"]].relevance = c.after["relevance"]
    reorders = [c for c in corrections if c.action == "doc_rerank"]
    if reorders:
        order = [str(i) for i in reorders[-1].after.get("order", [])]
        rank = {doc_id: i for i, doc_id in enumerate(order)}
        rows.sort(key=lambda r: rank.get(r.id, len(order)))  # stable: added ones stay last
    return rows


def corrected_answer(text: str, corrections: Sequence[Correction]) -> AnswerState:
    state = AnswerState(text)
    for c in corrections:
        if c.action == "answer_edit":
            state.text = c.after["text"]
        elif c.action == "claim_flag":
            flag = {"span": c.after["span"], "reason": c.after["reason"]}
            if flag not in state.flags:
                state.flags.append(flag)
    return state


def corrected_output(
    kind: str, output: Mapping[str, Any], corrections: Sequence[Correction]
) -> dict[str, Any]:
    """The stage's output as the annotator corrected it: what a re-run starts from."""
    if kind == "decomposition":
        subqueries = [q for q in output.get("subqueries", []) if isinstance(q, str)]
        return {"subqueries": [r.text for r in corrected_subqueries(subqueries, corrections)]}
    if kind in ("retrieval", "rerank"):
        documents = [d for d in output.get("documents", []) if isinstance(d, dict)]
        kept = corrected_documents(documents, corrections)
        return {"documents": [r.as_trace_document() for r in kept if r.relevance != "irrelevant"]}
    if kind == "generation":
        return {"text": corrected_answer(str(output.get("text", "")), corrections).text}
    return dict(output)


# The form side. `form` maps a field name to every value submitted under it, in page order
# (what QueryDict.getlist gives); names are prefixed per stage by the page.


def form_index(value: str) -> int | None:
    """An index the page posted ("3"), or None for anything else ("new", "", "\u00b2": a digit
    to str.isdigit() that int() refuses)."""
    return int(value) if value.isascii() and value.isdigit() else None


def subquery_changes(
    position: int,
    subqueries: Sequence[str],
    current: Sequence[SubqueryRow],
    form: Mapping[str, Sequence[str]],
    prefix: str,
) -> list[dict[str, Any]]:
    """A full snapshot of the submitted list against the system's, or nothing when the
    submitted list is the one the page showed."""
    texts = list(form.get(f"{prefix}subquery", []))
    origins = list(form.get(f"{prefix}origin", []))
    if len(origins) != len(texts):
        origins = (origins + ["new"] * len(texts))[: len(texts)]
    submitted: list[SubqueryRow] = []
    for origin, text in zip(origins, texts, strict=True):
        index = form_index(origin)
        index = index if index is not None and index < len(subqueries) else None
        submitted.append(SubqueryRow(index, text.strip()))
    if [(r.origin, r.text) for r in submitted] == [(r.origin, r.text) for r in current]:
        return []
    if [(r.origin, r.text) for r in submitted] == list(enumerate(subqueries)):
        return []  # back to the system's list: nothing to correct
    changes: list[dict[str, Any]] = []
    kept = [r for r in submitted if r.origin is not None]
    kept_origins = [r.origin for r in submitted if r.origin is not None]
    if kept_origins != sorted(kept_origins):
        order = [subqueries[i] for i in kept_origins]
        order += [q for i, q in enumerate(subqueries) if i not in kept_origins]
        changes.append({"stage": position, "action": "subquery_reorder", "after": {"order": order}})
    for r in kept:
        if r.origin is not None and r.text != subqueries[r.origin]:
            changes.append(
                {
                    "stage": position,
                    "action": "subquery_edit",
                    "index": r.origin,
                    "after": {"text": r.text},
                }
            )
    for i in range(len(subqueries)):
        if i not in kept_origins:
            changes.append({"stage": position, "action": "subquery_remove", "index": i})
    for place, r in enumerate(submitted):
        if r.origin is None:
            changes.append(
                {
                    "stage": position,
                    "action": "subquery_add",
                    "after": {"text": r.text, "position": place},
                }
            )
    return changes


def document_changes(
    position: int,
    current: Sequence[DocumentRow],
    form: Mapping[str, Sequence[str]],
    prefix: str,
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Relevance judgments that differ from the shown ones, a new order if the shown one
    changed, and documents added in the form's "missing document" fields; plus errors for an
    added document that repeats one the stage already shows (the system's or an earlier
    addition)."""
    changes: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    shown_titles = {r.title.strip().casefold() for r in current}
    system = [r for r in current if not r.added]
    for row in system:
        values = form.get(f"{prefix}rel-{row.id}", [])
        if values and values[-1] != (row.relevance or ""):
            changes.append(
                {
                    "stage": position,
                    "action": "doc_relevance",
                    "after": {"doc_id": row.id, "relevance": values[-1]},
                }
            )
    order = [doc_id for doc_id in form.get(f"{prefix}doc-order", []) if doc_id]
    if order and order != [r.id for r in system]:
        changes.append({"stage": position, "action": "doc_rerank", "after": {"order": order}})
    titles = form.get(f"{prefix}add-title", [])
    texts = form.get(f"{prefix}add-text", [])
    urls = form.get(f"{prefix}add-url", [])
    for i, title in enumerate(titles):
        text = texts[i] if i < len(texts) else ""
        url = urls[i] if i < len(urls) else ""
        if title.strip().casefold() in shown_titles:
            errors[f"{prefix}add-title"] = [f"The stage already has a document titled {title!r}."]
        elif title.strip() or text.strip() or url.strip():
            shown_titles.add(title.strip().casefold())
            changes.append(
                {
                    "stage": position,
                    "action": "doc_add",
                    "after": {"title": title, "text": text, "url": url.strip()},
                }
            )
    return changes, errors


def answer_changes(
    position: int | None,
    current: AnswerState,
    form: Mapping[str, Sequence[str]],
    prefix: str,
) -> list[dict[str, Any]]:
    """An answer edit when the corrected answer differs from the shown one, and every
    flagged passage not flagged before."""
    changes: list[dict[str, Any]] = []
    texts = form.get(f"{prefix}answer", [])
    if texts and texts[-1].replace("\r\n", "\n").strip() != current.text.strip():
        changes.append(
            {
                "stage": position,
                "action": "answer_edit",
                "after": {"text": texts[-1].replace("\r\n", "\n")},
            }
        )
    spans = form.get(f"{prefix}flag-span", [])
    reasons = form.get(f"{prefix}flag-reason", [])
    for i, span in enumerate(spans):
        reason = reasons[i] if i < len(reasons) else ""
        if not span.strip() and not reason.strip():
            continue
        flag = {"span": span.strip(), "reason": reason.strip()}
        if flag not in current.flags:
            changes.append({"stage": position, "action": "claim_flag", "after": flag})
    return changes


def word_diff(original: str, corrected: str) -> list[tuple[str, str]]:
    """The corrected answer against the original, word by word: ("equal" | "delete" |
    "insert", text) pieces in reading order, for the page to show as plain, <del> and <ins>."""
    a, b = re.findall(r"\S+\s*", original), re.findall(r"\S+\s*", corrected)
    pieces: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            pieces.append(("equal", "".join(a[i1:i2])))
            continue
        if op in ("delete", "replace"):
            pieces.append(("delete", "".join(a[i1:i2])))
        if op in ("insert", "replace"):
            pieces.append(("insert", "".join(b[j1:j2])))
    return pieces
