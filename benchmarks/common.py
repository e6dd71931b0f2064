"""What every benchmark sets up the same way: settings, database, bench project, refills, gunicorn,
and the CPU and memory figures read from /proc.

The benchmarks are scripts run from the project root (`.venv/bin/python benchmarks/ingest.py`),
so their own folder is first on sys.path and this module is imported as `common`. Linux only: the
CPU and memory figures come from /proc.

- Settings: `server_env` is the environment of manage.py and gunicorn (production settings,
  DEBUG off, no SSL redirect, the bench database and broker).
- Database and project: `bench_setup` creates the database in DATABASE_URL (default
  postgres://postgres@127.0.0.1:5432/feedback_bench) when missing, migrates it, checks its
  schema, and makes the bench project (a no-op when it exists) and an API key with the
  management commands.
- Rows: `clear_project` deletes some of a project's rows between runs; `refill` replaces all of
  them in one transaction and checks the references the new rows make.
- gunicorn: `gunicorn()` runs the real web process on a free port while a block runs;
  `post_concurrently` sends it request bodies from several client threads.
- CPU: `cpu_seconds` of a process, `gunicorn_workers`, and `BackendCpu`, the PostgreSQL backends
  serving one database sampled while a block runs.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/feedback_bench"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/14"
HEALTH_TIMEOUT_SECONDS = 30.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
POLL_SECONDS = 0.05  # how often BackendCpu samples the backends

# The columns the benchmarks write that older versions of the migrations did not create.
REQUIRED_COLUMNS = (
    ("feedback_answer", "prompt_hash"),
    ("feedback_exposure", "window_start"),
    ("feedback_reaction", "event_id"),
    ("feedback_project", "love_window"),
)

# Every row of a project, table by table, in an order the foreign keys allow.
PROJECT_ROWS: dict[str, str] = {
    "feedback_reaction": "DELETE FROM feedback_reaction WHERE project_id = %(project)s",
    "feedback_exposure": "DELETE FROM feedback_exposure WHERE project_id = %(project)s",
    "feedback_critique": "DELETE FROM feedback_critique WHERE project_id = %(project)s",
    "feedback_comparison": "DELETE FROM feedback_comparison WHERE project_id = %(project)s",
    "feedback_followup": "DELETE FROM feedback_followup WHERE project_id = %(project)s",
    "feedback_feedbackevent": "DELETE FROM feedback_feedbackevent WHERE project_id = %(project)s",
    "feedback_tracespan": "DELETE FROM feedback_tracespan WHERE project_id = %(project)s",
    "feedback_stage": (
        "DELETE FROM feedback_stage USING feedback_answer "
        "WHERE feedback_stage.answer_id = feedback_answer.id "
        "AND feedback_answer.project_id = %(project)s"
    ),
    "feedback_answer": "DELETE FROM feedback_answer WHERE project_id = %(project)s",
}

# The tables a refill writes, vacuumed after it.
FILLED_TABLES = (
    "feedback_answer",
    "feedback_feedbackevent",
    "feedback_exposure",
    "feedback_reaction",
)


# --- settings, database, project -----------------------------------------------------------------


def server_env(database_url: str) -> dict[str, str]:
    """The environment of manage.py and gunicorn: the inherited one plus the bench settings."""
    return {
        **os.environ,
        "SECRET_KEY": "bench-secret-key-not-for-production-0000000000000000000000",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", DEFAULT_BROKER_URL),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
    }


def database_name(database_url: str) -> str:
    return urlsplit(database_url).path.lstrip("/")


def ensure_database(database_url: str) -> None:
    """CREATE DATABASE for the URL's database unless it exists (via the `postgres` database)."""
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def manage(env: dict[str, str], *args: str) -> str:
    """Run a management command; its stdout, or exit with its output when it fails."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def manage_json(env: dict[str, str], script: str) -> Any:
    """Run `script` with `manage.py shell -c`; the JSON it printed on its last line."""
    output = manage(env, "shell", "-c", script)
    return json.loads(output.strip().splitlines()[-1])


def check_schema(database_url: str) -> None:
    """Exit with advice when the database predates the current migrations (they were rewritten
    once, so `migrate` can report nothing to do on a database it cannot bring up to date)."""
    with psycopg.connect(database_url) as conn:
        present = set(
            conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public'"
            ).fetchall()
        )
    missing = [
        f"{table}.{column}" for table, column in REQUIRED_COLUMNS if (table, column) not in present
    ]
    if missing:
        name = database_name(database_url)
        sys.exit(
            f"{name} lacks {', '.join(missing)}: it was migrated by an older version of the "
            f"migrations. Drop it (dropdb -h 127.0.0.1 -U postgres {name}) or point DATABASE_URL "
            "at another database."
        )


def prepare_database(env: dict[str, str], database_url: str) -> None:
    """Create the database when missing, migrate it and check that its schema is current."""
    ensure_database(database_url)
    manage(env, "migrate", "--no-input")
    check_schema(database_url)


@dataclass(frozen=True)
class Bench:
    """A migrated bench database with its project, as `bench_setup` leaves it."""

    database_url: str
    database: str  # the database's name, as the titles of its PostgreSQL backends show it
    env: dict[str, str]  # of manage.py and gunicorn
    project_id: int
    api_key: str  # empty when no scopes were asked for


def bench_setup(slug: str, *, scopes: str = "", extra_env: dict[str, str] | None = None) -> Bench:
    """The database in DATABASE_URL migrated, the project `slug` and, with `scopes`, a new API
    key of it; `extra_env` is added to the bench settings of manage.py and gunicorn."""
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    env = {**server_env(database_url), **(extra_env or {})}
    prepare_database(env, database_url)
    project_id = bench_project(env, database_url, slug)
    api_key = bench_api_key(env, slug, scopes) if scopes else ""
    return Bench(database_url, database_name(database_url), env, project_id, api_key)


def bench_project(env: dict[str, str], database_url: str, slug: str) -> int:
    """Make the project `slug` unless it exists (the management command); its id."""
    manage(env, "create_project", slug)
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT id FROM feedback_project WHERE slug = %s", [slug]).fetchone()
    assert row is not None
    project_id: int = row[0]
    return project_id


def bench_api_key(env: dict[str, str], slug: str, scopes: str) -> str:
    """A new API key of the project with `scopes` (comma-separated), made by the command."""
    output = manage(env, "create_api_key", "--project", slug, "--scopes", scopes)
    return output.strip().splitlines()[-1]


# --- a project's rows ------------------------------------------------------------------------


def delete_project_rows(
    conn: psycopg.Connection[Any], project_id: int, tables: Collection[str] | None = None
) -> None:
    """Delete the project's rows from `tables` (default: all of them), dependents first."""
    unknown = set(tables or ()) - set(PROJECT_ROWS)
    if unknown:
        raise ValueError(f"no delete statement for {sorted(unknown)}")
    for table, statement in PROJECT_ROWS.items():
        if tables is None or table in tables:
            conn.execute(statement, {"project": project_id})


