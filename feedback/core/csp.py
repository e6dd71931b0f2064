"""Per-response changes to the site's Content-Security-Policy (CONTENT_SECURITY_POLICY in the
settings, sent by django-csp's middleware)."""

from __future__ import annotations

from typing import TypeVar

from django.http import HttpResponseBase

Response = TypeVar("Response", bound=HttpResponseBase)

# Answers of a project that shows images embed them from wherever the answer points (the
# markdown renderer only lets http(s) image URLs through); everything else stays as strict.
_REMOTE_IMAGES = {"img-src": ["https:"]}


def allow_remote_images(response: Response, *, allowed: bool) -> Response:
    """Let `response`'s page load https images from other hosts when `allowed`.

    django-csp adds the sources in a response's `_csp_update` to the policy's own; its
    `csp_update` decorator sets the same attribute, but only for every response of a view."""
    if allowed:
        setattr(response, "_csp_update", _REMOTE_IMAGES)  # noqa: B010 (django-csp's hook)
    return response
