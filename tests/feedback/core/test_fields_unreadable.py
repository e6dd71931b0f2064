"""A secret stored under a key that is gone (FIELD_ENCRYPTION_KEY changed without the old one in
FIELD_ENCRYPTION_OLD_KEYS): its rows still load and every page that shows them works, saying the
secret must be entered again; only sending the secret fails, with that message; entering it
again mends it."""

from __future__ import annotations

from collections.abc import Callable
from html import unescape
from typing import Any

import pytest
from cryptography.fernet import Fernet

from feedback.core import crypto
from feedback.models import PipelineConnector, Project, Role
from rewardmodels.models import BuildStatus, C3POBuild, Generator, VerbalFeedback
from rewardmodels.services import c3po as c3po_services
from tests.factories import AnswerFactory, member
from tests.feedback.pipeline_server import (
    QUESTION,
    SECRET,
    Reply,
    ScriptedPipeline,
    answer_reply,
    connector_for,
    connector_url,
)
from tests.rewardmodels.builds import build_run
from tests.rewardmodels.chat_server import ChatServer

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
API_KEY = "sk-live-5b0e71"
UNREADABLE = "decrypted with the current keys"  # what every notice and error says


def text_of(response: Any) -> str:
    """A page's text as a person reads it (no HTML escapes)."""
    return unescape(response.content.decode())


@pytest.fixture
def lose_the_key(settings: Any) -> Callable[[], None]:
    """Secrets stored from now on are under OLD_KEY; calling the result rotates to NEW_KEY
    without keeping OLD_KEY, as an operator who forgot FIELD_ENCRYPTION_OLD_KEYS would."""
    settings.FIELD_ENCRYPTION_KEY = OLD_KEY
    settings.FIELD_ENCRYPTION_OLD_KEYS = []

    def rotate() -> None:
        settings.FIELD_ENCRYPTION_KEY = NEW_KEY

    return rotate


@pytest.mark.django_db
def test_a_connector_whose_secret_is_lost_shows_pages_refuses_calls_and_mends_when_entered(
    project: Project, pipeline_server: ScriptedPipeline, lose_the_key: Callable[[], None]
) -> None:
    # given a connector with a secret, an answer, and the key its secret was stored under lost
    connector_for(project, pipeline_server.url, secret=SECRET)
    answer = AnswerFactory.create(project=project)
    pipeline_server.script(Reply(body=answer_reply()))
    owner = member(project, Role.OWNER, "olga")
    lose_the_key()

    # when the owner opens the settings and debug mode, and asks a question
    settings_page = owner.get(f"/projects/{project.slug}/settings/")
    debug_page = owner.get(f"/projects/{project.slug}/answers/{answer.external_id}/debug/")
    asked = owner.post(f"/projects/{project.slug}/ask/", {"question": QUESTION})

    # then both pages open and say the secret must be entered again; the question fails with
    # that message, and nothing went out without the secret
    assert settings_page.status_code == 200
    assert f"can't be {UNREADABLE}" in text_of(settings_page)
    assert "enter it again" in text_of(settings_page)
    assert "A secret is set" not in text_of(settings_page)
    assert debug_page.status_code == 200
    assert f"secret can't be {UNREADABLE}" in text_of(debug_page)
    assert asked.status_code == 502
    assert "enter it again in the project settings" in text_of(asked)
    assert pipeline_server.requests == []

    # when the owner enters the secret again
    saved = owner.post(
        connector_url(project),
        {"url": pipeline_server.url, "secret": "s3cret-entered-again", "timeout_seconds": "5"},
    )

    # then the pipeline is called with it, and the notice is gone
    assert saved.status_code == 302
    assert owner.post(f"/projects/{project.slug}/ask/", {"question": QUESTION}).status_code == 302
    [request] = pipeline_server.requests
    assert request.headers["authorization"] == "Bearer s3cret-entered-again"
    assert UNREADABLE not in text_of(owner.get(f"/projects/{project.slug}/settings/"))


@pytest.mark.django_db
def test_a_generator_whose_key_is_lost_shows_pages_fails_builds_and_mends_when_entered(
    project: Project, lose_the_key: Callable[[], None]
) -> None:
    with ChatServer() as chat:
        # given a generator with a key, verbal feedback, and the key its key was stored under lost
        generator = c3po_services.generator_save(
            project=project, name="local", base_url=chat.url, model="tiny", api_key=API_KEY
        )
        feedback = VerbalFeedback.objects.create(project=project, text="No emojis, please.")
        researcher = member(project, Role.RESEARCHER, "rhea")
        lose_the_key()

        # when a build runs with it, and the researcher opens the C3PO pages
        build = _run_build(feedback, Generator.objects.get(pk=generator.pk))
        pages = [
            researcher.get(f"/projects/{project.slug}/models/feedback/"),
            researcher.get(f"/projects/{project.slug}/models/feedback/{feedback.pk}/"),
            researcher.get(f"/projects/{project.slug}/models/builds/{build.pk}/"),
        ]

        # then the pages open: the generator list says the key must be entered again, and the
        # build failed at its first stage saying so, without calling the generator
        assert [page.status_code for page in pages] == [200, 200, 200]
        assert f"can't be {UNREADABLE}: save the generator again with its key" in (
            text_of(pages[0])
        )
        assert build.status == BuildStatus.FAILED
        assert build.error.startswith(
            f"Stage 1 (categories) stopped: The generator's API key can't be {UNREADABLE}"
        )
        assert build.error in text_of(pages[2])
        assert chat.requests == []

        # when the researcher saves the generator again with its key
        saved = researcher.post(
            f"/projects/{project.slug}/models/generators/",
            {"name": "local", "base_url": chat.url, "model": "tiny", "api_key": "sk-entered-again"},
        )

        # then a build calls the generator with it, and the notice is gone
        assert saved.status_code == 302
        rebuilt = _run_build(feedback, Generator.objects.get(pk=generator.pk))
        assert rebuilt.status == BuildStatus.SUCCEEDED, rebuilt.error
        assert {r.headers["authorization"] for r in chat.completions} == {"Bearer sk-entered-again"}
        page = researcher.get(f"/projects/{project.slug}/models/feedback/")
        assert UNREADABLE not in text_of(page)


def _run_build(feedback: VerbalFeedback, generator: Generator) -> C3POBuild:
    """A small build started and executed here, in the test's thread (the worker's code path)."""
    counts = {
        "categories": 2,
        "in_scope_per_category": 2,
        "near_scope_per_category": 1,
        "out_of_scope": 2,
    }
    return build_run(feedback, generator, counts)


@pytest.mark.django_db
def test_saving_a_row_whose_secret_is_lost_keeps_the_token_so_the_old_key_still_recovers_it(
    project: Project, settings: Any, lose_the_key: Callable[[], None]
) -> None:
    # given a connector whose secret's key is lost
    connector_for(project, "https://pipeline.example.org", secret=SECRET)
    lose_the_key()

    # when the row is loaded and saved whole (its other fields changed)
    connector = PipelineConnector.objects.get(project=project)
    assert isinstance(connector.secret, crypto.UnreadableSecret)
    assert not connector.secret
    connector.timeout_seconds = 9
    connector.save()

    # then putting the old key back reads the secret again
    settings.FIELD_ENCRYPTION_OLD_KEYS = [OLD_KEY]
    again = PipelineConnector.objects.get(project=project)
    assert (again.secret, again.timeout_seconds) == (SECRET, 9)
