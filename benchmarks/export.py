"""Dataset export throughput: the streaming JSONL endpoint against psql running the same COPY.

What is compared
    * api:  `GET /api/v1/datasets/p_love.jsonl?form=text` with a Bearer key of scope `export`,
      served by the real web process (gunicorn with `platform/gunicorn.conf.py` and the
      production settings, started by `benchmarks/common.py` as for every benchmark, but with
      one worker: every request goes to the same warmed-up process, so its memory high-water
      mark is the export's). The client speaks HTTP/1.1 on a raw socket, decodes the chunked
      body as it arrives and keeps none of it: it counts the lines and hashes the bytes.
    * psql: `psql -c "COPY (SELECT row_to_json(r) FROM (<the same SELECT>) r) TO STDOUT ..."`,
      its stdout read through a pipe by the same counting and hashing code. The statement is
      not written by hand: a `manage.py shell -c` subprocess builds the dataset's rows exactly
      as the endpoint does (`DATASETS["p_love"].rows(project, Filters(...), "text", now)`),
      compiles the queryset, wraps it in the endpoint's outer rename and COPY options (as
      `feedback.datasets._copy_chunks` does) and interpolates the parameters with psycopg's
      `mogrify`. This is the floor: PostgreSQL writing the same JSON lines, no Python, no HTTP.

Both are run for every row (about `--exposures`, default 200,000) and, with `?until=` (psql:
the same filter compiled the same way), for the oldest `--subset` (default 50,000). Every run
must produce exactly the expected number of lines, and the api's bytes must hash the same as
psql's (the same rows, byte for byte). Each rate is rows per second, the best of `--repeat`
rounds (default 2; a round is api then psql, for the subset then for all rows).

Memory: before each api request the worker's peak-RSS counter is reset (`5` written to
/proc/<pid>/clear_refs), and VmHWM is read after it, so the printed peak is that request's.
"flat" means the peak for all rows is within 15% of the peak for the subset. A CPU line under
each best run shows where the time went: CPU seconds of the gunicorn worker, of the PostgreSQL
backends serving the bench database (sampled every 50 ms from /proc, as psql's backend ends with
it), of psql and of this client's reading thread.

The last line is `ratio=<api rows/s / psql rows/s>` for all rows; the target is >= 0.9, with
memory flat.

Setup, done by the script: the database in DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/feedback_bench) is created when missing and migrated; the
project `bench-export` and an export API key are made with the management commands; the
project's earlier rows are deleted and it is filled with raw SQL: `--answers` answers, one
exposure (with its feedback event, source api) per row, spread over the 28 days before two
days ago (so all are older than the project's 24 h love window and labelled), and a Love
reaction (with its event) a few minutes after every tenth exposure. As a superuser the fill
skips the foreign-key triggers (checking them costs ~30 s) and checks the references itself
afterwards. PostgreSQL, Redis (CELERY_BROKER_URL, default redis://127.0.0.1:6379/14, which
/healthz checks) and `psql` must be there.

Run from the project root:

    .venv/bin/python benchmarks/export.py [--exposures 200000] [--subset 50000] [--answers 2000]
        [--repeat 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
from common import (
    BackendCpu,
    bench_setup,
    cpu_seconds,
    gunicorn,
    gunicorn_workers,
    manage_json,
    refill,
    status_kib,
)

PROJECT_SLUG = "bench-export"
DATASET = "p_love"
FORM = "text"
LOVE_EVERY = 10  # every tenth exposure is followed by a Love reaction
WARMUP_ROWS = 1_000
SPREAD = timedelta(days=28)
NEWEST_AGE = timedelta(days=2)
RATIO_TARGET = 0.9
FLAT_TOLERANCE = 0.15
SOCKET_TIMEOUT_SECONDS = 120.0
READ_BYTES = 1 << 20
MIB = 1024 * 1024

# Run by `manage.py shell -c`: the COPY statement the endpoint runs, with its parameters
# interpolated, for each `until` in EXPORT_BENCH_UNTILS (null: no filter). Printed as JSON.
COMPILE_STATEMENTS = """
import json, os
from datetime import datetime
from django.db import connection
from django.utils import timezone
from feedback import datasets
from feedback.models import Project

