from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from config.celery_app import Queue
from config.celery_app import app as celery_app
from feedback.models import Project
from tests.factories import ProjectFactory, api_key_for


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """PBKDF2 is slow on purpose; tests that create users don't need that."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_cache(settings: Any) -> None:
    """Each test sees a cache of its own (a key prefix of its own), so the failed-authentication
    counts of earlier tests don't carry over. Not `cache.clear()`: on Redis that empties the
    whole database."""
    default = settings.CACHES["default"]
    settings.CACHES = {**settings.CACHES, "default": {**default, "KEY_PREFIX": uuid.uuid4().hex}}


@pytest.fixture
def project(db: Any) -> Project:
    return ProjectFactory.create(slug="acme")


@pytest.fixture
def other_project(db: Any) -> Project:
    return ProjectFactory.create(slug="rival")


def bearer_client(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture
def api(project: Project) -> APIClient:
    """An API client holding a key with every scope for `project`."""
    return bearer_client(api_key_for(project))


@pytest.fixture
def celery_worker() -> Iterator[None]:
    """A real Celery worker, in a thread, consuming every queue from the test broker (Redis).
    The test broker's database is emptied first: messages left by earlier tests or runs, and
    the unacked bookkeeping of workers that tests killed, so the worker sees only this test's."""
    empty_test_broker()
    with start_worker(
        celery_app,
        pool="solo",
        perform_ping_check=False,
        shutdown_timeout=10,
        queues=[q.value for q in Queue],
    ):
        yield


def empty_test_broker() -> None:
    """Drop every message and the unacked bookkeeping of workers that tests killed."""
    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()  # type: ignore[attr-defined]


def worker_process(queue: str) -> subprocess.Popen[bytes]:
    """A real worker on `queue` in its own process (so a test can kill it), on the test
    database and broker, writing job heartbeats every 0.2 s."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "TRAINING_HEARTBEAT_SECONDS": "0.2",
    }
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue]
    command += ["--pool=solo", "--without-heartbeat", "--without-gossip", "--without-mingle"]
    return subprocess.Popen(
        [*command, "-l", "WARNING"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
