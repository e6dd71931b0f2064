"""/healthz and the Celery worker, run for real against Redis."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client

from config.celery_app import app as celery_app
from feedback.models import WorkerHeartbeat
from feedback.tasks import worker_heartbeat


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {
        "database": "ok",
        "broker": "ok",
        "status": "ok",
        "worker_last_seen_seconds": None,
    }


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_is_down(client: Client, monkeypatch: Any) -> None:
    monkeypatch.setattr(celery_app.conf, "broker_write_url", "redis://127.0.0.1:1/0")

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["broker"] == "unavailable"


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
