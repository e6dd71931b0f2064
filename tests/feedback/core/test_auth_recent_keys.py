"""A web process keeps the API keys it authenticated for API_KEY_CACHE_SECONDS: a client sending
request after request costs one key lookup per window, and a revoked key is refused at most
that long after it was revoked (at once with the cache off)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from feedback.core.auth import recent_keys
from feedback.models import ApiKey, Project
from feedback.services import api_key_revoke
from tests.conftest import bearer_client
from tests.factories import api_key_for

pytestmark = pytest.mark.django_db


def get_answer(client: APIClient) -> Any:
    return client.get("/api/v1/answers/nothing-here")


def lookups(queries: CaptureQueriesContext) -> int:
    """How many of the queries looked a key up."""
    return sum(
        q["sql"].startswith("SELECT") and 'FROM "feedback_apikey"' in q["sql"]
        for q in queries.captured_queries
    )


def key_queries(client: APIClient) -> int:
    """How many key lookups one request made."""
    with CaptureQueriesContext(connection) as queries:
        assert get_answer(client).status_code == 404  # authenticated; no such answer
    return lookups(queries)


def test_a_key_is_looked_up_once_per_window(
    project: Project, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = 1000.0
    monkeypatch.setattr(recent_keys, "clock", lambda: now)
    client = bearer_client(api_key_for(project))

    first, second = key_queries(client), key_queries(client)
    now += settings.API_KEY_CACHE_SECONDS
    after_the_window = key_queries(client)

    assert (first, second, after_the_window) == (1, 0, 1)


def test_a_revoked_key_is_refused_once_the_window_ends(
    project: Project, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = 1000.0
    monkeypatch.setattr(recent_keys, "clock", lambda: now)
    client = bearer_client(api_key_for(project))
    assert get_answer(client).status_code == 404

    api_key_revoke(project=project, key_id=ApiKey.objects.get().pk)
    now += settings.API_KEY_CACHE_SECONDS - 0.5
    inside_the_window = get_answer(client)
    now += 0.5
    after_it = get_answer(client)

    assert inside_the_window.status_code == 404  # the bound: still accepted here
    assert after_it.status_code == 401


def test_with_the_cache_off_a_revoked_key_is_refused_at_once(
    project: Project, settings: Any
) -> None:
    settings.API_KEY_CACHE_SECONDS = 0
    client = bearer_client(api_key_for(project))
    assert get_answer(client).status_code == 404

    api_key_revoke(project=project, key_id=ApiKey.objects.get().pk)

    assert get_answer(client).status_code == 401


def test_a_wrong_key_is_looked_up_every_time(project: Project) -> None:
    guesser = bearer_client("fbk_not-a-real-key")

    with CaptureQueriesContext(connection) as queries:
        statuses = [get_answer(guesser).status_code for _ in range(3)]

    assert statuses == [401] * 3
    assert lookups(queries) == 3


def test_a_change_a_request_makes_to_its_key_or_project_stays_in_that_request(
    project: Project,
) -> None:
    raw = api_key_for(project)
    client = bearer_client(raw)
    assert get_answer(client).status_code == 404
    taken = recent_keys.get(raw)
    assert taken is not None

    taken.scopes = []
    taken.project.slug = "changed"
    again = recent_keys.get(raw)

    assert again is not None
    assert again.project.slug == "acme"
    assert "ingest" in again.scopes
