"""Who is asking the API, and which project they act on.

Machine clients authenticate with `Authorization: Bearer <api key>`; the key belongs to one
project and carries scopes. A signed-in browser user (session + CSRF) names the project with
`?project=<slug>` and needs the member role that the scope maps to.
"""

from __future__ import annotations

import copy
import hashlib
import time
from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from feedback import selectors
from feedback.core.throttling import auth_failure_record, auth_failures_wait, client_address
from feedback.models import SCOPE_MIN_ROLE, ApiKey, Project, Scope, role_includes
from feedback.services import api_key_authenticate


class ApiKeyPrincipal:
    """`request.user` for a request made with an API key: it acts for the key's project only."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, key: ApiKey) -> None:
        self.key = key
        self.pk = None
        self.username = f"api-key:{key.prefix}"

    def __str__(self) -> str:
        return self.username


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <api key>`. Guessing keys is throttled per client address: every
    failure is counted, and an address over the limit gets 429 before its key is looked at, so
    it cannot tell a right guess from a wrong one until the window ends. That costs one cache
    read per request made with a key; other addresses, and requests without a key, are not
    affected."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        address = client_address(request._request)
        wait = auth_failures_wait(address=address)
        if wait:
            raise exceptions.Throttled(
                wait=wait,
                detail=(
                    "Too many failed API-key authentications from this address; "
                    f"try again in {wait} seconds."
                ),
            )
        try:
            return self._authenticate_key(header)
        except exceptions.AuthenticationFailed:
            auth_failure_record(address=address)
            raise

    def _authenticate_key(self, header: list[bytes]) -> tuple[ApiKeyPrincipal, ApiKey]:
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send exactly one API key after 'Bearer'.")
        try:
            raw_key = header[1].decode()
        except UnicodeDecodeError as error:
            raise exceptions.AuthenticationFailed("The API key is not valid.") from error
        key = recent_keys.get(raw_key)
        if key is None:
            key = api_key_authenticate(raw_key=raw_key)
            if key is None:
                raise exceptions.AuthenticationFailed("The API key is unknown or revoked.")
            recent_keys.put(raw_key, key)
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class RecentKeys:
    """The keys this process authenticated in the last API_KEY_CACHE_SECONDS, with their
    projects, so a client sending request after request costs one key lookup per window
    instead of one per request (the lookup was a quarter of a reaction's CPU).

    The price is a bound, not a change of rules: a key revoked, or a project whose settings
    (reactions, limits, windows) changed, is seen by each web process at most
    API_KEY_CACHE_SECONDS later (0 turns the cache off). Only keys that authenticated are kept,
    so every wrong guess still reaches the database and the failure count. Entries are found by
    a hash of the key, never by the key itself; each request gets its own copy of the key and
    the project, so nothing one request changes on them reaches another."""

    # More distinct keys than this in one window empties the cache instead of growing it.
    MAX_KEYS = 1000

    def __init__(self) -> None:
        # key hash -> (the key with its project, `clock()` time it expires at)
        self._entries: dict[str, tuple[ApiKey, float]] = {}
        self.clock = time.monotonic

    @staticmethod
    def _digest(raw_key: str) -> str:
        return hashlib.sha256(raw_key.encode()).hexdigest()

    def get(self, raw_key: str) -> ApiKey | None:
        if settings.API_KEY_CACHE_SECONDS <= 0:
            return None
        entry = self._entries.get(self._digest(raw_key))
        if entry is None or entry[1] <= self.clock():
            return None
        key = copy.copy(entry[0])
        key.project = copy.copy(entry[0].project)
        return key

    def put(self, raw_key: str, key: ApiKey) -> None:
        seconds = settings.API_KEY_CACHE_SECONDS
        if seconds <= 0:
            return
        if len(self._entries) >= self.MAX_KEYS:
            self._entries = {}
        # Each thread writes a whole new entry; a reader sees the old one or the new one.
        kept = copy.copy(key)
        kept.project = copy.copy(key.project)
        self._entries[self._digest(raw_key)] = (kept, self.clock() + seconds)


recent_keys = RecentKeys()


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """How the schema describes `ApiKeyAuthentication` (registered when this module loads,
    which it does wherever the authentication class is used)."""

    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A project API key (`fbk_…`), created on the project's API keys page.",
        }


def project_for(request: Request, *scopes: Scope) -> Project:
    """The project this request acts on, once the caller is allowed one of `scopes` in it."""
    wanted = " or ".join(f"'{s}'" for s in scopes)
    if isinstance(request.auth, ApiKey):
        if not any(scope in request.auth.scopes for scope in scopes):
            raise exceptions.PermissionDenied(f"This API key lacks the {wanted} scope.")
        return request.auth.project
    slug = request.query_params.get("project")
    if not slug:
        raise exceptions.ValidationError({"project": ["Name the project: ?project=<slug>."]})
    membership = selectors.membership_get(user=request.user, slug=slug)
    if membership is None:
        raise exceptions.NotFound("No such project.")
    if not any(role_includes(membership.role, SCOPE_MIN_ROLE[scope]) for scope in scopes):
        raise exceptions.PermissionDenied(
            f"Your role '{membership.role}' does not allow {wanted} in this project."
        )
    project: Project = membership.project
    return project
