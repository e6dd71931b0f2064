from typing import Any

from django.core.management.base import BaseCommand

from feedback.core.fields import secrets_reencrypt


class Command(BaseCommand):
    help = (
        "Encrypt every stored secret (generator API keys, connector secrets) again with the "
        "current FIELD_ENCRYPTION_KEY, so the keys in FIELD_ENCRYPTION_OLD_KEYS can be dropped."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rewritten = secrets_reencrypt()
        self.stdout.write(f"Encrypted {rewritten} row(s) with the current key.")
