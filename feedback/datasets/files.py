"""Writing a dataset to a file: JSON Lines, Parquet or CSV.

Every format reads the same JSON Lines stream (`jsonl_chunks`), so a snapshot holds exactly the
rows the streaming endpoint serves. JSON Lines is written byte for byte; Parquet gets a schema
from the columns' database types (messages become list<struct<role, content>>); CSV cells that
a spreadsheet would run as a formula get a leading quote.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from django.db import models

from feedback.datasets import Rows, jsonl_chunks

BATCH_ROWS = 10_000
# A cell starting with one of these is a formula to Excel, LibreOffice and Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
# JSON columns that hold chat messages in the conversational form; other JSON columns (a
# stage's input and outputs) have no fixed shape and go to Parquet as JSON text.
MESSAGE_COLUMNS = {"prompt", "completion", "chosen", "rejected", "response", "revision"}

Progress = Callable[[int], None]


def write(rows: Rows, fmt: str, out: BinaryIO, progress: Progress) -> int:
    """Write the rows to `out` in `fmt`; returns how many. `progress(rows_so_far)` is called
    after every batch."""
    writers = {"jsonl": _write_jsonl, "parquet": _write_parquet, "csv": _write_csv}
    return writers[fmt](rows, out, progress)


def _chunks(rows: Rows) -> Iterator[bytes]:
    # The writers report progress (on the primary) between chunks.
    return jsonl_chunks(rows, caller_writes=True)


def _lines(rows: Rows) -> Iterator[bytes]:
    rest = b""
    for chunk in _chunks(rows):
        *complete, rest = (rest + chunk).split(b"\n")
        yield from complete
    if rest:
        yield rest


def _batches(rows: Rows) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for line in _lines(rows):
        batch.append(orjson.loads(line))
        if len(batch) == BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


def _write_jsonl(rows: Rows, out: BinaryIO, progress: Progress) -> int:
    count = 0
    for chunk in _chunks(rows):
        out.write(chunk)
        count += chunk.count(b"\n")
        progress(count)
    return count


def arrow_schema(rows: Rows) -> pa.Schema:
    """The Parquet schema of a dataset, from the database types of its columns."""
    annotations = rows.queryset().query.annotations
    fields = []
    for name in rows.columns:
        field = annotations[f"c_{name}"].output_field
        if isinstance(field, models.JSONField):
            arrow_type = MESSAGES if name in MESSAGE_COLUMNS else pa.string()
        elif isinstance(field, models.BooleanField):
            arrow_type = pa.bool_()
        elif isinstance(field, models.IntegerField | models.AutoField):
            arrow_type = pa.int64()
        elif isinstance(field, models.FloatField):
            arrow_type = pa.float64()  # a simulated row's weight
        elif isinstance(field, models.DateTimeField):
            arrow_type = pa.timestamp("us", tz="UTC")
        else:
            arrow_type = pa.string()
        fields.append(pa.field(name, arrow_type))
    return pa.schema(fields)


def _write_parquet(rows: Rows, out: BinaryIO, progress: Progress) -> int:
    schema = arrow_schema(rows)
    times = [f.name for f in schema if pa.types.is_timestamp(f.type)]
    annotations = rows.queryset().query.annotations
    json_text = [
        name
        for name in rows.columns
        if isinstance(annotations[f"c_{name}"].output_field, models.JSONField)
        and name not in MESSAGE_COLUMNS
    ]
    count = 0
    with pq.ParquetWriter(out, schema) as writer:
        for batch in _batches(rows):
            for row in batch:
                for name in times:
                    if row[name] is not None:
                        row[name] = datetime.fromisoformat(row[name])
                for name in json_text:
                    if row[name] is not None:
                        row[name] = orjson.dumps(row[name]).decode()
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
            progress(count)
    return count


def csv_cell(value: Any) -> str:
    """A value as a CSV cell: JSON for structures, and a leading quote on anything a
    spreadsheet would read as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _write_csv(rows: Rows, out: BinaryIO, progress: Progress) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    names = list(rows.columns)
    writer.writerow(names)
    count = 0
    for batch in _batches(rows):
        writer.writerows([csv_cell(row[name]) for name in names] for row in batch)
        count += len(batch)
        progress(count)
    text.detach()
    return count


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
