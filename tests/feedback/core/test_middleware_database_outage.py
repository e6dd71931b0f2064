"""PostgreSQL can't be reached. The API answers a JSON 503 with Retry-After, nothing partial
written, and a client that retries loses nothing once the database is back; pages, the login
form and the admin answer a 503 page in the site's layout with Retry-After, and work again as
soon as the database is back.

The outage is real: the test's connection goes through a TCP proxy that the test stops and
starts (the `proxied_database` fixture), so the failure is the one psycopg sees when a database
host disappears.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.conf import settings
from django.test import Client

from feedback.models import Answer, Project, Role
from tests.conftest import bearer_client
from tests.factories import (
    AnswerFactory,
    MembershipFactory,
    UserFactory,
    answer_payload,
    api_key_for,
)
from tests.tcp_proxy import TcpProxy


def test_outage_answers_503_and_a_retry_after_it_creates_everything(
    proxied_database: TcpProxy,
) -> None:
    project = Project.objects.create(slug="acme", name="Acme")
    client = bearer_client(api_key_for(project, "ingest"))
    body = orjson.dumps({"answers": [answer_payload(f"a-{i}") for i in range(20)]})

    proxied_database.stop()
    down = client.post("/api/v1/answers", data=body, content_type="application/json")
    proxied_database.start()
    back = client.post("/api/v1/answers", data=body, content_type="application/json")

    assert down.status_code == 503
    assert down["Retry-After"] == "5"
    assert down.json()["error"]["code"] == "service_unavailable"
    assert back.status_code == 201
    assert back.json()["created"] == 20
    assert Answer.objects.filter(project=project).count() == 20


def assert_outage_page(response: Any) -> None:
    """A 503 the browser can show: the site's layout, what happened, and when to retry."""
    page = response.content.decode()
    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.API_RETRY_AFTER_SECONDS)
    assert response["Content-Type"].startswith("text/html")
    assert '<header class="site-header">' in page  # the layout of every other page
    assert "css/site.css" in page
    assert "Temporarily unavailable" in page
    assert "Try again in a few seconds" in page


@pytest.fixture
def signed_in(proxied_database: TcpProxy) -> Client:
    """A staff member of the project "acme", which has one answer, signed in before the outage.
    Errors are answered as they would be in production, not raised into the test."""
    project = Project.objects.create(slug="acme", name="Acme")
    AnswerFactory.create(project=project, external_id="a-1")
    user = UserFactory.create(username="owner", is_staff=True, is_superuser=True)
    MembershipFactory.create(user=user, project=project, role=Role.OWNER)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/projects/",
        "/projects/acme/",
        "/projects/acme/answers/a-1/",
        "/accounts/login/",
        "/admin/",
        "/admin/auth/user/",
    ],
)
def test_outage_pages_answer_503_in_the_layout_and_work_again_after(
    signed_in: Client, proxied_database: TcpProxy, path: str
) -> None:
    proxied_database.stop()
    down = signed_in.get(path)
    proxied_database.start()
    back = signed_in.get(path)

    assert_outage_page(down)
    assert back.status_code in (200, 302)  # the login page sends a signed-in user onwards


def test_outage_login_form_post_answers_503(proxied_database: TcpProxy) -> None:
    UserFactory.create(username="rater")
    client = Client(raise_request_exception=False)
    form = {"username": "rater", "password": "correct horse battery"}

    proxied_database.stop()
    down = client.post("/accounts/login/", form)
    proxied_database.start()
    back = client.post("/accounts/login/", form)

    assert_outage_page(down)
    assert back.status_code == 302


def test_outage_in_a_middleware_before_the_view_answers_503(
    signed_in: Client, proxied_database: TcpProxy, settings: Any
) -> None:
    """Django's own LoginRequiredMiddleware reads the session before any view runs, so the
    error never reaches a view; the page is the same."""
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]

    proxied_database.stop()
    down = signed_in.get("/projects/")

    assert_outage_page(down)


def test_outage_admin_login_post_answers_503(proxied_database: TcpProxy) -> None:
    client = Client(raise_request_exception=False)

    proxied_database.stop()
    down = client.post("/admin/login/", {"username": "x", "password": "y"})

    assert_outage_page(down)
