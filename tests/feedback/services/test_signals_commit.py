"""FEEDBACK_ASYNC_COMMIT: a feedback write's transaction commits without waiting for the disk
when asked to, and only then."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction

from feedback.models import Project, Reaction
from feedback.services import feedback_record
from tests.factories import AnswerFactory


@pytest.mark.django_db
@pytest.mark.parametrize(("enabled", "shown"), [(True, "off"), (False, "on")])
def test_feedback_commits_without_waiting_for_the_disk_only_when_asked(
    project: Project, settings: Any, enabled: bool, shown: str
) -> None:
    settings.FEEDBACK_ASYNC_COMMIT = enabled
    AnswerFactory.create(project=project, external_id="a1")
    event = {"event_id": "e1", "type": "reaction", "answer": "a1", "user_ref": "v1"}

    with transaction.atomic():
        results = feedback_record(
            project=project, items=[{**event, "reaction": "love"}], source="api"
        )
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            setting = cursor.fetchone()[0]

    assert [r.status for r in results] == ["created"]
    assert Reaction.objects.filter(answer__external_id="a1", kind="love").count() == 1
    assert setting == shown
