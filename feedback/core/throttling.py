"""Who the client is, and how often it failed to authenticate.

`client_address` is the one answer to "which address is this request from", used by the login
lockout (django-axes calls it through AXES_CLIENT_IP_CALLABLE) and by the API-key throttle.

The API-key throttle counts failed authentications per client address in Django's cache, in
fixed windows of API_AUTH_FAILURE_WINDOW_SECONDS: once an address has API_AUTH_FAILURE_LIMIT
failures in the current window, it is refused until the window ends. The counter must be shared
by every web process (a Redis cache in production), or each process counts on its own.
"""

from __future__ import annotations

import ipaddress
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    """The address the request came from: REMOTE_ADDR, unless TRUSTED_PROXY_COUNT proxies sit
    in front of the app. Each of those appends the address it received the request from to
    X-Forwarded-For, so the client is the entry that many places from the right; entries
    further left were written by the client itself and can say anything. A request with fewer
    entries (it bypassed a proxy) or a malformed one is taken at its REMOTE_ADDR."""
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(forwarded) < proxies:
        return remote
    try:
        return str(ipaddress.ip_address(forwarded[-proxies]))
    except ValueError:
        return remote


def _window(now: float) -> tuple[str, float]:
    """The current window's number and the moment it ends."""
    length = settings.API_AUTH_FAILURE_WINDOW_SECONDS
    number = int(now // length)
    return str(number), (number + 1) * length


def _counter_key(address: str | None, window: str) -> str:
    return f"api-auth-failures:{window}:{address or 'unknown'}"


def auth_failures_wait(*, address: str | None) -> int:
    """Seconds until `address` may try an API key again; 0 when it may now."""
    now = time.time()
    window, ends = _window(now)
    failures = cache.get(_counter_key(address, window), 0)
    if failures < settings.API_AUTH_FAILURE_LIMIT:
        return 0
    return max(1, math.ceil(ends - now))


def auth_failure_record(*, address: str | None) -> int:
    """Count one failed API-key authentication from `address`; the failures in this window."""
    window, _ = _window(time.time())
    key = _counter_key(address, window)
    # add + incr, both atomic in the cache (SET NX and INCR on Redis): concurrent failures are
    # all counted, where a get-then-set would lose some. The key outlives its window, so the
    # incr never meets a key that expired after the add.
    timeout = 2 * settings.API_AUTH_FAILURE_WINDOW_SECONDS
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # evicted between the add and the incr
        cache.add(key, 1, timeout=timeout)
        return 1
