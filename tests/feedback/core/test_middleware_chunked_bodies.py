"""Request bodies sent with `Transfer-Encoding: chunked` (no Content-Length), through the web
server production runs (gunicorn with platform/gunicorn.conf.py): read whole, held to the same
size limit as any other body, and never taken for an empty one.

httpx sends a body given as a generator chunked, as streaming clients do.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from feedback.models import Answer, Project, Role
from tests.factories import MembershipFactory, UserFactory, answer_payload, api_key_for

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def gunicorn_process(django_db_setup: Any) -> Iterator[str]:
    """gunicorn serving the project on the test database; yields its base URL. Cookies without
    the Secure flag, so a client over plain HTTP keeps its session."""
    db = connection.settings_dict
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "2",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
    }
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "platform/gunicorn.conf.py", "config.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "gunicorn exited"
            assert time.monotonic() < deadline, "gunicorn never answered"
            try:
                httpx.get(f"{base}/healthz", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def gunicorn(gunicorn_process: str, transactional_db: Any) -> str:
    """The server's base URL; what the test writes is committed, so the server sees it."""
    return gunicorn_process


def in_pieces(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """A generator body, which httpx sends with Transfer-Encoding: chunked."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def assert_sent_chunked(response: httpx.Response) -> None:
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.request.headers


@pytest.mark.slow
def test_a_chunked_answer_is_created(gunicorn: str) -> None:
    project = Project.objects.create(slug="acme", name="Acme")
    key = api_key_for(project, "ingest")

    response = httpx.post(
        f"{gunicorn}/api/v1/answers",
        content=in_pieces(orjson.dumps(answer_payload("chunked-1")), size=100),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=30,
    )

    assert_sent_chunked(response)
    assert response.status_code == 201, response.text
    assert response.json()["results"][0]["status"] == "created"
    assert Answer.objects.filter(project=project, external_id="chunked-1").exists()


@pytest.mark.slow
def test_a_chunked_answer_over_the_limit_is_413_json(gunicorn: str) -> None:
    project = Project.objects.create(slug="acme", name="Acme")
    key = api_key_for(project, "ingest")
    too_long = "x" * (settings.API_MAX_BODY_BYTES + 1024 * 1024)

    response = httpx.post(
        f"{gunicorn}/api/v1/answers",
        content=in_pieces(orjson.dumps(answer_payload("big", response=too_long))),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=30,
    )

    assert_sent_chunked(response)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert str(settings.API_MAX_BODY_BYTES) in response.json()["error"]["message"]
    assert not Answer.objects.exists()


@pytest.mark.slow
def test_an_unfinished_chunked_body_past_the_limit_is_refused_without_waiting_for_the_rest(
    gunicorn: str,
) -> None:
    """The server reads one byte past the limit and answers: a client that goes on sending (or
    never ends its body) gets its 413 without the server waiting for the rest."""
    host, port = gunicorn.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /api/v1/answers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        # One piece past the limit (gunicorn reads ahead to fill what the application asks
        # for, so a body that stops a byte past the limit would wait on gunicorn, not on us).
        for piece in in_pieces(b"x" * (settings.API_MAX_BODY_BYTES + 64 * 1024)):
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        # No last chunk: the body never ends.
        status_line = sock.makefile("rb").readline()

    assert status_line.split()[1] == b"413"


@pytest.mark.slow
def test_a_chunked_login_form_signs_in(gunicorn: str, settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    project = Project.objects.create(slug="acme", name="Acme Help Desk")
    MembershipFactory.create(
        user=UserFactory.create(username="rater"), project=project, role=Role.RATER
    )

    with httpx.Client(base_url=gunicorn, timeout=30) as browser:
        browser.get("/accounts/login/")
        form = httpx.QueryParams(
            username="rater",
            password="correct horse battery",
            csrfmiddlewaretoken=browser.cookies["csrftoken"],
        )
        signed_in = browser.post(
            "/accounts/login/",
            content=in_pieces(str(form).encode(), size=10),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        projects = browser.get("/projects/")

    assert_sent_chunked(signed_in)
    assert signed_in.status_code == 302
    assert signed_in.headers["Location"] == "/projects/"
    assert "Acme Help Desk" in projects.text


@pytest.mark.slow
def test_a_chunked_form_over_the_limit_is_413(gunicorn: str) -> None:
    with httpx.Client(base_url=gunicorn, timeout=30) as browser:
        browser.get("/accounts/login/")
        form = httpx.QueryParams(
            username="x" * (settings.API_MAX_BODY_BYTES + 1024),
            password="y",
            csrfmiddlewaretoken=browser.cookies["csrftoken"],
        )
        response = browser.post(
            "/accounts/login/",
            content=in_pieces(str(form).encode()),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    assert_sent_chunked(response)
    assert response.status_code == 413
    assert f"over the limit of {settings.API_MAX_BODY_BYTES} bytes" in response.text


@pytest.mark.slow
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_a_chunked_form_is_held_to_the_form_limit_like_any_other(
    gunicorn: str, chunked: bool
) -> None:
    """Past DATA_UPLOAD_MAX_MEMORY_SIZE (but under the body limit) a form is refused with 400
    however it was sent."""
    with httpx.Client(base_url=gunicorn, timeout=30) as browser:
        browser.get("/accounts/login/")
        form = httpx.QueryParams(
            username="x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1024),
            password="y",
            csrfmiddlewaretoken=browser.cookies["csrftoken"],
        )
        body = str(form).encode()
        response = browser.post(
            "/accounts/login/",
            content=in_pieces(body) if chunked else body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    assert response.status_code == 400


def test_a_chunked_body_a_server_did_not_dechunk_is_411_json(project: Project) -> None:
    """A server that passes Transfer-Encoding on without marking where the body ends
    (`wsgi.input_terminated`, as Django's test client and development server do) leaves no
    way to read it: 411, not a validation error about an empty body."""
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_for(project, 'ingest')}")

    response = client.generic(
        "POST",
        "/api/v1/answers",
        b"",
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
    )

    assert response.status_code == 411
    assert response.json()["error"]["code"] == "length_required"
    assert "Content-Length" in response.json()["error"]["message"]
    assert not Answer.objects.exists()
