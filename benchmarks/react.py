"""Reaction throughput: `POST /api/v1/feedback` with one reaction against `GET /healthz`.

What is compared
    * reaction: `POST /api/v1/feedback` with `{"events": [one reaction]}` and a Bearer key of
      scope `feedback`. Every request has a new `event_id`, a random one of the bench answers, a
      reaction drawn from love/like/dislike/laugh and a viewer (`user_ref`) taken round-robin
      from `--viewers` distinct ones, so no viewer comes near the project's limits (60 feedback
      events a minute, 200 reactions a day). A 2xx answer counts; anything else is an error.
    * healthz: `GET /healthz` (the newest heartbeat row, which is its database check, and a
      broker connection and ping): the baseline, a request through the same middleware that
      touches PostgreSQL and Redis but writes nothing. 200 counts.

Both run against the real web process: gunicorn with `platform/gunicorn.conf.py` and the
production settings (DEBUG off, a SECRET_KEY, no SSL redirect; access log to /dev/null), started
as every benchmark starts it (`benchmarks/common.py`). The load generator runs on the same
machine: `--processes` client processes, each with its own threads, `--connections` in all. A
client speaks HTTP/1.1 on raw sockets with prebuilt requests (gunicorn's sync workers close the
connection after every response, so a request includes its TCP connect), so the client stays far
cheaper per request than the server. The same generator drives both endpoints.

Phases, each `--warmup` seconds (not counted) followed by `--seconds` measured seconds:
    1. closed loop, reaction: every connection sends its next request as soon as the previous
       one is answered; requests/s, p50 and p99 latency, errors.
    2. closed loop, healthz: the same.
    3. open loop, reaction at half the closed-loop reaction throughput: requests are scheduled
       at a fixed rate spread over the clients (`--open-threads` per process), and the latency
       of each is measured from its scheduled send time, so a stalled server is charged for the
       requests that queued behind it (no coordinated omission).

Under every phase a second line says where the CPU went, from /proc: CPU ms per request sent
of the gunicorn workers and of their PostgreSQL backends, the cores the load generator used, and
the cores everything else on the machine used (Redis, and other people's jobs: when that is high
the throughputs are low and noisy). The CPU per request moves less with such noise than the
throughput does; its healthz/reaction quotient is printed as a cross-check of the ratio.

Afterwards the recorded feedback events are counted (one per 2xx reaction) and the most
events any viewer got is printed. The target: ratio >= 0.6, and at half the maximal reaction
load a p99 <= 30 ms, with no errors in any phase. The last line is
`ratio=<reaction requests/s / healthz requests/s>` from the closed-loop phases.

Setup, done by the script: the database in DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/feedback_bench) is created when missing and migrated; the
project `bench-react` and a key with the scopes ingest and feedback are made with the management
commands; the project's reactions and feedback events of earlier runs are deleted (so the daily
cap starts afresh); `--answers` answers are sent through `POST /api/v1/answers` (duplicates of an
earlier run are fine). PostgreSQL and Redis (CELERY_BROKER_URL, default
redis://127.0.0.1:6379/14, which /healthz pings) must be running.

Run from the project root:

    .venv/bin/python benchmarks/react.py [--seconds 10] [--warmup 2] [--connections 16]
        [--processes 2] [--open-threads 16] [--viewers 40000] [--answers 200]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import math
import multiprocessing
import random
import secrets
import socket
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson
import psycopg
from common import (
    CLOCK_TICKS,
    bench_setup,
    clear_project,
    gunicorn,
    gunicorn_workers,
    process_ticks,
)

PROJECT_SLUG = "bench-react"
REACTIONS = ("love", "like", "dislike", "laugh")
FEEDBACK_PATH = "/api/v1/feedback"
HEALTHZ_PATH = "/healthz"
P99_TARGET_MS = 30.0
RATIO_TARGET = 0.6
SOCKET_TIMEOUT_SECONDS = 30.0
START_DELAY_SECONDS = 1.0  # lets every client process start before the clock does
ERROR_SAMPLES = 3
# What a failed exchange raises: socket errors, an early close, an unparsable status line.
EXCHANGE_ERRORS = (OSError, EOFError, ValueError, IndexError)


# --- setup -------------------------------------------------------------------------------------


def answer_payloads(count: int) -> list[dict[str, object]]:
    return [
        {
            "external_id": f"react-{i}",
            "prompt": [{"role": "user", "content": f"Bench question number {i}?"}],
            "response": f"Bench answer number {i}, with a citation [doc-{i}].",
            "model": "bench-model",
            "trace": [
                {
                    "kind": "retrieval",
                    "output": {"documents": [{"id": f"doc-{i}", "text": "Bench document."}]},
                },
                {"kind": "generation", "parent": 0, "output": {"text": f"Bench answer {i}."}},
            ],
        }
        for i in range(count)
    ]


def ingest_answers(port: int, api_key: str, count: int) -> list[str]:
    """Send the bench answers (idempotent); their external ids."""
    answers = answer_payloads(count)
    body = orjson.dumps({"answers": answers})
    status, content = Client(port).exchange(
        request_bytes(port, "POST", "/api/v1/answers", api_key, body)
    )
    if status not in (200, 201):
        sys.exit(f"POST /api/v1/answers answered {status}: {content[:500]!r}")
    reply = orjson.loads(content)
    if reply["errors"] or reply["created"] + reply["duplicates"] != count:
        sys.exit(f"POST /api/v1/answers: {content[:500]!r}")
    return [str(a["external_id"]) for a in answers]


def feedback_counts(database_url: str, project_id: int) -> tuple[int, int, int]:
    """(feedback events, reactions, most events of any one viewer) in the project."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM feedback_feedbackevent WHERE project_id = %(p)s), "
            "(SELECT count(*) FROM feedback_reaction WHERE project_id = %(p)s), "
            "(SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM feedback_feedbackevent "
            "WHERE project_id = %(p)s GROUP BY viewer) AS per_viewer)",
            {"p": project_id},
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