project = Project.objects.get(slug=os.environ["EXPORT_BENCH_PROJECT"])
dataset = datasets.DATASETS[os.environ["EXPORT_BENCH_DATASET"]]
statements = []
for until in json.loads(os.environ["EXPORT_BENCH_UNTILS"]):
    filters = datasets.Filters(until=datetime.fromisoformat(until) if until else None)
    rows = dataset.rows(project, filters, os.environ["EXPORT_BENCH_FORM"], timezone.now())
    sql, params = rows.queryset().query.sql_with_params()
    # As feedback.datasets._copy_chunks wraps it.
    renamed = ", ".join(f'q."c_{name}" AS "{name}"' for name in rows.columns)
    statement = (
        f"COPY (SELECT row_to_json(r) FROM (SELECT {renamed} FROM ({sql}) q) r) "
        f"TO STDOUT {datasets._COPY_OPTIONS}"
    )
    with connection.cursor() as cursor:
        statements.append(cursor.cursor.mogrify(statement, params))
print(json.dumps(statements))
"""


# --- setup -------------------------------------------------------------------------------------


# %% is a literal %: psycopg reads %s and %(name)s as parameters.
FILL_STATEMENTS = (
    # Answers: a one-message prompt, a ~300-character response with a quote and a newline (so
    # the JSON has escapes to write), two model versions.
    """
    INSERT INTO feedback_answer (project_id, external_id, conversation, user_ref, prompt,
        prompt_hash, response, model, model_version, metadata, created_at)
    SELECT %(project)s, 'export-' || i, '', 'user-' || i %% 500, p.prompt,
        encode(sha256(convert_to(p.prompt::text, 'UTF8')), 'hex'),
        left(repeat(format(E'Answer %%s: the retrieval stage ranked "%%s" first, and the '
                           'model cited it twice.\n', i, md5(i::text)), 4), 300),
        'bench-model', (ARRAY['2025-01', '2025-06'])[i %% 2 + 1], '{}',
        %(newest)s - %(spread)s - interval '1 day'
    FROM generate_series(0, %(answers)s - 1) AS i,
    LATERAL (
        SELECT jsonb_build_array(jsonb_build_object('role', 'user', 'content',
            format('Question %%s: which documents support claim %%s?', i, md5(i::text)))) AS prompt
    ) AS p
    ORDER BY i
    """,
    # Exposure events: exposure i shows answer i mod answers to viewer v<i / 10> (so no viewer
    # sees an answer twice) at a time spread over SPREAD in a shuffled order (7919 is coprime
    # to the row count unless it divides it).
    """
    INSERT INTO feedback_feedbackevent (project_id, event_id, type, answer_id, viewer, source,
        occurred_at, received_at, data)
    SELECT %(project)s, 'exposure-' || i, 'exposure', a.id, 'v' || i / 10, 'api', t.at, t.at,
        '{"surface": "answer"}'
    FROM generate_series(0, %(exposures)s - 1) AS i
    JOIN (
        SELECT id, row_number() OVER (ORDER BY id) - 1 AS n
        FROM feedback_answer WHERE project_id = %(project)s
    ) AS a ON a.n = i %% %(answers)s
    CROSS JOIN LATERAL (
        SELECT %(newest)s - (i::bigint * 7919 %% %(exposures)s) * %(step)s AS at
    ) AS t
    ORDER BY i
    """,
    """
    INSERT INTO feedback_exposure (project_id, answer_id, viewer, surface, source, event_id,
        shown_at, window_start)
    SELECT project_id, answer_id, viewer, 'answer', source, id, occurred_at, occurred_at
    FROM feedback_feedbackevent
    WHERE project_id = %(project)s AND type = 'exposure'
    ORDER BY id
    """,
    # Love events 1 to 61 minutes after every LOVE_EVERY-th exposure, well inside the window.
    """
    INSERT INTO feedback_feedbackevent (project_id, event_id, type, answer_id, viewer, source,
        occurred_at, received_at, data)
    SELECT project_id, 'love-' || n, 'reaction', answer_id, viewer, source, t.at, t.at,
        '{"reaction": "love"}'
    FROM feedback_feedbackevent,
    LATERAL (SELECT split_part(event_id, '-', 2)::int AS n) AS e,
    LATERAL (SELECT occurred_at + (n %% 7 * 10 + 1) * interval '1 minute' AS at) AS t
    WHERE project_id = %(project)s AND type = 'exposure' AND n %% %(love_every)s = 3
    ORDER BY id
    """,
    """
    INSERT INTO feedback_reaction (project_id, answer_id, viewer, kind, source, event_id,
        created_at)
    SELECT project_id, answer_id, viewer, 'love', source, id, occurred_at
    FROM feedback_feedbackevent
    WHERE project_id = %(project)s AND type = 'reaction'
    ORDER BY id
    """,
)


def fill(database_url: str, project_id: int, answers: int, exposures: int) -> float:
    """Replace the bench project's rows with fresh ones in one transaction; seconds taken."""
    start = time.perf_counter()
    newest = datetime.now().astimezone() - NEWEST_AGE
    params = {
        "project": project_id,
        "answers": answers,
        "exposures": exposures,
        "newest": newest,
        "spread": SPREAD,
        "step": SPREAD / exposures,
        "love_every": LOVE_EVERY,
    }
    with refill(database_url, project_id, DANGLING_REFERENCES) as conn:
        for statement in FILL_STATEMENTS:
            conn.execute(statement, params)
    return time.perf_counter() - start


