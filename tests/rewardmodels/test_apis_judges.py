"""The judge endpoints: what they check, and whose judges and runs they show."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from feedback.models import Project
from rewardmodels.models import Generator, Judge, JudgeRun
from tests.conftest import bearer_client
from tests.factories import api_key_for


def _generator(project: Project) -> Generator:
    return Generator.objects.create(
        project=project, name="g", base_url="https://llm.example.org/v1", model="m"
    )


@pytest.fixture
def client(project: Project) -> APIClient:
    return bearer_client(api_key_for(project, "train"))


def _body(project: Project, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "strict",
        "generator": _generator(project).pk,
        "rubric": "Is every document about the question?",
        "target": "document_relevance",
        **overrides,
    }


@pytest.mark.django_db
def test_a_judge_is_created_run_and_read_back(project: Project, client: APIClient) -> None:
    created = client.post("/api/v1/judges", _body(project, viewer="v1"), format="json")
    assert created.status_code == 201, created.json()
    judge = created.json()
    assert (judge["target"], judge["viewer"]) == ("document_relevance", "v1")
    assert judge["agreement"]["relevance"] == {"annotators": [], "alpha": None, "units": 0}

    started = client.post(
        f"/api/v1/judges/{judge['id']}/runs", {"filters": {"limit": 5}}, format="json"
    )
    assert started.status_code == 202, started.json()
    assert started.json()["filters"] == {"limit": 5}
    read = client.get(started.json()["url"])
    assert read.status_code == 200
    assert read.json()["status"] == "queued"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": " "}, "name"),
        ({"target": "everything"}, "target"),
        ({"rubric": ""}, "rubric"),
        ({"generator": 10**9}, "generator"),
        ({"generator": "1"}, "generator"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    project: Project, client: APIClient, overrides: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/judges", _body(project, **overrides), format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Judge.objects.exists()


@pytest.mark.django_db
def test_another_projects_generator_judge_and_run_are_not_ours(
    project: Project, other_project: Project, client: APIClient
) -> None:
    theirs = _generator(other_project)
    refused = client.post("/api/v1/judges", _body(project, generator=theirs.pk), format="json")
    their_judge = Judge.objects.create(
        project=other_project, name="x", generator=theirs, rubric="r", target="answer"
    )
    their_run = JudgeRun.objects.create(project=other_project, judge=their_judge)

    assert refused.status_code == 400
    assert "generator" in refused.json()["error"]["fields"]
    assert client.get(f"/api/v1/judges/{their_judge.pk}").status_code == 404
    assert (
        client.post(f"/api/v1/judges/{their_judge.pk}/runs", {}, format="json").status_code == 404
    )
    assert client.get(f"/api/v1/judge-runs/{their_run.pk}").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("filters", "field"),
    [({"limit": 0}, "filters.limit"), ({"colour": "red"}, "filters"), ("all", "filters")],
)
def test_a_bad_run_filter_is_refused(
    project: Project, client: APIClient, filters: Any, field: str
) -> None:
    judge = client.post("/api/v1/judges", _body(project), format="json").json()

    response = client.post(
        f"/api/v1/judges/{judge['id']}/runs", {"filters": filters}, format="json"
    )

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not JudgeRun.objects.exists()
