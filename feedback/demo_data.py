"""Demo content for trying out the feedback workflow, read from the JSON files in `demo_content/`.

The corpus, questions and answers are invented examples. They exist so that annotators and
developers can exercise the review screens without real user data. Edit the JSON files to change
them; this module only reads them (once per process) and builds the answer payloads.

- `corpus.json`: the documents the demo pipeline searches, each `{id, title, text, url}`;
- `questions.json`: each `{question, topic, subqueries, doc_ids, answers}`, where `answers` holds
  one written answer per key of `MODEL_RELEASES` and `doc_ids` the three documents "retrieved".
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

CONTENT_DIR = Path(__file__).resolve().parent / "demo_content"

# Answer key in questions.json -> (model name, model version) as recorded in the payload.
MODEL_RELEASES: dict[str, tuple[str, str]] = {
    "demo-small": ("demo-small", "1"),
    "demo-large": ("demo-large", "1"),
    "demo-large-v2": ("demo-large", "2"),
}


@cache
def _read(name: str) -> Any:
    with (CONTENT_DIR / name).open(encoding="utf-8") as file:
        return json.load(file)


def demo_corpus() -> list[dict[str, str]]:
    """The demo documents; a fresh copy, so a caller's changes never reach the next caller."""
    corpus: list[dict[str, str]] = copy.deepcopy(_read("corpus.json"))
    return corpus


def demo_questions() -> list[dict[str, Any]]:
    """The demo questions with their written answers; a fresh copy, like `demo_corpus`."""
    questions: list[dict[str, Any]] = copy.deepcopy(_read("questions.json"))
    return questions


def _retrieval_scores(index: int) -> list[float]:
    """Return deterministic, strictly descending scores for the three retrieved documents."""
    return [
        round(0.82 + 0.01 * (index % 5), 2),
        round(0.64 - 0.02 * (index % 4), 2),
        round(0.31 + 0.03 * (index % 3), 2),
    ]


def demo_answers() -> list[dict[str, Any]]:
    """Build one answer payload per demo question and model (12 x 3 = 36 payloads)."""
    docs_by_id = {doc["id"]: doc for doc in demo_corpus()}
    payloads: list[dict[str, Any]] = []
    for index, item in enumerate(demo_questions(), start=1):
        question: str = item["question"]
        subqueries: list[str] = item["subqueries"]
        doc_ids: list[str] = item["doc_ids"]
        scores = _retrieval_scores(index)
        for answer_key, (model, model_version) in MODEL_RELEASES.items():
            answer_text: str = item["answers"][answer_key]
            documents = [
                {**docs_by_id[doc_id], "score": score}
                for doc_id, score in zip(doc_ids, scores, strict=True)
            ]
            payloads.append(
                {
                    "external_id": f"demo-{index:02d}-{answer_key}",
                    "conversation": f"demo-conv-{index:02d}",
                    "user_ref": f"demo-user-{(index - 1) % 5 + 1}",
                    "prompt": [{"role": "user", "content": question}],
                    "response": answer_text,
                    "model": model,
                    "model_version": model_version,
                    "metadata": {"demo": True, "topic": item["topic"]},
                    "trace": [
                        {
                            "kind": "decomposition",
                            "position": 0,
                            "input": {"question": question},
                            "output": {"subqueries": list(subqueries)},
                        },
                        {
                            "kind": "retrieval",
                            "position": 1,
                            "parent": 0,
                            "input": {"queries": list(subqueries)},
                            "output": {"documents": documents},
                        },
                        {
                            "kind": "generation",
                            "position": 2,
                            "parent": 1,
                            "input": {"documents": list(doc_ids)},
                            "output": {"text": answer_text},
                        },
                    ],
                }
            )
    return payloads
