"""Fixtures of the feedback app's tests: a database the test can cut off, a scripted pipeline
server with the settings its tests run under, and the feedback that dataset snapshots export."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections

from feedback.models import Project
from feedback.pipelines import http as http_pipeline
from feedback.services import feedback_record
from tests.factories import AnswerFactory
from tests.feedback.pipeline_server import ScriptedPipeline, scripted_pipeline
from tests.tcp_proxy import TcpProxy


@pytest.fixture
def proxied_database(transactional_db: Any) -> Iterator[TcpProxy]:
    """Django's connections (this thread's and every new one) reach PostgreSQL through a
    TcpProxy the test can stop and start."""
    connection = connections["default"]
    original = dict(connection.settings_dict)
    proxy = TcpProxy((original["HOST"] or "127.0.0.1", int(original["PORT"] or 5432)))
    proxy.start()
    connection.close()
    connection.settings_dict["HOST"], connection.settings_dict["PORT"] = "127.0.0.1", proxy.port
    try:
        yield proxy
    finally:
        proxy.stop()
        connection.close()
        connection.settings_dict.update(original)


@pytest.fixture
def pipeline_server() -> Iterator[ScriptedPipeline]:
    """A pipeline on 127.0.0.1 that answers as the test scripts it (tests/feedback/
    pipeline_server.py)."""
    with scripted_pipeline() as scripted:
        yield scripted


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The HTTP pipeline's retries wait 0.01 s instead of the real backoff. The modules whose
    pipelines fail on purpose apply it to every test (`pytestmark`)."""
    monkeypatch.setattr(http_pipeline, "BACKOFF_SECONDS", 0.01)


@pytest.fixture
def nothing_allowed(settings: Any) -> None:
    """Production's default: no host may be in the refused ranges."""
    settings.OUTBOUND_ALLOWED_HOSTS = []


# The prompt of the answer a-1 that `reactions` makes: a system message, then the user's.
MULTI_TURN = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Oil?"},
]


@pytest.fixture
def reactions(project: Project) -> None:
    """Two answers (one with a formula for a response, one multi-turn) and three reactions
    to them, recorded through the service: what the snapshot tests export."""
    AnswerFactory.create(project=project, external_id="a-1", prompt=MULTI_TURN, response="=SUM(A1)")
    AnswerFactory.create(project=project, external_id="a-2", response="+1 and @you")
    events = [
        {
            "event_id": f"e{i}",
            "type": "reaction",
            "answer": answer,
            "user_ref": f"u-{i}",
            "reaction": kind,
        }
        for i, (answer, kind) in enumerate([("a-1", "love"), ("a-2", "dislike"), ("a-1", "like")])
    ]
    assert all(
        r.status == "created" for r in feedback_record(project=project, items=events, source="api")
    )
