"""PNG charts of a P[Love] evaluation (the dict `training.evaluate_p_love` returns).

Pure: no Django. Figures are built with `matplotlib.figure.Figure` directly, never pyplot, so
nothing is registered in pyplot's global figure list (no leak in a long-running worker) and
drawing is safe from several threads at once; a Figure renders with the Agg canvas by default.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["reliability_png", "score_distribution_png"]

_SIZE = (5.5, 4.5)  # inches
_DPI = 100
_LOVED = "#c2185b"
_NOT_LOVED = "#607d8b"


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def _note(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="#555555")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def reliability_png(metrics: Mapping[str, Any]) -> bytes:
    """Reliability curve: mean predicted P[Love] against the observed Love rate per bin.

    Points on the diagonal are calibrated; a point's area grows with the rows in its bin, so a
    sparse bin far from the diagonal is not mistaken for a real problem.
    """
    figure = Figure(figsize=_SIZE, layout="constrained")
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="#9e9e9e", label="perfectly calibrated")
    bins: Sequence[Mapping[str, Any]] = metrics.get("reliability") or []
    points = [
        (predicted, observed, max(int(item.get("count") or 0), 0))
        for item in bins
        if (predicted := _number(item.get("mean_predicted"))) is not None
        and (observed := _number(item.get("observed"))) is not None
    ]
    if points:
        largest = max(count for _, _, count in points) or 1
        axes.plot([p for p, _, _ in points], [o for _, o, _ in points], color=_LOVED, label="model")
        axes.scatter(
            [p for p, _, _ in points],
            [o for _, o, _ in points],
            s=[20 + 180 * count / largest for _, _, count in points],
            color=_LOVED,
            zorder=3,
        )
        axes.legend(loc="upper left")
    else:
        _note(axes, "No predictions to show")
    ece = _number(metrics.get("ece"))
    axes.set_title(
        "Calibration of P[Love]" + (f" (ECE {ece:.3f})" if ece is not None else " (ECE n/a)")
    )
    axes.set_xlabel("Mean predicted P[Love]")
    axes.set_ylabel("Observed Love rate")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.grid(alpha=0.3)
    return _png(figure)


def score_distribution_png(metrics: Mapping[str, Any]) -> bytes:
    """Predicted P[Love] for loved and for not-loved exposures, each as a share of its own class.

    Loves are rare, so raw counts would flatten the loved curve to nothing; shares make the two
    shapes comparable. A good model moves the loved curve to the right.
    """
    figure = Figure(figsize=_SIZE, layout="constrained")
    axes = figure.add_subplot()
    histogram: Mapping[str, Any] = metrics.get("histogram") or {}
    edges = [float(edge) for edge in histogram.get("edges") or []]
    positive = [float(count) for count in histogram.get("positive") or []]
    negative = [float(count) for count in histogram.get("negative") or []]
    usable = (
        len(edges) >= 2
        and len(positive) == len(negative) == len(edges) - 1
        and sum(positive) + sum(negative) > 0
    )
    if usable:
        for counts, color, label in (
            (negative, _NOT_LOVED, "not loved"),
            (positive, _LOVED, "loved"),
        ):
            total = sum(counts)
            if total > 0:
                axes.stairs(
                    [count / total for count in counts],
                    edges,
                    color=color,
                    linewidth=2,
                    label=f"{label} (n={int(total):,})",
                )
        axes.legend(loc="upper right")
    else:
        _note(axes, "No predictions to show")
    axes.set_title("Predicted P[Love] by outcome")
    axes.set_xlabel("Predicted P[Love]")
    axes.set_ylabel("Share of exposures")
    axes.set_xlim(0, 1)
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    return _png(figure)
