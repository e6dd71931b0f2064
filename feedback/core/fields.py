"""A model field for the secrets the platform sends on, encrypted at rest (see crypto.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import models, transaction
from django.db.models import Lookup, Value
from django.db.models.functions import Cast

from feedback.core import crypto


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token and read back as the text, or as an `UnreadableSecret` when
    no configured key opens the token: the row still loads, and only sending the secret fails.

    The empty string is stored as it is: there is nothing to hide, and `bool(value)` keeps
    telling whether there is a secret to send. A token is different on every write, so the
    column can't be searched or compared: `isnull` is the only lookup offered, rather than
    filters that would silently match nothing."""

    description = "Text encrypted at rest"
    # What mypy sees when a model reads the field.
    _pyi_private_get_type: str | crypto.UnreadableSecret  # type: ignore[assignment]

    def get_prep_value(self, value: Any) -> Any:
        if isinstance(value, crypto.UnreadableSecret):
            return value.token  # saving the row keeps the token it had
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        try:
            return crypto.decrypt(value)
        except crypto.DecryptionFailed:
            return crypto.UnreadableSecret(value)

    def get_lookup(self, lookup_name: str) -> type[Lookup[Any]] | None:
        if lookup_name != "isnull":
            return None
        return super().get_lookup(lookup_name)


def encrypted_fields(model: type[models.Model]) -> list[str]:
    return [
        field.name for field in model._meta.concrete_fields if isinstance(field, EncryptedTextField)
    ]


def encrypt_plaintext_rows(model: type[models.Model], field: str) -> None:
    """For data migrations: encrypt the values of `field`, on a historical `model` whose field is
    still plain text. Values that already are tokens are left alone, so it can run twice."""
    rows = model._default_manager.exclude(**{field: ""}).values_list("pk", field)
    for pk, value in rows:
        if not crypto.is_token(value):
            model._default_manager.filter(pk=pk).update(**{field: crypto.encrypt(value)})


def decrypt_token_rows(model: type[models.Model], field: str) -> None:
    """The reverse of `encrypt_plaintext_rows` (for migrating back)."""
    rows = model._default_manager.exclude(**{field: ""}).values_list("pk", field)
    for pk, value in rows:
        if crypto.is_token(value):
            model._default_manager.filter(pk=pk).update(**{field: crypto.decrypt(value)})


@dataclass(frozen=True, slots=True)
class Reencrypted:
    rewritten: int  # rows
    unreadable: list[str]  # "app.Model pk field" of each secret no configured key opens


def secrets_reencrypt() -> Reencrypted:
    """Encrypt every stored secret again under the current key (after a key rotation, so that
    the old keys can be dropped). The tokens are rotated as they are stored, never decrypted
    into Python objects. Each row is read and written under its row lock, so a secret changed
    meanwhile is not overwritten with its old value. Empty values are skipped; a token no
    configured key opens is left as it is and reported."""
    rewritten = 0
    unreadable: list[str] = []
    for model in apps.get_models():
        fields = encrypted_fields(model)
        if not fields:
            continue
        # Read as plain text: through the field itself, a token would come back decrypted.
        stored = {f"{name}_token": Cast(name, models.TextField()) for name in fields}
        manager = model._default_manager
        for pk in list(manager.values_list("pk", flat=True)):
            with transaction.atomic():
                tokens = manager.select_for_update().filter(pk=pk).values(**stored).first() or {}
                changed: dict[str, Value] = {}
                for name in fields:
                    token = tokens.get(f"{name}_token")
                    if not token:
                        continue
                    try:
                        # Written as plain text too, or the field would encrypt the token again.
                        changed[name] = Value(crypto.reencrypt(token), models.TextField())
                    except crypto.DecryptionFailed:
                        unreadable.append(f"{model._meta.label} {pk} {name}")
                if changed:
                    manager.filter(pk=pk).update(**changed)
                    rewritten += 1
    return Reencrypted(rewritten, unreadable)
