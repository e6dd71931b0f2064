"""Projects, members, settings and API keys."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, TypedDict, Unpack

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from feedback.core.errors import ValidationFailed
from feedback.models import (
    ApiKey,
    Membership,
    Project,
    Role,
    Scope,
)
from feedback.widget import origins_normalize

API_KEY_PREFIX = "fbk_"
# last_used_at is written at most this often per key, so authentication stays read-only.
API_KEY_TOUCH_INTERVAL = timedelta(seconds=60)


# --- projects and members --------------------------------------------------------------------


def project_create(*, slug: str, name: str = "") -> tuple[Project, bool]:
    """Create the project, or return the existing one with that slug (idempotent)."""
    return Project.objects.get_or_create(slug=slug, defaults={"name": name or slug})


def member_set(
    *, project: Project, username: str, password: str | None, role: str
) -> tuple[Any, Membership]:
    """Create the user if needed and give them `role` in the project (idempotent)."""
    if role not in Role.values:
        raise ValidationFailed.of(
            "role", f"Unknown role {role!r}; use one of {', '.join(Role.values)}."
        )
    user_model = get_user_model()
    with transaction.atomic():
        user, created = user_model.objects.get_or_create(username=username)
        if password:
            user.set_password(password)
            user.save(update_fields=["password"])
        elif created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        membership, _ = Membership.objects.update_or_create(
            user=user, project=project, defaults={"role": role}
        )
    return user, membership


# --- API keys --------------------------------------------------------------------------------


def api_key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_create(
    *,
    project: Project,
    name: str,
    scopes: Iterable[str],
    created_by: User | None = None,
    origins: Iterable[str] = (),
) -> tuple[ApiKey, str]:
    """A new key for the project. Returns the row and the raw key, which is never stored.

    A widget key is publishable (it sits in web pages): it carries no other scope, and names
    the origins of the pages that may use it."""
    scope_list = sorted(set(scopes))
    unknown = [s for s in scope_list if s not in Scope.values]
    if unknown or not scope_list:
        raise ValidationFailed.of(
            "scopes", f"Scopes must be a non-empty subset of {', '.join(Scope.values)}."
        )
    origin_list, problems = origins_normalize(list(origins))
    if Scope.WIDGET in scope_list:
        if len(scope_list) > 1:
            raise ValidationFailed.of(
                "scopes", "A widget key is published in web pages: it can't have other scopes."
            )
        if not origin_list and not problems:
            problems = ["A widget key needs the origins of the pages that embed the widget."]
    elif origin_list or problems:
        problems = ["Only widget keys have allowed origins."]
    if problems:
        raise ValidationFailed({"origins": problems}, problems[0])
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationFailed.of("name", "A key needs a name of 1 to 100 characters.")
    raw_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        project=project,
        name=name,
        prefix=raw_key[: len(API_KEY_PREFIX) + 6],
        key_hash=api_key_hash(raw_key),
        scopes=scope_list,
        origins=origin_list,
        created_by=created_by,
    )
    return key, raw_key


def api_key_revoke(*, project: Project, key_id: int) -> ApiKey:
    key = ApiKey.objects.get(project=project, pk=key_id)
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    key.refresh_from_db()
    return key


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key for `raw_key`, recording its use; None for an unknown or revoked key."""
    if not raw_key.startswith(API_KEY_PREFIX):
        return None
    key = (
        ApiKey.objects.select_related("project")
        .filter(key_hash=api_key_hash(raw_key), revoked_at__isnull=True)
        .first()
    )
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or key.last_used_at < now - API_KEY_TOUCH_INTERVAL:
        ApiKey.objects.filter(pk=key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - API_KEY_TOUCH_INTERVAL)
        ).update(last_used_at=now)
        key.last_used_at = now
    return key


class ProjectSettings(TypedDict):
    """What a project's owner may change: the Project fields of these names, all at once."""

    name: str
    reaction_set: list[str]
    positive_reactions: list[str]
    negative_reactions: list[str]
    allow_images: bool
    followup_delay: timedelta
    exposure_window: timedelta
    feedback_rate_per_minute: int
    reactions_per_day: int
    allow_anonymous_viewers: bool


def project_settings_update(*, project: Project, **settings: Unpack[ProjectSettings]) -> Project:
    """Change what end users see and may do. Existing reactions of a kind taken out of the set
    stay in the history; they are no longer offered."""
    for field, value in settings.items():
        setattr(project, field, value)
    project.save(update_fields=list(settings))
    return project
