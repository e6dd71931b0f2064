"""A GIN index for searching answers: the prompt's messages and the response as an English
tsvector, the same expression the answers list searches with (feedback.selectors.answers).
PostgreSQL only; other databases search by substring and need no index. Built concurrently,
so ingestion goes on while it is built (which can't happen inside a transaction); a build that
failed half way leaves an INVALID index: drop it before running this again."""

from typing import Any

from django.db import migrations

INDEX = "answer_search"
EXPRESSION = (
    "to_tsvector('english'::regconfig, "
    "COALESCE(jsonb_path_query_array(prompt, '$[*].content')::text, '') "
    "|| ' ' || COALESCE(response, ''))"
)


def create(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} "
            f"ON feedback_answer USING gin ({EXPRESSION})"
        )


def drop(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("feedback", "0012_widget")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
