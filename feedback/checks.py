"""System checks (`manage.py check`, and every command that runs them, `migrate` included) for
settings that are each valid alone but dangerous together."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


def proxy_address_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """TRUST_X_FORWARDED_PROTO says a proxy stands in front of the app, so every request arrives
    from the proxy's address. Without TRUSTED_PROXY_COUNT that address is every client's: the
    login lockout and the API-key throttle, which count failures per address, then lock out
    everyone as soon as one client fails often enough.

    An error in production (DEBUG off), where one attacker could shut every user out, so that
    `migrate` and `check` stop until it is fixed (or deliberately silenced, for a proxy that
    passes on the client's own address as REMOTE_ADDR); a warning in development, where a
    tunnel or a local proxy is common and the lockout matters little."""
    if not settings.TRUST_X_FORWARDED_PROTO or settings.TRUSTED_PROXY_COUNT > 0:
        return []
    message = (
        "TRUST_X_FORWARDED_PROTO is set but TRUSTED_PROXY_COUNT is 0: every request seems to come "
        "from the proxy's address, so one client's failed logins lock out everyone."
    )
    hint = (
        "Set TRUSTED_PROXY_COUNT to the number of proxies in front of the app that append to "
        "X-Forwarded-For."
    )
    if settings.DEBUG:
        return [checks.Warning(message, hint=hint, id="feedback.W001")]
    return [checks.Error(message, hint=hint, id="feedback.E001")]
