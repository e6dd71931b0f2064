"""A GIN index for searching answers: the prompt's messages and the response as an English
tsvector, the same expression the answers list searches with (feedback.selectors.answers).
PostgreSQL only; other databases search by substring and need no index."""

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
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON feedback_answer USING gin ({EXPRESSION})"
        )


def drop(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("feedback", "0010_trace_span_received_index")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