# Exposures and reactions whose event is missing, events whose answer is missing (the other
# references are copied from the events).
DANGLING_REFERENCES = """
SELECT
    (SELECT count(*) FROM feedback_exposure x
     LEFT JOIN feedback_feedbackevent e ON e.id = x.event_id AND e.answer_id = x.answer_id
     WHERE x.project_id = %(project)s AND e.id IS NULL),
    (SELECT count(*) FROM feedback_reaction r
     LEFT JOIN feedback_feedbackevent e ON e.id = r.event_id AND e.answer_id = r.answer_id
     WHERE r.project_id = %(project)s AND e.id IS NULL),
    (SELECT count(*) FROM feedback_feedbackevent e
     LEFT JOIN feedback_answer a ON a.id = e.answer_id AND a.project_id = e.project_id
     WHERE e.project_id = %(project)s AND a.id IS NULL)
"""


@dataclass
class Counts:
    labelled: int  # the rows of the whole export
    loves: int  # how many of them have label true
    subset_until: datetime  # shown_at < this: the oldest `subset` rows
    warmup_until: datetime


def counts(database_url: str, project_id: int, subset: int) -> Counts:
    """What the exports must produce, counted in SQL independent of the dataset's."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE e.shown_at <= now() - p.love_window), "
            "count(*) FILTER (WHERE EXISTS (SELECT 1 FROM feedback_reaction r "
            "  WHERE r.answer_id = e.answer_id AND r.viewer = e.viewer AND r.kind = 'love' "
            "  AND r.removed_at IS NULL "
            "  AND r.created_at BETWEEN e.shown_at AND e.shown_at + p.love_window)) "
            "FROM feedback_exposure e JOIN feedback_project p ON p.id = e.project_id "
            "WHERE e.project_id = %s",
            [project_id],
        ).fetchone()
        assert row is not None

        def nth_oldest(n: int) -> datetime:
            found = conn.execute(
                "SELECT shown_at FROM feedback_exposure WHERE project_id = %s "
                "ORDER BY shown_at LIMIT 1 OFFSET %s",
                [project_id, n],
            ).fetchone()
            assert found is not None
            shown_at: datetime = found[0]
            return shown_at

        return Counts(row[0], row[1], nth_oldest(subset), nth_oldest(WARMUP_ROWS))


def compile_statements(env: dict[str, str], untils: list[datetime | None]) -> list[str]:
    """The endpoint's COPY statement for each `until`, built by the project's own code."""
    statement_env = {
        **env,
        "EXPORT_BENCH_PROJECT": PROJECT_SLUG,
        "EXPORT_BENCH_DATASET": DATASET,
        "EXPORT_BENCH_FORM": FORM,
        "EXPORT_BENCH_UNTILS": json.dumps([u.isoformat() if u else None for u in untils]),
    }
    statements: list[str] = manage_json(statement_env, COMPILE_STATEMENTS)
    return statements


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Sink:
    """Counts and hashes what it is fed, keeping none of it."""

    lines: int = 0
    size: int = 0
    digest: Any = field(default_factory=hashlib.blake2b)

    def feed(self, data: bytes | bytearray) -> None:
        self.lines += data.count(b"\n")
        self.size += len(data)
        self.digest.update(data)


@dataclass
class Run:
    seconds: float
    lines: int
    size: int
    digest: str
    cpu: dict[str, float]
    rss_before_kib: int = 0
    peak_kib: int = 0


def receive_more(sock: socket.socket, buffer: bytearray) -> None:
    data = sock.recv(READ_BYTES)
    if not data:
        raise EOFError("the server closed the connection before the end of the body")
    buffer += data


def read_chunked(sock: socket.socket, buffer: bytearray, sink: Sink) -> None:
    """Decode a chunked body as it arrives, feeding the sink chunk by chunk."""
    pos = 0
    while True:
        end = buffer.find(b"\r\n", pos)
        if end < 0:
            del buffer[:pos]
            pos = 0
            receive_more(sock, buffer)
            continue
        size = int(buffer[pos:end].split(b";", 1)[0], 16)
        if size == 0:
            return  # the trailers, if any, are ignored: the server closes the connection
        start, stop = end + 2, end + 2 + size
        while len(buffer) < stop + 2:
            del buffer[:pos]
            start, stop, pos = start - pos, stop - pos, 0
            receive_more(sock, buffer)
        sink.feed(buffer[start:stop])
        pos = stop + 2


def get_export(port: int, api_key: str, query: dict[str, str], sink: Sink) -> None:
    """GET the dataset as JSON Lines over one HTTP/1.1 connection into the sink."""
    path = f"/api/v1/datasets/{DATASET}.jsonl?{urlencode(query)}"
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {api_key}\r\nAccept: */*\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_SECONDS) as sock:
        sock.sendall(request)
        buffer = bytearray()
        while (head_end := buffer.find(b"\r\n\r\n")) < 0:
            receive_more(sock, buffer)
        head = bytes(buffer[:head_end]).decode("latin-1").split("\r\n")
        del buffer[: head_end + 4]
        status = int(head[0].split()[1])
        headers = {
            name.strip().lower(): value.strip()
            for name, value in (line.split(":", 1) for line in head[1:])
        }
        if status != 200:
            while data := sock.recv(READ_BYTES):
                buffer += data
            sys.exit(f"GET {path} answered {status}: {bytes(buffer[:500])!r}")
        if headers.get("transfer-encoding", "").lower() == "chunked":
            read_chunked(sock, buffer, sink)
        else:
            length = int(headers.get("content-length", -1))
            sink.feed(buffer)
            while sink.size != length and (data := sock.recv(READ_BYTES)):
                sink.feed(data)


def api_run(port: int, api_key: str, database: str, until: datetime | None, expected: int) -> Run:
    """One export over HTTP, with the worker's peak RSS and the CPU everyone used for it."""
    workers = gunicorn_workers()
    for pid in workers:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    rss_before = max(status_kib(pid, "VmRSS") for pid in workers)
    cpu_before = {pid: cpu_seconds(pid) for pid in workers}
    query = {"form": FORM} | ({"until": until.isoformat()} if until else {})

    with BackendCpu(database) as backends:
        client_before = time.thread_time()
        start = time.perf_counter()
        sink = Sink()
        try:
            get_export(port, api_key, query, sink)
        except (OSError, EOFError) as error:
            # A sync worker busy for longer than gunicorn's timeout is killed mid-stream.
            sys.exit(f"api: {error} after {sink.lines} lines, {time.perf_counter() - start:.1f} s")
        seconds = time.perf_counter() - start
        client = time.thread_time() - client_before

    cpu = {
        "gunicorn": sum(cpu_seconds(pid) - before for pid, before in cpu_before.items()),
        "postgres": backends.seconds(),
        "client": client,
    }
    peak = max(status_kib(pid, "VmHWM") for pid in workers)
    if gunicorn_workers() != workers:
        sys.exit("a gunicorn worker was replaced during the run: its peak RSS is lost")
    run = Run(seconds, sink.lines, sink.size, sink.digest.hexdigest(), cpu, rss_before, peak)
    check_lines("api", run, expected)
    return run


