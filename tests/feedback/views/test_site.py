"""Login, the project list, the API keys and settings pages, and /healthz (run for real
against Redis)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from config.celery_app import app as celery_app
from feedback.models import ApiKey, Project
from feedback.services import api_key_authenticate
from tests.factories import MembershipFactory, UserFactory, login


def test_login_page_signs_a_user_in(client: Client, project: Project) -> None:
    UserFactory.create(username="ada")

    page = client.get("/accounts/login/")
    response = client.post(
        "/accounts/login/", {"username": "ada", "password": "correct horse battery"}
    )

    assert page.status_code == 200
    assert b'<label for="id_username">Username</label>' in page.content
    assert response.status_code == 302
    assert response["Location"] == "/projects/"


def test_pages_need_a_login(client: Client, project: Project) -> None:
    response = client.get("/projects/acme/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_project_list_shows_only_my_projects(
    client: Client, project: Project, other_project: Project
) -> None:
    login(client, project, "rater")

    response = client.get("/projects/")

    assert b"/projects/acme/" in response.content
    assert b"/projects/rival/" not in response.content


def test_another_projects_page_is_404(
    client: Client, project: Project, other_project: Project
) -> None:
    login(client, project, "owner")

    assert client.get("/projects/rival/").status_code == 404
    assert client.get("/projects/rival/api-keys/").status_code == 404


def test_api_keys_page_is_for_owners(client: Client, project: Project) -> None:
    login(client, project, "researcher")

    assert client.get("/projects/acme/api-keys/").status_code == 403


def test_owner_creates_a_key_that_is_shown_once_and_works(client: Client, project: Project) -> None:
    owner = login(client, project, "owner")

    response = client.post(
        "/projects/acme/api-keys/create/", {"name": "ingest bot", "scopes": ["ingest", "export"]}
    )
    shown = client.get(response["Location"])
    reloaded = client.get(response["Location"])

    assert response.status_code == 302
    assert response["Location"] == "/projects/acme/api-keys/"
    assert shown["Cache-Control"] == "no-store"
    content = shown.content.decode()
    raw = content.split('id="new-key" readonly value="')[1].split('"')[0]
    assert raw not in reloaded.content.decode()
    key = ApiKey.objects.get()
    assert api_key_authenticate(raw_key=raw) == key
    assert key.scopes == ["export", "ingest"]
    assert key.created_by == owner
    assert key.key_hash != raw
    assert raw not in key.prefix
    assert raw not in client.get("/projects/acme/api-keys/").content.decode()


def test_key_without_scopes_is_refused(client: Client, project: Project) -> None:
    login(client, project, "owner")

    response = client.post("/projects/acme/api-keys/create/", {"name": "nothing"})

    assert response.status_code == 400
    assert "Scopes must be a non-empty subset of" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_owner_revokes_a_key(client: Client, project: Project) -> None:
    login(client, project, "owner")
    client.post("/projects/acme/api-keys/create/", {"name": "old", "scopes": ["ingest"]})
    key = ApiKey.objects.get()

    response = client.post(f"/projects/acme/api-keys/{key.pk}/revoke/")

    key.refresh_from_db()
    assert response.status_code == 302
    assert key.revoked_at is not None


def test_owner_cannot_revoke_another_projects_key(
    client: Client, project: Project, other_project: Project
) -> None:
    login(client, project, "owner")
    MembershipFactory.create(project=other_project, role="owner")
    from feedback.services import api_key_create

    key, _ = api_key_create(project=other_project, name="theirs", scopes=["ingest"])

    response = client.post(f"/projects/acme/api-keys/{key.pk}/revoke/")

    key.refresh_from_db()
    assert response.status_code == 404
    assert key.revoked_at is None


def test_revoke_needs_post(client: Client, project: Project) -> None:
    login(client, project, "owner")

    assert client.get("/projects/acme/api-keys/1/revoke/").status_code == 405


def test_owner_changes_project_settings(client: Client, project: Project) -> None:
    login(client, project, "owner")
    form = {
        "name": "Acme Help",
        "reaction_set": "love, fire, meh",
        "positive_reactions": "love, fire",
        "negative_reactions": "meh",
        "allow_images": "on",
        "followup_hours": "48",
        "exposure_minutes": "10",
        "feedback_rate_per_minute": "5",
        "reactions_per_day": "50",
    }

    response = client.post("/projects/acme/settings/", form)

    project.refresh_from_db()
    assert response.status_code == 302
    assert project.reaction_set == ["love", "fire", "meh"]
    assert project.allow_images is True
    assert project.followup_delay.total_seconds() == 48 * 3600
    assert project.feedback_rate_per_minute == 5


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("reaction_set", "love, Love!", "Not a reaction name"),
        ("positive_reactions", "love, wow", "Not in the reaction set"),
        ("negative_reactions", "love", "Both positive and negative"),
        ("feedback_rate_per_minute", "0", "greater than or equal to 1"),
        ("reaction_set", "love, like\u202e", "Must not contain bidirectional control"),
        ("positive_reactions", "\u2067love\u2069", "Must not contain bidirectional control"),
        ("name", "Acme \u202eHelp", "Must not contain bidirectional control"),
    ],
)
def test_bad_settings_are_refused_inline(
    client: Client, project: Project, field: str, value: str, message: str
) -> None:
    login(client, project, "owner")
    form = {
        "name": "Acme",
        "reaction_set": "love, like",
        "positive_reactions": "love",
        "negative_reactions": "",
        "followup_hours": "24",
        "exposure_minutes": "30",
        "feedback_rate_per_minute": "60",
        "reactions_per_day": "200",
        field: value,
    }

    response = client.post("/projects/acme/settings/", form)

    project.refresh_from_db()
    assert response.status_code == 400
    assert message in response.content.decode()
    assert project.name == "acme".title()


def test_settings_are_for_owners(client: Client, project: Project) -> None:
    login(client, project, "researcher")

    assert client.get("/projects/acme/settings/").status_code == 403


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {
        "database": "ok",
        "broker": "ok",
        "status": "ok",
        "worker_last_seen_seconds": None,
    }


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_is_down(client: Client, monkeypatch: Any) -> None:
    monkeypatch.setattr(celery_app.conf, "broker_write_url", "redis://127.0.0.1:1/0")

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["broker"] == "unavailable"
