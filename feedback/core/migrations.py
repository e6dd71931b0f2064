"""Migration operations shared by the apps' migrations.

`AddIndexConcurrentlyOnPostgres` is how an index is added to a table that is large and written
all the time (exposures, feedback events, stages, OTLP spans): a plain CREATE INDEX holds a
lock that blocks every INSERT, UPDATE and DELETE on the table until the index is built, which
on those tables means minutes of failed or stalled ingestion and feedback.
tests/feedback/core/test_migrations.py holds every later migration to it.
"""

from __future__ import annotations

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations import AddIndex
from django.db.migrations.state import ProjectState


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL, so writes to the table go on while the index is
    built; a plain CREATE INDEX on other databases (SQLite, the embedded default, has no
    concurrent build, and no concurrent writers worth the name).

    PostgreSQL can't build an index concurrently inside a transaction: the migration using this
    operation sets `atomic = False`, or PostgreSQL refuses to run it. If the build fails half
    way, PostgreSQL leaves an INVALID index behind: drop it before running the migration again.
    """

    @staticmethod
    def _operation_for(schema_editor: BaseDatabaseSchemaEditor) -> type[AddIndex]:
        if schema_editor.connection.vendor == "postgresql":
            return AddIndexConcurrently
        return AddIndex

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        operation = self._operation_for(schema_editor)
        operation.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        operation = self._operation_for(schema_editor)
        operation.database_backwards(self, app_label, schema_editor, from_state, to_state)
