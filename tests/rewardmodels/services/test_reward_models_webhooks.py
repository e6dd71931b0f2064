"""Training runs tell the project's webhooks when they end, once per run however often the
broker delivers its task, whether they succeeded or failed, or their worker died."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from feedback import tasks
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


def _run(project: Project, name: str = "love") -> TrainingRun:
    model = services.reward_model_create(
        project=project, name=name, objective="p_love", config=None, created_by=None
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


@pytest.mark.django_db
@pytest.mark.parametrize(("cancel", "status"), [(False, "failed"), (True, "cancelled")])
def test_a_run_whose_worker_died_is_told_when_the_sweeper_ends_it(
    project: Project, endpoint: None, settings: Any, cancel: bool, status: str
) -> None:
    # Given runs whose worker died: one on its last attempt (or asked to cancel), one that
    # will be queued again, and one still alive
    stale = timezone.now() - timedelta(seconds=settings.TRAINING_STALE_SECONDS + 5)
    runs = [_run(project, f"love-{i}") for i in range(3)]
    for run, attempts, beat in zip(runs, [3, 1, 1], [stale, stale, timezone.now()], strict=True):
        TrainingRun.objects.filter(pk=run.pk).update(
            status="running", attempts=attempts, heartbeat_at=beat, cancel_requested=cancel
        )
    TrainingRun.objects.filter(pk=runs[1].pk).update(cancel_requested=False)

    # When beat's sweep runs, twice
    tasks.jobs_sweep(services.TRAINING_RUN_JOB.name)
    tasks.jobs_sweep(services.TRAINING_RUN_JOB.name)

    # Then only the run it ended is told, once, as ended by a dead worker
    [delivery] = WebhookDelivery.objects.all()
    data = delivery.payload["data"]
    assert (delivery.event_type, data["id"], data["status"]) == (
        "training_run.finished",
        runs[0].pk,
        status,
    )
    assert data["error"] == ("" if cancel else services.TRAINING_RUN_JOB.gave_up)
