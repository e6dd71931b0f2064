"""Database constraints the models of both apps share."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


def choices_check(
    field: str, choices: type[models.TextChoices], name: str
) -> models.CheckConstraint:
    """A check constraint holding `field` to the values of `choices`, so a value outside the
    enum is refused by the database and not only by forms."""
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)
