"""The dashboard's figures: the same as the datasets' rows for the same range, simulated
feedback left out, and a number of queries that does not grow with the rows."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from feedback.datasets import DATASETS, Filters, jsonl_chunks
from feedback.models import Answer, Comparison, Critique, Exposure, FollowUp, Project, Reaction
from feedback.selectors.dashboard import (
    Dashboard,
    dashboard_get,
    day_bounds,
    period_start,
    period_starts,
)
from feedback.services import feedback_record
from tests.factories import AnswerFactory
from tests.feedback.dashboard_data import seed_feedback

pytestmark = pytest.mark.django_db


def dataset_rows(
    project: Project, name: str, since: datetime, until: datetime, now: datetime
) -> list[dict[str, Any]]:
    """The rows an export of `name` gives for the range, as its JSON Lines."""
    rows = DATASETS[name].rows(project, Filters(since=since, until=until), "text", now)
    return [orjson.loads(line) for line in b"".join(jsonl_chunks(rows)).splitlines()]


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _dashboard(
    project: Project, now: datetime, period: str = "day"
) -> tuple[Dashboard, datetime, datetime]:
    since, until = day_bounds(now.date() - timedelta(days=14), now.date())
    return (
        dashboard_get(project=project, since=since, until=until, period=period, now=now),  # type: ignore[arg-type]
        since,
        until,
    )


@pytest.mark.parametrize("period", ["day", "week"])
def test_figures_equal_the_datasets_rows(project: Project, period: str) -> None:
    now = timezone.now()
    seed_feedback(project, now=now)
    # The datasets count simulated feedback unless told otherwise; the dashboard never does.
    # So the comparison is made on the real feedback only.
    for model in (Exposure, Reaction, Critique, Comparison, FollowUp):
        model.objects.filter(source="simulated").delete()
    dashboard, since, until = _dashboard(project, now, period)
    version_of = {
        a.external_id: (a.model, a.model_version) for a in Answer.objects.filter(project=project)
    }

    def key(when: str, group: tuple[str, str]) -> tuple[date, tuple[str, str]]:
        return period_start(_when(when), period), group  # type: ignore[arg-type]

    p_love = dataset_rows(project, "p_love", since, until, now)
    labelled = Counter(key(r["shown_at"], (r["model"], r["model_version"])) for r in p_love)
    loved = Counter(
        key(r["shown_at"], (r["model"], r["model_version"])) for r in p_love if r["label"]
    )
    kto = dataset_rows(project, "kto", since, until, now)
    reactions = Counter(
        (*key(r["created_at"], (r["model"], r["model_version"])), r["reaction"]) for r in kto
    )
    critiques = Counter(
        key(r["created_at"], version_of[r["answer_id"]])
        for r in dataset_rows(project, "critiques", since, until, now)
    )
    dpo = [
        r for r in dataset_rows(project, "dpo", since, until, now) if r["source"] == "comparison"
    ]
    wins = Counter(key(r["created_at"], version_of[r["chosen_answer_id"]]) for r in dpo)
    losses = Counter(key(r["created_at"], version_of[r["rejected_answer_id"]]) for r in dpo)
    assert sum(labelled.values()) > 50
    assert sum(loved.values()) > 5
    assert dpo
    assert critiques

    for (start, group), cell in dashboard.cells.items():
        assert (cell.labelled, cell.loved) == (labelled[(start, group)], loved[(start, group)])
        assert cell.critiques == critiques[(start, group)]
        assert (cell.wins, cell.decided) == (
            wins[(start, group)],
            wins[(start, group)] + losses[(start, group)],
        )
        for kind in ("love", "like", "dislike", "angry"):  # the kinds kto exports
            assert cell.reactions.get(kind, 0) == reactions[(start, group, kind)]
    # Nothing the datasets have is missing from the dashboard.
    assert sum(c.labelled for c in dashboard.cells.values()) == len(p_love)
    assert sum(c.critiques for c in dashboard.cells.values()) == sum(critiques.values())
    assert sum(c.wins for c in dashboard.cells.values()) == len(dpo)
    assert sum(
        sum(c.reactions.get(k, 0) for k in ("love", "like", "dislike", "angry"))
        for c in dashboard.cells.values()
    ) == len(kto)


def test_simulated_feedback_never_counts(project: Project) -> None:
    now = timezone.now()
    seed_feedback(project, now=now)
    with_simulated, _, _ = _dashboard(project, now)
    for model in (Exposure, Reaction, Critique, Comparison, FollowUp):
        assert model.objects.filter(source="simulated").exists()
        model.objects.filter(source="simulated").delete()
    without, _, _ = _dashboard(project, now)

    assert with_simulated.cells == without.cells


def test_exposures_younger_than_the_love_window_count_but_are_not_labelled(
    project: Project,
) -> None:
    now = timezone.now()
    answer = AnswerFactory.create(project=project, external_id="a", model="m", model_version="1")
    events = [
        {
            "event_id": f"e{i}",
            "type": "exposure",
            "answer": "a",
            "user_ref": f"u{i}",
            "at": (now - age).isoformat(),
        }
        for i, age in enumerate([timedelta(hours=30), timedelta(hours=30), timedelta(hours=1)])
    ] + [
        {
            "event_id": "love",
            "type": "reaction",
            "answer": "a",
            "user_ref": "u0",
            "reaction": "love",
            "at": (now - timedelta(hours=29)).isoformat(),
        },
        {
            "event_id": "f1",
            "type": "followup",
            "answer": "a",
            "user_ref": "u0",
            "outcome": "solved",
            "at": (now - timedelta(hours=2)).isoformat(),
        },
        {
            "event_id": "f2",
            "type": "followup",
            "answer": "a",
            "user_ref": "u1",
            "outcome": "partly",
            "at": (now - timedelta(hours=2)).isoformat(),
        },
    ]
    assert all(
        r.status == "created" for r in feedback_record(project=project, items=events, source="api")
    )

    dashboard, _, _ = _dashboard(project, now, "week")
    total = dashboard.total((answer.model, answer.model_version))

    assert (total.exposures, total.labelled, total.loved) == (3, 2, 1)
    assert total.reactions == {"love": 1}
    assert (total.followups, total.solved) == (2, 1)


def test_query_count_does_not_grow_with_the_rows(project: Project) -> None:
    now = timezone.now()
    seed_feedback(project, now=now, answers_per_version=1, seed=1)
    with CaptureQueriesContext(connection) as few:
        _dashboard(project, now)
    seed_feedback(project, now=now, answers_per_version=4, seed=2)
    with CaptureQueriesContext(connection) as many:
        dashboard, _, _ = _dashboard(project, now)

    assert len(many) == len(few)
    assert sum(c.exposures for c in dashboard.cells.values()) > 150


@pytest.mark.parametrize(
    ("since", "until", "period", "starts"),
    [
        ("2026-03-02T00:00", "2026-03-05T00:00", "day", ["2026-03-02", "2026-03-03", "2026-03-04"]),
        # Weeks start on Monday: 2026-03-04 is a Wednesday.
        (
            "2026-03-04T00:00",
            "2026-03-17T00:00",
            "week",
            ["2026-03-02", "2026-03-09", "2026-03-16"],
        ),
        ("2026-03-04T00:00", "2026-03-16T00:00", "week", ["2026-03-02", "2026-03-09"]),
    ],
)
def test_period_starts(since: str, until: str, period: str, starts: list[str]) -> None:
    found = period_starts(
        datetime.fromisoformat(since).replace(tzinfo=UTC),
        datetime.fromisoformat(until).replace(tzinfo=UTC),
        period,  # type: ignore[arg-type]
    )
    assert [d.isoformat() for d in found] == starts
