"""Error pages: in the site's layout with a way back, never showing an exception's own text;
only the message for htmx; the API keeps its JSON errors."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory

from feedback.models import Project, Role
from feedback.views.site import server_error
from tests.factories import login


@pytest.mark.parametrize(
    ("path", "status", "heading"),
    [
        ("/projects/acme/settings/", 403, "You can't open this page"),
        ("/projects/acme/queues/999/", 404, "This page doesn't exist"),
        ("/projects/acme/answers/nope/", 404, "This page doesn't exist"),
    ],
)
def test_an_error_page_is_in_the_layout_with_the_project_bar_and_a_way_back(
    client: Client, project: Project, path: str, status: int, heading: str
) -> None:
    login(client, project, Role.ANNOTATOR)

    response = client.get(path)

    content = response.content.decode()
    assert response.status_code == status
    assert heading in content
    assert 'aria-label="Project ' in content  # the project bar
    assert 'href="/projects/acme/">Back to ' in content
    assert "AnnotationQueue" not in content
    assert "matches the given query" not in content


def test_a_403_says_which_role_the_page_needs(client: Client, project: Project) -> None:
    login(client, project, Role.RATER)

    content = client.get("/projects/acme/exports/").content.decode()

    assert "<strong>rater</strong>" in content
    assert "the researcher role or above" in content


def test_htmx_gets_only_the_message_of_an_error(client: Client, project: Project) -> None:
    login(client, project, Role.RATER)

    response = client.get("/projects/acme/settings/", headers={"HX-Request": "true"})

    content = response.content.decode()
    assert response.status_code == 403
    assert content.lstrip().startswith('<section id="error"')
    assert "<html" not in content


def test_a_malformed_request_answers_400_in_the_layout(client: Client) -> None:
    response = client.get("/projects/", headers={"host": "evil.example"})

    assert response.status_code == 400
    assert "The request could not be understood" in response.content.decode()


@pytest.mark.parametrize(("path", "json"), [("/projects/acme/", False), ("/api/v1/answers", True)])
def test_a_server_error_is_a_page_or_the_apis_json(path: str, json: bool) -> None:
    response = server_error(RequestFactory().get(path))

    assert response.status_code == 500
    if json:
        assert response["Content-Type"] == "application/json"
    else:
        assert "Something went wrong on our side" in response.content.decode()
        assert 'href="/"' in response.content.decode()


def test_the_api_keeps_json_errors(client: Client, project: Project) -> None:
    login(client, project, Role.RATER)

    response = client.get("/api/v1/no-such-endpoint")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_form_without_its_csrf_token_answers_in_the_layout(project: Project) -> None:
    client = Client(enforce_csrf_checks=True)
    login(client, project, Role.OWNER)

    response = client.post("/projects/acme/api-keys/create/", {"name": "k"})

    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
