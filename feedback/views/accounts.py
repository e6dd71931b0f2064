"""Logging in: the page shown while django-axes has locked a username or address out."""

from __future__ import annotations

from typing import Any

from axes.helpers import get_cool_off
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone


def login_locked_out(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """The answer to a login attempt (site or admin) while its username or address is locked
    out (AXES_LOCKOUT_CALLABLE): 429 in the site's layout, saying when to try again.

    The attempt that got here was counted too, and a failure during a lockout starts the
    cool-off again (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT), so every failure this lock
    counts is now at most this old: the lock lifts one cool-off from now."""
    cool_off = get_cool_off(request)
    retry_at = timezone.now() + cool_off
    response = render(
        request,
        "registration/lockout.html",
        {"retry_at": retry_at, "cool_off_minutes": round(cool_off.total_seconds() / 60)},
        status=429,
    )
    response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response
