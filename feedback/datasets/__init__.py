"""Datasets for training code: definitions (`definitions.py`) and streaming them as JSON Lines.

On PostgreSQL the database itself turns each row into a JSON line: the dataset's queryset is
compiled to SQL and run inside `COPY (SELECT row_to_json(r) FROM (...) r) TO STDOUT`, whose
output goes to the client as it arrives, so memory stays flat whatever the row count. Other
databases (the embedded SQLite default) iterate the same queryset in chunks.

A row's shape is its dataset's `columns`, whichever path writes it; no serializer renders rows.
On PostgreSQL none could without giving up COPY (no Python touches a row), and on the other path
one costs 9.6 µs per row against 2.8 µs for the dict of `_orm_chunks` (a p_love row of 12
columns, JSON encoding included), more than three times the Python work per row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import orjson
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import StreamingHttpResponse

from feedback.core.databases import heavy_reads
from feedback.datasets.definitions import (
    DATASETS,
    FORMS,
    Dataset,
    Filters,
    Rows,
    answer_filters,
    time_filters,
)
from feedback.models import Intervention

__all__ = [
    "DATASETS",
    "FORMS",
    "Dataset",
    "Filters",
    "Rows",
    "jsonl_chunks",
    "jsonl_response",
    "qrels_lines",
]

# CSV with a quote and a delimiter that never occur in JSON text (JSON escapes control
# characters), so COPY passes each JSON line through untouched.
_COPY_OPTIONS = "(FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
_CHUNK_BYTES = 64 * 1024


def jsonl_chunks(rows: Rows, *, caller_writes: bool = False) -> Iterator[bytes]:
    """The rows as JSON Lines, in chunks of bytes (each chained source in turn).

    A COPY holds its connection until the last row: no other statement can run on it in
    between. A caller that writes on the primary between chunks (a job reporting progress on
    its own row) says so with `caller_writes`: rows read from the primary are then copied on a
    connection of their own. Not inside a transaction, though: its uncommitted rows are visible
    to its own connection only, so there the COPY stays on it."""
    for part in rows.parts():
        if connections[part.records.db].vendor == "postgresql":
            yield from _copy_chunks(part, caller_writes=caller_writes)
        else:
            yield from _orm_chunks(part)


def jsonl_response(rows: Rows, filename: str, *, download: bool = False) -> StreamingHttpResponse:
    """The rows streamed as a JSON Lines response named `filename` (code, not input), shown
    inline or, with `download`, saved by a browser. Read from the replica when there is one."""
    stream = jsonl_chunks(rows.using(heavy_reads()))
    response = StreamingHttpResponse(stream, content_type="application/x-ndjson")
    disposition = "attachment" if download else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    return response


def _copy_chunks(rows: Rows, *, caller_writes: bool) -> Iterator[bytes]:
    """COPY from the database the rows are read from, on its connection or one of its own."""
    queryset = rows.queryset()
    connection = connections[queryset.db]
    if caller_writes and queryset.db == DEFAULT_DB_ALIAS and not connection.in_atomic_block:
        # Set up as Django sets up its own (time zone, role), in autocommit.
        own = connections.create_connection(queryset.db)
        try:
            own.ensure_connection()
            yield from _copy_on(own.connection, queryset, rows, connection)
        finally:
            own.close()
    else:
        connection.ensure_connection()
        yield from _copy_on(connection.connection, queryset, rows, connection)


def _copy_on(raw: Any, queryset: Any, rows: Rows, connection: Any) -> Iterator[bytes]:
    """COPY the rows' query, compiled for `connection`, on the psycopg connection `raw`."""
    sql, params = queryset.query.get_compiler(connection=connection).as_sql()
    # `sql` is compiled by the ORM with its values as separate parameters; the column names
    # are the dataset's own (code, not input).
    renamed = ", ".join(f'q."c_{name}" AS "{name}"' for name in rows.columns)
    statement = (
        f"COPY (SELECT row_to_json(r) FROM (SELECT {renamed} FROM ({sql}) q) r) "  # noqa: S608
        f"TO STDOUT {_COPY_OPTIONS}"
    )
    buffer = bytearray()
    with raw.cursor() as cursor, cursor.copy(statement, params) as copy:
        # COPY hands out a row at a time; writing 64 KiB at a time costs far fewer syscalls.
        for block in copy:
            buffer += block
            if len(buffer) >= _CHUNK_BYTES:
                yield bytes(buffer)
                buffer.clear()
    if buffer:
        yield bytes(buffer)


def _orm_chunks(rows: Rows) -> Iterator[bytes]:
    buffer = bytearray()
    names = list(rows.columns)
    for row in rows.queryset().iterator(chunk_size=2000):
        buffer += orjson.dumps({name: row[f"c_{name}"] for name in names})
        buffer += b"\n"
        if len(buffer) >= _CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


RELEVANCE_GRADES = {"relevant": 2, "partial": 1, "irrelevant": 0}


def qrels_lines(project: Any, filters: Filters) -> Iterator[bytes]:
    """TREC qrels, `qid iter docno rel`: one line per answer and document, from the newest
    relevance judgment (relevant 2, partial 1, irrelevant 0). The qid is the answer's
    external_id and the docno the document id, percent-encoded so neither holds a space."""
    judgments = (
        Intervention.objects.filter(
            answer_filters(filters, "answer__"),
            time_filters(filters, "created_at"),
            project=project,
            action="doc_relevance",
        )
        .order_by("answer_id", "-created_at", "-id")
        .values_list("answer_id", "answer__external_id", "after")
    )
    seen: set[tuple[int, str]] = set()
    current_answer = None
    buffer = bytearray()
    for answer_id, external_id, after in judgments.iterator(chunk_size=2000):
        if answer_id != current_answer:
            current_answer, seen = answer_id, set()  # memory bounded by one answer's docs
        doc = str(after.get("doc_id"))
        if (answer_id, doc) in seen:
            continue
        seen.add((answer_id, doc))
        grade = RELEVANCE_GRADES.get(after.get("relevance"), 0)
        buffer += f"{quote(external_id, safe='')} 0 {quote(doc, safe='')} {grade}\n".encode()
        if len(buffer) >= _CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)
