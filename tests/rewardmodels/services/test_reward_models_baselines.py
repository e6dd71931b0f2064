"""A P[Love] run measured against honest baselines, with its settings chosen on a validation
slice, and personalised for each viewer: trained by the service a worker runs, on feedback
written through the platform's own services, read back through the API and the run page."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from feedback.models import Project
from feedback.services import answers_ingest, feedback_record
from rewardmodels import services
from rewardmodels.models import RewardModel, TrainingRun
from rewardmodels.services import reward_models
from tests.factories import MembershipFactory, UserFactory
from tests.rewardmodels.conftest import plant_comparisons

WORDS = ["rice", "water", "pot", "boil", "salt", "pan", "stir", "heat", "lid", "steam", "grain"]
SHORT = "boil the rice"
LONG = " ".join(["stir the rice in the pot with salt and water then heat it slowly"] * 8)


def plant(
    project: Project,
    *,
    viewers: int,
    per_viewer: int,
    love: Callable[[int, float], float],
    seed: int,
) -> int:
    """Each viewer sees `per_viewer` answers of their own, 3 to 80 words long, at random times
    between nine and two days ago, and loves one with probability `love(viewer, x)` where x is
    the answer's log-length, centred. Returns the number of exposures."""
    rng = random.Random(seed)
    start = timezone.now() - timedelta(days=9)
    answers, events = [], []
    for v in range(viewers):
        for i in range(per_viewer):
            text = " ".join(rng.choices(WORDS, k=rng.randint(3, 80)))
            external = f"a-{v}-{i}"
            answers.append(
                {
                    "external_id": external,
                    "prompt": [{"role": "user", "content": f"question {i % 7}"}],
                    "response": text,
                    "model": "m",
                    "model_version": str(i % 3),
                }
            )
            shown = start + timedelta(minutes=rng.randrange(7 * 24 * 60))
            base = {"answer": external, "user_ref": f"viewer-{v}"}
            events.append(
                {**base, "event_id": f"x-{v}-{i}", "type": "exposure", "at": shown.isoformat()}
            )
            x = math.log1p(len(text)) - math.log1p(150)
            if rng.random() < love(v, x):
                events.append(
                    {
                        **base,
                        "event_id": f"l-{v}-{i}",
                        "type": "reaction",
                        "reaction": "love",
                        "at": (shown + timedelta(minutes=2)).isoformat(),
                    }
                )
    for i in range(0, len(answers), 500):
        answers_ingest(project=project, items=answers[i : i + 500])
    for i in range(0, len(events), 1000):
        feedback_record(project=project, items=events[i : i + 1000], source="api")
    return viewers * per_viewer


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def train(project: Project, **config: Any) -> tuple[RewardModel, dict[str, Any]]:
    """A P[Love] model trained by the service the Celery task calls; its version's metrics."""
    model = services.reward_model_create(
        project=project, name="love", objective="p_love", config=config, created_by=None
    )
    run = services.training_run_start(reward_model=model, requested_by=None)
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    reward_models._loaded.cache_clear()
    model.refresh_from_db()
    return model, run.metrics


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_where_length_is_the_signal_the_model_is_not_worse_than_a_ruler(
    project: Project, seed: int
) -> None:
    # Given a few hundred exposures whose Love depends on the answer's length (and words that
    # mean nothing)
    rows = plant(project, viewers=40, per_viewer=8, love=lambda v, x: sigmoid(2.5 * x), seed=seed)

    # When a P[Love] model is trained with the default settings
    _, metrics = train(project)

    # Then the grid was searched on the newest training rows, length-only among the candidates
    selection = metrics["selection"]
    assert selection["method"] == "validation"
    assert selection["rows_fit"] + selection["rows_validation"] == metrics["rows_train"]
    assert {point["group"] for point in selection["grid"]} == {"all", "format", "length"}
    assert metrics["rows_train"] + metrics["rows_test"] == rows
    # And on the held-out rows the model is within noise of the length-only baseline
    length = metrics["baselines"]["by_baseline"]["length"]
    assert metrics["roc_auc"] >= length["roc_auc"] - 0.03, (metrics["roc_auc"], length)
    assert metrics["log_loss"] <= length["log_loss"] + 0.03, (metrics["log_loss"], length)
    # And the length baseline itself found the signal the data has
    assert length["roc_auc"] > 0.7
    assert metrics["baselines"]["by_baseline"]["base_rate"]["roc_auc"] == 0.5


