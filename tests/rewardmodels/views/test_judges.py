"""The judge pages: creating a judge, starting a run, and its agreement shown escaped."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from feedback.models import Project
from rewardmodels.models import Generator, Judge, JudgeRun
from tests.factories import MembershipFactory, UserFactory


@pytest.fixture
def researcher(project: Project) -> Client:
    client = Client()
    user = UserFactory.create()
    MembershipFactory.create(user=user, project=project, role="researcher")
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_a_judge_is_created_and_run_from_its_pages(project: Project, researcher: Client) -> None:
    generator = Generator.objects.create(
        project=project, name="g", base_url="https://llm.example.org/v1", model="m"
    )
    form = {"generator": generator.pk, "rubric": "Fair?", "target": "answer"}

    refused = researcher.post("/projects/acme/models/judges/create/", {**form, "name": ""})
    created = researcher.post(
        "/projects/acme/models/judges/create/", {**form, "name": "<i>strict</i>"}
    )

    assert refused.status_code == 400
    assert "name: Must be a name of 1 to 200 characters." in refused.content.decode()
    judge = Judge.objects.get()
    assert created["Location"] == f"/projects/acme/models/judges/{judge.pk}/"
    page = researcher.get(created["Location"]).content.decode()
    assert "&lt;i&gt;strict&lt;/i&gt;" in page
    assert "<i>strict</i>" not in page

    bad = researcher.post(f"/projects/acme/models/judges/{judge.pk}/run/", {"limit": "0"})
    started = researcher.post(f"/projects/acme/models/judges/{judge.pk}/run/", {"limit": "3"})

    assert bad.status_code == 400
    assert "filters.limit: Must be from 1 to 1000." in bad.content.decode()
    run = JudgeRun.objects.get()
    assert run.filters == {"limit": 3}
    assert started["Location"] == f"/projects/acme/models/judges/runs/{run.pk}/"
    assert "Judge run progress" in researcher.get(started["Location"]).content.decode()


@pytest.mark.django_db
def test_the_list_takes_the_same_queries_for_few_judges_as_for_many(
    project: Project, researcher: Client
) -> None:
    generator = Generator.objects.create(
        project=project, name="g", base_url="https://llm.example.org/v1", model="m"
    )

    def queries_with(judges: int) -> int:
        Judge.objects.all().delete()
        for n in range(judges):
            Judge.objects.create(
                project=project, name=f"j{n}", generator=generator, rubric="r", target="answer"
            )
        with CaptureQueriesContext(connection) as captured:
            assert researcher.get("/projects/acme/models/judges/").status_code == 200
        return len(captured)

    assert queries_with(2) == queries_with(20)
