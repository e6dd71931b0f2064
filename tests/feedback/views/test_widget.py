"""The widget's pages: the project setting for anonymous viewers, and the demo page."""

from __future__ import annotations

from typing import Any

from django.test import Client

from feedback.models import Project
from feedback.services.widget import widget_demo_key_ensure
from tests.factories import AnswerFactory, login


def test_the_owner_allows_anonymous_viewers_on_the_settings_page(
    client: Client, project: Project
) -> None:
    login(client, project, "owner")
    page = client.get("/projects/acme/settings/").content.decode()
    assert "Widget: allow anonymous viewers" in page
    assert project.allow_anonymous_viewers is False
    form = {
        "name": "Acme",
        "reaction_set": "love, like",
        "positive_reactions": "love",
        "negative_reactions": "",
        "followup_hours": "24",
        "exposure_minutes": "30",
        "feedback_rate_per_minute": "60",
        "reactions_per_day": "200",
        "allow_anonymous_viewers": "on",
    }

    assert client.post("/projects/acme/settings/", form).status_code == 302
    project.refresh_from_db()
    assert project.allow_anonymous_viewers is True
    del form["allow_anonymous_viewers"]
    client.post("/projects/acme/settings/", form)
    project.refresh_from_db()
    assert project.allow_anonymous_viewers is False


def test_the_demo_page_embeds_the_script_with_the_demo_key(
    client: Client, project: Project
) -> None:
    AnswerFactory.create(project=project, external_id="chat-1", response="Oil <b>it</b>.")
    login(client, project, "rater")
    without_key = client.get("/widget/demo/acme/").content.decode()
    assert "has no widget demo key" in without_key
    assert '<script src="/widget.js"' not in without_key

    widget_demo_key_ensure(project=project, origins=["http://testserver"])
    response = client.get("/widget/demo/acme/")
    page = response.content.decode()
    assert 'data-feedback-answer="chat-1"' in page
    assert 'src="/widget.js" data-key="fbk_' in page
    assert "Oil &lt;b&gt;it&lt;/b&gt;." in page
    assert "not among the demo key" not in page
    assert "no-store" in response["Cache-Control"]  # it holds a viewer token


def test_seed_demo_makes_the_demo_key_once(db: Any) -> None:
    from django.core.management import call_command

    from feedback.models import ApiKey

    call_command("seed_demo", verbosity=0)
    call_command("seed_demo", verbosity=0)
    key = ApiKey.objects.get(project__slug="demo", scopes=["widget"])
    assert key.origins == ["http://127.0.0.1:8000", "http://localhost:8000"]
