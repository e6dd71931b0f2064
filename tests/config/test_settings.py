"""The settings module is the same everywhere; the environment decides."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.s3_server import S3Server

ROOT = Path(__file__).resolve().parents[2]


def run_manage(env_overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    dropped = ("DEBUG", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE", "TRUST_X_FORWARDED_PROTO")
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


REQUEST_OVER_HTTP_CLAIMING_HTTPS = """
from django.test import Client
health = Client().get("/healthz")
response = Client().get("/accounts/login/", headers={"X-Forwarded-Proto": "https"})
print(health.status_code)
print(response.status_code, response.get("Location", ""))
"""


@pytest.mark.parametrize(
    ("trust", "expected"),
    [
        # Not trusted (the default): the header proves nothing, the request is plain HTTP and
        # SECURE_SSL_REDIRECT sends it to HTTPS.
        (None, "301 https://testserver/accounts/login/"),
        # Trusted (behind a TLS proxy that sets it): the request counts as HTTPS.
        ("true", "200"),
    ],
)
def test_x_forwarded_proto_is_trusted_only_when_configured(
    trust: str | None, expected: str
) -> None:
    env = {
        "SECRET_KEY": "a-long-random-production-secret-0123456789abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "testserver",
        "SECURE_SSL_REDIRECT": "true",
        "STATIC_MANIFEST": "false",
    }
    if trust is not None:
        env["TRUST_X_FORWARDED_PROTO"] = trust

    done = run_manage(env, "shell", "-c", REQUEST_OVER_HTTP_CLAIMING_HTTPS)

    assert done.returncode == 0, done.stderr
    health, login = done.stdout.strip().splitlines()[-2:]
    assert login.split() == expected.split()
    assert health != "301"  # the container's plain-HTTP health probe is never redirected


def test_a_bucket_name_puts_the_platforms_files_in_that_s3_bucket(s3_server: S3Server) -> None:
    # Given a bucket, named with its endpoint and credentials in the environment
    bucket = s3_server.bucket()
    environment = {
        "AWS_STORAGE_BUCKET_NAME": bucket,
        "AWS_S3_ENDPOINT_URL": s3_server.url,
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }

    # When the platform stores a file
    done = run_manage(
        environment,
        "shell",
        "-c",
        "from django.core.files.base import ContentFile\n"
        "from django.core.files.storage import default_storage\n"
        "print(default_storage.save('exports/probe.txt', ContentFile(b'hello')))",
    )

    # Then it is an object in the bucket
    assert done.returncode == 0, done.stderr
    assert s3_server.keys(bucket) == ["exports/probe.txt"]
