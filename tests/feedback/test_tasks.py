"""The Celery tasks, run by a real worker from the broker (Redis)."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from feedback.models import WorkerHeartbeat
from feedback.tasks import worker_heartbeat


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