def psql_run(database_url: str, database: str, statement: str, expected: int) -> Run:
    """The same COPY through psql, its stdout counted by the same code as the api's body."""
    sink = Sink()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)

    with BackendCpu(database) as backends:
        client_before = time.thread_time()
        start = time.perf_counter()
        psql = subprocess.Popen(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database_url, "-c", statement],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
        assert psql.stdout is not None
        assert psql.stderr is not None
        while data := psql.stdout.read(READ_BYTES):
            sink.feed(data)
        errors = psql.stderr.read()
        returncode = psql.wait()
        seconds = time.perf_counter() - start
        client = time.thread_time() - client_before

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {
        "psql": children.ru_utime
        + children.ru_stime
        - children_before.ru_utime
        - children_before.ru_stime,
        "postgres": backends.seconds(),
        "client": client,
    }
    if returncode != 0:
        sys.exit(f"psql exited with {returncode}: {errors.decode(errors='replace')[-2000:]}")
    run = Run(seconds, sink.lines, sink.size, sink.digest.hexdigest(), cpu)
    check_lines("psql", run, expected)
    return run


def check_lines(name: str, run: Run, expected: int) -> None:
    if run.lines != expected:
        sys.exit(f"{name}: {run.lines} lines; expected {expected}")


# --- main ------------------------------------------------------------------------------------


