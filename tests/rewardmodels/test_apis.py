"""The reward-model API end to end: create, train through a real worker, read the versions,
score; bodies checked by the serializers that document them, bad input and other projects."""

from __future__ import annotations

import time
from typing import Any

import pytest
from rest_framework.test import APIClient

from feedback.models import Project
from rewardmodels.models import C3POBuild, Generator, RewardModel, TrainingRun, VerbalFeedback
from tests.conftest import bearer_client
from tests.factories import api_key_for
from tests.rewardmodels.conftest import MARKER, plant_comparisons, plant_exposures


def _wait(api: APIClient, run_id: int, seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = api.get(f"/api/v1/training-runs/{run_id}").json()
        if run["status"] in ("succeeded", "failed", "cancelled"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still {run['status']}")


@pytest.mark.django_db(transaction=True)
def test_train_a_p_love_model_and_score_with_it(
    project: Project, api: APIClient, celery_worker: None
) -> None:
    # Given exposures where answers mentioning the marker are loved far more often
    planted = plant_exposures(project)

    # When a researcher creates a P[Love] model and trains it through the API
    created = api.post(
        "/api/v1/reward-models",
        {"name": "love", "objective": "p_love", "config": {"epochs": 10}},
        format="json",
    )
    assert created.status_code == 201, created.json()
    model_id = created.json()["id"]
    accepted = api.post(f"/api/v1/reward-models/{model_id}/train")
    assert accepted.status_code == 202
    run = _wait(api, accepted.json()["run_id"])

    # Then the run succeeded with held-out metrics that found the signal
    assert run["status"] == "succeeded", run["error"]
    metrics = run["metrics"]
    assert metrics["rows_train"] + metrics["rows_test"] == planted["exposures"]
    assert metrics["roc_auc"] > 0.8
    assert 0 <= metrics["ece"] <= 1
    assert {row["version"] for row in metrics["by_version"]} == {"1", "2"}
    positive = [f["feature"] for f in metrics["top_features"]["positive"]]
    assert any(MARKER in name for name in positive[:10])

    # And the model has one active version that scores the marker higher
    detail = api.get(f"/api/v1/reward-models/{model_id}").json()
    assert detail["active_version"] == 1
    assert [v["version"] for v in detail["versions"]] == [1]
    scored = api.post(
        f"/api/v1/reward-models/{model_id}/score",
        {
            "items": [
                {"prompt": "question 1", "response": f"rice water {MARKER} garden"},
                {"prompt": "question 1", "response": "rice water plain answer"},
            ]
        },
        format="json",
    )
    assert scored.status_code == 200
    body = scored.json()
    assert body["version"] == 1
    loved, plain = (s["p_love"] for s in body["scores"])
    assert loved > plain


@pytest.mark.django_db(transaction=True)
def test_train_a_preference_model_from_comparisons(
    project: Project, api: APIClient, celery_worker: None
) -> None:
    plant_comparisons(project)
    model_id = api.post(
        "/api/v1/reward-models", {"name": "pref", "objective": "preference"}, format="json"
    ).json()["id"]
    run = _wait(api, api.post(f"/api/v1/reward-models/{model_id}/train").json()["run_id"])
    assert run["status"] == "succeeded", run["error"]
    assert run["metrics"]["pairs_train"] + run["metrics"]["pairs_test"] == 40
    assert run["metrics"]["pairwise_accuracy"] >= 0.75
    scored = api.post(
        f"/api/v1/reward-models/{model_id}/score",
        {
            "items": [
                {"prompt": "x", "response": f"{MARKER} steps"},
                {"prompt": "x", "response": "plain reply"},
            ]
        },
        format="json",
    ).json()
    good, bad = (s["reward"] for s in scored["scores"])
    assert good > bad


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"objective": "p_love"}, "name"),
        ({"name": "x", "objective": "vibes"}, "objective"),
        (
            {"name": "x", "objective": "p_love", "config": {"test_fraction": 0.9}},
            "config.test_fraction",
        ),
        ({"name": "x", "objective": "p_love", "config": {"epochs": "many"}}, "config.epochs"),
        ({"name": "x", "objective": "p_love", "config": {"learning": 1}}, "config.learning"),
        ({"name": "x", "objective": "preference", "config": []}, "config"),
    ],
)
def test_bad_models_are_refused_naming_the_field(
    api: APIClient, body: dict[str, Any], field: str
) -> None:
    response = api.post("/api/v1/reward-models", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not RewardModel.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "love\u202egnp.exe", "objective": "p_love"}, "name"),
        ({"name": "\u2066prefs\u2069", "objective": "preference"}, "name"),
        ({"name": "x", "objective": "p_love", "config": {"model": "gpt\u202d4"}}, "config.model"),
        (
            {"name": "x", "objective": "preference", "config": {"model_version": "\u202b7"}},
            "config.model_version",
        ),
    ],
)
def test_names_with_a_bidi_control_are_refused_naming_the_field(
    api: APIClient, body: dict[str, Any], field: str
) -> None:
    response = api.post("/api/v1/reward-models", body, format="json")

    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert list(fields) == [field]
    assert fields[field][0].startswith("Must not contain bidirectional control characters")
    assert not RewardModel.objects.exists()


