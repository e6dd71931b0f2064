"""Every HTML response carries a Content-Security-Policy that lets only the site's own script
files run: a script injected into a page (an inline `<script>`, an `onerror=` handler, a
`javascript:` link) is refused by the browser even if it slipped past escaping."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from feedback.models import Project
from tests.factories import AnswerFactory, MembershipFactory, StageFactory, UserFactory


def policy_of(response: Any) -> dict[str, list[str]]:
    """The response's enforced policy as {directive: [sources]}."""
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


def assert_strict(response: Any) -> None:
    policy = policy_of(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]


@pytest.fixture
def owner_client(project: Project) -> Client:
    user = UserFactory.create(username="olga")
    MembershipFactory.create(user=user, project=project, role="owner")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/projects/",
        "/projects/acme/",
        "/projects/acme/answers/a-1/",
        "/projects/acme/answers/a-1/debug/",
        "/projects/acme/compare/",
        "/projects/acme/ask/",
        "/projects/acme/queues/",
        "/projects/acme/exports/",
        "/projects/acme/settings/",
        "/projects/acme/api-keys/",
        "/projects/acme/models/",
        "/projects/acme/models/feedback/",
        "/api/docs/",
    ],
)
def test_pages_carry_the_strict_policy(owner_client: Client, project: Project, path: str) -> None:
    answer = AnswerFactory.create(project=project, external_id="a-1")
    StageFactory.create(answer=answer, position=0)

    response = owner_client.get(path)

    assert response.status_code == 200
    assert_strict(response)


@pytest.mark.django_db
def test_the_login_page_and_a_404_carry_the_strict_policy(client: Client) -> None:
    login = client.get("/accounts/login/")
    missing = client.get("/no/such/page/")

    assert login.status_code == 200
    assert missing.status_code == 404
    assert_strict(login)
    assert_strict(missing)


@pytest.mark.django_db
def test_the_admin_carries_the_strict_policy(client: Client, admin_client: Client) -> None:
    login = client.get("/admin/login/")
    index = admin_client.get("/admin/")
    change_list = admin_client.get("/admin/auth/user/")

    for response in (login, index, change_list):
        assert response.status_code == 200
        assert_strict(response)


@pytest.mark.django_db
def test_the_api_docs_script_is_a_file_not_inline(client: Client) -> None:
    """Swagger UI's start-up script comes from a URL of its own, which 'self' allows."""
    response = client.get("/api/docs/")
    page = response.content.decode()

    assert response.status_code == 200
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.S)
    assert scripts
    assert all("src=" in attributes and not body.strip() for attributes, body in scripts)
    assert "<style" not in page
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle(" in script.content


@pytest.mark.django_db
def test_answer_pages_allow_remote_images_only_when_the_project_shows_them(
    owner_client: Client, project: Project
) -> None:
    AnswerFactory.create(project=project, external_id="pic", response="![c](https://e.org/c.png)")
    before = policy_of(owner_client.get("/projects/acme/answers/pic/"))
    project.allow_images = True
    project.save()

    after = policy_of(owner_client.get("/projects/acme/answers/pic/"))
    compare = policy_of(owner_client.get("/projects/acme/compare/"))
    other_page = policy_of(owner_client.get("/projects/acme/"))

    assert before["img-src"] == ["'self'", "data:"]
    assert after["img-src"] == ["'self'", "data:", "https:"]
    assert compare["img-src"] == ["'self'", "data:", "https:"]
    assert other_page["img-src"] == ["'self'", "data:"]
    assert after["script-src"] == ["'self'"]
