"""The judge endpoints: what they check, and whose judges and runs they show."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from rest_framework.test import APIClient

from feedback.models import Project
from rewardmodels.models import Generator, Judge, JudgeRun
from tests.conftest import bearer_client
from tests.factories import UserFactory, api_key_for
from tests.rewardmodels.chat_server import ChatServer, completion
from tests.rewardmodels.services.test_judges import JUDGED, label_documents, relevance_answer
from tests.rewardmodels.test_apis_shadow import wait_for_job


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


@pytest.mark.django_db(transaction=True)
def test_a_relevance_judge_runs_on_a_real_worker_and_reports_agreement(
    project: Project, client: APIClient, celery_worker: None
) -> None:
    # given an answer whose four documents an annotator labelled, and a stand-in server that
    # judges them the same way
    answer = relevance_answer(project)
    annotator = UserFactory.create(username="alice")
    label_documents(answer, annotator, JUDGED)
    with ChatServer() as chat:
        chat.responder = lambda body: (
            200,
            {},
            completion(
                orjson.dumps(
                    {"documents": [{"id": d, "relevance": r} for d, r in JUDGED.items()]}
                ).decode()
            ),
        )
        generator = Generator.objects.create(
            project=project, name="local", base_url=chat.url, model="tiny"
        )
        judge = client.post(
            "/api/v1/judges", _body(project, generator=generator.pk), format="json"
        ).json()

        # when it runs through the API
        started = client.post(f"/api/v1/judges/{judge['id']}/runs", {}, format="json")
        run = wait_for_job(client, started.json()["url"])

    # then it succeeded and agrees perfectly with alice
    assert run["status"] == "succeeded", run["error"]
    assert run["counts"] == {"answers": 1, "judgments": 4}
    relevance = client.get(f"/api/v1/judges/{judge['id']}").json()["agreement"]["relevance"]
    assert [(a["annotator"], a["kappa"]) for a in relevance["annotators"]] == [("alice", 1.0)]
