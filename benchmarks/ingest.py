"""Ingestion throughput: the HTTP API against a raw PostgreSQL COPY of the same rows.

What is compared
    * api:  `POST /api/v1/answers` with batches of `--batch` answers, sent by `--clients`
      threads that each keep their own HTTP connection, to the real web process (gunicorn with
      `platform/gunicorn.conf.py`, so the worker count is the config's default unless
      WEB_CONCURRENCY says otherwise). Every response must be 201 and the `created` counts
      must add up to `--answers`. The request bodies are serialised before the clock starts.
    * copy: the same answers and 3-stage traces written by one psycopg 3 connection in one
      transaction: ids reserved from the feedback_answer sequence, then
      `COPY feedback_answer … FROM STDIN` and `COPY feedback_stage … FROM STDIN`. The JSON
      columns are serialised with orjson inside the timed part, as the API does; the payload
      dicts are built before it. This is the floor: no HTTP, no validation, no ON CONFLICT.

Each rate is answers per second, the best of `--repeat` rounds (default 2; a round is one api
run then one copy run, each starting from an empty, vacuumed bench project). The row counts
(N answers, 3N stages) are checked after every run. The last line is
`ratio=<api_rate / copy_rate>`: the share of raw COPY throughput the API reaches; the target
is >= 0.8.

Setup, done by the script: the database in DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/feedback_bench) is created when missing and migrated; the
project `bench` and an ingest API key are made with the management commands; the answers of
earlier runs in that project are deleted. PostgreSQL and Redis (CELERY_BROKER_URL, default
redis://127.0.0.1:6379/14, which /healthz checks) must be running.

Run from the project root:

    .venv/bin/python benchmarks/ingest.py [--answers 20000] [--batch 1000] [--clients 4]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from common import bench_setup, clear_project, gunicorn, post_concurrently

PROJECT_SLUG = "bench"
RATIO_TARGET = 0.8
SEED = 20260131
STAGES_PER_ANSWER = 3

WORDS = (
    "answer", "retrieval", "query", "model", "context", "document", "score", "user", "token",
    "latency", "ranking", "vector", "index", "search", "prompt", "response", "feedback", "rating",
    "reward", "trace", "stage", "pipeline", "batch", "cache", "summary", "source", "citation",
    "evidence", "policy", "reason", "chain", "step", "tool", "output", "input", "system", "the",
    "a", "of", "and", "to", "in", "is", "that", "for", "on", "with", "as", "by", "it", "this",
    "be", "are", "from", "at", "or", "an", "which",
)  # fmt: skip

Answer = dict[str, Any]


# --- checks --------------------------------------------------------------------------------


def check_counts(database_url: str, project_id: int, expected_answers: int) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM feedback_answer WHERE project_id = %(p)s), "
            "(SELECT count(*) FROM feedback_stage s JOIN feedback_answer a ON a.id = s.answer_id "
            "WHERE a.project_id = %(p)s)",
            {"p": project_id},
        ).fetchone()
    assert row is not None
    answers, stages = row
    expected_stages = expected_answers * STAGES_PER_ANSWER
    if (answers, stages) != (expected_answers, expected_stages):
        sys.exit(
            f"row counts: {answers} answers, {stages} stages; "
            f"expected {expected_answers} and {expected_stages}"
        )


# --- payloads --------------------------------------------------------------------------------


def text(rng: random.Random, length: int) -> str:
    """Words until `length` characters, cut to exactly that."""
    words: list[str] = []
    size = 0
    while size < length:
        word = rng.choice(WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:length]


def make_answers(count: int) -> list[Answer]:
    """`count` answer payloads in the API schema, the same on every run (seeded)."""
    rng = random.Random(SEED)
    answers = []
    for i in range(count):
        response = text(rng, 600)
        documents = [
            {
                "id": f"doc-{rng.randrange(1_000_000)}",
                "title": text(rng, 40),
                "text": text(rng, 200),
                "score": round(rng.random(), 4),
            }
            for _ in range(3)
        ]
        answers.append(
            {
                "external_id": f"bench-{i}",
                "prompt": [{"role": "user", "content": text(rng, 200)}],
                "response": response,
                "model": "bench-model",
                "model_version": rng.choice(("2025-01", "2025-06")),
                "user_ref": f"user-{rng.randrange(1000)}",
                "metadata": {
                    "locale": rng.choice(("en", "de", "fr")),
                    "latency_ms": rng.randrange(100, 5000),
                },
                "trace": [
                    {
                        "kind": "decomposition",
                        "name": "planner",
                        "output": {"subqueries": [text(rng, 50) for _ in range(3)]},
                    },
                    {
                        "kind": "retrieval",
                        "name": "search",
                        "parent": 0,
                        "output": {"documents": documents},
                    },
                    {
                        "kind": "generation",
                        "name": "llm",
                        "parent": 1,
                        "output": {"text": response},
                    },
                ],
            }
        )
    return answers


def batch_bodies(answers: Sequence[Answer], size: int) -> list[bytes]:
    return [orjson.dumps({"answers": answers[i : i + size]}) for i in range(0, len(answers), size)]


# --- the two ways in -------------------------------------------------------------------------


def post_batches(port: int, api_key: str, bodies: Sequence[bytes], clients: int) -> float:
    """Send every body to the API from `clients` threads; seconds taken. Checks the answers."""
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    elapsed, replies = post_concurrently(port, "/api/v1/answers", headers, bodies, clients)
    created = 0
    for status, content in replies:
        if status != 201:
            sys.exit(f"POST /api/v1/answers answered {status}: {content[:500]!r}")
        created += orjson.loads(content)["created"]
    expected = sum(len(orjson.loads(body)["answers"]) for body in bodies)
    if created != expected:
        sys.exit(f"{created} of {expected} answers created")
    return elapsed


def copy_answers(database_url: str, project_id: int, answers: Sequence[Answer]) -> float:
    """COPY the answers and their stages in one transaction; seconds taken."""
    with psycopg.connect(database_url) as conn:
        start = time.perf_counter()
        now = datetime.now(UTC)
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('feedback_answer', 'id')) "
                "FROM generate_series(1, %s)",
                [len(answers)],
            )
            ids = [row[0] for row in cursor.fetchall()]
            with cursor.copy(
                "COPY feedback_answer (id, project_id, external_id, conversation, user_ref, "
                "prompt, prompt_hash, response, model, model_version, metadata, created_at) "
                "FROM STDIN"
            ) as copy:
                for answer_id, a in zip(ids, answers, strict=True):
                    prompt = orjson.dumps(a["prompt"])
                    copy.write_row(
                        (
                            answer_id,
                            project_id,
                            a["external_id"],
                            "",
                            a["user_ref"],
                            prompt.decode(),
                            hashlib.sha256(prompt).hexdigest(),
                            a["response"],
                            a["model"],
                            a["model_version"],
                            orjson.dumps(a["metadata"]).decode(),
                            now,
                        )
                    )
            with cursor.copy(
                "COPY feedback_stage (answer_id, position, kind, name, parent_position, input, "
                "output) FROM STDIN"
            ) as copy:
                for answer_id, a in zip(ids, answers, strict=True):
                    for position, stage in enumerate(a["trace"]):
                        copy.write_row(
                            (
                                answer_id,
                                position,
                                stage["kind"],
                                stage["name"],
                                stage.get("parent"),
                                orjson.dumps(stage.get("input", {})).decode(),
                                orjson.dumps(stage["output"]).decode(),
                            )
                        )
        conn.commit()
        return time.perf_counter() - start


# --- main ------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    seconds: list[float]

    def best(self) -> float:
        return min(self.seconds)

    def rate(self, answers: int) -> float:
        return answers / self.best()


def timed_runs(
    phase: Phase, run: Callable[[], float], reset: Callable[[], None], check: Callable[[], None]
) -> None:
    reset()
    seconds = run()
    check()
    phase.seconds.append(seconds)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--answers", type=int, default=20_000, help="answers per run")
    parser.add_argument("--batch", type=int, default=1000, help="answers per request (<= 1000)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--repeat", type=int, default=2, help="rounds; the best run counts")
    args = parser.parse_args()
    if args.answers < 1 or not 1 <= args.batch <= 1000 or args.clients < 1 or args.repeat < 1:
        parser.error("--answers, --clients and --repeat must be >= 1; --batch 1..1000")
    return args


def main() -> None:
    args = parse_args()
    bench = bench_setup(PROJECT_SLUG, scopes="ingest")
    database_url, project_id, api_key = bench.database_url, bench.project_id, bench.api_key

    answers = make_answers(args.answers)
    bodies = batch_bodies(answers, args.batch)

    def reset() -> None:
        clear_project(database_url, project_id, ("feedback_stage", "feedback_answer"))

    def check() -> None:
        check_counts(database_url, project_id, args.answers)

    api, raw = Phase("api", []), Phase("copy", [])
    with gunicorn(bench.env) as (port, workers):
        print(
            f"answers={args.answers} batch={args.batch} clients={args.clients} "
            f"repeat={args.repeat} gunicorn_workers={workers}"
        )
        for round_number in range(1, args.repeat + 1):
            timed_runs(api, lambda: post_batches(port, api_key, bodies, args.clients), reset, check)
            timed_runs(raw, lambda: copy_answers(database_url, project_id, answers), reset, check)
            print(
                f"round {round_number}: api {api.seconds[-1]:.3f} s, copy {raw.seconds[-1]:.3f} s",
                flush=True,
            )

    for phase in (api, raw):
        print(
            f"{phase.name}: {phase.rate(args.answers):,.0f} answers/s "
            f"(best of {len(phase.seconds)}: {phase.best():.3f} s)"
        )
    ratio = api.rate(args.answers) / raw.rate(args.answers)
    print(f"target: ratio >= {RATIO_TARGET}: {'meets' if ratio >= RATIO_TARGET else 'misses'}")
    print(f"ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
