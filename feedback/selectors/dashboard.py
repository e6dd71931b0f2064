"""Reads of the project dashboard: per period (day or week) and per model and model version,
what people did with the answers.

Each figure is computed from the same definition as the dataset researchers export, so the
dashboard and an export of the same range never disagree:
- the Love rate is the share of the `p_love` dataset's rows whose label is true (exposures old
  enough to be labelled, by when they were shown);
- reactions are the active reactions (the `kto` dataset's rule, for every kind), by when they
  were made, per exposure of the same period;
- critiques are the `critiques` dataset's rows; comparisons with a winner are the `dpo`
  dataset's comparison rows (ties and "both bad" are counted beside them, as the dataset leaves
  them out); follow-ups are counted by outcome.

Simulated feedback (Shadow User Mode, judges) never counts here. Each kind of record is read
with one grouped query, so the number of queries does not depend on the number of rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from django.db.models import Count, F, IntegerField, QuerySet, Sum
from django.db.models.functions import Cast, TruncDay, TruncWeek

from feedback.datasets.definitions import Filters, p_love_rows, time_filters
from feedback.models import Comparison, Critique, Exposure, FollowUp, Project, Reaction, Source

Period = Literal["day", "week"]
PERIODS: tuple[Period, ...] = ("day", "week")
WINNERS_SIDE = {"a": "answer_a__", "b": "answer_b__"}


@dataclass
class Cell:
    """One period of one model version (or, as a total, the whole range)."""

    exposures: int = 0
    reactions: dict[str, int] = field(default_factory=dict)
    labelled: int = 0  # p_love rows: exposures whose label is known
    loved: int = 0  # ... of which the label is true
    critiques: int = 0
    wins: int = 0  # comparisons with a winner that this version's answer won
    decided: int = 0  # comparisons with a winner this version's answer took part in
    undecided: int = 0  # ties and "both bad" it took part in
    followups: int = 0
    solved: int = 0

    def add(self, other: Cell) -> None:
        for name in (
            "exposures",
            "labelled",
            "loved",
            "critiques",
            "wins",
            "decided",
            "undecided",
            "followups",
            "solved",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for kind, n in other.reactions.items():
            self.reactions[kind] = self.reactions.get(kind, 0) + n


Group = tuple[str, str]  # (model, model_version)


@dataclass
class Dashboard:
    since: datetime
    until: datetime  # exclusive
    period: Period
    periods: list[date]  # every period start in the range, oldest first
    groups: list[Group]  # every model version with any figure, sorted
    cells: dict[tuple[date, Group], Cell]

    def cell(self, start: date, group: Group) -> Cell:
        return self.cells.get((start, group)) or Cell()

    def total(self, group: Group) -> Cell:
        total = Cell()
        for start in self.periods:
            total.add(self.cell(start, group))
        return total


def period_start(moment: datetime | date, period: Period) -> date:
    """The first day (UTC) of the period holding `moment`; weeks start on Monday."""
    day = moment.astimezone(UTC).date() if isinstance(moment, datetime) else moment
    return day - timedelta(days=day.weekday()) if period == "week" else day


def period_starts(since: datetime, until: datetime, period: Period) -> list[date]:
    """Every period start from the one holding `since` to the one holding the last instant
    before `until`."""
    step = timedelta(days=7 if period == "week" else 1)
    first = period_start(since, period)
    last = period_start(until - timedelta(microseconds=1), period)
    starts = []
    current = first
    while current <= last:
        starts.append(current)
        current += step
    return starts


def _trunc(path: str, period: Period) -> Any:
    trunc = TruncWeek if period == "week" else TruncDay
    return trunc(path, tzinfo=UTC)


def _grouped(
    records: QuerySet[Any],
    *,
    time_path: str,
    answer: str,
    period: Period,
    extra: Iterable[str] = (),
) -> QuerySet[Any]:
    """`records` grouped by period, model, model version (and `extra` fields)."""
    return (
        records.annotate(
            d_period=_trunc(time_path, period),
            d_model=F(f"{answer}model"),
            d_version=F(f"{answer}model_version"),
        )
        .values("d_period", "d_model", "d_version", *extra)
        .order_by()
    )


def dashboard_get(
    *, project: Project, since: datetime, until: datetime, period: Period, now: datetime
) -> Dashboard:
    """The dashboard of `project` from `since` (inclusive) to `until` (exclusive)."""
    filters = Filters(since=since, until=until)
    cells: dict[tuple[date, Group], Cell] = defaultdict(Cell)

    def cell(row: dict[str, Any]) -> Cell:
        return cells[(period_start(row["d_period"], period), (row["d_model"], row["d_version"]))]

    real = {"project": project}
    exposures = Exposure.objects.filter(time_filters(filters, "shown_at"), **real).exclude(
        source=Source.SIMULATED
    )
    for row in _grouped(exposures, time_path="shown_at", answer="answer__", period=period).annotate(
        n=Count("id")
    ):
        cell(row).exposures += row["n"]

    love = p_love_rows(project, filters, "text", now)
    labelled = love.records.exclude(source=Source.SIMULATED).annotate(
        d_loved=Cast(love.columns["label"], IntegerField())
    )
    for row in _grouped(labelled, time_path="shown_at", answer="answer__", period=period).annotate(
        n=Count("id"), loved=Sum("d_loved")
    ):
        cell(row).labelled += row["n"]
        cell(row).loved += row["loved"] or 0

    reactions = Reaction.objects.filter(
        time_filters(filters, "created_at"), removed_at__isnull=True, **real
    ).exclude(source=Source.SIMULATED)
    for row in _grouped(
        reactions, time_path="created_at", answer="answer__", period=period, extra=["kind"]
    ).annotate(n=Count("id")):
        counts = cell(row).reactions
        counts[row["kind"]] = counts.get(row["kind"], 0) + row["n"]

    critiques = Critique.objects.filter(time_filters(filters, "created_at"), **real).exclude(
        source=Source.SIMULATED
    )
    for row in _grouped(
        critiques, time_path="created_at", answer="answer__", period=period
    ).annotate(n=Count("id")):
        cell(row).critiques += row["n"]

    comparisons = Comparison.objects.filter(time_filters(filters, "created_at"), **real).exclude(
        source=Source.SIMULATED
    )
    # Each comparison counts once for each side's model version.
    for side, path in WINNERS_SIDE.items():
        for row in _grouped(
            comparisons, time_path="created_at", answer=path, period=period, extra=["winner"]
        ).annotate(n=Count("id")):
            target = cell(row)
            if row["winner"] in WINNERS_SIDE:
                target.decided += row["n"]
                if row["winner"] == side:
                    target.wins += row["n"]
            else:
                target.undecided += row["n"]

    followups = FollowUp.objects.filter(time_filters(filters, "created_at"), **real).exclude(
        source=Source.SIMULATED
    )
    for row in _grouped(
        followups, time_path="created_at", answer="answer__", period=period, extra=["outcome"]
    ).annotate(n=Count("id")):
        target = cell(row)
        target.followups += row["n"]
        if row["outcome"] == "solved":
            target.solved += row["n"]

    return Dashboard(
        since=since,
        until=until,
        period=period,
        periods=period_starts(since, until, period),
        groups=sorted({group for _, group in cells}),
        cells=dict(cells),
    )


def day_bounds(since: date, until: date) -> tuple[datetime, datetime]:
    """A range of whole days in UTC, both days included: (start, exclusive end)."""
    return (
        datetime.combine(since, time.min, tzinfo=UTC),
        datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC),
    )