# --- where the CPU went (Linux /proc; everything runs on this machine) -------------------------


def machine_busy_ticks() -> int:
    """Ticks all CPUs spent on anything but idle and iowait since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(values) - values[3] - values[4]


@dataclass
class CpuSnapshot:
    at: float
    machine: int
    web: dict[int, int]  # gunicorn workers
    postgres: dict[int, int]  # the backends of the bench database (the workers' connections)


def cpu_snapshot(database_url: str) -> CpuSnapshot:
    workers = gunicorn_workers()
    with psycopg.connect(database_url, autocommit=True) as conn:
        backends = [
            int(row[0])
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
        ]

    def ticks(pids: list[int]) -> dict[int, int]:
        found = {}
        for pid in pids:
            try:
                found[pid] = process_ticks(pid)
            except OSError:
                continue  # gone, or not ours to read
        return found

    return CpuSnapshot(time.monotonic(), machine_busy_ticks(), ticks(workers), ticks(backends))


@dataclass
class CpuSpent:
    """CPU seconds spent between two snapshots. A process that ended in between (a gunicorn
    worker recycled by max_requests) loses its last ticks: the figures are floors."""

    seconds: float
    machine: float
    web: float
    postgres: float

    @classmethod
    def between(cls, before: CpuSnapshot, after: CpuSnapshot) -> CpuSpent:
        def spent(start: dict[int, int], end: dict[int, int]) -> float:
            return sum(t - start.get(pid, 0) for pid, t in end.items()) / CLOCK_TICKS

        return cls(
            after.at - before.at,
            (after.machine - before.machine) / CLOCK_TICKS,
            spent(before.web, after.web),
            spent(before.postgres, after.postgres),
        )


# --- the HTTP client -------------------------------------------------------------------------


def request_bytes(port: int, method: str, path: str, api_key: str | None, body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if api_key is not None:
        lines.append(f"Authorization: Bearer {api_key}")
    if method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Client:
    """One HTTP/1.1 connection on a raw socket: send a prebuilt request, read the response
    (Content-Length or until the server closes). Reconnects when the server closed the last
    connection, as gunicorn's sync workers do after every response."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        """(status, body) of one request."""
        reused = self.sock is not None
        try:
            return self._exchange(request)
        except (ConnectionResetError, BrokenPipeError, EOFError):
            self.close()
            if not reused:
                raise
            return self._exchange(request)  # a kept-alive connection the server had closed

    def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection(
                ("127.0.0.1", self.port), timeout=SOCKET_TIMEOUT_SECONDS
            )
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = self.sock
        sock.sendall(request)
        data = b""
        while (end := data.find(b"\r\n\r\n")) < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError("the server closed the connection before the headers ended")
            data += chunk
        head = data[:end].decode("latin-1").lower().split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = dict(line.split(":", 1) for line in head[1:] if ":" in line)
        body = data[end + 4 :]
        length = headers.get("content-length")
        if length is not None:
            while len(body) < int(length):
                chunk = sock.recv(65536)
                if not chunk:
                    raise EOFError("the server closed the connection inside the body")
                body += chunk
        else:
            while chunk := sock.recv(65536):
                body += chunk
        if length is None or headers.get("connection", "").strip() == "close":
            self.close()
        return status, body


