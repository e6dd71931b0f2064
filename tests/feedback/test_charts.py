"""Charts drawn as SVG on the server: labels escaped, gaps where there is no data."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from feedback.charts import Point, Series, rate_chart

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output, parsed to check it is well formed


def test_labels_from_data_are_escaped() -> None:
    hostile = '<script>alert(1)</script>"&'
    svg = rate_chart(
        title=f"Love {hostile}",
        x_labels=[hostile, "2026-01-02"],
        series=[Series(hostile, [Point(0.1, 0.05, 0.2, note=hostile), Point(0.2)])],
    )

    root = parse(svg)
    assert "<script" not in svg
    assert root.find(f"{SVG}script") is None
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert hostile in texts  # as text: escaped in the markup, intact for the reader
    assert root.get("aria-label") == f"Love {hostile}"
    assert not any(
        name == "style" or name.startswith("on") for e in root.iter() for name in e.attrib
    )


def test_a_line_and_band_per_run_of_points_with_a_gap_where_a_period_has_no_data() -> None:
    points = [Point(0.1, 0.0, 0.3), Point(0.2, 0.1, 0.3), Point(None), Point(0.4, 0.2, 0.6)]
    root = parse(rate_chart(title="t", x_labels=["a", "b", "c", "d"], series=[Series("m", points)]))

    assert len(root.findall(f"{SVG}polyline")) == 1  # a, b; d stands alone
    assert len(root.findall(f"{SVG}polygon")) == 1
    tips = [c.find(f"{SVG}title").text for c in root.iter(f"{SVG}circle")]  # type: ignore[union-attr]
    assert tips == [
        "m, a: 10.0 % (95 % interval 0.0 % to 30.0 %)",
        "m, b: 20.0 % (95 % interval 10.0 % to 30.0 %)",
        "m, d: 40.0 % (95 % interval 20.0 % to 60.0 %)",
    ]


def test_the_axis_ends_at_a_round_number_above_the_highest_bound() -> None:
    root = parse(
        rate_chart(title="t", x_labels=["a"], series=[Series("m", [Point(0.03, 0.01, 0.07)])])
    )
    axis = [t.text for t in root.iter(f"{SVG}text")][:5]
    assert axis == ["0.0 %", "2.5 %", "5.0 %", "7.5 %", "10.0 %"]


def test_no_data_says_so() -> None:
    svg = rate_chart(title="t", x_labels=["a"], series=[])
    assert "No data in this range" in svg
