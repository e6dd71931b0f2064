"""Indexes on the large, busy tables are built without blocking writes.

A plain CREATE INDEX blocks every write to its table until the index is built: on exposures,
feedback events, stages and OTLP spans that stops ingestion and feedback for as long as the
build takes. So an index added to one of them after the table exists is built CONCURRENTLY on
PostgreSQL, and still plainly on SQLite (the embedded default), which has no concurrent build.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations import AddIndex, CreateModel
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.utils import ConnectionHandler
from pytest_django import DjangoDbBlocker

from feedback.core.migrations import AddIndexConcurrentlyOnPostgres
from feedback.models import Exposure, FeedbackEvent, Stage, TraceSpan

LARGE_TABLES = {model._meta.db_table for model in (Exposure, FeedbackEvent, Stage, TraceSpan)}
INDEX_MIGRATION = ("feedback", "0006_exposure_time_index")


def _migrations() -> list[tuple[tuple[str, str], Migration]]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return sorted(loader.disk_migrations.items())


def _index_additions_on_existing_large_tables() -> Iterator[tuple[tuple[str, str], AddIndex]]:
    """Every AddIndex on a large table in a migration that doesn't create that table (an index
    made with its table, as in the initial migration, locks an empty table: nothing to avoid)."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    for key, migration in sorted(loader.disk_migrations.items()):
        app_label = key[0]
        created = {op.name_lower for op in migration.operations if isinstance(op, CreateModel)}
        additions = [
            op
            for op in migration.operations
            if isinstance(op, AddIndex) and op.model_name_lower not in created
        ]
        if not additions:
            continue
        state = loader.project_state(key, at_end=False)
        for op in additions:
            model = state.models[app_label, op.model_name_lower]
            table = model.options.get("db_table") or f"{app_label}_{op.model_name_lower}"
            if table in LARGE_TABLES:
                yield key, op


def test_later_indexes_on_large_tables_are_built_concurrently() -> None:
    found = list(_index_additions_on_existing_large_tables())
    plain = [
        f"{app}.{name}: {op.index.name}"
        for (app, name), op in found
        if not isinstance(op, AddIndexConcurrentlyOnPostgres)
    ]

    assert INDEX_MIGRATION in {key for key, _ in found}  # the rule has something to check
    assert plain == [], (
        "use feedback.core.migrations.AddIndexConcurrentlyOnPostgres (and atomic = False) "
        f"for these indexes on large tables: {plain}"
    )


def test_migrations_building_indexes_concurrently_are_not_atomic() -> None:
    concurrent = {
        key: migration
        for key, migration in _migrations()
        if any(isinstance(op, AddIndexConcurrentlyOnPostgres) for op in migration.operations)
    }

    assert INDEX_MIGRATION in concurrent
    assert [key for key, migration in concurrent.items() if migration.atomic] == []


def _sql(on: BaseDatabaseWrapper, *, backwards: bool = False) -> str:
    """The SQL the index migration runs on `on`, as `manage.py sqlmigrate` prints it."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    migration = loader.get_migration(*INDEX_MIGRATION)
    before = loader.project_state(INDEX_MIGRATION, at_end=False)
    with on.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
        if backwards:
            migration.unapply(loader.project_state(INDEX_MIGRATION), editor, collect_sql=True)
        else:
            migration.apply(before, editor, collect_sql=True)
    return "\n".join(editor.collected_sql)


@pytest.fixture
def sqlite(django_db_blocker: DjangoDbBlocker) -> Iterator[BaseDatabaseWrapper]:
    handler = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    )
    wrapper = handler["default"]
    # An in-memory SQLite database of its own, beside the tests' PostgreSQL one.
    with django_db_blocker.unblock():
        yield wrapper
        wrapper.close()


# Not in the test's transaction: PostgreSQL builds an index concurrently only outside one.
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_the_index_is_built_and_dropped_concurrently() -> None:
    assert connection.vendor == "postgresql"

    assert 'CREATE INDEX CONCURRENTLY "exposure_project_time"' in _sql(connection)
    assert 'DROP INDEX CONCURRENTLY IF EXISTS "exposure_project_time"' in _sql(
        connection, backwards=True
    )


def test_on_sqlite_the_index_is_built_plainly(sqlite: BaseDatabaseWrapper) -> None:
    forwards, backwards = _sql(sqlite), _sql(sqlite, backwards=True)

    assert 'CREATE INDEX "exposure_project_time"' in forwards
    assert "CONCURRENTLY" not in forwards
    assert 'DROP INDEX "exposure_project_time"' in backwards
