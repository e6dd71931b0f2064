"""The settings module is the same everywhere; the environment decides."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_manage(env_overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    dropped = ("DEBUG", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_deploy_is_clean_with_production_values() -> None:
    production = {
        "SECRET_KEY": "a-long-random-production-secret-0123456789abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "feedback.example.org",
        "SECURE_SSL_REDIRECT": "true",
    }

    done = run_manage(production, "check", "--deploy", "--fail-level", "WARNING")

    assert done.returncode == 0, done.stderr


def test_production_refuses_to_serve_without_a_secret_key() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY")}
    web = subprocess.run(
        [sys.executable, "-c", "import config.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    deploy_check = run_manage({}, "check", "--deploy", "--fail-level", "WARNING")
    makemigrations = run_manage({}, "makemigrations", "--check", "--dry-run")

    assert web.returncode != 0
    assert "SECRET_KEY must be set" in web.stderr
    assert deploy_check.returncode != 0
    assert "SECRET_KEY" in deploy_check.stderr
    assert makemigrations.returncode == 0, makemigrations.stderr
