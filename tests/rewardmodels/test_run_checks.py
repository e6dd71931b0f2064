"""Warnings about a run's held-out set and its train/held-out gap; settings as rows."""

from __future__ import annotations

from typing import Any

import pytest

from rewardmodels.run_checks import config_table, held_out_positives, run_warnings


def p_love(rows_test: int, positives: int, **extra: Any) -> dict[str, Any]:
    return {
        "objective": "p_love",
        "rows_test": rows_test,
        "histogram": {"edges": [0, 0.5, 1], "positive": [positives, 0], "negative": [0, 0]},
        **extra,
    }


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        (p_love(1000, 300), []),
        (p_love(29, 10), ["only 29 exposures", "only 10 loved exposures"]),
        (p_love(100, 30), []),
        (p_love(99, 30), ["only 99 exposures"]),
        (p_love(5000, 29), ["only 29 loved exposures"]),
        (p_love(5000, 300, train_roc_auc=0.95, roc_auc=0.7), ["ROC-AUC differ a lot"]),
        (
            {
                "objective": "preference",
                "pairs_test": 5,
                "pairwise_accuracy": 0.4,
                "train_pairwise_accuracy": 1.0,
            },
            ["only 5 pairs", "pairwise accuracy differ a lot (1.000 against 0.400)"],
        ),
        (
            {
                "objective": "preference",
                "pairs_test": 400,
                "pairwise_accuracy": 0.7,
                "train_pairwise_accuracy": 0.8,
            },
            [],
        ),
        # A run without these metrics (one class only, an older run) warns of nothing it can't see.
        (
            {
                "objective": "preference",
                "pairs_test": 200,
                "pairwise_accuracy": None,
                "train_pairwise_accuracy": 0.9,
            },
            [],
        ),
        ({}, []),
    ],
)
def test_run_warnings(metrics: dict[str, Any], expected: list[str]) -> None:
    warnings = run_warnings(metrics)
    assert len(warnings) == len(expected)
    for warning, phrase in zip(warnings, expected, strict=True):
        assert phrase in warning


def test_held_out_positives_come_from_the_histogram() -> None:
    assert held_out_positives(p_love(10, 7)) == 7
    assert held_out_positives({"objective": "p_love"}) is None


def test_config_table_reads_as_words() -> None:
    rows = config_table(
        {
            "use_char": True,
            "test_fraction": 0.2,
            "epochs": None,
            "model": "",
            "extra_key": [1, 2],
            "n_features_log2": 18,
        }
    )
    assert [(r.key, r.value) for r in rows] == [
        ("test_fraction", "0.2 (20 %)"),
        ("epochs", "decided from the amount of data"),
        ("n_features_log2", "18 (262,144 columns)"),
        ("use_char", "yes"),
        ("model", "all"),
        ("extra_key", "1, 2"),
    ]
    assert rows[0].label == "Held-out share (the newest rows)"
