"""Shadow users, the computation: thresholds that match a viewer's own Love rate, and how far a
shadow's predictions agree with the real reactions it did not train on. Plain data in, plain
data out; no database.

A viewer's threshold is the value above which the same share of the shadow's predictions on
their labelled exposures lies as the share they really loved, so the shadow loves about as
often as the viewer does. A viewer with fewer than MIN_OWN_LABELS labelled exposures takes the
global threshold, computed the same way over everybody's.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, cohen_kappa_score, roc_auc_score

MIN_OWN_LABELS = 5
# Used when there are no labelled exposures at all to match a rate on.
FALLBACK_THRESHOLD = 0.5


@dataclass(frozen=True, slots=True)
class Labelled:
    """A real label (was the exposure loved?) and the shadow's P[Love] for it."""

    viewer: str
    loved: bool
    p_love: float


def rate_threshold(predictions: Sequence[float], rate: float) -> float:
    """The threshold t such that the share of `predictions` at or above t is about `rate`: the
    (1 - rate) quantile. No Love at all gives 1.0 (only a certain prediction passes)."""
    if not predictions:
        return FALLBACK_THRESHOLD
    if rate <= 0.0:
        return 1.0
    return float(np.quantile(np.asarray(predictions, dtype=float), 1.0 - rate))


def thresholds(rows: Iterable[Labelled]) -> tuple[float, dict[str, float]]:
    """The global threshold and each viewer's own (only viewers with enough labels)."""
    by_viewer: defaultdict[str, list[Labelled]] = defaultdict(list)
    every: list[Labelled] = []
    for row in rows:
        by_viewer[row.viewer].append(row)
        every.append(row)
    overall = rate_threshold([r.p_love for r in every], _rate(every))
    own = {
        viewer: rate_threshold([r.p_love for r in labelled], _rate(labelled))
        for viewer, labelled in by_viewer.items()
        if len(labelled) >= MIN_OWN_LABELS
    }
    return overall, own


def _rate(rows: Sequence[Labelled]) -> float:
    return sum(r.loved for r in rows) / len(rows) if rows else 0.0


def passes(p_love: float, threshold: float) -> bool:
    return p_love >= threshold


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 6)


def scores(
    loved: Sequence[bool], p_love: Sequence[float], predicted: Sequence[bool]
) -> dict[str, Any]:
    """ROC-AUC of the probabilities (None with one class), accuracy and Cohen's kappa of the
    simulated reactions against the real ones (kappa None when chance agreement is total)."""
    y = np.asarray(loved, dtype=bool)
    both = bool(y.any() and (~y).any())
    auc = _finite(roc_auc_score(y, np.asarray(p_love, dtype=float))) if both else None
    guess = np.asarray(predicted, dtype=bool)
    if len(set(y.tolist()) | set(guess.tolist())) < 2:
        kappa: float | None = None  # one value everywhere: kappa is undefined (0/0)
    else:
        kappa = _finite(cohen_kappa_score(y, guess))
    return {
        "rows": len(y),
        "loved": int(y.sum()),
        "simulated_loves": int(guess.sum()),
        "roc_auc": auc,
        "accuracy": round(float(accuracy_score(y, guess)), 6) if len(y) else None,
        "kappa": kappa,
    }


def agreement(
    rows: Iterable[Labelled], *, overall_threshold: float, own: Mapping[str, float]
) -> dict[str, Any]:
    """Per viewer with at least one real Love among `rows` (held-out exposures) and over all of
    those viewers' rows together: each row is judged at its viewer's threshold."""
    by_viewer: defaultdict[str, list[Labelled]] = defaultdict(list)
    for row in rows:
        by_viewer[row.viewer].append(row)
    per_viewer: list[dict[str, Any]] = []
    pooled: list[tuple[bool, float, bool]] = []
    for viewer in sorted(by_viewer):
        labelled = by_viewer[viewer]
        if not any(r.loved for r in labelled):
            continue
        threshold = own.get(viewer, overall_threshold)
        judged = [(r.loved, r.p_love, passes(r.p_love, threshold)) for r in labelled]
        pooled += judged
        per_viewer.append(
            {
                "viewer": viewer,
                "threshold": round(threshold, 6),
                "own_threshold": viewer in own,
                **scores(*zip(*judged, strict=True)),
            }
        )
    overall = scores(*zip(*pooled, strict=True)) if pooled else None
    return {"viewers": per_viewer, "overall": overall}