@dataclass
class Series:
    """The runs of one way (api or psql) at one row count."""

    name: str
    rows: int
    runs: list[Run] = field(default_factory=list)

    def best(self) -> Run:
        return min(self.runs, key=lambda run: run.seconds)

    def rate(self) -> float:
        return self.rows / self.best().seconds

    def peak_mib(self) -> float:
        return max(run.peak_kib for run in self.runs) / 1024

    def rss_before_mib(self) -> float:
        return max(run.rss_before_kib for run in self.runs) / 1024

    def describe(self) -> str:
        best = self.best()
        return (
            f"{self.name} {self.rows:>7,} rows: {self.rate():>9,.0f} rows/s "
            f"(best of {len(self.runs)}: {best.seconds:.3f} s, {best.size / MIB:,.1f} MiB, "
            f"{best.size / best.seconds / MIB:,.1f} MiB/s)"
        )


def cpu_text(run: Run) -> str:
    parts = ", ".join(f"{name} {seconds:.2f}" for name, seconds in run.cpu.items())
    return f"cpu s: {parts} (wall {run.seconds:.2f})"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--exposures", type=int, default=200_000, help="labelled rows in all")
    parser.add_argument("--subset", type=int, default=50_000, help="rows of the ?until= export")
    parser.add_argument("--answers", type=int, default=2_000, help="answers the rows point to")
    parser.add_argument("--repeat", type=int, default=2, help="rounds; the best run counts")
    args = parser.parse_args()
    if not WARMUP_ROWS < args.subset < args.exposures:
        parser.error(f"need {WARMUP_ROWS} < --subset < --exposures")
    if args.answers < 1 or args.repeat < 1:
        parser.error("--answers and --repeat must be >= 1")
    return args


