"""What the researcher pages say about a model and its runs: settings as a table, a legend of
feature names, and warnings about small held-out sets and overfitting."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from feedback.models import Project
from rewardmodels import services
from rewardmodels.models import TrainingRun
from tests.factories import login

pytestmark = pytest.mark.django_db


def _run(project: Project, objective: str, metrics: dict[str, Any]) -> TrainingRun:
    model = services.reward_model_create(
        project=project, name=objective, objective=objective, config={}, created_by=None
    )
    run = TrainingRun.objects.create(
        reward_model=model,
        project=project,
        status="succeeded",
        version=1,
        config=model.config,
        metrics={"objective": objective, **metrics},
    )
    model.active_run = run
    model.save(update_fields=["active_run"])
    return run


PREFERENCE_OVERFIT = {
    "pairs_train": 20,
    "pairs_test": 5,
    "pairwise_accuracy": 0.4,
    "train_pairwise_accuracy": 1.0,
    "sources": {"comparison": 25},
    "top_features": {"positive": [], "negative": []},
}


def test_run_page_warns_of_a_small_held_out_set_and_a_train_gap(
    client: Client, project: Project
) -> None:
    run = _run(project, "preference", PREFERENCE_OVERFIT)
    login(client, project, "researcher")

    content = client.get(f"/projects/acme/models/runs/{run.pk}/").content.decode()

    assert 'class="warning"' in content
    assert "only 5 pairs" in content
    assert "pairwise accuracy differ a lot (1.000 against 0.400)" in content
    assert "<code>w:</code>" in content
    assert "a word of the prompt" in content
    assert "Held-out share (the newest rows)" in content
    assert "{&#x27;" not in content
    assert "{'" not in content


def test_model_pages_show_settings_as_a_table_and_flag_the_version(
    client: Client, project: Project
) -> None:
    run = _run(project, "preference", PREFERENCE_OVERFIT)
    login(client, project, "researcher")

    detail = client.get(f"/projects/acme/models/{run.reward_model_id}/").content.decode()
    listing = client.get("/projects/acme/models/").content.decode()

    assert "<caption>Settings</caption>" in detail
    assert "Inverse regularisation (C)" in detail
    assert "{&#x27;" not in detail
    assert "2 warnings" in detail
    assert "check its held-out metrics" in listing


def test_a_large_held_out_set_with_no_gap_has_no_warning(client: Client, project: Project) -> None:
    metrics = {**PREFERENCE_OVERFIT, "pairs_test": 500, "pairwise_accuracy": 0.9}
    run = _run(project, "preference", metrics)
    login(client, project, "researcher")

    content = client.get(f"/projects/acme/models/runs/{run.pk}/").content.decode()

    assert 'class="warning"' not in content
