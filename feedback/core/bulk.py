"""Set-based writes: inserts that let a unique constraint decide what is new, and the locks
that make concurrent writers of the same things take turns."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from django.db import connection

# SQLite allows 32,766 bound parameters per statement; PostgreSQL 65,535.
_MAX_PARAMETERS = 30_000


def insert_ignoring_conflicts(
    table: str,
    columns: str,
    rows: Sequence[Sequence[Any]],
    *,
    conflict: str,
    returning: str,
    conflict_where: str = "",
    array_types: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """`INSERT … VALUES … ON CONFLICT (conflict) DO NOTHING RETURNING returning`, in as few
    statements as the parameter limit allows; returns the rows that were inserted.

    Rows skipped for a conflict are not returned: the caller reports them as duplicates. Works
    on PostgreSQL and SQLite (3.35+). `table`, `columns` and the clauses are code, never input.
    With `array_types` (the PostgreSQL type of each column) PostgreSQL gets one statement
    whatever the number of rows, a column per array (`unnest`): no statement to split, and
    one to plan, where VALUES has a parameter per value.
    """
    if not rows:
        return []
    where = f" WHERE {conflict_where}" if conflict_where else ""
    if array_types and connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{column_type}[]" for column_type in array_types)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays}) "  # noqa: S608
                f"ON CONFLICT ({conflict}){where} DO NOTHING RETURNING {returning}",
                [list(column) for column in zip(*rows, strict=True)],
            )
            return [tuple(row) for row in cursor.fetchall()]
    width = len(rows[0])
    per_statement = max(1, _MAX_PARAMETERS // width)
    placeholder = "(" + ", ".join(["%s"] * width) + ")"
    inserted: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES "  # noqa: S608 (code, not input)
                + ", ".join([placeholder] * len(chunk))
                + f" ON CONFLICT ({conflict}){where} DO NOTHING RETURNING {returning}",
                [_adapt(value) for row in chunk for value in row],
            )
            inserted.extend(tuple(row) for row in cursor.fetchall())
    return inserted


def _adapt(value: Any) -> Any:
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


Statement = tuple[str, list[Any]]


def lock_until_commit(names: Iterable[str]) -> None:
    """Hold a lock on each name until the transaction ends, all taken in one statement and in
    one order (so two transactions sharing names never wait on each other in a cycle). Names
    are hashed to 64-bit advisory lock keys: two names sharing a key only wait for each other.
    PostgreSQL only: SQLite runs one writing transaction at a time (the embedded default begins
    them IMMEDIATE), which serialises them already."""
    statement = lock_statement(names)
    if statement is not None:
        run_in_order([statement])


def lock_statement(names: Iterable[str]) -> Statement | None:
    """The statement `lock_until_commit` runs, to send along with others (`run_in_order`);
    None when there is nothing to lock or the database needs no lock."""
    if connection.vendor != "postgresql":
        return None
    keys = sorted({_lock_key(name) for name in names})
    if not keys:
        return None
    return "SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS t(k) ORDER BY k", [keys]


def run_in_order(statements: Sequence[Statement]) -> list[list[tuple[Any, ...]]]:
    """Run the statements one after the other; the rows of each.

    On PostgreSQL they go in one message (one round trip instead of one per statement) when
    the cursor binds parameters on the client, as Django's does unless the database's
    `server_side_binding` option is on. The server still runs them one at a time, each with
    its own snapshot, so a statement after a lock sees everything committed before the lock
    was granted, as it would have in a round trip of its own."""
    with connection.cursor() as cursor:
        if len(statements) > 1 and _sends_several(cursor):
            cursor.execute(
                "; ".join(sql for sql, _ in statements),
                [value for _, params in statements for value in params],
            )
            rows = [cursor.fetchall()]
            while cursor.nextset():
                rows.append(cursor.fetchall())
            return rows
        rows = []
        for sql, params in statements:
            cursor.execute(sql, params)
            rows.append(cursor.fetchall())
        return rows


def _sends_several(cursor: Any) -> bool:
    return connection.vendor == "postgresql" and isinstance(cursor.cursor, psycopg.ClientCursor)


def _lock_key(name: str) -> int:
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
