"""Encryption of the secrets the platform keeps in order to send them on (generator API keys,
pipeline connector secrets): Fernet tokens (AES-128-CBC with HMAC-SHA256) from the `cryptography`
package, so a copy of the database, a backup or a log of SQL does not give them away.

Keys (settings, read from the environment):

* `FIELD_ENCRYPTION_KEY`: the key new values are encrypted with (`Fernet.generate_key()`). When
  unset, a key is derived from `SECRET_KEY` (HKDF-SHA256, so the stored tokens reveal nothing
  about SECRET_KEY itself);
* `FIELD_ENCRYPTION_OLD_KEYS`: earlier keys, still accepted for decryption. Keys derived from
  `SECRET_KEY_FALLBACKS`, and from `SECRET_KEY` once an explicit key is set, are accepted too, so
  rotating either secret loses nothing.

`manage.py secrets_reencrypt` rewrites every stored secret with the current key, after which the
old keys can be dropped.

A token no configured key opens (the key changed and the old one was not kept) is read as an
`UnreadableSecret`, not an error: the row still loads and the pages that show it work; only
sending the secret fails, with a message saying to enter it again.
"""

from __future__ import annotations

import base64
import functools
from typing import Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_DERIVATION_LABEL = b"feedback-platform: encryption of stored secrets"
_UNREADABLE = (
    "A stored secret can't be decrypted: FIELD_ENCRYPTION_KEY (or SECRET_KEY) changed without "
    "the old key in FIELD_ENCRYPTION_OLD_KEYS (or SECRET_KEY_FALLBACKS)."
)


class DecryptionFailed(Exception):
    """A stored secret can't be decrypted with any configured key."""


class UnreadableSecret:
    """What an encrypted field holds when no configured key opens its token. Falsy like an unset
    secret, since there is nothing that could be sent; `unreadable` tells the two apart (in a
    template too). Saving the row writes the token back as it was, so putting the old key back
    in FIELD_ENCRYPTION_OLD_KEYS still recovers the secret."""

    __slots__ = ("token",)
    unreadable = True

    def __init__(self, token: str) -> None:
        self.token = token

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "UnreadableSecret()"  # never the token


@functools.lru_cache(maxsize=16)
def derived_key(secret_key: str) -> str:
    """A Fernet key derived from a Django SECRET_KEY."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_DERIVATION_LABEL).derive(
        secret_key.encode()
    )
    return base64.urlsafe_b64encode(raw).decode("ascii")


def configured_keys() -> tuple[str, ...]:
    """The keys in the order MultiFernet uses them: the first encrypts, all decrypt."""
    explicit: str = getattr(settings, "FIELD_ENCRYPTION_KEY", "")
    keys = [explicit or derived_key(settings.SECRET_KEY)]
    keys.extend(getattr(settings, "FIELD_ENCRYPTION_OLD_KEYS", ()))
    if explicit:
        keys.append(derived_key(settings.SECRET_KEY))
    keys.extend(derived_key(old) for old in getattr(settings, "SECRET_KEY_FALLBACKS", ()))
    return tuple(dict.fromkeys(keys))


@functools.lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY and FIELD_ENCRYPTION_OLD_KEYS must be Fernet keys "
            "(32 url-safe base64-encoded bytes, as Fernet.generate_key() makes them)."
        ) from None


def encrypt(plaintext: str) -> str:
    """`plaintext` as a Fernet token under the current key."""
    return _fernet(configured_keys()).encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """The text inside `token`; DecryptionFailed when no configured key opens it."""
    try:
        return _fernet(configured_keys()).decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionFailed(_UNREADABLE) from None


def reencrypt(token: str) -> str:
    """`token` encrypted again under the current key; DecryptionFailed when no key opens it."""
    try:
        return _fernet(configured_keys()).rotate(token.encode()).decode("ascii")
    except InvalidToken:
        raise DecryptionFailed(_UNREADABLE) from None


def is_token(value: str) -> bool:
    """Whether `value` is already a token that a configured key opens."""
    try:
        decrypt(value)
    except DecryptionFailed:
        return False
    return True
