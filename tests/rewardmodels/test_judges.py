"""What a judge is asked, how its reply is checked, and agreement worked out by hand."""

from __future__ import annotations

import pytest

from rewardmodels.judges import (
    JUDGE_CODER,
    Example,
    Item,
    check,
    messages,
    relevance_agreement,
    schema,
    verdict_accuracy,
)

REACTIONS = ["love", "like", "dislike"]
DOCS = Item("q", "a", documents=[{"id": "d1", "text": "x"}, {"id": "d2", "text": "y"}])


@pytest.mark.parametrize(
    ("target", "reply", "problem"),
    [
        ("answer", {"verdict": "meh", "critique": "c"}, "verdict"),
        ("answer", {"verdict": "love", "critique": 3}, "critique"),
        ("document_relevance", {"documents": [{"id": "d9", "relevance": "relevant"}]}, "shown"),
        ("document_relevance", {"documents": [{"id": "d1", "relevance": "relevant"}]}, "every"),
        ("subqueries", {"subqueries": []}, "non-empty"),
        ("subqueries", {"subqueries": ["ok", " "]}, "non-empty"),
    ],
)
def test_a_reply_that_does_not_fit_what_was_shown_is_refused(
    target: str, reply: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        check(target, reply, DOCS, reactions=REACTIONS)


def test_a_fitting_reply_is_kept() -> None:
    reply = {
        "documents": [{"id": "d1", "relevance": "partial"}, {"id": "d2", "relevance": "irrelevant"}]
    }
    assert check("document_relevance", reply, DOCS, reactions=REACTIONS) == {
        "documents": {"d1": "partial", "d2": "irrelevant"}
    }
    assert schema("answer", reactions=REACTIONS)["properties"]["verdict"]["enum"] == REACTIONS


def test_a_personalised_judge_is_shown_the_viewers_own_feedback() -> None:
    item = Item("q", "a", examples=[Example("p", "r", reaction="dislike", critique="Too long.")])
    system = messages("answer", "Be strict.", item, reactions=REACTIONS)[0]["content"]
    assert "Be strict." in system
    assert "Their critique: Too long." in system
    assert "Their reaction: dislike" in system


def test_relevance_agreement_matches_the_hand_computed_figures() -> None:
    # given four documents labelled by the judge, alice (the same) and bob (half the same)
    judge = ["relevant", "relevant", "irrelevant", "irrelevant"]
    bob = ["relevant", "irrelevant", "relevant", "irrelevant"]
    units = {f"d{i}": {JUDGE_CODER: judge[i], "alice": judge[i], "bob": bob[i]} for i in range(4)}

    result = relevance_agreement(units)

    # then kappa is 1 with alice, 0 with bob (2 of 4 alike, as chance predicts), and alpha is
    # 1 - 11 * 4 / 72 (coincidences: 4 relevant-relevant, 4 irrelevant-irrelevant, 2 + 2 mixed)
    assert result["annotators"] == [
        {"annotator": "alice", "items": 4, "agreed": 4, "kappa": 1.0},
        {"annotator": "bob", "items": 4, "agreed": 2, "kappa": 0.0},
    ]
    assert result["alpha"] == pytest.approx(28 / 72, abs=1e-6)
    assert result["units"] == 4


def test_verdict_accuracy() -> None:
    pairs = [("positive", "positive"), ("positive", "negative"), ("negative", "negative")]
    assert verdict_accuracy(pairs)["accuracy"] == pytest.approx(2 / 3, abs=1e-6)
    assert verdict_accuracy([])["accuracy"] is None
