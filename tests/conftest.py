from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from config.celery_app import Queue
from config.celery_app import app as celery_app
from feedback.models import Project
from tests.factories import ProjectFactory, api_key_for
from tests.s3_server import S3Server


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


Dns = Callable[[str, list[list[str]]], list[str]]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Dns:
    """`dns(name, answers)`: lookups of `name` get the addresses answers[0], then answers[1], ...
    (the last one repeats); every other name goes to the real resolver. Returns the list of the
    lookups of `name` made so far. DNS is a service the project does not own, and the test
    machine may have none."""
    real = socket.getaddrinfo
    looked_up: list[str] = []

    def install(name: str, answers: list[list[str]]) -> list[str]:
        remaining = list(answers)

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host != name:
                return real(host, port, *args, **kwargs)
            looked_up.append(host)
            addresses = remaining.pop(0) if len(remaining) > 1 else remaining[0]
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, int(port), 0, 0))
                if ":" in address
                else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))
                for address in addresses
            ]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return looked_up

    return install


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
        "JOB_HEARTBEAT_SECONDS": "0.2",
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


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A local S3 server (moto, in its own process) for the whole test session."""
    with S3Server() as server:
        yield server


@dataclass
class Hosts:
    """A worker host and a web host sharing only the database, the broker and `bucket`: each
    has its own MEDIA_ROOT and cache folder, so a file one writes to disk the other can't see."""

    s3: S3Server
    bucket: str
    folders: Path

    @contextmanager
    def _host(self, name: str) -> Iterator[None]:
        with override_settings(
            MEDIA_ROOT=self.folders / name / "media",
            STORAGE_CACHE_DIR=self.folders / name / "cache",
        ):
            yield

    def worker(self) -> Any:
        return self._host("worker")

    def web(self) -> Any:
        return self._host("web")

    def files_on_disk(self) -> list[str]:
        return sorted(str(p.relative_to(self.folders)) for p in self.folders.rglob("*.*"))


@pytest.fixture
def hosts(s3_server: S3Server, settings: Any, tmp_path: Path) -> Hosts:
    """The platform's files go to a fresh bucket of the local S3 server; see `Hosts`."""
    bucket = s3_server.bucket()
    settings.STORAGES = {**settings.STORAGES, "default": s3_server.default_storage(bucket)}
    return Hosts(s3=s3_server, bucket=bucket, folders=tmp_path / "hosts")
