"""Scaling with processes: ingestion and reaction throughput with 1 and 2 gunicorn workers, and
concurrent export snapshots with 1 and 2 Celery export workers.

What is measured
    * ingestion: `POST /api/v1/answers`, `--answers` answers in batches of `--batch` from
      `--clients` HTTP clients (the payloads and checks of `benchmarks/ingest.py`), into an
      emptied, vacuumed bench project; answers per second.
    * reaction: `POST /api/v1/feedback` with one reaction per request, closed loop from
      `--connections` clients in two client processes for `--seconds` after `--warmup` (the
      load generator of `benchmarks/react.py`); requests per second, no errors allowed.
    * exports: `--exports` JSONL snapshots of the `p_love` dataset requested at once through
      `POST /api/v1/exports`, of a project filled as `benchmarks/export.py` fills it
      (`--exposures` rows), served by a Celery worker consuming only the `exports` queue with
      concurrency 1, then 2; seconds from the first request to the last export succeeded.

The web phases run gunicorn with `platform/gunicorn.conf.py` and WEB_CONCURRENCY=1, then 2
(threads per worker as the config says). Each figure is the better of `--repeat` runs. The
speed-up of each is the 2-process rate over the 1-process rate: 2.0 is perfect scaling, which
two cores can give only when nothing else runs (the load generator and PostgreSQL share them).
The last line is `ratio=<the reaction speed-up>`, the web tier's figure.

Setup, done by the script: the database in DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/feedback_bench) is created when missing and migrated; the
projects `bench-scaling` (answers and reactions) and `bench-scaling-export` and their API keys
are made with the management commands. PostgreSQL and Redis (CELERY_BROKER_URL, default
redis://127.0.0.1:6379/14; the export workers consume its `exports` queue, so give the bench a
Redis database of its own) must be running.

Run from the project root (the defaults take about 3 minutes):

    .venv/bin/python benchmarks/scaling.py [--answers 6000] [--batch 500] [--clients 4]
        [--seconds 8] [--warmup 2] [--connections 16] [--exports 4] [--exposures 100000]
        [--repeat 1] [--skip-exports]
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from common import BIN, ROOT, Bench, bench_setup, clear_project, gunicorn
from ingest import batch_bodies, check_counts, make_answers, post_batches
from react import Client, Load, ingest_answers, request_bytes, run_phase

PROJECT_SLUG = "bench-scaling"
EXPORT_PROJECT_SLUG = "bench-scaling-export"
WORKER_READY_SECONDS = 60.0
EXPORT_TIMEOUT_SECONDS = 300.0
PROCESSES = (1, 2)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--answers", type=int, default=6000, help="answers per ingestion run")
    parser.add_argument("--batch", type=int, default=500, help="answers per request (<= 1000)")
    parser.add_argument("--clients", type=int, default=4, help="ingestion HTTP clients")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured reaction seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--connections", type=int, default=16, help="reaction clients in all")
    parser.add_argument("--exports", type=int, default=4, help="snapshots requested at once")
    parser.add_argument("--exposures", type=int, default=100_000, help="rows of each snapshot")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best counts")
    parser.add_argument("--skip-exports", action="store_true", help="web phases only")
    args = parser.parse_args()
    if (
        args.answers < 1
        or not 1 <= args.batch <= 1000
        or min(args.clients, args.connections, args.exports, args.repeat) < 1
        or args.seconds <= 0
        or args.warmup < 0
        or args.exposures < 100
        or args.connections < 2
    ):
        parser.error(
            "--answers, --clients, --exports, --repeat >= 1; --batch 1..1000; --seconds > 0; "
            "--connections >= 2; --exposures >= 100"
        )
    return args


# --- web -------------------------------------------------------------------------------------


def ingest_rate(bench: Bench, port: int, bodies: list[bytes], answers: int, clients: int) -> float:
    every = ("feedback_reaction", "feedback_feedbackevent", "feedback_stage", "feedback_answer")
    clear_project(bench.database_url, bench.project_id, every)
    seconds = post_batches(port, bench.api_key, bodies, clients)
    check_counts(bench.database_url, bench.project_id, answers)
    return answers / seconds


def reaction_rate(bench: Bench, port: int, args: argparse.Namespace, answers: list[str]) -> float:
    load = Load(
        port=port,
        api_key=bench.api_key,
        answers=tuple(answers),
        viewers=40_000,
        processes=2,
        threads=args.connections // 2,
        run_tag=f"scaling-{secrets.token_hex(4)}",
    )
    result = run_phase(
        "reaction", load, warmup=args.warmup, seconds=args.seconds, database_url=bench.database_url
    )
    if result.tally.errors:
        sys.exit(f"reaction errors: {result.tally.samples}")
    return result.rps


def web_rates(args: argparse.Namespace) -> dict[str, dict[int, float]]:
    bench = bench_setup(PROJECT_SLUG, scopes="ingest,feedback")
    bodies = batch_bodies(make_answers(args.answers), args.batch)
    rates: dict[str, dict[int, float]] = {"ingestion": {}, "reaction": {}}
    for workers in PROCESSES:
        with gunicorn({**bench.env, "WEB_CONCURRENCY": str(workers)}) as (port, running):
            for _ in range(args.repeat):
                rate = ingest_rate(bench, port, bodies, args.answers, args.clients)
                rates["ingestion"][workers] = max(rate, rates["ingestion"].get(workers, 0.0))
            print(
                f"gunicorn workers {running}: ingestion "
                f"{rates['ingestion'][workers]:,.0f} answers/s",
                flush=True,
            )
            # The reaction bench's answers, after the ingestion runs emptied the project; the
            # reactions of earlier runs go, so no viewer nears the daily cap.
            feedback = ("feedback_reaction", "feedback_feedbackevent")
            clear_project(bench.database_url, bench.project_id, feedback)
            answers = ingest_answers(port, bench.api_key, 200)
            for _ in range(args.repeat):
                rate = reaction_rate(bench, port, args, answers)
                rates["reaction"][workers] = max(rate, rates["reaction"].get(workers, 0.0))
            print(
                f"gunicorn workers {running}: reaction {rates['reaction'][workers]:,.1f} req/s",
                flush=True,
            )
    return rates


# --- exports ---------------------------------------------------------------------------------


def request_json(
    port: int, method: str, path: str, api_key: str, body: bytes = b""
) -> tuple[int, Any]:
    client = Client(port)
    try:
        status, content = client.exchange(request_bytes(port, method, path, api_key, body))
    finally:
        client.close()
    return status, orjson.loads(content)


@contextmanager
def export_worker(env: dict[str, str], concurrency: int) -> Iterator[None]:
    """A Celery worker consuming the `exports` queue with `concurrency` processes, ready."""
    command = [
        str(BIN / "celery"),
        "-A",
        "config",
        "worker",
        "--queues=exports",
        f"--concurrency={concurrency}",
        "--loglevel=INFO",
        f"--hostname=bench-scaling-{secrets.token_hex(3)}@%h",
    ]
    with tempfile.NamedTemporaryFile() as log:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + WORKER_READY_SECONDS
            while b" ready." not in Path(log.name).read_bytes():
                if worker.poll() is not None or time.monotonic() > deadline:
                    tail = Path(log.name).read_text(errors="replace")[-3000:]
                    sys.exit(f"the Celery worker did not start:\n{tail}")
                time.sleep(0.2)
            yield
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def snapshots_seconds(port: int, api_key: str, count: int) -> float:
    """Request `count` JSONL snapshots at once; seconds until the last one succeeded."""
    body = orjson.dumps({"dataset": "p_love", "format": "jsonl", "form": "text"})
    start = time.perf_counter()
    ids = []
    for _ in range(count):
        status, reply = request_json(port, "POST", "/api/v1/exports", api_key, body)
        if status != 202:
            sys.exit(f"POST /api/v1/exports answered {status}: {reply}")
        ids.append(reply["id"])
    pending = set(ids)
    deadline = time.monotonic() + EXPORT_TIMEOUT_SECONDS
    while pending:
        for export_id in sorted(pending):
            status, reply = request_json(port, "GET", f"/api/v1/exports/{export_id}", api_key)
            if reply.get("status") == "succeeded":
                pending.discard(export_id)
            elif reply.get("status") in ("failed", "cancelled"):
                sys.exit(f"export {export_id} {reply.get('status')}: {reply.get('error')}")
        if time.monotonic() > deadline:
            sys.exit(f"exports {sorted(pending)} did not finish in {EXPORT_TIMEOUT_SECONDS}s")
        if pending:
            time.sleep(0.05)
    return time.perf_counter() - start


def export_rates(args: argparse.Namespace) -> dict[int, float]:
    from export import fill

    bench = bench_setup(EXPORT_PROJECT_SLUG, scopes="export")
    seconds = fill(bench.database_url, bench.project_id, 2000, args.exposures)
    print(f"export project filled with {args.exposures:,} rows in {seconds:.1f}s", flush=True)
    # The snapshots read through the replica alias, here the same database: with the rows'
    # COPY on the connection that also writes the export's progress, a snapshot that reports
    # progress in the middle of its COPY waits for itself for ever.
    env = {**bench.env, "DATABASE_REPLICA_URL": bench.database_url}
    rates: dict[int, float] = {}
    with gunicorn({**env, "WEB_CONCURRENCY": "1"}) as (port, _):
        for concurrency in PROCESSES:
            with export_worker(env, concurrency):
                snapshots_seconds(port, bench.api_key, 1)  # warms the worker's processes up
                for _ in range(args.repeat):
                    spent = snapshots_seconds(port, bench.api_key, args.exports)
                    rates[concurrency] = max(args.exports / spent, rates.get(concurrency, 0.0))
            print(
                f"export workers {concurrency}: {args.exports} snapshots of "
                f"{args.exposures:,} rows at {rates[concurrency]:.3f} snapshots/s",
                flush=True,
            )
    return rates


def main() -> None:
    args = parse_args()
    rates = web_rates(args)
    exports = {} if args.skip_exports else export_rates(args)
    print("speed-up from 1 to 2 processes (2.0 is perfect):")
    for name, by_workers in rates.items():
        print(f"  web {name:<10} {by_workers[2] / by_workers[1]:.2f}x")
    if exports:
        print(f"  export snapshots   {exports[2] / exports[1]:.2f}x")
    print(f"ratio={rates['reaction'][2] / rates['reaction'][1]:.3f}")


if __name__ == "__main__":
    main()
