"""Projects, members, settings and API keys."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, TypedDict, Unpack

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.text import slugify

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
SLUG_PATTERN = re.compile(r"[-a-zA-Z0-9_]+")
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


# --- projects and members through the pages ----------------------------------------------------

# Names under /projects/ that are not a project's: a project with one of these slugs would have
# its pages shadowed by the site's own.
RESERVED_SLUGS = frozenset({"create", "new", "-"})


def project_create_owned(*, owner: Any, name: str, slug: str = "") -> Project:
    """A new project whose owner is `owner` (any signed-in user may start one). The slug comes
    from the name unless given; one already taken is refused, never shared."""
    name = name.strip()
    slug = (slug.strip() or slugify(name))[:64]
    errors: dict[str, list[str]] = {}
    if not name or len(name) > 200:
        errors["name"] = ["A project needs a name of 1 to 200 characters."]
    if not slug or not SLUG_PATTERN.fullmatch(slug) or slug in RESERVED_SLUGS:
        errors["slug"] = [
            "Use letters, digits, hyphens and underscores for the address (at most 64)."
        ]
    if errors:
        raise ValidationFailed(errors)
    try:
        with transaction.atomic():
            project = Project.objects.create(slug=slug, name=name)
            Membership.objects.create(user=owner, project=project, role=Role.OWNER)
    except IntegrityError as error:  # the slug's unique constraint: someone has it
        raise ValidationFailed.of(
            "slug", f"The address {slug!r} is taken; choose another."
        ) from error
    return project


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise ValidationFailed.of(
            "role", f"Unknown role {role!r}; use one of {', '.join(Role.values)}."
        )


def member_add(*, project: Project, identifier: str, role: str) -> Membership:
    """Make an existing user, named by username or email address, a member with `role`."""
    _check_role(role)
    identifier = identifier.strip()
    user_model = get_user_model()
    matches = list(
        user_model.objects.filter(
            Q(username__iexact=identifier) | (Q(email__iexact=identifier) & ~Q(email=""))
        )[:2]
    )
    if not identifier or not matches:
        raise ValidationFailed.of(
            "user", "No user has that username or email address; create an account below."
        )
    if len(matches) > 1:
        raise ValidationFailed.of(
            "user", "Several users have that email address; give the username instead."
        )
    try:
        with transaction.atomic():
            return Membership.objects.create(user=matches[0], project=project, role=role)
    except IntegrityError as error:  # one membership per user and project
        raise ValidationFailed.of(
            "user", f"{matches[0].get_username()} is a member already; change their role below."
        ) from error


def member_create(*, project: Project, username: str, email: str, role: str) -> Membership:
    """A new user account, a member with `role`, with no password yet: they choose one through
    the link `account_setup_link` makes."""
    _check_role(role)
    username = username.strip()
    email = email.strip()
    user_model = get_user_model()
    errors: dict[str, list[str]] = {}
    try:
        user_model.username_validator(username)
        if not username or len(username) > 150:
            raise DjangoValidationError("")
    except DjangoValidationError:
        errors["username"] = ["Use 1 to 150 letters, digits and @ . + - _ for the username."]
    if email:
        try:
            validate_email(email)
        except DjangoValidationError:
            errors["email"] = ["Enter a valid email address, or leave it blank."]
    if errors:
        raise ValidationFailed(errors)
    taken = ValidationFailed.of(
        "username", f"The username {username!r} is taken; add that user above instead."
    )
    # Logging in matches usernames exactly, but "Ada" beside "ada" is a mistake waiting to
    # happen; two requests racing past this check still meet the unique constraint below.
    if user_model.objects.filter(username__iexact=username).exists():
        raise taken
    try:
        with transaction.atomic():
            user = user_model(username=username, email=email)
            user.set_unusable_password()
            user.save()
            return Membership.objects.create(user=user, project=project, role=role)
    except IntegrityError as error:
        raise taken from error


def account_setup_link(*, user: Any) -> tuple[str, str]:
    """The (uidb64, token) of a link that lets `user` choose their password once: the token is
    Django's password-reset token, which stops working as soon as the password is set (and
    after PASSWORD_RESET_TIMEOUT)."""
    return urlsafe_base64_encode(force_bytes(user.pk)), default_token_generator.make_token(user)


def _locked_member(project: Project, membership_id: int) -> tuple[Membership, int]:
    """The project's membership `membership_id` and the number of owners, under a lock on the
    project's row: every change of members of one project waits for the one before, so two
    owners demoting each other at once can't leave the project with none."""
    Project.objects.select_for_update().get(pk=project.pk)
    membership = Membership.objects.select_related("user").get(project=project, pk=membership_id)
    owners = Membership.objects.filter(project=project, role=Role.OWNER).count()
    return membership, owners


LAST_OWNER = "A project needs an owner: make someone else an owner first."


def member_role_change(*, project: Project, membership_id: int, role: str) -> Membership:
    """Give a member another role; the last owner keeps theirs. Raises Membership.DoesNotExist
    for a membership of another project."""
    _check_role(role)
    with transaction.atomic():
        membership, owners = _locked_member(project, membership_id)
        if membership.role == Role.OWNER and role != Role.OWNER and owners <= 1:
            raise ValidationFailed.of("role", LAST_OWNER)
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def member_remove(*, project: Project, membership_id: int) -> Membership:
    """Take a member out of the project (their account stays); never the last owner. Raises
    Membership.DoesNotExist for a membership of another project."""
    with transaction.atomic():
        membership, owners = _locked_member(project, membership_id)
        if membership.role == Role.OWNER and owners <= 1:
            raise ValidationFailed.of("role", LAST_OWNER)
        membership.delete()
    return membership
