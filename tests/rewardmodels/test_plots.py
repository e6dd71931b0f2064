"""PNG charts of a P[Love] evaluation. No database needed."""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest

from rewardmodels.plots import reliability_png, score_distribution_png
from rewardmodels.training import evaluate_p_love

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHARTS = [reliability_png, score_distribution_png]


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which follows the signature."""
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture
def metrics() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    predictions = rng.random(500)
    labels = rng.random(500) < predictions
    return evaluate_p_love(labels, predictions)


@pytest.mark.parametrize("chart", CHARTS)
def test_chart_is_a_png(chart: Callable[[Mapping[str, Any]], bytes], metrics: Any) -> None:
    data = chart(metrics)
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000
    assert png_size(data) == (550, 450)


@pytest.mark.parametrize("chart", CHARTS)
@pytest.mark.parametrize(
    "empty",
    [
        {},
        {
            "reliability": [],
            "ece": None,
            "histogram": {"edges": [], "positive": [], "negative": []},
        },
        evaluate_p_love(np.array([]), np.array([])),
        # malformed histogram (lengths disagree) and non-numbers are drawn as "nothing to show"
        {"reliability": [{"mean_predicted": None, "observed": 0.5}], "ece": float("nan")},
        {"histogram": {"edges": [0.0, 1.0], "positive": [1, 2], "negative": [3]}},
    ],
)
def test_chart_of_empty_metrics_is_drawn(
    chart: Callable[[Mapping[str, Any]], bytes], empty: Mapping[str, Any]
) -> None:
    data = chart(empty)
    assert data.startswith(PNG_SIGNATURE)
    assert png_size(data) == (550, 450)


def test_charts_differ_with_the_data(metrics: Any) -> None:
    # An empty chart and a drawn one are not the same picture
    assert reliability_png(metrics) != reliability_png({})
    assert score_distribution_png(metrics) != score_distribution_png({})


def test_charts_do_not_register_figures_with_pyplot(metrics: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    before = pyplot.get_fignums()
    for chart in CHARTS:
        chart(metrics)
        chart({})
    assert pyplot.get_fignums() == before
