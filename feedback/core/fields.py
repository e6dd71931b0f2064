"""A model field for the secrets the platform sends on, encrypted at rest (see crypto.py)."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db import models, transaction
from django.db.models import Lookup

from feedback.core import crypto


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token and read back as the text.

    The empty string is stored as it is: there is nothing to hide, and `bool(value)` keeps
    telling whether a secret is set. A token is different on every write, so the column can't be
    searched or compared: `isnull` is the only lookup offered, rather than filters that would
    silently match nothing."""

    description = "Text encrypted at rest"

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return crypto.decrypt(value)

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


def secrets_reencrypt() -> int:
    """Rewrite every stored secret with the current key (after a key rotation, so that the old
    keys can be dropped). Each row is read and written under its row lock, so a secret changed
    meanwhile is not overwritten with its old value. Returns the number of rows rewritten."""
    rewritten = 0
    for model in apps.get_models():
        fields = encrypted_fields(model)
        if not fields:
            continue
        for pk in list(model._default_manager.values_list("pk", flat=True)):
            with transaction.atomic():
                values = (
                    model._default_manager.select_for_update().filter(pk=pk).values(*fields).first()
                )
                changed = {name: value for name, value in (values or {}).items() if value}
                if changed:
                    model._default_manager.filter(pk=pk).update(**changed)
                    rewritten += 1
    return rewritten