@pytest.fixture
def personal(project: Project) -> tuple[RewardModel, dict[str, Any]]:
    """Half the viewers (even numbers) love long answers, half love short ones."""
    plant(
        project,
        viewers=20,
        per_viewer=60,
        love=lambda v, x: sigmoid(3.0 * x if v % 2 == 0 else -3.0 * x),
        seed=11,
    )
    return train(project, personalization="viewer")


@pytest.mark.django_db
def test_a_personalised_model_learns_what_each_viewer_loves(
    personal: tuple[RewardModel, dict[str, Any]],
) -> None:
    _, metrics = personal
    mode = metrics["personalization"]
    # Then the global model is near chance: what one half loves the other doesn't
    assert abs(mode["global"]["roc_auc"] - 0.5) < 0.08, mode["global"]
    assert metrics["roc_auc"] == mode["global"]["roc_auc"]
    # And the personalised one, on the same rows, is clearly better
    assert mode["personal"]["roc_auc"] > mode["global"]["roc_auc"] + 0.2, mode
    assert mode["personal"]["log_loss"] < mode["global"]["log_loss"] - 0.05, mode
    # And per viewer too, for the viewers with enough held-out rows of both kinds
    per_viewer = mode["per_viewer"]
    assert per_viewer["viewers"] >= 10
    assert per_viewer["global"]["mean"] < 0.65
    assert per_viewer["personal"]["mean"] > per_viewer["global"]["mean"] + 0.15, per_viewer
    assert sum(per_viewer["personal"]["histogram"]) == per_viewer["viewers"]
    assert mode["viewers_adjusted"] == 20
    grid = metrics["selection"]["strength_grid"]
    assert mode["strength"] == min(grid, key=lambda point: point["log_loss"])["strength"]


@pytest.mark.django_db
def test_scoring_with_a_user_ref_uses_that_viewers_adjustments(
    personal: tuple[RewardModel, dict[str, Any]], api: APIClient
) -> None:
    model, metrics = personal
    assert model.active_run is not None
    shown = api.get(f"/api/v1/training-runs/{model.active_run.pk}").json()["metrics"]
    assert shown["personalization"] == metrics["personalization"]
    assert set(shown["baselines"]["by_baseline"]) == {"base_rate", "model_version_rate", "length"}

    def score(user_ref: Any = None) -> list[dict[str, Any]]:
        items = [{"prompt": "question 1", "response": text} for text in (LONG, SHORT)]
        if user_ref is not None:
            items = [{**item, "user_ref": user_ref} for item in items]
        response = api.post(
            f"/api/v1/reward-models/{model.pk}/score", {"items": items}, format="json"
        )
        assert response.status_code == 200, response.json()
        scores: list[dict[str, Any]] = response.json()["scores"]
        return scores

    # A viewer who loves long answers, and one who loves short ones
    long_lover, short_lover = score("viewer-0"), score("viewer-1")
    assert [s["personalized"] for s in long_lover + short_lover] == [True] * 4
    assert long_lover[0]["p_love"] > long_lover[1]["p_love"] + 0.2
    assert short_lover[1]["p_love"] > short_lover[0]["p_love"] + 0.2
    # An unknown viewer, a blank one and none at all get the global prediction
    plain = score()
    assert [s["personalized"] for s in plain] == [False, False]
    for other in (score("never-seen"), score("")):
        assert other == plain


@pytest.mark.django_db
def test_the_run_page_shows_the_baselines_and_the_viewers(
    personal: tuple[RewardModel, dict[str, Any]], project: Project
) -> None:
    model, metrics = personal
    user = UserFactory.create(username="researcher-user")
    MembershipFactory.create(user=user, project=project, role="researcher")
    client = Client()
    client.force_login(user)
    assert model.active_run is not None
    page = client.get(f"/projects/acme/models/runs/{model.active_run.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="run-baselines"' in html
    assert "Length only (logistic regression)" in html
    assert "Per-model-version rate" in html
    assert "Personalised for each viewer" in html
    assert f"{metrics['personalization']['per_viewer']['viewers']} viewers" in html
    # The global model does no better than the baselines here, and the page says so
    if not metrics["baselines"]["beats_baselines"]:
        assert "The model does not beat" in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("objective", "config", "field"),
    [
        ("p_love", {"personalization": "everyone"}, "config.personalization"),
        ("p_love", {"personalization": True}, "config.personalization"),
        ("p_love", {"selection": "grid"}, "config.selection"),
        ("preference", {"personalization": "viewer"}, "config.personalization"),
    ],
)
def test_bad_personalization_and_selection_settings_are_refused_naming_the_field(
    api: APIClient, objective: str, config: dict[str, Any], field: str
) -> None:
    response = api.post(
        "/api/v1/reward-models",
        {"name": "x", "objective": objective, "config": config},
        format="json",
    )
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"], response.json()
    assert not RewardModel.objects.exists()