# --- load generation (runs in the client processes) ------------------------------------------


@dataclass(frozen=True)
class Load:
    """One phase, as every client process gets it."""

    port: int
    api_key: str
    answers: tuple[str, ...]
    viewers: int
    processes: int
    run_tag: str = ""  # prefix of this phase's event_ids
    endpoint: str = "reaction"  # or "healthz"
    # Requests sent in earlier phases: each process starts its round-robin past them.
    viewer_offset: int = 0
    threads: int = 1  # per process
    rate: float | None = None  # requests/s of all processes (open loop); None: closed loop
    # time.monotonic() values: CLOCK_MONOTONIC, the same clock in every process on Linux.
    start_at: float = 0.0
    measure_from: float = 0.0
    end_at: float = 0.0


@dataclass
class Tally:
    """What one client process saw; merged by the parent."""

    latencies: list[float] = field(default_factory=list)  # seconds, of the measured requests
    ok: int = 0  # 2xx over the whole phase, warm-up included
    sent: int = 0  # requests started over the whole phase
    errors: int = 0  # non-2xx or failed exchanges over the whole phase
    samples: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0  # CPU time of the client processes: the generator's own cost

    def merge(self, other: Tally) -> None:
        self.latencies += other.latencies
        self.ok += other.ok
        self.sent += other.sent
        self.errors += other.errors
        self.cpu_seconds += other.cpu_seconds
        self.samples += other.samples[: max(0, ERROR_SAMPLES - len(self.samples))]


def run_load(load: Load, process: int) -> Tally:
    """One client process: `load.threads` clients until `load.end_at`."""
    tally = Tally()
    lock = threading.Lock()
    counter = itertools.count()  # next() is atomic under the GIL
    healthz = request_bytes(load.port, "GET", HEALTHZ_PATH, None, b"")
    viewers_here = range(process, load.viewers, load.processes)

    def next_request(rng: random.Random, n: int) -> bytes:
        if load.endpoint == "healthz":
            return healthz
        viewer = viewers_here[(load.viewer_offset + n) % len(viewers_here)]
        event = {
            "event_id": f"{load.run_tag}-{process}-{n}",
            "type": "reaction",
            "answer": rng.choice(load.answers),
            "user_ref": f"viewer-{viewer}",
            "reaction": rng.choice(REACTIONS),
        }
        body = orjson.dumps({"events": [event]})
        return request_bytes(load.port, "POST", FEEDBACK_PATH, load.api_key, body)

    def record(status: int, content: bytes, started: float, done: float, measured: bool) -> None:
        with lock:
            if 200 <= status < 300:
                tally.ok += 1
                if measured:
                    tally.latencies.append(done - started)
            else:
                tally.errors += 1
                if len(tally.samples) < ERROR_SAMPLES:
                    tally.samples.append(f"{status} {content[:300]!r}")

    def closed_client(seed: str) -> None:
        rng, client = random.Random(seed), Client(load.port)
        try:
            while time.monotonic() < load.end_at:
                request = next_request(rng, next(counter))
                started = time.monotonic()
                try:
                    status, content = client.exchange(request)
                except EXCHANGE_ERRORS as error:
                    client.close()
                    status, content = 0, repr(error).encode()
                done = time.monotonic()
                # Throughput and latency of the requests that end inside the measured window.
                record(status, content, started, done, load.measure_from <= done <= load.end_at)
        finally:
            client.close()

    def open_client(seed: str) -> None:
        assert load.rate is not None
        per_process = load.rate / load.processes
        rng, client = random.Random(seed), Client(load.port)
        try:
            while True:
                n = next(counter)
                # Process p sends at start + (n + p / P) / (rate / P): the processes interleave.
                scheduled = load.start_at + (n + process / load.processes) / per_process
                if scheduled >= load.end_at:
                    return
                request = next_request(rng, n)
                if (wait := scheduled - time.monotonic()) > 0:
                    time.sleep(wait)
                try:
                    status, content = client.exchange(request)
                except EXCHANGE_ERRORS as error:
                    client.close()
                    status, content = 0, repr(error).encode()
                # From the scheduled time: waiting for a free client counts. Every request
                # scheduled in the window is measured, however late it ends.
                measured = scheduled >= load.measure_from
                record(status, content, scheduled, time.monotonic(), measured)
        finally:
            client.close()

    target = closed_client if load.rate is None else open_client
    threads = [
        threading.Thread(target=target, args=(f"{load.run_tag}-{process}-{t}",))
        for t in range(load.threads)
    ]
    if (wait := load.start_at - time.monotonic()) > 0:
        time.sleep(wait)
    cpu_start = time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tally.cpu_seconds = time.process_time() - cpu_start
    # Every open-loop client drew one slot past the end that it did not send.
    tally.sent = next(counter) - (0 if load.rate is None else load.threads)
    return tally


