"""`make run` with nothing configured: SQLite and the filesystem broker under VAR_DIR.

Runs the real commands in subprocesses with DATABASE_URL and CELERY_BROKER_URL unset: migrate,
seed_demo, a Celery worker that executes a task sent through the serverless broker, and a web
server that serves the login page and lets a demo user in.
"""

from __future__ import annotations

import http.cookiejar
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def embedded_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update({"VAR_DIR": str(tmp_path), "DEBUG": "true", "SECRET_KEY": ""})
    return env


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "python"), "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_for(condition: object, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():  # type: ignore[operator]
                return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


@pytest.mark.slow
def test_embedded_default_migrates_seeds_runs_a_task_and_serves_pages(
    embedded_env: dict[str, str], tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    manage(embedded_env, "migrate", "--no-input")
    seeded = manage(embedded_env, "seed_demo")
    database = tmp_path / "db.sqlite3"

    processes.append(
        subprocess.Popen(
            [str(BIN / "celery"), "-A", "config", "worker", "--pool=solo", "-Q", "default"],
            cwd=ROOT,
            env=embedded_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    manage(
        embedded_env,
        "shell",
        "-c",
        "from feedback.tasks import worker_heartbeat; worker_heartbeat.delay()",
    )

    def heartbeat_recorded() -> bool:
        with sqlite3.connect(database) as db:
            return bool(db.execute("SELECT count(*) FROM feedback_workerheartbeat").fetchone()[0])

    port = free_port()
    processes.append(
        subprocess.Popen(
            [str(BIN / "python"), "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=embedded_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    base = f"http://127.0.0.1:{port}"
    assert wait_for(lambda: urllib.request.urlopen(f"{base}/healthz").status == 200)
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(jar := http.cookiejar.CookieJar())
    )
    login_page = opener.open(f"{base}/accounts/login/").read().decode()
    csrf = next(cookie.value for cookie in jar if cookie.name == "csrftoken")
    form = {"username": "rater", "password": "demo-password", "csrfmiddlewaretoken": csrf}
    projects = (
        opener.open(f"{base}/accounts/login/", data=urllib.parse.urlencode(form).encode())
        .read()
        .decode()
    )

    assert "36 new answers" in seeded
    assert wait_for(heartbeat_recorded), "the worker never ran the task"
    assert "Log in" in login_page
    assert "Demo help desk" in projects
    assert (tmp_path / "broker" / "queue").is_dir()  # the serverless broker, not Redis