@pytest.mark.django_db
def test_a_score_items_user_ref_must_be_text(project: Project, api: APIClient) -> None:
    model = services.reward_model_create(
        project=project, name="love", objective="p_love", config={}, created_by=None
    )
    response = api.post(
        f"/api/v1/reward-models/{model.pk}/score",
        {"items": [{"prompt": "p", "response": "r", "user_ref": 7}]},
        format="json",
    )
    assert response.status_code == 400
    assert any("user_ref" in key for key in response.json()["error"]["fields"]), response.json()


def _baselines(model_auc: float, length_auc: float) -> dict[str, Any]:
    behind = ["length"] if length_auc >= model_auc else []
    return {
        "model": {"roc_auc": model_auc, "log_loss": 0.5},
        "by_baseline": {
            "base_rate": {
                "roc_auc": 0.5,
                "log_loss": 0.6,
                "roc_auc_lift": model_auc - 0.5,
                "log_loss_lift": 0.1,
            },
            "length": {
                "roc_auc": length_auc,
                "log_loss": 0.55,
                "roc_auc_lift": model_auc - length_auc,
                "log_loss_lift": 0.05,
            },
        },
        "best_baseline": "length",
        "behind": behind,
        "beats_baselines": not behind,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("model_auc", "says"),
    [
        (0.70, "The model does not beat the length-only model"),
        (0.80, "Beats every baseline"),
    ],
)
def test_the_run_page_warns_when_a_baseline_is_as_good(
    project: Project, model_auc: float, says: str
) -> None:
    # Given a finished run whose model is (or isn't) behind the length-only baseline
    model = services.reward_model_create(
        project=project, name="love", objective="p_love", config={}, created_by=None
    )
    run = TrainingRun.objects.create(
        reward_model=model,
        project=project,
        status="succeeded",
        version=1,
        metrics={
            "objective": "p_love",
            "roc_auc": model_auc,
            "baselines": _baselines(model_auc, 0.75),
            "selection": {"method": "off", "alpha": 1e-6, "group": "all"},
            "personalization": None,
        },
    )
    user = UserFactory.create(username="researcher-user")
    MembershipFactory.create(user=user, project=project, role="researcher")
    client = Client()
    client.force_login(user)
    # When a researcher opens it, then the page says so
    html = client.get(f"/projects/acme/models/runs/{run.pk}/").content.decode()
    assert says in html
    assert "choosing on a validation slice is off" in html
    assert "Personalised for each viewer" not in html


@pytest.mark.django_db
def test_a_large_training_part_keeps_all_features_and_reports_the_simpler_models(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given more training rows than are chosen on (the limits lowered to this data's size)
    monkeypatch.setattr(reward_models, "SELECT_ALL_ROWS", 100)
    monkeypatch.setattr(reward_models, "SELECT_MIN_ROWS", 150)
    plant(project, viewers=40, per_viewer=8, love=lambda v, x: sigmoid(2.5 * x), seed=1)

    # When a model is trained with its alpha configured
    _, metrics = train(project, alpha=1e-5)

    # Then it keeps all features and that alpha; the candidates were compared on the 150 newest
    # training rows only, with that alpha
    selection = metrics["selection"]
    assert selection["method"] == "advisory"
    assert (selection["group"], selection["alpha"]) == ("all", 1e-5)
    assert selection["rows_fit"] + selection["rows_validation"] == 150
    assert sorted((p["group"], p["alpha"]) for p in selection["grid"]) == [
        ("all", 1e-5),
        ("format", 1e-5),
        ("length", 1e-5),
    ]
    heaviest = metrics["top_features"]
    assert len(heaviest["positive"]) + len(heaviest["negative"]) > 10  # words, not length alone


@pytest.mark.django_db
def test_a_preference_run_reports_the_longer_wins_baseline(project: Project) -> None:
    # Given comparisons where the winning answer is nearly always the longer one
    plant_comparisons(project)
    model = services.reward_model_create(
        project=project, name="pref", objective="preference", config={}, created_by=None
    )
    run = services.training_run_start(reward_model=model, requested_by=None)
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    # Then "the longer answer wins" is measured on the same held-out pairs, with the lift
    baseline = run.metrics["baselines"]
    longer = baseline["longer_wins"]["pairwise_accuracy"]
    assert longer >= 0.75  # 90% of the planted winners are the longer answer
    assert baseline["longer_wins"]["lift"] == pytest.approx(
        run.metrics["pairwise_accuracy"] - longer
    )
    assert baseline["beats_baselines"] is (run.metrics["pairwise_accuracy"] > longer)
