"""What a serving process checks and loads before it takes requests."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import get_resolver


def refuse_to_serve_without_a_secret_key() -> None:
    if getattr(settings, "SECRET_KEY_MISSING", False):
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")


def load_every_view() -> None:
    """Import the URLconf, and with it every view, API and what they import (the training
    code, skops, matplotlib...), now rather than in the first request each worker serves: that
    request would wait seconds, and every worker the server starts again (gunicorn recycles
    them after `max_requests`) would pay it while requests queue behind it."""
    get_resolver().url_patterns  # noqa: B018 (the property imports the URLconf)
