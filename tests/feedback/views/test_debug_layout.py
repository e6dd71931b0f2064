"""What debug mode shows beside the editors: stages numbered from 1 with their input and output
as readable JSON, and what end users said about the answer, read in the same number of queries
however much they said."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from feedback.models import Answer, Project
from tests.factories import AnswerFactory, StageFactory, login
from tests.feedback.end_user_data import critique, followup, reaction

pytestmark = pytest.mark.django_db


def traced_answer(project: Project) -> Answer:
    answer = AnswerFactory.create(project=project, external_id="a-1", response="Boil it.")
    StageFactory.create(
        answer=answer,
        position=0,
        kind="decomposition",
        input={"question": "How do I <cook> rice?"},
        output={"subqueries": ["rice", "water ratio"]},
    )
    StageFactory.create(
        answer=answer,
        position=1,
        kind="retrieval",
        input={"queries": ["rice"]},
        output={"documents": [{"id": "d1", "title": "Rice", "text": "Boil it."}]},
    )
    StageFactory.create(answer=answer, position=2, kind="generation", output={"text": "Boil it."})
    return answer


def test_stages_are_numbered_from_one_with_pretty_json(client: Client, project: Project) -> None:
    # given an annotator and an answer with a three-stage trace (positions 0 to 2)
    login(client, project, "annotator")
    traced_answer(project)

    # when they open debug mode
    page = client.get("/projects/acme/answers/a-1/debug/").content.decode()

    # then the stages are 1, 2, 3 in the trace and the headings, and their input and output are
    # indented JSON (escaped), never a Python dict
    for number, kind in [(1, "Decomposition"), (2, "Retrieval"), (3, "Generation")]:
        assert f"Stage {number}: {kind}</h2>" in page
        assert f'href="#stage-{number}"' in page
    assert "Stage 0" not in page
    assert html.escape('{\n  "question": "How do I <cook> rice?"\n}') in page
    assert html.escape('{\n  "subqueries": [\n    "rice",\n    "water ratio"\n  ]\n}') in page
    assert "{&#x27;" not in page


def test_end_users_feedback_is_beside_the_editors(client: Client, project: Project) -> None:
    # given an answer end users reacted to, critiqued (with a quote) and followed up on, and a
    # judge's simulated critique
    login(client, project, "annotator")
    answer = traced_answer(project)
    reaction(answer, "love")
    reaction(answer, "love", source="browser")
    reaction(answer, "dislike")
    reaction(answer, "love", source="simulated")
    critique(answer, "It forgets the <water>.", quote="Boil it.", category="incomplete")
    critique(answer, "Judged by a model.", source="simulated")
    followup(answer, "not_solved", "Still burnt.")

    # when the annotator opens debug mode
    page = client.get("/projects/acme/answers/a-1/debug/").content.decode()

    # then they see the counts of end users' reactions, the critique with its quote (escaped),
    # the follow-up with its outcome and text; nothing simulated
    assert "What end users said" in page
    assert "Love <strong>2</strong>" in page
    assert "Dislike <strong>1</strong>" in page
    assert "Critiques (1)" in page
    assert '<blockquote class="quote">Boil it.</blockquote>' in page
    assert "It forgets the &lt;water&gt;." in page
    assert "Judged by a model." not in page
    assert "Not solved" in page
    assert "Still burnt." in page


def test_debug_page_queries_do_not_grow_with_feedback(
    client: Client, project: Project, django_assert_num_queries: Any
) -> None:
    # given an answer with a few critiques and follow-ups
    login(client, project, "annotator")
    answer = traced_answer(project)

    def add(first: int, last: int) -> None:
        for i in range(first, last):
            critique(answer, f"Critique {i}", quote="Boil it.")
            followup(answer, "solved", f"Follow-up {i}")
            reaction(answer, "like")

    add(0, 5)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/projects/acme/answers/a-1/debug/").status_code == 200

    # when it has ten times as many
    add(5, 45)

    # then the page takes as many queries
    with django_assert_num_queries(len(few.captured_queries)):
        page = client.get("/projects/acme/answers/a-1/debug/").content.decode()
    assert "Critiques (45)" in page
    assert "Like <strong>45</strong>" in page
