"""What a researcher should know before trusting a training run's numbers, and how its settings
and feature names read (plain data in, plain data out; no ORM).

A held-out set of a few dozen exposures (or a handful of pairs) gives metrics that move by tens
of points from one run to the next; and a model much better on its training rows than on the
held-out ones has learned its training rows rather than the signal. Both are shown as warnings
beside the metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MIN_HELD_OUT_ROWS = 100
MIN_HELD_OUT_POSITIVES = 30
MAX_TRAIN_GAP = 0.15

# (training metric, held-out metric, name): the pairs compared for overfitting, when a run's
# metrics have both.
TRAIN_HELD_OUT_PAIRS = (
    ("train_pairwise_accuracy", "pairwise_accuracy", "pairwise accuracy"),
    ("train_roc_auc", "roc_auc", "ROC-AUC"),
)

# What each prefix of a feature's name says about where it comes from (FeatureNamer).
FEATURE_PREFIXES = (
    ("w:", "a word or pair of words of the response (word n-grams)"),
    ('c:"…"', "a few characters inside one word of the response (character n-grams)"),
    ("p:", "a word of the prompt"),
    (
        "no prefix",
        "a format feature of the response: log_length, newlines, bullets, emojis, exclamations, "
        "questions, urls, code_blocks, sign_off, flattery",
    ),
    ("a / b", "several tokens hashed into the same column (their weight is shared)"),
    ("?", "a column whose token was not seen while names were collected"),
)

CONFIG_LABELS = {
    "test_fraction": "Held-out share (the newest rows)",
    "epochs": "Epochs",
    "alpha": "Regularisation (alpha)",
    "C": "Inverse regularisation (C)",
    "viewer_cap": "Weight cap per viewer (exposures)",
    "uniform_factor": "Weight of viewers who react the same way to everything",
    "batch_size": "Batch size (rows)",
    "n_features_log2": "Hashed columns per text view (log2)",
    "use_char": "Character n-grams",
    "model": "Only answers of the model",
    "model_version": "Only answers of the model version",
}


@dataclass(frozen=True, slots=True)
class Setting:
    key: str
    label: str
    value: str


def _shown(key: str, value: Any) -> str:
    if value is None:
        return "decided from the amount of data"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value == "" and key in ("model", "model_version"):
        return "all"
    if key == "n_features_log2" and isinstance(value, int):
        return f"{value} ({2**value:,} columns)"
    if isinstance(value, float) and key == "test_fraction":
        return f"{value:g} ({value * 100:g} %)"
    if isinstance(value, list | dict):
        return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def config_table(config: Mapping[str, Any]) -> list[Setting]:
    """A run's or model's settings as rows to show: known settings first, in their order."""
    known = [k for k in CONFIG_LABELS if k in config]
    other = sorted(k for k in config if k not in CONFIG_LABELS)
    return [
        Setting(
            key,
            CONFIG_LABELS.get(key, key.replace("_", " ").capitalize()),
            _shown(key, config[key]),
        )
        for key in (*known, *other)
    ]


def held_out_positives(metrics: Mapping[str, Any]) -> int | None:
    """Loved exposures in a P[Love] run's held-out set (its score histogram's positive side)."""
    histogram = metrics.get("histogram")
    if not isinstance(histogram, Mapping) or not isinstance(histogram.get("positive"), list):
        return None
    return int(sum(histogram["positive"]))


def _number(metrics: Mapping[str, Any], key: str) -> float | None:
    """A numeric metric, or None when it is missing or undefined (null)."""
    value = metrics.get(key)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def run_warnings(metrics: Mapping[str, Any]) -> list[str]:
    """Warnings about a succeeded run's held-out set and its train/held-out gap."""
    warnings: list[str] = []
    if metrics.get("objective") == "preference":
        pairs = _number(metrics, "pairs_test")
        if pairs is not None and pairs < MIN_HELD_OUT_ROWS:
            warnings.append(
                f"The held-out set has only {pairs} pair{'s' if pairs != 1 else ''} (fewer than "
                f"{MIN_HELD_OUT_ROWS}): its accuracy is a rough guess."
            )
    else:
        rows = _number(metrics, "rows_test")
        if rows is not None and rows < MIN_HELD_OUT_ROWS:
            warnings.append(
                f"The held-out set has only {rows} exposure{'s' if rows != 1 else ''} (fewer "
                f"than {MIN_HELD_OUT_ROWS}): its metrics are a rough guess."
            )
        positives = held_out_positives(metrics)
        if positives is not None and positives < MIN_HELD_OUT_POSITIVES:
            warnings.append(
                f"The held-out set has only {positives} loved exposure"
                f"{'s' if positives != 1 else ''} (fewer than {MIN_HELD_OUT_POSITIVES}): ROC-AUC "
                "and PR-AUC rest on very few positives."
            )
    for train_key, held_out_key, name in TRAIN_HELD_OUT_PAIRS:
        train, held_out = _number(metrics, train_key), _number(metrics, held_out_key)
        if train is not None and held_out is not None and abs(train - held_out) > MAX_TRAIN_GAP:
            warnings.append(
                f"Training and held-out {name} differ a lot ({train:.3f} against "
                f"{held_out:.3f}): the model may have learned its training rows rather than "
                "what people prefer."
            )
    return warnings
