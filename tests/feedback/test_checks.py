"""The system check for proxy settings that would give every client the proxy's address."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks

from feedback.checks import proxy_address_check


@pytest.mark.parametrize(
    ("trust_proto", "proxies", "debug", "expected"),
    [
        # behind a TLS proxy, with no count of the proxies appending to X-Forwarded-For: every
        # client has the proxy's address, so one client's failures lock out everyone
        (True, 0, False, [(checks.ERROR, "feedback.E001")]),
        (True, 0, True, [(checks.WARNING, "feedback.W001")]),
        # the proxies counted, or no proxy claimed: each client has its own address
        (True, 1, False, []),
        (False, 0, False, []),
        (False, 2, False, []),
    ],
)
def test_trusting_a_proxy_without_counting_it_is_reported(
    settings: Any, trust_proto: bool, proxies: int, debug: bool, expected: list[tuple[int, str]]
) -> None:
    # given the proxy settings
    settings.TRUST_X_FORWARDED_PROTO = trust_proto
    settings.TRUSTED_PROXY_COUNT = proxies
    settings.DEBUG = debug

    # when the check runs
    found = proxy_address_check()

    # then it names the problem (an error in production) and how to fix it, or says nothing
    assert [(message.level, message.id) for message in found] == expected
    for message in found:
        assert "TRUSTED_PROXY_COUNT" in message.msg
        assert "TRUSTED_PROXY_COUNT" in (message.hint or "")


def test_the_check_runs_with_the_projects_checks(settings: Any) -> None:
    # given the dangerous pair in production
    settings.TRUST_X_FORWARDED_PROTO = True
    settings.TRUSTED_PROXY_COUNT = 0
    settings.DEBUG = False

    # when Django runs its security checks, as `manage.py check` and `migrate` do
    found = checks.run_checks(tags=[checks.Tags.security])

    # then the app's check is among them
    assert "feedback.E001" in {message.id for message in found}