# --- phases (the parent) ---------------------------------------------------------------------


@dataclass
class Result:
    name: str
    seconds: float
    tally: Tally
    cpu: CpuSpent  # over the whole phase, warm-up included

    def server_ms(self) -> float:
        """CPU of the web workers and their PostgreSQL backends per request sent."""
        return (self.cpu.web + self.cpu.postgres) / max(1, self.tally.sent) * 1000

    @property
    def rps(self) -> float:
        return len(self.tally.latencies) / self.seconds

    def percentile_ms(self, q: float) -> float:
        """Nearest-rank percentile of the measured latencies, in milliseconds."""
        ordered = sorted(self.tally.latencies)
        if not ordered:
            return math.nan
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000

    def line(self) -> str:
        sent_ms = max(1, self.tally.sent) / 1000
        # Redis (pinged by /healthz) counts as "everything else", as do other people's jobs.
        others = max(
            0.0, self.cpu.machine - self.cpu.web - self.cpu.postgres - self.tally.cpu_seconds
        )
        return (
            f"  {self.name:<34} {self.rps:8.1f} req/s   p50 {self.percentile_ms(0.50):7.2f} ms"
            f"   p99 {self.percentile_ms(0.99):7.2f} ms   errors {self.tally.errors}"
            f"   (measured {len(self.tally.latencies)}, sent {self.tally.sent})\n"
            f"  {'':<34} CPU per request: gunicorn {self.cpu.web / sent_ms:.2f} ms, "
            f"postgres {self.cpu.postgres / sent_ms:.2f} ms; load generator "
            f"{self.tally.cpu_seconds / self.cpu.seconds:.2f} cores, everything else on the "
            f"machine {others / self.cpu.seconds:.2f} cores"
        )


def run_phase(name: str, load: Load, *, warmup: float, seconds: float, database_url: str) -> Result:
    """Run `load` in its client processes from a common start; the merged tally."""
    start_at = time.monotonic() + START_DELAY_SECONDS
    load = replace(
        load,
        start_at=start_at,
        measure_from=start_at + warmup,
        end_at=start_at + warmup + seconds,
    )
    with multiprocessing.get_context("fork").Pool(load.processes) as pool:
        pending = pool.starmap_async(run_load, [(load, p) for p in range(load.processes)])
        time.sleep(max(0.0, start_at - time.monotonic()))
        before = cpu_snapshot(database_url)
        tallies = pending.get()
        after = cpu_snapshot(database_url)
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    return Result(name, seconds, total, CpuSpent.between(before, after))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--connections", type=int, default=16, help="closed-loop clients in all")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument(
        "--open-threads", type=int, default=16, help="open-loop clients per process"
    )
    parser.add_argument("--viewers", type=int, default=40_000, help="distinct user_refs")
    parser.add_argument("--answers", type=int, default=200, help="answers reacted to (<= 1000)")
    args = parser.parse_args()
    if (
        args.seconds <= 0
        or args.warmup < 0
        or args.processes < 1
        or args.connections < args.processes
        or args.open_threads < 1
        or args.viewers < args.processes
        or not 1 <= args.answers <= 1000
    ):
        parser.error(
            "--seconds > 0, --warmup >= 0, --processes >= 1, --connections >= --processes, "
            "--open-threads >= 1, --viewers >= --processes, --answers 1..1000"
        )
    return args


