"""Charts drawn on the server as inline SVG (no ORM, no script): rates over time with their
confidence band.

Every label that comes from data (model names, periods) is escaped here, because the result is
inserted into the page as markup. Colours are presentation attributes, never `style`, so the
Content-Security-Policy needs nothing more; axis text takes `currentColor` and so follows the
page's light or dark scheme. The numbers also appear in a table beside each chart, which is what
screen readers and copy-and-paste use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from django.utils.safestring import SafeString, mark_safe

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")

WIDTH, HEIGHT = 560, 280
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 16, 44
LEGEND_ROW = 20


@dataclass(frozen=True, slots=True)
class Point:
    """One period's value with its interval; None where the period has no data."""

    value: float | None
    low: float | None = None
    high: float | None = None
    note: str = ""  # shown on hover, e.g. "12 of 80 exposures"


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    points: Sequence[Point]  # one per x label, in order


def _percent(value: float) -> str:
    return f"{value * 100:.1f} %"


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten not below `value`, capped at 1 (a
    rate's axis ends at 100 %)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value - 1e-12:
            return min(1.0, step * magnitude)
    return 1.0  # pragma: no cover - the loop always returns


def _f(number: float) -> str:
    return f"{number:.1f}"


def rate_chart(*, title: str, x_labels: Sequence[str], series: Sequence[Series]) -> SafeString:
    """A line per series over the periods `x_labels`, with a shaded band for each point's
    interval; a gap where a period has no value. The y axis runs from 0 to a round number
    above the highest bound."""
    highs = [
        p.high if p.high is not None else p.value
        for s in series
        for p in s.points
        if p.value is not None
    ]
    top = _nice_ceiling(max((h for h in highs if h is not None), default=1.0))
    legend_rows = len(series)
    height = HEIGHT + legend_rows * LEGEND_ROW
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = len(x_labels)

    def x(i: int) -> float:
        return LEFT + (plot_w * (i + 0.5) / n if n else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - min(v, top) / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}" class="chart">',
        f"<title>{escape(title)}</title>",
    ]
    # Grid and y axis: five lines from 0 to the top.
    for k in range(5):
        v = top * k / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_f(y(v))}" y2="{_f(y(v))}" '
            f'stroke="currentColor" stroke-opacity="{0.5 if k == 0 else 0.15}"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{_f(y(v) + 4)}" text-anchor="end" font-size="13" '
            f'fill="currentColor">{escape(_percent(v))}</text>'
        )
    # X labels: at most about six, evenly picked, so they never overlap.
    every = max(1, math.ceil(n / 6))
    for i, label in enumerate(x_labels):
        if i % every == 0 or i == n - 1:
            parts.append(
                f'<text x="{_f(x(i))}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle" '
                f'font-size="13" fill="currentColor">{escape(label)}</text>'
            )
    for index, s in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        for segment in _segments(s.points):
            if len(segment) > 1:
                band = [(x(i), y(hi)) for i, _, _, hi, _ in segment]
                band += [(x(i), y(lo)) for i, _, lo, _, _ in reversed(segment)]
                band_points = " ".join(f"{_f(a)},{_f(b)}" for a, b in band)
                parts.append(
                    f'<polygon points="{band_points}" fill="{colour}" fill-opacity="0.15"/>'
                )
                line = " ".join(f"{_f(x(i))},{_f(y(v))}" for i, v, _, _, _ in segment)
                parts.append(
                    f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>'
                )
            for i, value, low, high, note in segment:
                if high != low:
                    parts.append(
                        f'<line x1="{_f(x(i))}" x2="{_f(x(i))}" y1="{_f(y(high))}" '
                        f'y2="{_f(y(low))}" stroke="{colour}" stroke-opacity="0.6"/>'
                    )
                tip = f"{s.label}, {x_labels[i]}: {_percent(value)}"
                if high != low:
                    tip += f" (95 % interval {_percent(low)} to {_percent(high)})"
                if note:
                    tip += f"; {note}"
                parts.append(
                    f'<circle cx="{_f(x(i))}" cy="{_f(y(value))}" r="3.5" fill="{colour}">'
                    f"<title>{escape(tip)}</title></circle>"
                )
        legend_y = HEIGHT + index * LEGEND_ROW
        parts.append(
            f'<rect x="{LEFT}" y="{legend_y - 10}" width="14" height="4" fill="{colour}"/>'
            f'<text x="{LEFT + 20}" y="{legend_y - 4}" font-size="13" fill="currentColor">'
            f"{escape(s.label)}</text>"
        )
    if not series or not highs:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" font-size="14" '
            f'fill="currentColor">No data in this range</text>'
        )
    parts.append("</svg>")
    # Safe: every piece of text above went through `escape`; the rest is numbers and constants.
    return mark_safe("".join(parts))  # noqa: S308


def _segments(points: Sequence[Point]) -> list[list[tuple[int, float, float, float, str]]]:
    """Runs of consecutive points that have a value: (index, value, low, high, note), a
    missing bound taking the value."""
    runs: list[list[tuple[int, float, float, float, str]]] = []
    current: list[tuple[int, float, float, float, str]] = []
    for i, p in enumerate(points):
        if p.value is None:
            if current:
                runs.append(current)
            current = []
        else:
            low = p.value if p.low is None else p.low
            high = p.value if p.high is None else p.high
            current.append((i, p.value, low, high, p.note))
    if current:
        runs.append(current)
    return runs
