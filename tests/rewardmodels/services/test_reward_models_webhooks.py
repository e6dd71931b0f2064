"""Training runs tell the project's webhooks when they end, once per run however often the
broker delivers its task, whether they succeeded or failed."""

from __future__ import annotations

from typing import Any

import pytest

from feedback.models import Project, WebhookDelivery
from feedback.services.webhooks import webhook_endpoint_create
from rewardmodels import services
from rewardmodels.models import TrainingRun
from tests.rewardmodels.conftest import plant_exposures


@pytest.fixture
def endpoint(project: Project, settings: Any) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    webhook_endpoint_create(
        project=project, url="http://127.0.0.1:9/hooks", events=["training_run.finished"]
    )


def _run(project: Project) -> TrainingRun:
    model = services.reward_model_create(
        project=project, name="love", objective="p_love", config=None, created_by=None
    )
    return TrainingRun.objects.create(reward_model=model, project=project, config=model.config)


@pytest.mark.django_db
@pytest.mark.parametrize(("planted", "status"), [(True, "succeeded"), (False, "failed")])
def test_a_finished_run_is_told_once(
    project: Project, endpoint: None, planted: bool, status: str
) -> None:
    if planted:
        plant_exposures(project, answers=10, viewers=10)
    run = _run(project)

    services.training_run_execute(run_id=run.pk)
    services.training_run_execute(run_id=run.pk)  # the broker delivered the task twice

    [delivery] = WebhookDelivery.objects.all()
    assert delivery.event_type == "training_run.finished"
    data = delivery.payload["data"]
    assert (data["id"], data["status"]) == (run.pk, status)
    assert (data["version"] == 1) == planted
