"""Thresholds and agreement of a shadow, on cases small enough to work out by hand."""

from __future__ import annotations

import pytest

from rewardmodels.shadow import Labelled, agreement, rate_threshold, thresholds


def _rows(viewer: str, pairs: list[tuple[bool, float]]) -> list[Labelled]:
    return [Labelled(viewer, loved, p) for loved, p in pairs]


def test_agreement_per_viewer_and_overall_matches_the_hand_computed_figures() -> None:
    # given viewer a judged at their own threshold 0.5, viewer b at the global 0.5, and viewer
    # c who loved nothing (left out: nothing real to agree with)
    a = _rows("a", [(True, 0.9), (True, 0.6), (False, 0.7), (False, 0.2)])
    b = _rows("b", [(True, 0.4), (False, 0.8), (False, 0.3)])
    c = _rows("c", [(False, 0.9), (False, 0.1)])

    # when agreement is measured
    result = agreement(a + b + c, overall_threshold=0.5, own={"a": 0.5})

    # then a: AUC 3/4 (0.6 ranks under 0.7), 3 of 4 right, kappa (0.75 - 0.5) / 0.5
    by_viewer = {v["viewer"]: v for v in result["viewers"]}
    assert set(by_viewer) == {"a", "b"}
    assert by_viewer["a"] | {"viewer": "a"} == {
        "viewer": "a",
        "threshold": 0.5,
        "own_threshold": True,
        "rows": 4,
        "loved": 2,
        "simulated_loves": 3,
        "roc_auc": 0.75,
        "accuracy": 0.75,
        "kappa": 0.5,
    }
    # b: AUC 1/2, 1 of 3 right, kappa (1/3 - 5/9) / (4/9) = -1/2
    assert by_viewer["b"]["own_threshold"] is False
    assert by_viewer["b"]["roc_auc"] == 0.5
    assert by_viewer["b"]["accuracy"] == pytest.approx(1 / 3, abs=1e-6)
    assert by_viewer["b"]["kappa"] == pytest.approx(-0.5, abs=1e-6)
    # all seven rows of a and b: AUC 8/12, 4 of 7 right, kappa (4/7 - 24/49) / (25/49) = 4/25
    overall = result["overall"]
    assert overall["rows"] == 7
    assert overall["roc_auc"] == pytest.approx(8 / 12, abs=1e-6)
    assert overall["accuracy"] == pytest.approx(4 / 7, abs=1e-6)
    assert overall["kappa"] == pytest.approx(0.16, abs=1e-6)


def test_undefined_figures_are_none_not_nan() -> None:
    # given a viewer who loved everything and a shadow that loved everything too
    rows = _rows("a", [(True, 0.9), (True, 0.8)])

    # when agreement is measured
    result = agreement(rows, overall_threshold=0.5, own={})

    # then AUC (one class) and kappa (chance agreement is total) are undefined, accuracy is 1
    viewer = result["viewers"][0]
    assert (viewer["roc_auc"], viewer["kappa"], viewer["accuracy"]) == (None, None, 1.0)


def test_no_viewer_with_a_real_love_gives_no_overall() -> None:
    assert agreement(_rows("a", [(False, 0.2)]), overall_threshold=0.5, own={}) == {
        "viewers": [],
        "overall": None,
    }


@pytest.mark.parametrize(
    ("predictions", "rate", "expected"),
    [
        ([0.1, 0.2, 0.3, 0.4, 0.5], 0.4, 0.34),  # 2 of 5 at or above 0.34
        ([0.1, 0.2, 0.3, 0.4, 0.5], 1.0, 0.1),  # every one passes
        ([0.1, 0.2], 0.0, 1.0),  # a viewer who never loves: only a certain prediction passes
        ([], 0.3, 0.5),  # nothing to match: the fallback
    ],
)
def test_rate_threshold_lets_through_the_share_the_viewer_loved(
    predictions: list[float], rate: float, expected: float
) -> None:
    assert rate_threshold(predictions, rate) == pytest.approx(expected)


def test_viewers_with_few_labels_take_the_global_threshold() -> None:
    # given a viewer with five labels (two loved) and one with two labels
    many = _rows("many", [(True, 0.9), (True, 0.8), (False, 0.3), (False, 0.2), (False, 0.1)])
    few = _rows("few", [(True, 0.7), (False, 0.6)])

    # when thresholds are set
    overall, own = thresholds(many + few)

    # then only the first has one of their own (the 0.6 quantile of their five: 0.3 + 0.4 * 0.5)
    assert set(own) == {"many"}
    assert own["many"] == pytest.approx(0.5)
    # and the global one lets through 3 of the 7 (0.7, 0.8, 0.9): the share loved overall
    assert sum(r.p_love >= overall for r in many + few) == 3
