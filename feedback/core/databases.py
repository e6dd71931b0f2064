"""Which database a query reads from: the primary, or the read replica for the long scans.

With `DATABASE_REPLICA_URL` set, settings add a read-only alias, "replica". Only the heavy reads
go there, and they ask for it by name (`.using(heavy_reads())`): dataset streams, the reads of an
export snapshot, and the rows a training run learns from. A replica trails the primary by a
moment, which these scans can afford; everything else (the API, pages, a job's own row, claims,
fences, progress) reads and writes the primary, as it would without a replica. Nothing is sent
to the replica by guessing from the model.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

REPLICA = "replica"


def heavy_reads() -> str:
    """The alias for long read-only scans: the replica when one is configured, else the
    primary."""
    return REPLICA if REPLICA in settings.DATABASES else DEFAULT_DB_ALIAS


class PrimaryOnlyMigrations:
    """Database router: the schema is migrated on the primary only (the replica copies it).
    Reads and writes go where the code says, the primary unless `.using()` names another."""

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        # Both aliases hold the same rows: a row read from the replica may point at one read
        # from the primary.
        return True
