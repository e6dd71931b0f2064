"""The dashboard page: who may open it, its range form, and the figures it shows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from feedback.models import Project
from feedback.services import feedback_record
from feedback.views.dashboard import duration_text
from tests.factories import AnswerFactory, login
from tests.feedback.dashboard_data import seed_feedback

pytestmark = pytest.mark.django_db
URL = "/projects/acme/dashboard/"


@pytest.mark.parametrize(
    ("role", "status"), [("rater", 403), ("annotator", 403), ("researcher", 200), ("owner", 200)]
)
def test_researchers_and_owners_only(
    client: Client, project: Project, role: str, status: int
) -> None:
    login(client, project, role)
    assert client.get(URL).status_code == status


def test_another_projects_dashboard_is_not_found(
    client: Client, project: Project, other_project: Project
) -> None:
    login(client, other_project, "owner")
    assert client.get(URL).status_code == 404


def test_page_shows_each_version_with_its_love_rate_and_interval(
    client: Client, project: Project
) -> None:
    now = timezone.now()
    seed_feedback(project, now=now)
    login(client, project, "researcher")

    content = client.get(URL, {"period": "week"}).content.decode()

    for label in ("demo-small v1", "demo-small v2", "demo-large"):
        assert f'<tr data-model-version="{label}">' in content
    assert "<svg" in content
    assert "Love rate per exposure" in content
    assert "Love per exposure" in content
    assert "Dislike per exposure" in content
    assert "Simulated feedback is not counted" in content


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"since": "2026-03-10", "until": "2026-03-01"}, "Must not be before the start."),
        ({"since": "2024-01-01", "until": "2026-01-01"}, "at most 366 days"),
        ({"since": "yesterday"}, "Enter a valid date."),
        ({"period": "year"}, "Select a valid choice."),
    ],
)
def test_a_bad_range_is_refused_inline(
    client: Client, project: Project, query: dict[str, str], message: str
) -> None:
    login(client, project, "researcher")
    response = client.get(URL, query)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_an_empty_range_says_so(client: Client, project: Project) -> None:
    login(client, project, "researcher")
    day = (timezone.now() - timedelta(days=400)).date().isoformat()
    content = client.get(URL, {"since": day, "until": day}).content.decode()
    assert "No feedback in this range yet." in content


def test_query_count_does_not_grow_with_the_feedback(client: Client, project: Project) -> None:
    login(client, project, "researcher")
    now = timezone.now()
    seed_feedback(project, now=now, answers_per_version=1, seed=1)
    with CaptureQueriesContext(connection) as few:
        client.get(URL)
    seed_feedback(project, now=now, answers_per_version=5, seed=2)
    with CaptureQueriesContext(connection) as many:
        client.get(URL)
    assert len(many) == len(few)


@pytest.mark.parametrize(
    ("window", "text"),
    [
        (timedelta(hours=24), "24 hours"),
        (timedelta(days=2), "2 days"),
        (timedelta(minutes=90), "90 minutes"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(seconds=61), "61 seconds"),
    ],
)
def test_the_love_window_is_said_in_words(window: timedelta, text: str) -> None:
    assert duration_text(window) == text


def test_a_start_alone_far_back_is_cut_to_a_year(client: Client, project: Project) -> None:
    login(client, project, "researcher")
    today = timezone.now().date()

    content = client.get(URL, {"since": "2001-01-01"}).content.decode()

    first = today - timedelta(days=365)
    assert f"From {first.isoformat()} to {today.isoformat()}" in content


def test_a_hostile_model_name_is_escaped_in_tables_and_charts(
    client: Client, project: Project
) -> None:
    hostile = '<script>alert("x")</script>'
    AnswerFactory.create(project=project, external_id="a", model=hostile, model_version="")
    shown = (timezone.now() - timedelta(days=3)).isoformat()
    feedback_record(
        project=project,
        source="api",
        items=[{"event_id": "e", "type": "exposure", "answer": "a", "user_ref": "u", "at": shown}],
    )
    login(client, project, "researcher")

    content = client.get(URL).content.decode()

    assert "<script>alert" not in content
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in content