@pytest.mark.django_db
def test_a_duplicate_name_is_refused(api: APIClient) -> None:
    body = {"name": "love", "objective": "p_love"}
    assert api.post("/api/v1/reward-models", body, format="json").status_code == 201
    again = api.post("/api/v1/reward-models", body, format="json")
    assert again.status_code == 400
    assert "name" in again.json()["error"]["fields"]


@pytest.mark.django_db
def test_scoring_needs_a_version_and_good_items(api: APIClient) -> None:
    model_id = api.post(
        "/api/v1/reward-models", {"name": "love", "objective": "p_love"}, format="json"
    ).json()["id"]
    untrained = api.post(
        f"/api/v1/reward-models/{model_id}/score",
        {"items": [{"prompt": "p", "response": "r"}]},
        format="json",
    )
    assert untrained.status_code == 409
    assert "train it first" in untrained.json()["error"]["message"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": []}, "items"),
        ({"items": [{"prompt": "p", "response": "r"}] * 1001}, "items"),
        (
            {"items": [{"prompt": "p", "response": "r"}, {"prompt": 5, "response": "r"}]},
            "items[1].prompt",
        ),
        ({"items": [{"prompt": "p"}]}, "items[0].response"),
        ({"items": ["p"]}, "items[0]"),
        ([{"prompt": "p", "response": "r"}], "non_field_errors"),
    ],
)
def test_score_items_are_checked_before_the_models_state(
    api: APIClient, body: Any, field: str
) -> None:
    # given a model with no trained version yet
    model_id = api.post(
        "/api/v1/reward-models", {"name": "love", "objective": "p_love"}, format="json"
    ).json()["id"]

    # when it is sent items its schema does not allow
    response = api.post(f"/api/v1/reward-models/{model_id}/score", body, format="json")

    # then the answer is the 400 naming the item at fault, not the 409 of a valid request
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]


