"""The answers list: full-text search, filters, previews, re-runs under their original."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.postgres.search import SearchQuery
from django.db import connection
from django.test import Client
from django.utils import timezone

from feedback.models import Answer, Project
from feedback.selectors import AnswerFilters, answers_listed
from feedback.selectors.answers import SEARCH_CONFIG, AnswerDocument
from feedback.services import feedback_record
from tests.factories import AnswerFactory, login

pytestmark = pytest.mark.django_db
URL = "/projects/acme/"


def listed(client: Client, **query: str) -> list[str]:
    """The external ids the list shows, in order (re-runs included, under their original)."""
    response = client.get(URL, query)
    assert response.status_code == 200
    return re.findall(r'data-answer="([^"]+)"', response.content.decode())


@pytest.fixture
def answers(project: Project) -> dict[str, Any]:
    now = timezone.now()

    def make(external_id: str, prompt: str, response: str, **extra: Any) -> Any:
        return AnswerFactory.create(
            project=project,
            external_id=external_id,
            prompt=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": prompt},
            ],
            response=response,
            **extra,
        )

    made = {
        "chain": make(
            "chain",
            "How do I oil a bicycle chain?",
            "Wipe it, then one drop per link.",
            created_at=now - timedelta(days=3),
        ),
        "tyres": make(
            "tyres",
            "What pressure for my tyres?",
            "About 4 bar for road tyres.",
            model="demo-large",
            model_version="2",
            created_at=now - timedelta(days=2),
        ),
        "brakes": make(
            "brakes",
            "Why do my brakes squeal?",
            "Oiling the rims makes it worse.",
            created_at=now - timedelta(days=1),
        ),
    }
    made["chain-rerun"] = make(
        "chain-rerun",
        "How do I oil a bicycle chain?",
        "Degrease, then a drop of chain lube.",
        revision_of=made["chain"],
        created_at=now,
    )
    return made


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("tyres", ["tyres"]),
        ("TYRES", ["tyres"]),
        # English stemming: "oiling" and "oil" find each other, in the prompt or the response.
        ("oil", ["brakes", "chain", "chain-rerun"]),
        ("oiling", ["brakes", "chain", "chain-rerun"]),
        # Web-search syntax: a phrase, and a word left out.
        ('"road tyres"', ["tyres"]),
        ("oil -squeal", ["chain", "chain-rerun"]),
        # The re-run matches (lube), so its original is listed with it.
        ("lube", ["chain", "chain-rerun"]),
        # The system message is searched too.
        ("brief", ["brakes", "tyres", "chain", "chain-rerun"]),
        ("nothing-like-this", []),
    ],
)
def test_full_text_search_over_prompt_and_response(
    client: Client, project: Project, answers: dict[str, Any], search: str, expected: list[str]
) -> None:
    login(client, project, "rater")
    assert listed(client, q=search) == expected


def test_filters_by_model_version_reaction_critique_and_date(
    client: Client, project: Project, answers: dict[str, Any]
) -> None:
    login(client, project, "rater")
    feedback_record(
        project=project,
        source="api",
        items=[
            {
                "event_id": "r1",
                "type": "reaction",
                "answer": "tyres",
                "user_ref": "u",
                "reaction": "love",
            },
            {
                "event_id": "c1",
                "type": "critique",
                "answer": "brakes",
                "user_ref": "u",
                "text": "Vague.",
            },
        ],
    )
    today = timezone.now().date()

    assert listed(client, model="demo-large") == ["tyres"]
    assert listed(client, version="2") == ["tyres"]
    assert listed(client, reaction="love") == ["tyres"]
    assert listed(client, reaction="none") == ["brakes", "chain", "chain-rerun"]
    assert listed(client, critique="yes") == ["brakes"]
    assert listed(client, critique="no") == ["tyres", "chain", "chain-rerun"]
    two_days_ago = (today - timedelta(days=2)).isoformat()
    assert listed(client, since=two_days_ago, until=two_days_ago) == ["tyres"]
    assert listed(client, since=today.isoformat()) == [
        "chain",
        "chain-rerun",
    ]  # the re-run is today
    assert listed(client, q="oil", critique="yes") == ["brakes"]


def test_a_rerun_is_listed_under_its_original_with_a_marker(
    client: Client, project: Project, answers: dict[str, Any]
) -> None:
    login(client, project, "rater")
    content = client.get(URL).content.decode()

    assert listed(client) == ["brakes", "tyres", "chain", "chain-rerun"]
    assert 'class="revision-row" data-revision-of="chain" data-answer="chain-rerun"' in content
    assert "Revision</span>" in content


def test_the_preview_is_truncated_and_escaped(client: Client, project: Project) -> None:
    AnswerFactory.create(project=project, external_id="x", response="<b>bold</b> " + "word " * 100)
    login(client, project, "rater")
    content = client.get(URL).content.decode()

    preview = re.search(r'<span class="answer-preview muted">(.*?)</span>', content, re.S)
    assert preview is not None
    assert preview.group(1).startswith("&lt;b&gt;bold&lt;/b&gt; word")
    assert preview.group(1).endswith("…")
    assert len(preview.group(1)) < 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "soon"}, "Since"),
        ({"reaction": "hug"}, "Reaction"),
        ({"since": "2026-03-02", "until": "2026-03-01"}, "Until"),
    ],
)
def test_a_bad_filter_is_named_inline(
    client: Client, project: Project, query: dict[str, str], field: str
) -> None:
    login(client, project, "rater")
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        response = client.get(URL, query, **headers)  # type: ignore[arg-type]
        assert response.status_code == 400
        assert f"<li>{field}: " in response.content.decode()


@pytest.mark.parametrize("rows", [10, 100])
def test_query_count_is_the_same_for_10_and_100_rows_with_reruns_and_search(
    client: Client, project: Project, rows: int, django_assert_num_queries: Any
) -> None:
    login(client, project, "rater")
    originals = AnswerFactory.create_batch(rows, project=project, response="Oil the chain.")
    for original in originals[: rows // 2]:
        AnswerFactory.create(project=project, revision_of=original, response="Oil it again.")

    # The same requests as for any other page size: see test_answers.py for the plain list.
    with django_assert_num_queries(12):
        assert (
            client.get(URL, {"q": "oil", "critique": "no", "reaction": "none"}).status_code == 200
        )


def test_selector_counts_a_family_once(project: Project, answers: dict[str, Any]) -> None:
    found = list(answers_listed(project=project, filters=AnswerFilters(search="chain")))
    assert [a.external_id for a in found] == ["chain"]
    revisions = getattr(found[0], "listed_revisions", None)
    assert [r.external_id for r in revisions or ()] == ["chain-rerun"]


def test_search_expression_can_use_the_gin_index(project: Project, answers: dict[str, Any]) -> None:
    """The index is on the very expression the list searches with (or it would never be used)."""
    query = SearchQuery("oil", config=SEARCH_CONFIG, search_type="websearch")
    queryset = Answer.objects.annotate(document=AnswerDocument()).filter(document=query)
    with connection.cursor() as cursor:
        # Too few rows for the planner to prefer an index by itself.
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = queryset.values("pk").query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Bitmap Index Scan on answer_search" in plan
    assert {a.external_id for a in queryset} == {"chain", "brakes", "chain-rerun"}


def test_a_rerun_of_a_rerun_gets_a_row_of_its_own(
    client: Client, project: Project, answers: dict[str, Any]
) -> None:
    AnswerFactory.create(
        project=project,
        external_id="chain-rerun-2",
        revision_of=answers["chain-rerun"],
        response="Degrease, lube, wipe off the excess.",
    )
    login(client, project, "rater")

    content = client.get(URL).content.decode()

    assert listed(client) == ["chain-rerun-2", "brakes", "tyres", "chain", "chain-rerun"]
    assert 'href="/projects/acme/answers/chain-rerun/">an earlier revision</a>' in content
    assert listed(client, q="excess") == ["chain-rerun-2"]