def main() -> None:
    args = parse_args()
    bench = bench_setup(PROJECT_SLUG, scopes="ingest,feedback")
    database_url, project_id, api_key = bench.database_url, bench.project_id, bench.api_key
    # The reactions and feedback events of earlier runs go, so the daily cap starts afresh.
    clear_project(database_url, project_id, ("feedback_reaction", "feedback_feedbackevent"))

    run_tag = f"react-{secrets.token_hex(4)}"
    threads = args.connections // args.processes
    with gunicorn(bench.env) as (port, workers):
        answers = ingest_answers(port, api_key, args.answers)
        print(
            f"gunicorn_workers={workers} client_processes={args.processes} "
            f"closed_connections={threads * args.processes} "
            f"open_threads={args.open_threads * args.processes} seconds={args.seconds:g} "
            f"warmup={args.warmup:g} answers={len(answers)} viewers={args.viewers}",
            flush=True,
        )
        base = Load(
            port=port,
            api_key=api_key,
            answers=tuple(answers),
            viewers=args.viewers,
            processes=args.processes,
        )
        phase = functools.partial(
            run_phase, warmup=args.warmup, seconds=args.seconds, database_url=database_url
        )
        print("closed loop (each client sends again as soon as it has its answer):", flush=True)
        closed = replace(base, threads=threads, run_tag=f"{run_tag}-closed")
        reaction = phase(f"reaction POST {FEEDBACK_PATH}", closed)
        print(reaction.line(), flush=True)
        health = phase(f"healthz GET {HEALTHZ_PATH}", replace(closed, endpoint="healthz"))
        print(health.line(), flush=True)

        rate = reaction.rps / 2
        print(
            f"open loop (reactions scheduled at {rate:.1f} req/s, half the closed-loop rate; "
            "latency from the scheduled time):",
            flush=True,
        )
        opened = replace(
            base,
            threads=args.open_threads,
            rate=rate,
            run_tag=f"{run_tag}-open",
            viewer_offset=reaction.tally.sent,
        )
        open_loop = phase(f"reaction POST {FEEDBACK_PATH}", opened)
        print(open_loop.line(), flush=True)

    events, reactions, most = feedback_counts(database_url, project_id)
    expected = reaction.tally.ok + open_loop.tally.ok
    print(
        f"recorded: {events} feedback events and {reactions} reactions for {expected} 2xx "
        f"reaction responses; at most {most} events for one viewer"
    )
    for result in (reaction, health, open_loop):
        for sample in result.tally.samples:
            print(f"  error sample ({result.name}): {sample}")

    print(
        f"server CPU (gunicorn + postgres) per request: reaction {reaction.server_ms():.2f} ms, "
        f"healthz {health.server_ms():.2f} ms; their inverse ratio "
        f"{health.server_ms() / reaction.server_ms():.3f} is what the ratio tends to when the "
        "server's CPU is the only limit"
    )
    ratio = reaction.rps / health.rps
    p99 = open_loop.percentile_ms(0.99)
    errors = sum(r.tally.errors for r in (reaction, health, open_loop))
    verdict = ratio >= RATIO_TARGET and p99 <= P99_TARGET_MS and errors == 0 and events == expected
    print(
        f"target: ratio {ratio:.3f} >= {RATIO_TARGET} {'yes' if ratio >= RATIO_TARGET else 'NO'}; "
        f"open-loop p99 {p99:.2f} ms <= {P99_TARGET_MS:g} ms "
        f"{'yes' if p99 <= P99_TARGET_MS else 'NO'}; errors {errors}; "
        f"{'met' if verdict else 'NOT met'}"
    )
    print(f"ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