GENERATOR = {"name": "local", "base_url": "https://llm.example.org/v1", "model": "llama3"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/reward-models", {"name": "x", "objective": "p_love", "config": "fast"}, "config"),
        ("/api/v1/reward-models", {"name": "x", "objective": ["p_love"]}, "objective"),
        ("/api/v1/verbal-feedback", {"text": ["Be brief."]}, "text"),
        ("/api/v1/verbal-feedback", {"text": "Be brief.", "domain": 3}, "domain"),
        ("/api/v1/generators", {**GENERATOR, "temperature": "0.5"}, "temperature"),
        ("/api/v1/generators", {**GENERATOR, "concurrency": 2.5}, "concurrency"),
        ("/api/v1/generators", {**GENERATOR, "concurrency": True}, "concurrency"),
        ("/api/v1/generators", {**GENERATOR, "api_key": 1234}, "api_key"),
        ("/api/v1/verbal-feedback/{feedback}/builds", {"review": "yes"}, "review"),
        ("/api/v1/verbal-feedback/{feedback}/builds", {"generator": "1"}, "generator"),
        ("/api/v1/verbal-feedback/{feedback}/builds", {"generator": True}, "generator"),
        ("/api/v1/verbal-feedback/{feedback}/builds", {"counts": [2]}, "counts"),
        ("/api/v1/reward-models", ["love", "p_love"], "non_field_errors"),
        ("/api/v1/verbal-feedback", "Be brief.", "non_field_errors"),
        ("/api/v1/generators", [GENERATOR], "non_field_errors"),
        ("/api/v1/verbal-feedback/{feedback}/builds", [], "non_field_errors"),
    ],
)
def test_a_body_unlike_its_schema_is_refused_naming_the_field(
    api: APIClient, project: Project, url: str, body: Any, field: str
) -> None:
    # given verbal feedback to build from
    feedback = VerbalFeedback.objects.create(project=project, text="Be brief.")

    # when a body breaks its documented schema (a JSON value of another type, not an object)
    response = api.post(url.format(feedback=feedback.pk), body, format="json")

    # then the 400 names the field, and nothing was written
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], list(error["fields"])) == ("invalid", [field])
    assert not RewardModel.objects.exists()
    assert not Generator.objects.exists()
    assert not C3POBuild.objects.exists()
    assert VerbalFeedback.objects.count() == 1


@pytest.mark.django_db
def test_a_build_with_another_projects_generator_is_refused_naming_the_generator(
    api: APIClient, project: Project, other_project: Project
) -> None:
    # given verbal feedback here and a generator of another project
    feedback = VerbalFeedback.objects.create(project=project, text="Be brief.")
    theirs = Generator.objects.create(
        project=other_project, name="theirs", base_url="https://llm.example.org/v1", model="m"
    )

    # when a build names that generator
    response = api.post(
        f"/api/v1/verbal-feedback/{feedback.pk}/builds", {"generator": theirs.pk}, format="json"
    )

    # then it is refused like an unknown one, and no build starts
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "generator": ["No such generator in this project."]
    }
    assert not C3POBuild.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("reward-models/{missing}", "No such reward model in this project."),
        ("training-runs/{missing}", "No such training run in this project."),
        ("c3po-builds/{missing}", "No such C3PO build in this project."),
    ],
)
def test_a_missing_thing_is_a_404_that_says_what_is_missing(
    api: APIClient, path: str, message: str
) -> None:
    response = api.get("/api/v1/" + path.format(missing=999_999))

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": message}}


@pytest.mark.django_db
def test_another_projects_models_and_runs_are_invisible(
    project: Project, other_project: Project, api: APIClient
) -> None:
    theirs = bearer_client(api_key_for(other_project))
    model_id = theirs.post(
        "/api/v1/reward-models", {"name": "theirs", "objective": "p_love"}, format="json"
    ).json()["id"]
    run_id = theirs.post(f"/api/v1/reward-models/{model_id}/train").json()["run_id"]
    assert api.get(f"/api/v1/reward-models/{model_id}").status_code == 404
    assert api.post(f"/api/v1/reward-models/{model_id}/train").status_code == 404
    assert api.get(f"/api/v1/training-runs/{run_id}").status_code == 404
    score = api.post(
        f"/api/v1/reward-models/{model_id}/score",
        {"items": [{"prompt": "p", "response": "r"}]},
        format="json",
    )
    assert score.status_code == 404
    assert TrainingRun.objects.filter(project=project).count() == 0


@pytest.mark.django_db
def test_the_train_scope_is_required(project: Project) -> None:
    client = bearer_client(api_key_for(project, "export"))
    response = client.post(
        "/api/v1/reward-models", {"name": "x", "objective": "p_love"}, format="json"
    )
    assert response.status_code == 403
