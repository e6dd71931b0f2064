"""The client address behind the throttles, and the failure counter they share."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import RequestFactory

from feedback.core.throttling import auth_failure_record, auth_failures_wait, client_address

CLIENT = "203.0.113.7"
PROXY = "10.0.0.2"


@pytest.mark.parametrize(
    ("proxies", "forwarded_for", "expected"),
    [
        # No proxy configured: X-Forwarded-For is whatever the client wrote, and is ignored.
        (0, "192.0.2.1", PROXY),
        (0, None, PROXY),
        # One proxy: the entry it appended, the rightmost; the ones before are the client's.
        (1, f"192.0.2.1, {CLIENT}", CLIENT),
        (1, CLIENT, CLIENT),
        # Two proxies: the address the outer one saw, second from the right.
        (2, f"192.0.2.1, {CLIENT}, 10.0.0.1", CLIENT),
        # A request that did not pass every proxy, or a malformed entry: REMOTE_ADDR.
        (2, CLIENT, PROXY),
        (1, None, PROXY),
        (1, "not-an-address", PROXY),
        (1, "2001:DB8::1", "2001:db8::1"),
    ],
)
def test_client_address(
    settings: Any, proxies: int, forwarded_for: str | None, expected: str
) -> None:
    settings.TRUSTED_PROXY_COUNT = proxies
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    request = RequestFactory().get("/", headers=headers, REMOTE_ADDR=PROXY)

    assert client_address(request) == expected


@pytest.fixture(params=["locmem", "redis"])
def shared_cache(request: Any, settings: Any) -> str:
    """The counter on the embedded default's cache and on Redis (what compose uses), under a
    key prefix of this test's own."""
    location = {"locmem": "throttling-test", "redis": django_settings.CELERY_BROKER_URL}
    backend = {
        "locmem": "django.core.cache.backends.locmem.LocMemCache",
        "redis": "django.core.cache.backends.redis.RedisCache",
    }
    settings.CACHES = {
        "default": {
            "BACKEND": backend[request.param],
            "LOCATION": location[request.param],
            "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
        }
    }
    return str(request.param)


def test_concurrent_failures_are_all_counted(shared_cache: str, settings: Any) -> None:
    settings.API_AUTH_FAILURE_LIMIT = 40

    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = sorted(pool.map(lambda _: auth_failure_record(address=CLIENT), range(40)))

    assert counts == list(range(1, 41))
    assert auth_failures_wait(address=CLIENT) > 0
    assert auth_failures_wait(address=PROXY) == 0
