"""API-key guessing is throttled per client address: after API_AUTH_FAILURE_LIMIT failed
authentications in a window, the address gets 429 with Retry-After, before its key is even
looked at, until the window ends. Other addresses are not affected."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from feedback.core.throttling import auth_failures_wait
from feedback.models import Project
from tests.conftest import bearer_client
from tests.factories import api_key_for

ATTACKER = "203.0.113.7"
ELSEWHERE = "198.51.100.20"


def get_answer(client: APIClient, address: str) -> Any:
    return client.get("/api/v1/answers/nothing-here", REMOTE_ADDR=address)


@pytest.mark.django_db
def test_an_address_that_keeps_failing_gets_429_and_other_addresses_do_not(
    project: Project, settings: Any
) -> None:
    limit = settings.API_AUTH_FAILURE_LIMIT
    guesser = bearer_client("fbk_not-a-real-key")
    valid = bearer_client(api_key_for(project))

    failures = [get_answer(guesser, ATTACKER) for _ in range(limit)]
    throttled = get_answer(guesser, ATTACKER)
    valid_from_attacker = get_answer(valid, ATTACKER)
    valid_from_elsewhere = get_answer(valid, ELSEWHERE)
    bad_from_elsewhere = get_answer(guesser, ELSEWHERE)

    assert [r.status_code for r in failures] == [401] * limit
    assert throttled.status_code == 429
    error = throttled.json()["error"]
    assert error["code"] == "throttled"
    assert "failed API-key authentications" in error["message"]
    assert 1 <= int(throttled["Retry-After"]) <= settings.API_AUTH_FAILURE_WINDOW_SECONDS
    # A blocked address can't learn whether a key is valid: the key is not even looked at.
    assert valid_from_attacker.status_code == 429
    assert valid_from_elsewhere.status_code == 404  # authenticated; no such answer
    assert bad_from_elsewhere.status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer \xff"])
def test_malformed_bearer_headers_count_as_failures(
    project: Project, settings: Any, header: str
) -> None:
    settings.API_AUTH_FAILURE_LIMIT = 3
    client = APIClient(HTTP_AUTHORIZATION=header)

    statuses = [get_answer(client, ATTACKER).status_code for _ in range(4)]

    assert statuses == [401, 401, 401, 429]


@pytest.mark.django_db
def test_sessions_and_valid_keys_are_not_counted(project: Project, settings: Any) -> None:
    settings.API_AUTH_FAILURE_LIMIT = 2
    valid = bearer_client(api_key_for(project))

    for _ in range(5):
        get_answer(valid, ATTACKER)
        get_answer(APIClient(), ATTACKER)  # no credentials: 401, but nothing was guessed

    assert auth_failures_wait(address=ATTACKER) == 0
    assert get_answer(valid, ATTACKER).status_code == 404
