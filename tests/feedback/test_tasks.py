"""The Celery tasks, run by a real worker from the broker (Redis)."""

from __future__ import annotations

import base64
import time
from datetime import timedelta
from typing import Any, cast

import orjson
import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from config.celery_app import Queue
from config.celery_app import app as celery_app
from feedback.core.jobs import job_kind
from feedback.models import Project, WorkerHeartbeat
from feedback.services.annotation import RERUN_JOB
from feedback.services.datasets import EXPORT_JOB
from feedback.services.webhooks import WEBHOOK_DELIVERY_JOB
from feedback.tasks import jobs_sweep, worker_heartbeat
from rewardmodels.models import C3POBuild, TrainingRun
from rewardmodels.services import c3po, reward_model_create
from rewardmodels.services.c3po_build import C3PO_BUILD_JOB
from rewardmodels.services.judges import JUDGE_RUN_JOB
from rewardmodels.services.reward_models import TRAINING_RUN_JOB
from rewardmodels.services.shadow import SHADOW_RUN_JOB
from tests.conftest import empty_test_broker, worker_process


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_heartbeat_task_from_the_broker(
    client: Client, celery_worker: None
) -> None:
    worker_heartbeat.delay()
    deadline = time.monotonic() + 30
    while not WorkerHeartbeat.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.2)

    assert WorkerHeartbeat.objects.count() == 1
    assert client.get("/healthz").json()["worker_last_seen_seconds"] is not None


def test_beat_sweeps_every_kind_of_job_through_the_one_task() -> None:
    schedule = cast(dict[str, dict[str, Any]], settings.CELERY_BEAT_SCHEDULE)
    sweeps = [entry for entry in schedule.values() if "sweep" in entry["task"]]

    assert {entry["task"] for entry in sweeps} == {jobs_sweep.name}
    swept = [job_kind(entry["args"][0]) for entry in sweeps]
    assert sorted(kind.name for kind in swept) == sorted(
        kind.name
        for kind in (
            EXPORT_JOB,
            RERUN_JOB,
            TRAINING_RUN_JOB,
            C3PO_BUILD_JOB,
            WEBHOOK_DELIVERY_JOB,
            SHADOW_RUN_JOB,
            JUDGE_RUN_JOB,
        )
    )


def waiting_tasks(queue: Queue) -> list[tuple[str, list[int]]]:
    """The task names and arguments of the messages waiting on `queue` of the test broker."""
    with celery_app.connection_for_write() as conn:
        client = conn.default_channel.client  # type: ignore[attr-defined]
        messages = [orjson.loads(raw) for raw in client.lrange(queue.value, 0, -1)]
    return [
        (m["headers"]["task"], list(orjson.loads(base64.b64decode(m["body"]))[0])) for m in messages
    ]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_sweeps_the_reward_models_jobs_through_the_one_task(project: Project) -> None:
    # given a training run and a C3PO build whose workers died an hour ago
    stale = timezone.now() - timedelta(hours=1)
    model = reward_model_create(
        project=project, name="love", objective="p_love", config=None, created_by=None
    )
    run = TrainingRun.objects.create(
        reward_model=model, project=project, status="running", attempts=1, heartbeat_at=stale
    )
    feedback = c3po.verbal_feedback_create(project=project, text="Be brief.")
    build = C3POBuild.objects.create(
        project=project, feedback=feedback, status="running", attempts=1, heartbeat_at=stale
    )
    empty_test_broker()

    # when the sweep task is sent for their kinds to a worker in a process of its own, which
    # imports the apps' tasks modules as every worker does, and nothing else
    worker = worker_process(Queue.DEFAULT)
    try:
        jobs_sweep.delay(TRAINING_RUN_JOB.name)
        jobs_sweep.delay(C3PO_BUILD_JOB.name)
        deadline = time.monotonic() + 60
        while {run.status, build.status} != {"queued"}:
            assert time.monotonic() < deadline, (run.status, build.status)
            time.sleep(0.2)
            run.refresh_from_db()
            build.refresh_from_db()
    finally:
        worker.kill()
        worker.wait(timeout=10)

    # then both are queued again, and their tasks sent to their own queues
    assert (run.message, build.message) == (TRAINING_RUN_JOB.requeued, C3PO_BUILD_JOB.requeued)
    assert waiting_tasks(Queue.TRAINING) == [(TRAINING_RUN_JOB.task, [run.pk])]
    assert waiting_tasks(Queue.C3PO) == [(C3PO_BUILD_JOB.task, [build.pk])]
