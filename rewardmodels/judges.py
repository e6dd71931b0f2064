"""LLM judges, the computation: what a judge is asked (messages and the JSON schema of its
reply), how its reply is checked, and how far it agrees with people. Plain data; no database.

A judge answers with structured output only, and its reply is checked against what it was
shown (a verdict is one of the project's reactions, a document id one that was shown), so a
reply that drifts is resampled by the generator client rather than stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from feedback.agreement import cohen_kappa, krippendorff_alpha

RELEVANCE = ("relevant", "partial", "irrelevant")
JUDGE_CODER = "judge"
MAX_TEXT = 4000  # characters of an answer or a document put in a prompt


@dataclass(frozen=True)
class Example:
    """One of the personalised viewer's own past judgments: shown to the judge as theirs."""

    prompt: str
    response: str
    reaction: str = ""
    critique: str = ""


@dataclass(frozen=True)
class Item:
    """What a judge is shown of one answer (and one stage, for the stage targets)."""

    prompt: str
    response: str
    documents: Sequence[Mapping[str, Any]] = ()
    subqueries: Sequence[str] = ()
    examples: Sequence[Example] = field(default_factory=tuple)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def messages(
    target: str, rubric: str, item: Item, *, reactions: Sequence[str]
) -> list[dict[str, str]]:
    """The chat messages for one judgment."""
    system = (
        "You judge the output of a search assistant by the rubric below. Answer with JSON only.\n\n"
        f"Rubric:\n{rubric}"
    )
    if item.examples:
        shown = "\n\n".join(
            f"Question: {_clip(e.prompt)}\nAnswer: {_clip(e.response)}\n"
            + (f"Their reaction: {e.reaction}\n" if e.reaction else "")
            + (f"Their critique: {e.critique}\n" if e.critique else "")
            for e in item.examples
        )
        system += (
            "\n\nYou speak for one particular user. These are judgments they gave before; "
            f"judge as they would.\n\n{shown}"
        )
    parts = [f"Question: {_clip(item.prompt)}"]
    if target == "answer":
        parts.append(f"Answer: {_clip(item.response)}")
        parts.append(
            "Give a verdict, one of: " + ", ".join(reactions) + "; and a one-paragraph critique."
        )
    elif target == "document_relevance":
        for doc in item.documents:
            title = f" ({doc.get('title')})" if doc.get("title") else ""
            parts.append(f"Document {doc['id']}{title}: {_clip(str(doc.get('text', '')))}")
        parts.append(
            "For every document, say whether it is relevant, partial (partly relevant) or "
            "irrelevant to the question."
        )
    else:
        parts.append("Sub-queries: " + "; ".join(item.subqueries))
        parts.append(
            "Give the corrected list of sub-queries that would best answer the question "
            "(the same list when it needs no change)."
        )
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]


def schema(target: str, *, reactions: Sequence[str]) -> dict[str, Any]:
    if target == "answer":
        properties: dict[str, Any] = {
            "verdict": {"type": "string", "enum": list(reactions)},
            "critique": {"type": "string"},
        }
    elif target == "document_relevance":
        properties = {
            "documents": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "relevance": {"type": "string", "enum": list(RELEVANCE)},
                    },
                    "required": ["id", "relevance"],
                    "additionalProperties": False,
                },
            }
        }
    else:
        properties = {"subqueries": {"type": "array", "items": {"type": "string"}}}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def check(target: str, reply: Any, item: Item, *, reactions: Sequence[str]) -> dict[str, Any]:
    """The reply, checked against what the judge was shown; ValueError naming what is wrong."""
    if not isinstance(reply, dict):
        raise ValueError("not an object")
    if target == "answer":
        verdict, critique = reply.get("verdict"), reply.get("critique")
        if verdict not in reactions:
            raise ValueError(f"verdict must be one of {', '.join(reactions)}")
        if not isinstance(critique, str):
            raise ValueError("critique must be text")
        return {"verdict": verdict, "critique": critique.strip()[:MAX_TEXT]}
    if target == "document_relevance":
        shown = {str(d["id"]) for d in item.documents}
        judged: dict[str, str] = {}
        for doc in reply.get("documents") or []:
            doc_id = str(doc.get("id")) if isinstance(doc, dict) else None
            if doc_id not in shown or doc.get("relevance") not in RELEVANCE:
                raise ValueError(
                    "each document must be one shown, with relevance " + " | ".join(RELEVANCE)
                )
            judged[doc_id] = doc["relevance"]
        if set(judged) != shown:
            raise ValueError("every document shown must be judged")
        return {"documents": judged}
    subqueries = reply.get("subqueries")
    if (
        not isinstance(subqueries, list)
        or not all(isinstance(s, str) and s.strip() for s in subqueries)
        or not subqueries
    ):
        raise ValueError("subqueries must be a non-empty list of non-empty texts")
    return {"subqueries": [s.strip() for s in subqueries]}


# --- agreement ---------------------------------------------------------------------------------


def relevance_agreement(units: Mapping[Any, Mapping[str, str]]) -> dict[str, Any]:
    """Document relevance: units (answer, document) -> {coder: label}, the judge's under
    JUDGE_CODER. Cohen's kappa of the judge against each annotator over the documents both
    labelled, and Krippendorff's alpha (nominal) with all of them."""
    per_annotator: dict[str, list[tuple[str, str]]] = {}
    for labels in units.values():
        if JUDGE_CODER not in labels:
            continue
        for coder, label in labels.items():
            if coder != JUDGE_CODER:
                per_annotator.setdefault(coder, []).append((labels[JUDGE_CODER], label))
    annotators = [
        {
            "annotator": coder,
            "items": len(pairs),
            "agreed": sum(a == b for a, b in pairs),
            "kappa": _rounded(cohen_kappa(pairs)),
        }
        for coder, pairs in sorted(per_annotator.items())
    ]
    shared = {unit: labels for unit, labels in units.items() if len(labels) >= 2}
    return {
        "annotators": annotators,
        "alpha": _rounded(krippendorff_alpha(shared)) if shared else None,
        "units": len(shared),
    }


def verdict_accuracy(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Verdicts: (judge's polarity, a person's polarity) per person and answer; the share the
    judge got right, and how often each polarity came up."""
    return {
        "items": len(pairs),
        "accuracy": _rounded(sum(a == b for a, b in pairs) / len(pairs)) if pairs else None,
        "people": dict(Counter(b for _, b in pairs)),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
