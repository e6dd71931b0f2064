"""The embeddable widget's rules, as plain functions: which page origins a publishable key may
name, the signed viewer tokens a host app hands its users' browsers, the random ids of anonymous
viewers, and what an event sent by the widget may say.

No ORM here; `feedback.services.widget` and `feedback.selectors.widget` use these.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.core import signing
from django.utils.crypto import salted_hmac

from feedback.core.errors import ServiceError
from feedback.core.validators import bidi_problem

# --- allowed origins -------------------------------------------------------------------------

MAX_ORIGINS = 20
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_normalize(text: str) -> str:
    """`scheme://host[:port]` as browsers send it in the `Origin` header (lowercase, without
    the scheme's default port, without a trailing slash), or ValueError saying what is wrong.

    No wildcards: a pattern such as `https://*.example.com` would let every subdomain speak
    with the key, including ones that serve other people's content or that someone took over;
    each page origin is listed on its own."""
    text = text.strip()
    if "*" in text:
        raise ValueError(f"{text!r}: list each origin; wildcards are not allowed.")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise ValueError(f"{text!r} is not an origin: {error}.") from error
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"{text!r}: an origin starts with http:// or https://.")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{text!r}: an origin has no user name or password.")
    if parts.path not in ("", "/") or parts.query or parts.fragment or text.endswith("#"):
        raise ValueError(f"{text!r}: an origin is scheme://host[:port], with no path.")
    host = (parts.hostname or "").lower()
    if not _valid_host(host):
        raise ValueError(f"{text!r}: no valid host name (non-ASCII names in punycode, xn--…).")
    shown_host = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        if port == 0:
            raise ValueError(f"{text!r}: the port must be 1 to 65535.")
        return f"{scheme}://{shown_host}:{port}"
    return f"{scheme}://{shown_host}"


def _valid_host(host: str) -> bool:
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.removesuffix(".").split(".")
    return len(host) <= 253 and all(_HOST_LABEL.match(label) for label in labels)


def origins_normalize(origins: list[str]) -> tuple[list[str], list[str]]:
    """(the origins normalized, without repeats, in order; the problems, one per bad origin)."""
    kept: list[str] = []
    problems: list[str] = []
    for origin in origins:
        try:
            normal = origin_normalize(origin)
        except ValueError as error:
            problems.append(str(error))
            continue
        if normal not in kept:
            kept.append(normal)
    if len(kept) > MAX_ORIGINS:
        problems.append(f"At most {MAX_ORIGINS} origins per key.")
    return kept, problems


# --- signed viewer tokens --------------------------------------------------------------------

TOKEN_SALT = "feedback.widget.viewer-token"  # noqa: S105 (a salt, not a secret)
MIN_TTL_SECONDS = 60
MAX_TTL_SECONDS = 24 * 3600
DEFAULT_TTL_SECONDS = 3600
MAX_USER_REF_LENGTH = 255
# Viewers whose names the platform makes itself: a signed-in user of the site and an
# anonymous widget viewer. A host app can't vouch for either.
RESERVED_PREFIXES = ("user:", "anon:")


class BadViewer(Exception):
    """The viewer a widget request names is missing, unreadable, expired or not allowed."""


def user_ref_problem(user_ref: str) -> str:
    """Why `user_ref` can't be a signed viewer ("" when it can)."""
    if not user_ref.strip():
        return "Must not be blank."
    if len(user_ref) > MAX_USER_REF_LENGTH:
        return f"Must be at most {MAX_USER_REF_LENGTH} characters."
    if "\x00" in user_ref:
        return "Must not contain NUL characters."
    if user_ref.startswith(RESERVED_PREFIXES):
        return f"Must not start with {' or '.join(RESERVED_PREFIXES)}: the platform names those."
    return bidi_problem(user_ref) or ""


def viewer_token_sign(*, project_id: int, user_ref: str, expires_at: datetime) -> str:
    """A token that says, under the platform's signature, that this project's app vouches for
    `user_ref` until `expires_at`."""
    payload = {"p": project_id, "u": user_ref, "x": int(expires_at.timestamp())}
    return signing.Signer(salt=TOKEN_SALT).sign_object(payload, compress=True)


def viewer_token_read(token: str, *, project_id: int, now: datetime) -> str:
    """The user_ref a token vouches for in this project, or BadViewer."""
    try:
        payload = signing.Signer(salt=TOKEN_SALT).unsign_object(token)
    except (signing.BadSignature, ValueError, UnicodeDecodeError) as error:
        raise BadViewer("The viewer token is not valid.") from error
    if not isinstance(payload, dict) or payload.get("p") != project_id:
        raise BadViewer("The viewer token is not one of this project.")
    expires = payload.get("x")
    if not isinstance(expires, int) or expires <= now.timestamp():
        raise BadViewer("The viewer token has expired; ask the host app for a new one.")
    user_ref = payload.get("u")
    if not isinstance(user_ref, str) or not user_ref:
        raise BadViewer("The viewer token is not valid.")
    return user_ref


def token_expiry(now: datetime, ttl_seconds: int) -> datetime:
    """When a token made now for `ttl_seconds` expires, to the second (what the token holds)."""
    return datetime.fromtimestamp(int(now.timestamp()) + ttl_seconds, tz=UTC)


# --- anonymous viewers -----------------------------------------------------------------------

ANONYMOUS_PREFIX = "anon:"
# What the widget makes: 128 random bits as 32 lowercase hexadecimal digits.
_ANONYMOUS_ID = re.compile(r"^[0-9a-f]{32}\Z")


def anonymous_viewer(anonymous_id: str) -> str:
    """The viewer an anonymous widget id names (`anon:<id>`), or BadViewer for an id the
    widget would not have made."""
    if not _ANONYMOUS_ID.match(anonymous_id):
        raise BadViewer("An anonymous viewer id is 32 lowercase hexadecimal digits.")
    return ANONYMOUS_PREFIX + anonymous_id


# --- events ----------------------------------------------------------------------------------

EVENT_TYPES = ("exposure", "reaction", "unreaction", "critique", "followup")
MAX_EVENTS = 20
_CLIENT_EVENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}\Z")
# What an event from the widget may say: the viewer comes from the token (or the anonymous
# id), the time is the platform's, an exposure's surface is "widget"; a field naming any of
# these is refused rather than ignored, so a page can't believe it chose them.
_ALLOWED_FIELDS = {
    "exposure": {"event_id", "type", "answer"},
    "reaction": {"event_id", "type", "answer", "reaction"},
    "unreaction": {"event_id", "type", "answer", "reaction"},
    "critique": {"event_id", "type", "answer", "text", "quote", "category"},
    "followup": {"event_id", "type", "answer", "outcome", "text"},
}
WIDGET_EVENT_PREFIX = "widget:"
SURFACE = "widget"