def main() -> None:
    args = parse_args()
    # One worker: every request, the warm-up included, goes to the process whose memory is read.
    bench = bench_setup(PROJECT_SLUG, scopes="export", extra_env={"WEB_CONCURRENCY": "1"})
    database_url, database, env = bench.database_url, bench.database, bench.env
    project_id, api_key = bench.project_id, bench.api_key

    fill_seconds = fill(database_url, project_id, args.answers, args.exposures)
    expected = counts(database_url, project_id, args.subset)
    if expected.labelled != args.exposures:
        sys.exit(f"{expected.labelled} of {args.exposures} exposures are old enough to label")
    subset_statement, full_statement = compile_statements(env, [expected.subset_until, None])

    sizes = ((args.subset, expected.subset_until), (args.exposures, None))
    api = {rows: Series("api ", rows) for rows, _ in sizes}
    raw = {rows: Series("psql", rows) for rows, _ in sizes}
    statements = {args.subset: subset_statement, args.exposures: full_statement}
    with gunicorn(env) as (port, workers):
        print(
            f"dataset={DATASET} form={FORM} rows={args.exposures} subset={args.subset} "
            f"answers={args.answers} loves={expected.loves} repeat={args.repeat} "
            f"gunicorn_workers={workers} fill={fill_seconds:.1f}s",
            flush=True,
        )
        api_run(port, api_key, database, expected.warmup_until, WARMUP_ROWS)
        for round_number in range(1, args.repeat + 1):
            for rows, until in sizes:
                a = api_run(port, api_key, database, until, rows)
                p = psql_run(database_url, database, statements[rows], rows)
                if (a.size, a.digest) != (p.size, p.digest):
                    sys.exit(
                        f"{rows} rows: api and psql differ ({a.size} and {p.size} bytes, "
                        f"digests {a.digest[:16]} and {p.digest[:16]})"
                    )
                api[rows].runs.append(a)
                raw[rows].runs.append(p)
                print(
                    f"round {round_number}, {rows:>7,} rows: api {a.seconds:.3f} s "
                    f"(worker peak {a.peak_kib / 1024:.1f} MiB), psql {p.seconds:.3f} s; "
                    "same bytes",
                    flush=True,
                )

    for rows, _ in sizes:
        print(api[rows].describe())
        print(f"    {cpu_text(api[rows].best())}")
        print(raw[rows].describe())
        print(f"    {cpu_text(raw[rows].best())}")

    small, large = api[args.subset], api[args.exposures]
    growth = large.peak_mib() / small.peak_mib() - 1
    flat = "flat" if growth <= FLAT_TOLERANCE else "NOT flat"
    print(
        f"server peak RSS: {small.peak_mib():.1f} MiB at {args.subset:,} rows, "
        f"{large.peak_mib():.1f} MiB at {args.exposures:,} rows (worker before each request: "
        f"{large.rss_before_mib():.1f} MiB): {flat} ({growth:+.1%}, tolerance "
        f"{FLAT_TOLERANCE:.0%})"
    )
    ratio = large.rate() / raw[args.exposures].rate()
    verdict = "meets" if ratio >= RATIO_TARGET and flat == "flat" else "misses"
    print(f"target: ratio >= {RATIO_TARGET} with memory flat: {verdict}")
    print(f"ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
