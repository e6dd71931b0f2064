"""Training runs as a service: the data is the p_love dataset's, a second delivery does
nothing, cancelling, the sweeper, and a worker killed in the middle of a run."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from config.celery_app import Queue
from config.celery_app import app as celery_app
from feedback.core.jobs import JobStatus, Swept, jobs_sweep
from feedback.models import Project
from feedback.services import answers_ingest, feedback_record
from rewardmodels import services
from rewardmodels.models import RewardModel, TrainingRun
from rewardmodels.services import reward_models
from tests.conftest import bearer_client, empty_test_broker, worker_process
from tests.factories import MembershipFactory, UserFactory, api_key_for
from tests.rewardmodels.conftest import plant_exposures

ROOT = Path(__file__).resolve().parents[3]


def _model(project: Project, **config: Any) -> RewardModel:
    return services.reward_model_create(
        project=project, name="love", objective="p_love", config=config, created_by=None
    )


def _wait_for(run: TrainingRun, done: Callable[[TrainingRun], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if done(run):
            return
        time.sleep(0.1)
    raise AssertionError(f"run {run.pk}: {run.status} {run.progress} {run.error}")


@pytest.mark.django_db
def test_scoring_without_a_trained_version_is_not_ready_on_the_api_and_the_page(
    project: Project,
) -> None:
    # given a model never trained, a key of its project and a researcher on its page
    model = _model(project)
    api = bearer_client(api_key_for(project))
    page = Client()
    user = UserFactory.create()
    MembershipFactory.create(user=user, project=project, role="researcher")
    page.force_login(user)
    reason = "The model has no trained version yet; train it first."

    # when both ask for a score
    from_api = api.post(
        f"/api/v1/reward-models/{model.pk}/score",
        {"items": [{"prompt": "q", "response": "a"}]},
        format="json",
    )
    from_page = page.post(
        f"/projects/acme/models/{model.pk}/score/", {"prompt": "q", "response": "a"}
    )

    # then the API answers the 409 and the page shows the same reason on its form
    assert from_api.status_code == 409
    assert from_api.json() == {"error": {"code": "not_ready", "message": reason}}
    assert from_page.status_code == 400
    assert reason in from_page.content.decode()


@pytest.mark.django_db
def test_training_reads_exactly_the_p_love_rows(project: Project) -> None:
    # Given exposures whose labels depend on the window, on removal and on age
    now = timezone.now()
    answers_ingest(
        project=project,
        items=[
            {"external_id": f"a{i}", "prompt": "q", "response": f"r{i}", "model": "m"}
            for i in range(4)
        ],
    )

    def at(hours: float) -> str:
        return (now - timedelta(hours=hours)).isoformat()

    feedback_record(
        project=project,
        source="simulated",
        items=[
            # loved within the 24 h window: positive
            {"event_id": "e0", "type": "exposure", "answer": "a0", "user_ref": "v", "at": at(50)},
            {
                "event_id": "l0",
                "type": "reaction",
                "reaction": "love",
                "answer": "a0",
                "user_ref": "v",
                "at": at(49),
            },
            # loved after the window: negative
            {"event_id": "e1", "type": "exposure", "answer": "a1", "user_ref": "v", "at": at(80)},
            {
                "event_id": "l1",
                "type": "reaction",
                "reaction": "love",
                "answer": "a1",
                "user_ref": "v",
                "at": at(40),
            },
            # loved, then the love taken back: negative
            {"event_id": "e2", "type": "exposure", "answer": "a2", "user_ref": "v", "at": at(60)},
            {
                "event_id": "l2",
                "type": "reaction",
                "reaction": "love",
                "answer": "a2",
                "user_ref": "v",
                "at": at(59),
            },
            {
                "event_id": "u2",
                "type": "unreaction",
                "reaction": "love",
                "answer": "a2",
                "user_ref": "v",
                "at": at(58),
            },
            # shown an hour ago: its label is not known yet, so it is not a row
            {"event_id": "e3", "type": "exposure", "answer": "a3", "user_ref": "v", "at": at(1)},
        ],
    )
    run = TrainingRun(reward_model=_model(project), project=project, config=_model_config())

    # When training reads its rows
    rows = list(reward_models._p_love_queryset(run, now))

    # Then they are the labelled exposures, oldest first, labelled as the dataset labels them
    assert [(r["response_text"], r["loved"]) for r in rows] == [
        ("r1", False),
        ("r2", False),
        ("r0", True),
    ]


def _model_config() -> dict[str, Any]:
    return services.config_clean("p_love", {})


@pytest.mark.django_db
def test_too_little_data_fails_the_run_with_the_reason(project: Project) -> None:
    model = _model(project)
    run = TrainingRun.objects.create(reward_model=model, project=project, config=model.config)
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED
    assert "needs at least 10" in run.error
    assert run.version is None


@pytest.mark.django_db
def test_a_second_delivery_does_nothing_and_a_run_makes_one_version(project: Project) -> None:
    plant_exposures(project, answers=10, viewers=10)
    model = _model(project)
    run = TrainingRun.objects.create(reward_model=model, project=project, config=model.config)

    services.training_run_execute(run_id=run.pk)
    services.training_run_execute(run_id=run.pk)  # the broker delivered the task twice

    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED
    assert run.attempts == 1
    assert list(model.runs.exclude(version=None).values_list("version", flat=True)) == [1]
    model.refresh_from_db()
    assert model.active_run_id == run.pk
    # The next run is version 2 and does not take the active place
    second = TrainingRun.objects.create(reward_model=model, project=project, config=model.config)
    services.training_run_execute(run_id=second.pk)
    second.refresh_from_db()
    model.refresh_from_db()
    assert second.version == 2
    assert model.active_run_id == run.pk
    services.reward_model_activate(reward_model=model, version=2)
    assert model.active_run_id == second.pk


@pytest.mark.django_db
def test_a_queued_run_cancels_at_once(project: Project) -> None:
    model = _model(project)
    run = TrainingRun.objects.create(reward_model=model, project=project, config=model.config)
    services.training_run_cancel(run=run)
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED
    assert run.attempts == 0


@pytest.mark.django_db(transaction=True)
def test_a_running_run_stops_when_cancelled(project: Project, celery_worker: None) -> None:
    plant_exposures(project)
    model = _model(project, epochs=50)
    run = services.training_run_start(reward_model=model, requested_by=None)
    _wait_for(run, lambda r: r.status == JobStatus.RUNNING and r.progress > 0.06)

    services.training_run_cancel(run=run)

    _wait_for(run, lambda r: r.finished)
    assert run.status == JobStatus.CANCELLED
    assert run.version is None
    assert not run.artifact


@pytest.mark.django_db
def test_the_sweeper_requeues_once_then_fails(project: Project, settings: Any) -> None:
    model = _model(project)
    stale = timezone.now() - timedelta(seconds=settings.TRAINING_STALE_SECONDS + 5)
    first = TrainingRun.objects.create(
        reward_model=model, project=project, status="running", attempts=1, heartbeat_at=stale
    )
    second = TrainingRun.objects.create(
        reward_model=model, project=project, status="running", attempts=2, heartbeat_at=stale
    )
    alive = TrainingRun.objects.create(
        reward_model=model,
        project=project,
        status="running",
        attempts=1,
        heartbeat_at=timezone.now(),
    )
    with celery_app.connection_for_write() as conn:  # the requeued task goes to the broker
        conn.default_channel.queue_purge(Queue.TRAINING.value)  # type: ignore[attr-defined]

    assert jobs_sweep(kind=services.TRAINING_RUN_JOB) == Swept(requeued=1, failed=1, cancelled=0)

    statuses = dict(TrainingRun.objects.values_list("pk", "status"))
    assert statuses == {first.pk: "queued", second.pk: "failed", alive.pk: "running"}


@pytest.mark.django_db
@pytest.mark.parametrize("attempts", [1, 2], ids=["first-attempt", "retried"])
def test_a_dead_run_whose_cancel_was_asked_for_ends_cancelled(
    project: Project, settings: Any, attempts: int
) -> None:
    # Given a run someone asked to cancel, whose worker died before it saw the request
    model = _model(project)
    stale = timezone.now() - timedelta(seconds=settings.TRAINING_STALE_SECONDS + 5)
    run = TrainingRun.objects.create(
        reward_model=model, project=project, status="running", attempts=attempts, heartbeat_at=stale
    )
    services.training_run_cancel(run=run)

    # When the sweeper finds it
    swept = jobs_sweep(kind=services.TRAINING_RUN_JOB)

    # Then it ends as asked: cancelled, not failed and not queued again
    run.refresh_from_db()
    assert swept == Swept(requeued=0, failed=0, cancelled=1)
    assert (run.status, run.error, run.message) == (JobStatus.CANCELLED, "", "Cancelled.")
    assert run.finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_worker_is_killed_is_retried_and_finishes(
    project: Project, settings: Any, request: pytest.FixtureRequest
) -> None:
    # Given a run being trained by a worker process
    settings.TRAINING_STALE_SECONDS = 1.5
    plant_exposures(project)
    model = _model(project, epochs=30)
    empty_test_broker()
    worker = worker_process("training")
    try:
        run = services.training_run_start(reward_model=model, requested_by=None)
        _wait_for(run, lambda r: r.status == JobStatus.RUNNING and r.progress > 0.06)

        # When the worker is killed in the middle of it
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    run.refresh_from_db()
    assert run.status == JobStatus.RUNNING  # nobody told the database

    # Then, once its heartbeat is stale, the sweeper queues it again and a worker finishes it
    time.sleep(settings.TRAINING_STALE_SECONDS + 0.5)
    request.getfixturevalue("celery_worker")
    assert jobs_sweep(kind=services.TRAINING_RUN_JOB) == Swept(requeued=1, failed=0, cancelled=0)
    _wait_for(run, lambda r: r.finished, seconds=90)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.attempts == 2
    assert run.version == 1
    assert model.runs.exclude(version=None).count() == 1
