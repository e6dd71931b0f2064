"""The project dashboard for researchers: exposures, reactions per exposure, the Love rate with
its 95 % interval, critiques, comparison win rates and follow-ups, per day or week and per
model version, with charts drawn on the server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from feedback import charts, selectors
from feedback.core.access import membership_or_404
from feedback.forms import DashboardForm
from feedback.models import Role
from feedback.selectors.dashboard import Cell, Dashboard, Group, Period, day_bounds
from feedback.stats import Rate, rate

DEFAULT_DAYS = 30


def duration_text(duration: timedelta) -> str:
    """A window as people say it: "24 hours", "2 days", "90 minutes"."""
    seconds = int(duration.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0 and seconds >= size and (unit != "day" or seconds // size > 1):
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


@dataclass(frozen=True)
class ShownRate:
    """A rate as the page shows it: "12.5 %", its interval, and the counts behind it."""

    rate: Rate

    @property
    def text(self) -> str:
        return percent(self.rate.value)

    @property
    def interval(self) -> str:
        if self.rate.low is None or self.rate.high is None:
            return ""
        return f"{percent(self.rate.low)} to {percent(self.rate.high)}"

    @property
    def counts(self) -> str:
        return f"{self.rate.successes} of {self.rate.trials}"


def group_label(group: Group) -> str:
    model, version = group
    return f"{model} v{version}" if version else model


def _figures(cell: Cell, kinds: list[str]) -> dict[str, Any]:
    return {
        "exposures": cell.exposures,
        "love": ShownRate(rate(cell.loved, cell.labelled)),
        "reactions": [
            {
                "kind": kind,
                "n": cell.reactions.get(kind, 0),
                "rate": percent(
                    cell.reactions.get(kind, 0) / cell.exposures if cell.exposures else None
                ),
            }
            for kind in kinds
        ],
        "critiques": cell.critiques,
        "wins": ShownRate(rate(cell.wins, cell.decided)),
        "undecided": cell.undecided,
        "solved": ShownRate(rate(cell.solved, cell.followups)),
    }


def _period_label(start: date, period: str) -> str:
    return f"{start.isoformat()}" if period == "day" else f"week of {start.isoformat()}"


def _rate_series(
    dashboard: Dashboard, successes: str, trials: str, unit: str
) -> list[charts.Series]:
    series = []
    for group in dashboard.groups:
        points = []
        for start in dashboard.periods:
            cell = dashboard.cell(start, group)
            r = rate(getattr(cell, successes), getattr(cell, trials))
            points.append(
                charts.Point(r.value, r.low, r.high, note=f"{r.successes} of {r.trials} {unit}")
            )
        if any(p.value is not None for p in points):
            series.append(charts.Series(group_label(group), points))
    return series


def _context(dashboard: Dashboard, kinds: list[str]) -> dict[str, Any]:
    present = sorted({k for cell in dashboard.cells.values() for k in cell.reactions})
    kinds = [*kinds, *(k for k in present if k not in kinds)]
    x_labels = [start.isoformat() for start in dashboard.periods]
    return {
        "kinds": kinds,
        "totals": [
            {"label": group_label(g), **_figures(dashboard.total(g), kinds)}
            for g in dashboard.groups
        ],
        "periods": [
            {
                "label": _period_label(start, dashboard.period),
                "rows": [
                    {"label": group_label(g), **_figures(dashboard.cells[(start, g)], kinds)}
                    for g in dashboard.groups
                    if (start, g) in dashboard.cells
                ],
            }
            for start in reversed(dashboard.periods)
            if any((start, g) in dashboard.cells for g in dashboard.groups)
        ],
        "love_chart": charts.rate_chart(
            title="Love rate per exposure, with its 95 % interval",
            x_labels=x_labels,
            series=_rate_series(dashboard, "loved", "labelled", "labelled exposures"),
        ),
        "solved_chart": charts.rate_chart(
            title="Follow-ups answered “solved”, with the 95 % interval",
            x_labels=x_labels,
            series=_rate_series(dashboard, "solved", "followups", "follow-ups"),
        ),
    }


@require_GET
@login_required
def dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.RESEARCHER)
    project = membership.project
    today = timezone.now().date()
    form = DashboardForm(request.GET or None)
    context: dict[str, Any] = {"membership": membership, "project": project, "form": form}
    if form.is_bound and not form.is_valid():
        return render(request, "feedback/dashboard.html", context, status=400)
    data = form.cleaned_data if form.is_bound else {}
    until = data.get("until") or today
    since = data.get("since") or until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:  # only `since` given, after today
        until = since
    # Only one end given: the other is a default, and the range still spans at most a year.
    since = max(since, until - timedelta(days=DashboardForm.MAX_DAYS - 1))
    period: Period = "week" if data.get("period") == "week" else "day"
    start, end = day_bounds(since, until)
    found = selectors.dashboard_get(
        project=project, since=start, until=end, period=period, now=timezone.now()
    )
    # The form shows the range it resolved to (the defaults fill what was left blank).
    form = DashboardForm(initial={"since": since, "until": until, "period": period})
    context |= {
        "form": form,
        "shown": True,
        "since": since,
        "until": until,
        "period": period,
        "love_window": duration_text(project.love_window),
        **_context(found, list(project.reaction_set)),
    }
    return render(request, "feedback/dashboard.html", context)
