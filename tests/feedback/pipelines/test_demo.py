"""The built-in demo pipeline: decomposition, TF-IDF retrieval, extractive answers, re-runs."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from feedback.demo_data import demo_corpus, demo_questions
from feedback.ingest import ValidAnswer, validate_answer
from feedback.pipelines.demo import (
    MAX_ANSWER_SENTENCES,
    MAX_SENTENCES_PER_DOCUMENT,
    MODEL,
    MODEL_VERSION,
    NO_ANSWER,
    ask,
    compose,
    decompose,
    rerun,
    retrieve,
)

DEMO_CORPUS = demo_corpus()
DEMO_QUESTIONS = demo_questions()
RICE_QUESTION = DEMO_QUESTIONS[0]["question"]  # "My rice always comes out sticky and mushy. ..."
RICE_DOC = next(doc for doc in DEMO_CORPUS if doc["id"] == "doc-01")
LEFTOVERS_DOC = next(doc for doc in DEMO_CORPUS if doc["id"] == "doc-03")
# Two unrelated topics in one question: each sub-query finds its own document.
COMPOUND_QUESTION = "How do I cook rice and how do I fix a flat bike tyre?"
CITED_SENTENCE = re.compile(r"([^.!?\n]+?) \[(\d+)\][.!?]")


def _doc_ids(payload: dict[str, Any]) -> list[str]:
    return [doc["id"] for doc in payload["trace"][1]["output"]["documents"]]


def _citations(text: str) -> list[tuple[str, int]]:
    """(sentence without its marker, n) for every cited sentence of an answer."""
    return [(body.strip(), int(n)) for body, n in CITED_SENTENCE.findall(text)]


def _valid(payload: dict[str, Any]) -> ValidAnswer:
    result = validate_answer({**payload, "external_id": "demo-test"}, now=datetime.now(UTC))
    assert isinstance(result, ValidAnswer), result
    return result


# decompose


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (COMPOUND_QUESTION, ["How do I cook rice", "how do I fix a flat bike tyre"]),
        (
            DEMO_QUESTIONS[5]["question"],
            [
                "How do I add up a column of expenses in a spreadsheet",
                "keep one cell fixed when I copy the formula",
            ],
        ),
        (
            "Is a rail pass worth it for a week; how early should I book trains",
            ["Is a rail pass worth it for a week", "how early should I book trains"],
        ),
        (
            "Storing cooked rice safely vs reheating cooked rice safely",
            ["Storing cooked rice safely", "reheating cooked rice safely"],
        ),
    ],
)
def test_decompose_splits_a_compound_question(question: str, expected: list[str]) -> None:
    assert decompose(question) == expected


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How do I fix a flat tyre on my bike?", ["How do I fix a flat tyre on my bike"]),
        # "mushy" alone is no query: the short fragment after "and" is merged back.
        ("Why is my rice sticky and mushy?", ["Why is my rice sticky and mushy"]),
        ("Rice vs pasta?", ["Rice vs pasta"]),
        # Nothing but separators: the question itself, never an empty list.
        ("???", ["???"]),
    ],
)
def test_decompose_keeps_a_simple_question_whole(question: str, expected: list[str]) -> None:
    assert decompose(question) == expected


def test_decompose_drops_case_insensitive_duplicates() -> None:
    assert decompose("How do I cook rice? how do I COOK rice?") == ["How do I cook rice"]


def test_decompose_of_a_blank_question_is_empty() -> None:
    assert decompose("  \n ") == []


# retrieve


def test_retrieve_finds_the_rice_document_first() -> None:
    documents = retrieve(["why is cooked rice sticky", "rice to water ratio on the stove"])
    assert documents[0]["id"] == "doc-01"
    assert {key: documents[0][key] for key in RICE_DOC} == RICE_DOC


def test_retrieve_merges_queries_by_best_score_without_duplicates() -> None:
    rice_only = retrieve(["how do I cook rice"], k=2)
    both = retrieve(["how do I cook rice", "how do I cook rice on the stove"], k=2)
    tyre = retrieve(["fix a flat bike tyre"], k=2)
    merged = retrieve(["how do I cook rice", "fix a flat bike tyre"], k=2)
    assert len(rice_only) == 2
    assert len(retrieve(["how do I cook rice"])) == 3  # k defaults to 3
    ids = [doc["id"] for doc in merged]
    assert len(ids) == len(set(ids))
    assert {"doc-01", "doc-05"} <= set(ids)
    assert set(ids) == {doc["id"] for doc in rice_only + tyre}
    scores = [doc["score"] for doc in merged]
    assert scores == sorted(scores, reverse=True)
    assert all(score > 0 and round(score, 4) == score for score in scores)
    assert len({doc["id"] for doc in both}) == len(both)


def test_retrieve_drops_documents_sharing_no_term() -> None:
    assert retrieve(["quantum chromodynamics"]) == []
    assert retrieve([]) == []


def test_retrieve_returns_copies_of_the_corpus() -> None:
    first = retrieve(["rice"])
    before = copy.deepcopy(first)
    first[0]["text"] = "changed"
    first[0]["score"] = 0.0
    # A caller editing a result (debug mode does) never changes what the next search finds.
    assert retrieve(["rice"]) == before
    assert before[0]["id"] == RICE_DOC["id"]
    assert before[0]["text"] == RICE_DOC["text"]


# compose


def test_compose_cites_sentences_of_the_numbered_documents() -> None:
    documents = [LEFTOVERS_DOC, RICE_DOC]
    text = compose("How do I cook rice on the stove?", [], documents)
    citations = _citations(text)
    assert citations
    assert len(citations) <= MAX_ANSWER_SENTENCES
    for body, n in citations:
        assert body in documents[n - 1]["text"]
    counts = [n for _, n in citations]
    assert max(counts.count(n) for n in set(counts)) <= MAX_SENTENCES_PER_DOCUMENT
    # Grouped in document order, then a source line for each cited document only.
    assert counts == sorted(counts)
    sources = text.split("\n\nSources:\n")[1].splitlines()
    assert sources == [
        f"- [{n}] {documents[n - 1]['title']} ({documents[n - 1]['url']})"
        for n in sorted(set(counts))
    ]


def test_compose_leaves_out_incidental_matches() -> None:
    # The seasoning document is retrieved for "flat" ("a dish that tastes flat"), but one shared
    # word is no answer about tyres.
    payload = ask(DEMO_QUESTIONS[1]["question"])  # "How do I fix a flat tyre on my bike?"
    assert "doc-04" in _doc_ids(payload)
    assert {n for _, n in _citations(payload["response"])} == {1}
    assert "lemon juice" not in payload["response"]


def test_compose_says_so_when_nothing_matches() -> None:
    assert compose("quantum chromodynamics", ["gluon"], [RICE_DOC, LEFTOVERS_DOC]) == NO_ANSWER
    assert compose(RICE_QUESTION, [], []) == NO_ANSWER


# ask


def test_asking_about_rice_cites_the_rice_document() -> None:
    payload = ask(RICE_QUESTION)
    assert _doc_ids(payload)[0] == "doc-01"
    citations = _citations(payload["response"])
    assert citations
    assert all(n == 1 and body in RICE_DOC["text"] for body, n in citations)
    assert (
        "A common ratio is one part rice to one and a half parts water by volume [1]."
        in (payload["response"])
    )
    assert payload["response"].endswith(
        "\n\nSources:\n- [1] Cooking rice on the stove (https://docs.example.org/cooking-rice-stove)"
    )


def test_ask_builds_the_demo_payload() -> None:
    payload = ask(COMPOUND_QUESTION)
    assert "external_id" not in payload
    assert payload["prompt"] == [{"role": "user", "content": COMPOUND_QUESTION}]
    assert (payload["model"], payload["model_version"]) == (MODEL, MODEL_VERSION)
    assert payload["metadata"] == {"pipeline": "demo"}
    decomposition, retrieval, generation = payload["trace"]
    assert decomposition["input"] == {"question": COMPOUND_QUESTION}
    assert retrieval["input"] == {"queries": decomposition["output"]["subqueries"]}
    assert generation["input"] == {"documents": _doc_ids(payload)}
    assert generation["output"]["text"] == payload["response"]


@pytest.mark.parametrize("item", DEMO_QUESTIONS, ids=lambda item: item["question"][:30])
def test_every_demo_question_gives_a_valid_payload(item: dict[str, Any]) -> None:
    payload = ask(item["question"])
    valid = _valid(payload)
    assert [(stage.position, stage.kind, stage.parent_position) for stage in valid.stages] == [
        (0, "decomposition", None),
        (1, "retrieval", 0),
        (2, "generation", 1),
    ]
    assert valid.response == payload["trace"][2]["output"]["text"]
    # The demo corpus covers every demo question: the first retrieved document is on topic.
    assert _doc_ids(payload)[0] in item["doc_ids"]


def test_ask_is_deterministic_across_processes() -> None:
    # A fresh interpreter with another hash seed: no set or dict ordering leaks into the output.
    script = (
        "import json, sys; from feedback.pipelines.demo import ask; "
        "print(json.dumps([ask(q) for q in sys.argv[1:]]))"
    )
    questions = [item["question"] for item in DEMO_QUESTIONS]
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", script, *questions],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[3],
        env=environment,
        timeout=120,
    )
    assert json.loads(result.stdout) == [ask(question) for question in questions]
    assert ask(COMPOUND_QUESTION) == ask(COMPOUND_QUESTION)


def test_ask_refuses_a_blank_question() -> None:
    with pytest.raises(ValueError, match="blank"):
        ask("   ")


# rerun


@pytest.mark.parametrize("position", [0, 1, 2])
def test_rerun_without_corrections_reproduces_the_answer(position: int) -> None:
    payload = ask(COMPOUND_QUESTION)
    assert rerun(COMPOUND_QUESTION, payload["trace"], from_position=position) == payload


def test_rerun_after_removing_a_subquery_retrieves_again() -> None:
    original = ask(COMPOUND_QUESTION)
    assert {"doc-01", "doc-05"} <= set(_doc_ids(original))
    trace = copy.deepcopy(original["trace"])
    trace[0]["output"]["subqueries"] = ["How do I cook rice"]

    payload = rerun(COMPOUND_QUESTION, trace, from_position=0)

    assert payload["trace"][0] == trace[0]
    assert payload["trace"][1]["input"] == {"queries": ["How do I cook rice"]}
    assert _doc_ids(payload) == [doc["id"] for doc in retrieve(["How do I cook rice"])]
    assert "doc-01" in _doc_ids(payload)
    assert "doc-05" not in _doc_ids(payload)
    assert "Fixing a flat bicycle tyre" not in payload["response"]
    assert payload["response"] != original["response"]
    _valid(payload)


def test_rerun_from_retrieval_cites_a_document_added_by_hand() -> None:
    original = ask(RICE_QUESTION)
    trace = copy.deepcopy(original["trace"])
    added = {
        "title": "Rice cooker tips",
        "text": (
            "Keep the kitchen tidy. A rice cooker stops rice from going sticky or mushy because "
            "it measures the heat for you."
        ),
        "url": "",
    }
    # The annotator removed the top document (the rice one) and added their own after another.
    trace[1]["output"]["documents"] = [LEFTOVERS_DOC, added]
    given = copy.deepcopy(trace)

    payload = rerun(RICE_QUESTION, trace, from_position=1)

    assert trace == given  # the caller's trace is not mutated
    documents = payload["trace"][1]["output"]["documents"]
    assert [doc.get("title") for doc in documents] == [LEFTOVERS_DOC["title"], "Rice cooker tips"]
    assert documents[1]["id"].startswith("added-")
    assert payload["trace"][2]["input"] == {"documents": ["doc-03", documents[1]["id"]]}
    response = payload["response"]
    cited = (
        "A rice cooker stops rice from going sticky or mushy because it measures the heat for "
        "you [2]."
    )
    assert cited in response
    assert "\n- [2] Rice cooker tips" in response
    assert "Cooking rice on the stove" not in response
    assert response != original["response"]
    _valid(payload)


def test_rerun_from_generation_keeps_the_corrected_text() -> None:
    trace = copy.deepcopy(ask(RICE_QUESTION)["trace"])
    trace[2]["output"]["text"] = "Rinse the rice and use less water [1]."

    payload = rerun(RICE_QUESTION, trace, from_position=2)

    assert payload["trace"] == trace
    assert payload["response"] == "Rinse the rice and use less water [1]."


@pytest.mark.parametrize("position", [-1, 3, True, 1.0, "1"])
def test_rerun_refuses_an_unknown_position(position: Any) -> None:
    trace = ask(RICE_QUESTION)["trace"]
    with pytest.raises(ValueError, match="Unknown stage position"):
        rerun(RICE_QUESTION, trace, from_position=position)


def _broken_traces() -> list[Any]:
    trace = ask(RICE_QUESTION)["trace"]
    swapped = [trace[1], trace[0], trace[2]]
    no_subqueries = copy.deepcopy(trace)
    no_subqueries[0]["output"] = {"queries": ["rice"]}
    textless = copy.deepcopy(trace)
    textless[1]["output"]["documents"] = [{"id": "doc-01", "title": "Rice"}]
    renumbered = copy.deepcopy(trace)
    renumbered[2]["position"] = 5
    return [
        None,
        {},
        [],
        trace[:2],
        [*trace, trace[2]],
        swapped,
        no_subqueries,
        textless,
        renumbered,
    ]


@pytest.mark.parametrize(
    "trace",
    _broken_traces(),
    ids=[
        "none",
        "object",
        "empty",
        "two-stages",
        "four-stages",
        "swapped",
        "no-subqueries",
        "document-without-text",
        "renumbered",
    ],
)
def test_rerun_refuses_a_trace_that_is_not_the_demos(trace: Any) -> None:
    with pytest.raises(ValueError, match="Not a demo pipeline trace"):
        rerun(RICE_QUESTION, trace, from_position=1)
