"""The shadow-run endpoints: what they check, what they answer, and whose runs they show."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from feedback.core.jobs import JobStatus
from feedback.models import Project
from rewardmodels import services
from rewardmodels.models import RewardModel, ShadowRun, TrainingRun
from tests.conftest import bearer_client
from tests.factories import api_key_for
from tests.rewardmodels.services.test_shadow import plant_shadow_data


def shadow_model(
    project: Project, *, objective: str = "p_love", trained: bool = True
) -> RewardModel:
    model = services.reward_model_create(
        project=project,
        name=f"m-{objective}-{trained}",
        objective=objective,
        config=None,
        created_by=None,
    )
    if trained:
        run = services.training_run_start(reward_model=model, requested_by=None)
        TrainingRun.objects.filter(pk=run.pk).update(
            status=JobStatus.SUCCEEDED, version=1, finished_at=timezone.now()
        )
        RewardModel.objects.filter(pk=model.pk).update(active_run=run)
        model.refresh_from_db()
    return model


@pytest.fixture
def client(project: Project) -> APIClient:
    return bearer_client(api_key_for(project, "train"))


@pytest.mark.django_db
def test_a_run_is_queued_with_the_active_version_and_read_back(
    project: Project, client: APIClient
) -> None:
    model = shadow_model(project)

    started = client.post(
        "/api/v1/shadow-runs",
        {"reward_model": model.pk, "threshold": 0.4, "since": "2026-01-01T00:00:00Z"},
        format="json",
    )

    assert started.status_code == 202, started.json()
    body = started.json()
    assert (body["status"], body["version"], body["threshold"]) == ("queued", 1, 0.4)
    assert body["since"].startswith("2026-01-01T00:00:00")
    read = client.get(body["url"])
    assert read.status_code == 200
    assert read.json()["id"] == body["id"]
    assert read.json()["producer"] == f"shadow_run:{body['id']}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "reward_model"),
        ({"reward_model": "1"}, "reward_model"),
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": "0.5"}, "threshold"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_queued(
    project: Project, client: APIClient, body: dict[str, Any], field: str
) -> None:
    model = shadow_model(project)
    sent = {"reward_model": model.pk, **body} if "reward_model" not in body and body else body

    response = client.post("/api/v1/shadow-runs", sent, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not ShadowRun.objects.exists()


@pytest.mark.django_db
def test_another_projects_model_and_a_preference_model_are_refused(
    project: Project, other_project: Project, client: APIClient
) -> None:
    theirs = shadow_model(other_project)
    preference = shadow_model(project, objective="preference")

    for model in (theirs, preference):
        response = client.post("/api/v1/shadow-runs", {"reward_model": model.pk}, format="json")
        assert response.status_code == 400
        assert "reward_model" in response.json()["error"]["fields"]
    assert not ShadowRun.objects.exists()


@pytest.mark.django_db
def test_a_model_without_a_version_is_not_ready(project: Project, client: APIClient) -> None:
    model = shadow_model(project, trained=False)

    response = client.post("/api/v1/shadow-runs", {"reward_model": model.pk}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_ready"


@pytest.mark.django_db
def test_another_projects_run_is_not_found(
    project: Project, other_project: Project, client: APIClient
) -> None:
    theirs = services.shadow.shadow_run_start(reward_model=shadow_model(other_project))

    assert client.get(f"/api/v1/shadow-runs/{theirs.pk}").status_code == 404


def wait_for_job(client: APIClient, url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if body["status"] not in ("queued", "running"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"{url} still {body['status']}")


@pytest.mark.django_db(transaction=True)
def test_train_then_shadow_through_the_api_with_a_real_worker(
    project: Project, client: APIClient, celery_worker: None
) -> None:
    # given the planted data and a P[Love] model trained on it through the API
    plant_shadow_data(project)
    model = client.post(
        "/api/v1/reward-models",
        {"name": "love", "objective": "p_love", "config": {"epochs": 50}},
        format="json",
    ).json()
    trained = client.post(f"/api/v1/reward-models/{model['id']}/train").json()
    assert wait_for_job(client, trained["url"])["status"] == "succeeded"

    # when a shadow runs with each viewer's own threshold, on the worker
    started = client.post("/api/v1/shadow-runs", {"reward_model": model["id"]}, format="json")
    assert started.status_code == 202
    run = wait_for_job(client, started.json()["url"])

    # then it spoke for every exposure nobody reacted to, and measured itself on alice and bob
    assert run["status"] == "succeeded", run["error"]
    assert run["progress"] == 1.0
    assert run["counts"]["exposures"] == 22
    # four labels a viewer is too few for a threshold of their own; the global one sits
    # halfway between the two predictions (half the older exposures were loved)
    assert run["counts"]["own_thresholds"] == 0
    assert run["counts"]["simulated_loves"] == 3
    assert {v["viewer"] for v in run["agreement"]["viewers"]} == {"alice", "bob"}
    assert run["agreement"]["overall"]["rows"] == 8
