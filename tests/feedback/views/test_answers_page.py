"""An answer's page: a re-run shows its original and what changed; a viewer sees what they
already said about the answer (and nobody else's)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from feedback.models import Project
from feedback.services import feedback_record
from tests.factories import AnswerFactory, login

pytestmark = pytest.mark.django_db


def test_a_revision_links_its_original_and_shows_the_word_diff_escaped(
    client: Client, project: Project
) -> None:
    original = AnswerFactory.create(
        project=project, external_id="orig", response="Oil the <b>chain</b> weekly."
    )
    AnswerFactory.create(
        project=project,
        external_id="orig-rerun",
        revision_of=original,
        response="Degrease, then oil the <b>chain</b> monthly.",
    )
    login(client, project, "rater")

    revision_page = client.get("/projects/acme/answers/orig-rerun/").content.decode()
    original_page = client.get("/projects/acme/answers/orig/").content.decode()

    assert 'href="/projects/acme/answers/orig/">See the original answer</a>' in revision_page
    diff = revision_page.split('id="revision-diff">')[1].split("</p>")[0]
    assert "<del>Oil </del><ins>Degrease, then oil </ins>" in diff
    assert "<del>weekly.</del><ins>monthly.</ins>" in diff
    assert "&lt;b&gt;chain&lt;/b&gt;" in diff
    assert "<b>" not in diff
    assert 'href="/projects/acme/answers/orig-rerun/">Revision of' in original_page
    assert "See the original answer" not in original_page


def test_a_viewer_sees_their_own_critiques_and_follow_ups_only(
    client: Client, project: Project
) -> None:
    AnswerFactory.create(project=project, external_id="a-1")
    user = login(client, project, "rater")
    at = (timezone.now() - timedelta(days=2)).isoformat()
    mine, theirs = f"user:{user.pk}", "someone-else"
    results = feedback_record(
        project=project,
        source="api",
        items=[
            {
                "event_id": "c1",
                "type": "critique",
                "answer": "a-1",
                "user_ref": mine,
                "text": "Too <i>vague</i>.",
                "quote": "one drop",
                "category": "incomplete",
                "at": at,
            },
            {
                "event_id": "c2",
                "type": "critique",
                "answer": "a-1",
                "user_ref": theirs,
                "text": "Someone else's critique.",
                "at": at,
            },
            {
                "event_id": "f1",
                "type": "followup",
                "answer": "a-1",
                "user_ref": mine,
                "outcome": "partly",
                "text": "Chain still squeaks.",
                "at": at,
            },
        ],
    )
    assert all(r.status == "created" for r in results)

    content = client.get("/projects/acme/answers/a-1/").content.decode()
    mine_section = content.split('id="my-feedback"')[1].split("</section>")[0]

    assert "Too &lt;i&gt;vague&lt;/i&gt;." in mine_section
    assert "<blockquote>one drop</blockquote>" in mine_section
    assert "Partly: Chain still squeaks." in mine_section
    assert "Someone else" not in content


def test_no_history_section_before_any_feedback(client: Client, project: Project) -> None:
    AnswerFactory.create(project=project, external_id="a-1")
    login(client, project, "rater")
    assert 'id="my-feedback"' not in client.get("/projects/acme/answers/a-1/").content.decode()