@dataclass(frozen=True, slots=True)
class WidgetEvent:
    """An event the widget sent, as the feedback service takes it (`item`), and the id the
    widget gave it (`client_id`)."""

    client_id: str
    item: dict[str, Any]


def widget_event(item: Any, *, viewer: str) -> WidgetEvent | dict[str, list[str]]:
    """One event from the widget, or the errors keyed by field.

    The widget's event ids are stored under a prefix and a digest of the viewer: an id chosen
    in one browser can never collide with another viewer's, nor with the ids of the project's
    own API clients (a page could otherwise claim an id first and make a later event of
    someone else a `duplicate`)."""
    if not isinstance(item, dict):
        return {"non_field_errors": ["Each event must be a JSON object."]}
    errors: dict[str, list[str]] = {}
    client_id = item.get("event_id")
    if not isinstance(client_id, str) or not _CLIENT_EVENT_ID.match(client_id):
        errors["event_id"] = ["Must be 8 to 64 characters: letters, digits, - and _."]
    event_type = item.get("type")
    if event_type not in _ALLOWED_FIELDS:
        errors["type"] = [f"The widget records: {', '.join(EVENT_TYPES)}."]
    else:
        for name in sorted(set(item) - _ALLOWED_FIELDS[event_type]):
            errors[name] = [f"Not accepted from the widget in a {event_type} event."]
    if errors:
        return errors
    digest = hashlib.sha256(viewer.encode()).hexdigest()[:16]
    shaped = {**item, "event_id": f"{WIDGET_EVENT_PREFIX}{digest}:{client_id}"}
    if event_type == "exposure":
        shaped["surface"] = SURFACE
    return WidgetEvent(client_id=str(client_id), item=shaped)


# --- limits and the demo ---------------------------------------------------------------------


class AddressLimited(ServiceError):
    """The client address sent more widget events than allowed in the current minute;
    `wait` is the seconds until the next one starts."""

    def __init__(self, message: str, *, wait: int) -> None:
        super().__init__(message)
        self.wait = wait


def demo_widget_key(slug: str) -> str:
    """The publishable key of a project's widget demo page: derived from the site's secret, so
    the page can show it again while only its hash is stored, like every key's."""
    digest = salted_hmac("feedback.widget.demo-key", slug, algorithm="sha256").digest()
    return "fbk_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")
