"""The researchers' reward-model pages: who may see them, forms, cancel, plots, query counts."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from feedback.core.jobs import JobStatus
from feedback.models import Project
from rewardmodels import services
from rewardmodels.models import RewardModel, TrainingRun
from tests.factories import MembershipFactory, UserFactory


def _member(project: Project, role: str) -> Client:
    user = UserFactory.create(username=f"{role}-user")
    MembershipFactory.create(user=user, project=project, role=role)
    client = Client()
    client.force_login(user)
    return client


def _model(project: Project, name: str = "love") -> RewardModel:
    return services.reward_model_create(
        project=project, name=name, objective="p_love", config={}, created_by=None
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "status"), [("rater", 403), ("annotator", 403), ("researcher", 200)]
)
def test_reward_models_are_for_researchers(project: Project, role: str, status: int) -> None:
    model = _model(project)
    client = _member(project, role)
    assert client.get("/projects/acme/models/").status_code == status
    assert client.get(f"/projects/acme/models/{model.pk}/").status_code == status


@pytest.mark.django_db
def test_another_projects_models_and_runs_are_404(project: Project, other_project: Project) -> None:
    theirs = _model(other_project)
    run = TrainingRun.objects.create(reward_model=theirs, project=other_project)
    client = _member(project, "owner")
    assert client.get(f"/projects/acme/models/{theirs.pk}/").status_code == 404
    assert client.post(f"/projects/acme/models/{theirs.pk}/train/").status_code == 404
    assert client.get(f"/projects/acme/models/runs/{run.pk}/").status_code == 404
    assert client.post(f"/projects/acme/models/runs/{run.pk}/cancel/").status_code == 404
    assert client.get(f"/projects/acme/models/runs/{run.pk}/reliability.png").status_code == 404
    assert client.get(f"/projects/rival/models/{theirs.pk}/").status_code == 404


@pytest.mark.django_db
def test_creating_with_bad_settings_shows_the_field_and_creates_nothing(project: Project) -> None:
    client = _member(project, "researcher")
    response = client.post(
        "/projects/acme/models/create/",
        {"name": "love", "objective": "p_love", "test_fraction": "most"},
    )
    assert response.status_code == 400
    assert "config.test_fraction" in response.content.decode()
    assert 'value="love"' in response.content.decode()  # what was typed is kept
    assert not RewardModel.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sent", "personalization", "simulated"),
    [
        ({"personalization": "viewer", "include_simulated": "on"}, "viewer", True),
        ({"personalization": "none"}, "none", False),
        ({}, "none", False),
    ],
    ids=["personal-with-simulated", "global", "defaults"],
)
def test_the_page_makes_a_personalised_p_love_model(
    project: Project, sent: dict[str, str], personalization: str, simulated: bool
) -> None:
    client = _member(project, "researcher")
    response = client.post(
        "/projects/acme/models/create/", {"name": "love", "objective": "p_love", **sent}
    )
    assert response.status_code == 302
    stored = RewardModel.objects.get(name="love").config
    assert (stored["personalization"], stored["include_simulated"]) == (personalization, simulated)


@pytest.mark.django_db
def test_a_bad_personalization_names_the_setting(project: Project) -> None:
    client = _member(project, "researcher")
    response = client.post(
        "/projects/acme/models/create/",
        {"name": "love", "objective": "p_love", "personalization": "everyone"},
    )
    assert response.status_code == 400
    assert "config.personalization" in response.content.decode()
    assert not RewardModel.objects.exists()


@pytest.mark.django_db
def test_creating_with_a_spoofed_name_shows_the_field_and_creates_nothing(project: Project) -> None:
    client = _member(project, "researcher")
    response = client.post(
        "/projects/acme/models/create/",
        {"name": "love\u202egnp.exe", "objective": "p_love", "model": "gpt\u20684\u2069"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert html.count("Must not contain bidirectional control characters") == 2
    assert not RewardModel.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_train_from_the_page_then_cancel_the_queued_run(project: Project) -> None:
    client = _member(project, "researcher")
    created = client.post("/projects/acme/models/create/", {"name": "love", "objective": "p_love"})
    model = RewardModel.objects.get(name="love")
    assert created["Location"] == f"/projects/acme/models/{model.pk}/"

    trained = client.post(f"/projects/acme/models/{model.pk}/train/")
    run = TrainingRun.objects.get(reward_model=model)
    assert trained["Location"] == f"/projects/acme/models/runs/{run.pk}/"
    page = client.get(f"/projects/acme/models/runs/{run.pk}/", headers={"HX-Request": "true"})
    assert 'hx-trigger="every 1s"' in page.content.decode()  # polls while not finished

    client.post(f"/projects/acme/models/runs/{run.pk}/cancel/")
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED
    page = client.get(f"/projects/acme/models/runs/{run.pk}/", headers={"HX-Request": "true"})
    assert "every 1s" not in page.content.decode()  # a finished run stops polling


@pytest.mark.django_db
def test_plots_exist_only_for_p_love_runs_with_metrics(project: Project) -> None:
    model = _model(project)
    client = _member(project, "researcher")
    queued = TrainingRun.objects.create(reward_model=model, project=project)
    assert client.get(f"/projects/acme/models/runs/{queued.pk}/reliability.png").status_code == 404
    done = TrainingRun.objects.create(
        reward_model=model,
        project=project,
        status="succeeded",
        version=1,
        metrics={
            "reliability": [
                {
                    "bin_low": 0.0,
                    "bin_high": 0.1,
                    "mean_predicted": 0.05,
                    "observed": 0.1,
                    "count": 3,
                }
            ],
            "ece": 0.05,
            "histogram": {"edges": [0.0, 0.5, 1.0], "positive": [1, 2], "negative": [3, 0]},
        },
    )
    for name in ("reliability", "distribution"):
        response = client.get(f"/projects/acme/models/runs/{done.pk}/{name}.png")
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        assert response.content.startswith(b"\x89PNG")
    assert client.get(f"/projects/acme/models/runs/{done.pk}/other.png").status_code == 404


@pytest.mark.django_db
def test_the_models_list_costs_the_same_queries_for_10_and_100_models(
    project: Project, django_assert_num_queries: Any
) -> None:
    client = _member(project, "researcher")
    for i in range(10):
        _model(project, f"m{i}")
    with CaptureQueriesContext(connection) as ten:
        assert client.get("/projects/acme/models/").status_code == 200
    for i in range(10, 100):
        _model(project, f"m{i}")
    with django_assert_num_queries(len(ten.captured_queries)):
        assert client.get("/projects/acme/models/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
def test_scoring_before_any_training_is_refused_in_the_form(project: Project, htmx: bool) -> None:
    # given a model with no trained version
    model = _model(project)
    client = _member(project, "researcher")

    # when a researcher tries a score on its page
    response = client.post(
        f"/projects/acme/models/{model.pk}/score/",
        {"prompt": "Which flower?", "response": "a sunflower"},
        headers={"HX-Request": "true"} if htmx else {},
    )

    # then 400 with the reason in the form, what was typed kept; htmx gets only the form
    html = response.content.decode()
    assert response.status_code == 400
    assert "The model has no trained version yet; train it first." in html
    assert "a sunflower</textarea>" in html
    assert html.lstrip().startswith('<form id="score"') == htmx
