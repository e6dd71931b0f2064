"""Tenancy: projects, their members and roles, and the projects' API keys and scopes.

Invariants live here as database constraints (one membership per user and project, roles as a
check constraint); services rely on them instead of checking first.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q

from feedback.core.constraints import choices_check

DEFAULT_REACTIONS = ["love", "like", "dislike", "laugh", "wow", "sad", "angry"]
DEFAULT_POSITIVE_REACTIONS = ["love", "like"]
DEFAULT_NEGATIVE_REACTIONS = ["dislike", "angry"]


def default_reactions() -> list[str]:
    return list(DEFAULT_REACTIONS)


def default_positive() -> list[str]:
    return list(DEFAULT_POSITIVE_REACTIONS)


def default_negative() -> list[str]:
    return list(DEFAULT_NEGATIVE_REACTIONS)


def new_salt() -> str:
    return secrets.token_hex(16)


class Project(models.Model):
    """The unit of isolation: every other object belongs to exactly one project."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    reaction_set = models.JSONField(default=default_reactions)
    positive_reactions = models.JSONField(default=default_positive)
    negative_reactions = models.JSONField(default=default_negative)
    # Salt for hashing user references in exports; never leaves the server.
    export_salt = models.CharField(max_length=64, default=new_salt, editable=False)
    # What end users see and may do.
    allow_images = models.BooleanField(default=False)
    followup_delay = models.DurationField(default=timedelta(days=1))
    exposure_window = models.DurationField(default=timedelta(minutes=30))
    feedback_rate_per_minute = models.PositiveIntegerField(default=60)
    reactions_per_day = models.PositiveIntegerField(default=200)
    # The embeddable widget may record viewers it knows only by a random id their browser
    # keeps (`anon:<id>`), besides those the host app vouches for with a signed viewer token.
    allow_anonymous_viewers = models.BooleanField(default=False)
    # P[Love]: an exposure is positive when a Love reaction follows within this window.
    love_window = models.DurationField(default=timedelta(hours=24))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(feedback_rate_per_minute__gte=1) & Q(reactions_per_day__gte=1),
                name="project_limits_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.slug


class Role(models.TextChoices):
    """Roles nest: each includes every role below it."""

    OWNER = "owner", "Owner"
    RESEARCHER = "researcher", "Researcher"
    ANNOTATOR = "annotator", "Annotator"
    RATER = "rater", "Rater"


ROLE_RANK = {Role.RATER: 1, Role.ANNOTATOR: 2, Role.RESEARCHER: 3, Role.OWNER: 4}


def role_includes(role: str, required: str) -> bool:
    """True when `role` carries every permission of `required` (owner ⊃ researcher ⊃ ...)."""
    return ROLE_RANK[Role(role)] >= ROLE_RANK[Role(required)]


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "project"], name="membership_one_per_user"),
            choices_check("role", Role, "membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.project_id}:{self.role}"


class Scope(models.TextChoices):
    INGEST = "ingest", "Ingest answers"
    FEEDBACK = "feedback", "Send feedback"
    EXPORT = "export", "Export data"
    TRAIN = "train", "Train models"
    # A publishable key: it sits in web pages, records feedback through the widget only, and
    # only from its allowed origins. It never carries another scope.
    WIDGET = "widget", "Embed the feedback widget"


# The member role a signed-in browser user needs for what an API key's scope allows.
SCOPE_MIN_ROLE = {
    Scope.INGEST: Role.RESEARCHER,
    Scope.FEEDBACK: Role.RATER,
    Scope.EXPORT: Role.RESEARCHER,
    Scope.TRAIN: Role.RESEARCHER,
    Scope.WIDGET: Role.RATER,
}


class ApiKey(models.Model):
    """A project's machine credential. Only a SHA-256 of the key is stored; the key is shown
    once, when it is created. Keys carry 256 bits of randomness, so a fast hash is enough."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField()
    # Widget keys: the origins (scheme://host[:port]) of the pages allowed to use the key.
    origins = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
