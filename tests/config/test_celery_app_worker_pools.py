"""Each queue can have a worker pool of its own: the entrypoint's WORKER_QUEUES and
WORKER_CONCURRENCY, and one compose service per queue."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.celery_app import Queue

ROOT = Path(__file__).resolve().parents[2]


def worker_arguments(tmp_path: Path, environment: dict[str, str], *extra: str) -> list[str]:
    """The arguments `entrypoint.sh worker` starts celery with (a fake celery prints them)."""
    fake = tmp_path / "celery"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    dropped = ("WORKER_QUEUES", "WORKER_CONCURRENCY")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(environment, PATH=f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(
        ["bash", str(ROOT / "platform" / "entrypoint.sh"), "worker", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.splitlines()


def option(arguments: list[str], name: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in arguments if a.startswith(f"--{name}=")]
    return value


def test_a_worker_serves_every_queue_by_default(tmp_path: Path) -> None:
    arguments = worker_arguments(tmp_path, {})

    assert arguments[:3] == ["-A", "config", "worker"]
    assert sorted(option(arguments, "queues").split(",")) == sorted(q.value for q in Queue)
    assert option(arguments, "concurrency") == "2"


def test_a_pool_serves_the_queues_and_runs_the_processes_it_is_given(tmp_path: Path) -> None:
    arguments = worker_arguments(
        tmp_path,
        {"WORKER_QUEUES": "training,c3po", "WORKER_CONCURRENCY": "3"},
        "--max-tasks-per-child=10",
    )

    assert option(arguments, "queues") == "training,c3po"
    assert option(arguments, "concurrency") == "3"
    assert arguments[-1] == "--max-tasks-per-child=10"


@pytest.fixture(scope="module")
def compose_services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return services


def test_compose_runs_one_scalable_pool_per_queue(
    compose_services: dict[str, Any],
) -> None:
    workers = {
        name: service
        for name, service in compose_services.items()
        if service.get("command") == ["worker"]
    }

    served = {name: service["environment"]["WORKER_QUEUES"] for name, service in workers.items()}
    assert served == {f"worker-{q.value}": q.value for q in Queue}
    # `--scale` starts several containers of a service: none may pin a name or a host port.
    assert not any({"container_name", "ports"} & service.keys() for service in workers.values())


def test_compose_runs_beat_once(compose_services: dict[str, Any]) -> None:
    beats = [s for s in compose_services.values() if s.get("command") == ["beat"]]

    assert len(beats) == 1
    assert "deploy" not in beats[0]
