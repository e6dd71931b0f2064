"""What a serving process checks before it takes requests."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def refuse_to_serve_without_a_secret_key() -> None:
    if getattr(settings, "SECRET_KEY_MISSING", False):
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
