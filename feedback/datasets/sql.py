"""Database expressions the dataset definitions need, for PostgreSQL and for SQLite.

Each is one ORM expression, so a dataset is written once as a queryset; PostgreSQL runs it
inside COPY, SQLite (the embedded default) through the ORM. SQLite gets the two functions it
lacks (sha256, prompt text) from Python, registered on every new connection.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from django.db.backends.signals import connection_created
from django.db.models import CharField, Func, JSONField, TextField
from django.dispatch import receiver


def prompt_as_text(messages: list[dict[str, Any]]) -> str:
    """A conversation as one string: a lone user message is its content; anything longer is
    `role: content` blocks separated by blank lines."""
    if len(messages) == 1 and messages[0].get("role") == "user":
        return str(messages[0].get("content", ""))
    return "\n\n".join(f"{m.get('role')}: {m.get('content')}" for m in messages)


def hashed_ref(salt: str, ref: str) -> str:
    """How user references leave the platform: SHA-256 of the project's salt and the ref."""
    return hashlib.sha256(f"{salt}:{ref}".encode()).hexdigest()


class HashedRef(Func):
    """hashed_ref(salt, ref) in SQL."""

    output_field = CharField()
    arity = 2

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="encode(sha256(convert_to(%(expressions)s, 'UTF8')), 'hex')",
            arg_joiner=" || ':' || ",
            **extra,
        )

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, function="feedback_hashed_ref", **extra)


class PromptText(Func):
    """prompt_as_text(prompt) in SQL."""

    output_field = TextField()
    arity = 1

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = (
            "(SELECT COALESCE(CASE WHEN count(*) = 1 AND min(m->>'role') = 'user' "
            "THEN min(m->>'content') "
            "ELSE string_agg((m->>'role') || ': ' || (m->>'content'), E'\\n\\n' ORDER BY n) "
            "END, '') "
            "FROM jsonb_array_elements(%(expressions)s) WITH ORDINALITY AS t(m, n))"
        )
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, function="feedback_prompt_text", **extra)


class AssistantMessage(Func):
    """[{"role": "assistant", "content": text}]: a completion in the conversational form."""

    output_field = JSONField()
    arity = 1
    role = "assistant"

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = (
            f"jsonb_build_array(jsonb_build_object('role', '{self.role}', "
            "'content', %(expressions)s))"
        )
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = f"json_array(json_object('role', '{self.role}', 'content', %(expressions)s))"
        return self.as_sql(compiler, connection, template=template, **extra)


class UserMessage(AssistantMessage):
    """[{"role": "user", "content": text}]: a one-turn prompt (stored as text) in the
    conversational form."""

    role = "user"


@receiver(connection_created)
def _register_sqlite_functions(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor != "sqlite":
        return
    connection.connection.create_function("feedback_hashed_ref", 2, hashed_ref, deterministic=True)
    connection.connection.create_function(
        "feedback_prompt_text",
        1,
        lambda prompt: prompt_as_text(orjson.loads(prompt)) if prompt else None,
        deterministic=True,
    )
