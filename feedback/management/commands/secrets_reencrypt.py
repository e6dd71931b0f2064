from typing import Any

from django.core.management.base import BaseCommand

from feedback.core.fields import secrets_reencrypt


class Command(BaseCommand):
    help = (
        "Encrypt every stored secret (generator API keys, connector secrets) again with the "
        "current FIELD_ENCRYPTION_KEY, so the keys in FIELD_ENCRYPTION_OLD_KEYS can be dropped."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        done = secrets_reencrypt()
        self.stdout.write(f"Encrypted {done.rewritten} row(s) with the current key.")
        if done.unreadable:
            self.stderr.write(
                f"{len(done.unreadable)} secret(s) can't be decrypted with any configured key "
                "and were left as they are: enter them again (or put their old key back in "
                "FIELD_ENCRYPTION_OLD_KEYS and run this again).\n" + "\n".join(done.unreadable)
            )