def clear_project(database_url: str, project_id: int, tables: Collection[str]) -> None:
    """Delete the project's rows from `tables`, then VACUUM them so every run starts alike."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        delete_project_rows(conn, project_id, tables)
        ordered = [table for table in PROJECT_ROWS if table in tables]
        conn.execute(
            sql.SQL("VACUUM (ANALYZE) {}").format(sql.SQL(", ").join(map(sql.Identifier, ordered)))
        )


@contextmanager
def refill(
    database_url: str, project_id: int, dangling_references: str
) -> Iterator[psycopg.Connection[Any]]:
    """A transaction that starts by deleting all of the project's rows; the block writes the new
    ones. After the commit the filled tables are vacuumed, which sets the hint bits and
    statistics so the first read of the new rows is like the later ones, and then
    `dangling_references` (a query of three counts, parameter %(project)s) must count nothing.

    The foreign keys would be checked at commit, one query per reference: about 30 s for the
    export benchmark's rows. Every reference a fill makes is a join on rows of this transaction,
    so a superuser skips the triggers and `dangling_references` checks them instead."""
    with psycopg.connect(database_url) as conn:
        try:
            conn.execute("SET LOCAL session_replication_role = replica")
        except psycopg.errors.InsufficientPrivilege:
            conn.rollback()
        delete_project_rows(conn, project_id)
        yield conn
        conn.commit()
    with psycopg.connect(database_url, autocommit=True) as conn:
        # Statistics first: on tables the planner has never seen analysed, the check's anti-joins
        # can get a nested-loop plan that runs for many minutes instead of seconds.
        conn.execute(
            sql.SQL("VACUUM (ANALYZE) {}").format(
                sql.SQL(", ").join(map(sql.Identifier, FILLED_TABLES))
            )
        )
        dangling = conn.execute(dangling_references, {"project": project_id}).fetchone()
        if dangling != (0, 0, 0):
            sys.exit(f"fill: dangling references (exposure, reaction, event): {dangling}")


# --- gunicorn --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def child_pids(parent: int) -> list[int]:
    """Pids of the processes whose parent is `parent` (Linux /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


def wait_healthy(port: int, server: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.2)
    log.seek(0)
    tail = log.read().decode(errors="replace")[-4000:]
    sys.exit(f"gunicorn did not answer 200 on /healthz within {HEALTH_TIMEOUT_SECONDS}s:\n{tail}")


@contextmanager
def gunicorn(env: dict[str, str]) -> Iterator[tuple[int, int]]:
    """Run the web process (`platform/gunicorn.conf.py`, so the worker count is the config's
    default unless WEB_CONCURRENCY says otherwise) on a free port until the block ends; yields
    (port, workers). The access log goes to /dev/null."""
    port = free_port()
    # An empty GUNICORN_ACCESS_LOG makes gunicorn open("") and fail; /dev/null discards it.
    server_environ = {
        **env,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_ACCESS_LOG": "/dev/null",
    }
    command = [str(BIN / "gunicorn"), "-c", "platform/gunicorn.conf.py", "config.wsgi"]
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            command, cwd=ROOT, env=server_environ, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_healthy(port, server, log)
            yield port, len(child_pids(server.pid))
        finally:
            server.terminate()
            try:
                server.wait(timeout=35)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def post_concurrently(
    port: int, path: str, headers: dict[str, str], bodies: Sequence[bytes], clients: int
) -> tuple[float, list[tuple[int, bytes]]]:
    """POST every body to `path` from `clients` threads, each keeping its own connection;
    (seconds taken, the (status, body) of every reply)."""
    work: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    for body in bodies:
        work.put(body)
    replies: list[tuple[int, bytes]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            while True:
                try:
                    body = work.get_nowait()
                except queue.Empty:
                    return
                # http.client reconnects by itself when the server closed the connection.
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                reply = (response.status, response.read())
                with lock:
                    replies.append(reply)
        except BaseException as error:
            with lock:
                failures.append(error)
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise failures[0]
    if len(replies) != len(bodies):
        sys.exit(f"{len(replies)} replies for {len(bodies)} requests to {path}")
    return elapsed, replies


def gunicorn_workers() -> list[int]:
    """The gunicorn worker pids: the children of our gunicorn child."""
    masters = [
        pid
        for pid in child_pids(os.getpid())
        if b"gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    return [worker for master in masters for worker in child_pids(master)]


# --- CPU and memory (Linux /proc; everything runs on this machine) -----------------------------


def process_ticks(pid: int) -> int:
    """utime + stime of a process in clock ticks (fields 14 and 15 of stat(5)); OSError when
    the process is gone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_seconds(pid: int) -> float:
    return process_ticks(pid) / CLOCK_TICKS


def status_kib(pid: int, key: str) -> int:
    """A memory figure of /proc/<pid>/status (VmRSS, VmHWM...) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise LookupError(f"no {key} in /proc/{pid}/status")


class BackendCpu:
    """CPU seconds of the PostgreSQL backends serving one database while a block runs. They are
    sampled every POLL_SECONDS, since a backend can end before the block does (psql's does)."""

    def __init__(self, database: str) -> None:
        self.marker = f" {database} ".encode()
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.done = threading.Event()
        self.poller = threading.Thread(target=self._poll, daemon=True)

    def _sample(self) -> dict[int, float]:
        found = {}
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                title = cmdline.read_bytes()
                if title.startswith(b"postgres: ") and self.marker in title:
                    pid = int(cmdline.parent.name)
                    found[pid] = cpu_seconds(pid)
            except (OSError, ValueError):
                continue  # the process ended while we looked
        return found

    def _poll(self) -> None:
        while not self.done.wait(POLL_SECONDS):
            self.last.update(self._sample())

    def __enter__(self) -> BackendCpu:
        self.first = self._sample()
        self.last = dict(self.first)
        self.poller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.poller.join()
        self.last.update(self._sample())

    def seconds(self) -> float:
        return sum(cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items())
