"""Training runs tell the project's webhooks when they end, once per run however often the
broker delivers its task, whether they succeeded, failed, were cancelled or their worker died,
in the transaction that ends them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from feedback import tasks
from feedback.core.jobs import JobStatus, job_claim
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


@pytest.mark.django_db
def test_a_run_cancelled_while_queued_is_told(project: Project, endpoint: None) -> None:
    # Given a run waiting for a worker
    run = _run(project)

    # When it is cancelled (and the broker then delivers its task anyway)
    services.training_run_cancel(run=run)
    services.training_run_execute(run_id=run.pk)

    # Then it is told once, as cancelled
    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.payload["data"]["id"], delivery.payload["data"]["status"]) == (
        run.pk,
        "cancelled",
    )


class _Crash(Exception):
    pass


@pytest.mark.django_db
def test_the_event_commits_with_the_end_of_the_run_or_not_at_all(
    project: Project, endpoint: None
) -> None:
    # Given a run a worker has claimed
    run = _run(project)
    attempt = job_claim(kind=services.TRAINING_RUN_JOB, job_id=run.pk)
    assert attempt is not None

    # When the transaction that ends it is rolled back (the worker crashed before its commit)
    written: list[int] = []

    def fail_then_crash() -> None:
        with transaction.atomic():
            attempt.fail("Out of memory.")
            written.append(WebhookDelivery.objects.count())
            raise _Crash

    with pytest.raises(_Crash):
        fail_then_crash()
    assert written == [1]  # the event was written beside the status...

    # Then neither the end nor its event is kept: the sweeper will end it, and tell it, later
    run.refresh_from_db()
    assert run.status == JobStatus.RUNNING
    assert not WebhookDelivery.objects.exists()
