"""P[Love] training: the platform's training run against a plain scikit-learn script.

What is compared
    * platform: `rewardmodels.services.training_run_execute(run_id=...)` called directly (the
      service a Celery worker runs, no broker) in a `manage.py shell -c` subprocess with the
      production settings (DEBUG off, a SECRET_KEY), on a new P[Love] reward model of the bench
      project with config `{"epochs": --epochs}` (every other setting its default). It reads the
      `p_love` dataset from PostgreSQL (its one definition, `p_love_rows`), splits it by time,
      weights each viewer's rows, featurizes and fits `SGDClassifier.partial_fit` batch by batch,
      evaluates on the newest rows and stores a skops artifact (MEDIA_ROOT is a temporary
      directory). Timed: that one call. The run must succeed.
    * plain: this file run as `train.py --plain-child`, importing numpy, scipy, scikit-learn and
      pyarrow (no Django; of the project only the pure `rewardmodels.training.format_features`,
      so both sides fit the same model). It streams a CSV of the same rows
      (pyarrow.csv.open_csv), takes the oldest 80% (the platform's split index) as train and the
      rest as test, hashes the texts with scikit-learn's HashingVectorizer set up as the platform's
      default FeatureConfig (response word 1-2-grams, response char_wb 3-5-grams, prompt words;
      2**18 columns each, no alternate sign, l2 norm, the platform's token pattern) plus the ten
      format columns (emojis, sign-offs, flattery, bullets...), fits an
      SGDClassifier with the platform's settings (log loss, alpha, constant step 0.3, averaging,
      random_state 0) by `partial_fit` over batches of the same size for the same epochs, and
      scores the test part with ROC-AUC. No per-viewer weights (they change the AUC by about
      0.0003 here), no feature names, no progress or heartbeat, no artifact.
      Timed: reading the file, training and evaluating (the counterpart of the platform reading
      PostgreSQL, training and evaluating). By default (`--plain-chars word`) it hashes the
      char n-grams of each distinct word of a batch once (the same columns, the trick the
      platform uses): a stricter floor than the textbook script, which hashes every response's
      char n-grams (`--plain-chars doc`, about twice as slow). It featurizes every row; the
      platform featurizes each distinct answer of a batch once and copies its row to the
      answer's other exposures (here ~7,600 distinct answers in a batch of 10,000), which is
      what pays for its fixed costs (reading PostgreSQL, the per-viewer weights, the validation
      grid, feature names, baselines).

The CSV is written before the plain run, outside its timed part: the platform's own compiled
`p_love` queryset (built by `p_love_rows` in a `manage.py shell -c` subprocess, ordered by
shown_at and id like the training run reads it), wrapped in `COPY (...) TO STDOUT (FORMAT csv,
HEADER)` with the columns prompt, response, label, shown_at and user_ref. Its row count must equal
the platform's train + test rows and its Love count the planted one.

Peak memory is each child's ru_maxrss, read by the parent with os.wait4 when the child exits (the
whole process: interpreter, imports, the run). CPU: the child's user + system seconds, and the
seconds of the PostgreSQL backends serving the bench database (sampled from /proc every 50 ms).

The data (seeded): `--answers` answers whose texts are words drawn from a Zipf-distributed
vocabulary of pseudo-words, some with planted markers: an emoji, a sign-off ("Hope this helps!"),
a flattering opener, a bullet list, "Unfortunately," and 40 + 40 vocabulary words that raise or
lower the chance of a Love. Each answer's log-odds is the sum of its markers' effects plus noise;
each of `--viewers` viewers (lognormal activity, so some exceed the viewer cap of 200 exposures)
has an offset of its own. `--exposures` exposures (source api, no feedback event) show an answer
to a viewer who never saw it before, at times spread over the 60 days before two days ago (all
older than the 24 h Love window, so all are labelled); a Love reaction (with its feedback event)
follows 1 to 60 minutes later with the planted probability (about 8% in all). The AUC of the
planted probability on the test part is printed as the ceiling. As a superuser the fill skips the
foreign-key triggers and checks the references itself afterwards (`common.refill`).

The target: ratio <= 1.1 with each peak RSS <= 2 GiB and the two ROC-AUCs within 0.01. The last
line is `ratio=<platform seconds / plain seconds>`.

Setup, done by the script: the database in DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/feedback_bench) is created when missing and migrated, the
project `bench-train` made with the management command, its earlier reward models deleted and
its rows replaced, unless `--skip-fill` finds rows of a fill with the same seed and sizes (each
answer's metadata records them) and the counts that fill planted. PostgreSQL must be running; no
broker is used. The default size, 300,000 rows, keeps the whole run (fill and CSV export
included) to a few minutes on two cores; both sides read the same rows, and each run's cost is
close to linear in them (1,000,000 rows took about 6 minutes per side here). Larger runs and
the textbook variant: `--exposures 1000000 --plain-chars doc` (over 20 minutes in all).

Run from the project root:

    .venv/bin/python benchmarks/train.py [--exposures 300000] [--answers 20000]
        [--viewers 20000] [--epochs 1] [--skip-fill] [--plain-chars word|doc]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    # The parent's imports are made inside its functions, so that the plain child (this file
    # with --plain-child) loads numpy, scipy, scikit-learn and pyarrow only.
    import psycopg

ROOT = Path(__file__).resolve().parent.parent
PROJECT_SLUG = "bench-train"
SEED = 20260214
SPREAD = timedelta(days=60)
NEWEST_AGE = timedelta(days=2)
LOVE_RATE = 0.08
VOCABULARY = 30_000
RATIO_TARGET = 1.1
MEMORY_TARGET_MIB = 2048.0
AUC_TOLERANCE = 0.01
MIB = 1024 * 1024
COPY_ROWS = 50_000  # exposures written to COPY per write
FINGERPRINT_KEY = "bench_train_fill"

# The plain script's settings that must be the platform's (checked against
# rewardmodels.training before the run): the model and the hashed views.
TOKEN_PATTERN = r"(?u)\b\w\w+\b|" + "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff]"
WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (3, 5)
ETA0 = 0.3
SGD_SETTINGS: dict[str, Any] = {
    "loss": "log_loss",
    "penalty": "l2",
    "learning_rate": "constant",
    "eta0": ETA0,
    "average": True,
    "random_state": 0,
}

# --- the planted signal ------------------------------------------------------------------------

EMOJIS = ("😊", "🎉", "👍", "🚀")
SIGN_OFFS = (
    "Hope this helps!",
    "Happy coding!",
    "Good luck!",
    "Let me know if you have any questions.",
)
# name: (share of answers, effect on the log-odds of a Love)
MARKERS: dict[str, tuple[float, float]] = {
    "emoji": (0.15, 1.2),
    "sign_off": (0.20, 1.0),
    "flattery": (0.10, 0.6),
    "bullets": (0.20, 0.4),
    "unfortunately": (0.12, -1.0),
}
GOOD_RANKS = range(150, 190)  # vocabulary ranks whose words raise the log-odds
BAD_RANKS = range(190, 230)  # ... and lower it
WORD_EFFECT = 0.4  # per good (bad) word, up to WORD_EFFECT_CAP of them
WORD_EFFECT_CAP = 3
ANSWER_NOISE = 0.3  # log-odds noise per answer (not in its text)
VIEWER_NOISE = 0.4  # log-odds offset per viewer
VIEWER_ACTIVITY_SIGMA = 1.0  # lognormal spread of the viewers' exposure counts

CONSONANTS = "bcdfghklmnprstvwz"
VOWELS = "aeiou"


def make_vocabulary(rng: np.random.Generator, size: int) -> list[str]:
    """`size` distinct pseudo-words of one to three syllables, in a random order (= rank)."""
    seen: set[str] = set()
    words: list[str] = []
    while len(words) < size:
        syllables = int(rng.integers(1, 4))
        letters = rng.integers(0, 1000, size=3 * syllables).tolist()
        word = "".join(
            CONSONANTS[letters[3 * s] % len(CONSONANTS)]
            + VOWELS[letters[3 * s + 1] % len(VOWELS)]
            + (CONSONANTS[letters[3 * s + 2] % len(CONSONANTS)] if letters[3 * s + 2] < 400 else "")
            for s in range(syllables)
        )
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


@dataclass
class Texts:
    prompts: list[str]
    responses: list[str]
    logits: np.ndarray  # planted log-odds of each answer, before the base and the viewer


def make_texts(rng: np.random.Generator, count: int) -> Texts:
    """The answers' prompts and responses and the log-odds their markers plant."""
    vocabulary = make_vocabulary(rng, VOCABULARY)
    zipf = 1.0 / (np.arange(VOCABULARY) + 10.0)
    zipf /= zipf.sum()
    lengths = rng.integers(40, 121, size=count)
    word_ids = rng.choice(VOCABULARY, size=int(lengths.sum()), p=zipf)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    good = np.zeros(VOCABULARY, dtype=np.int64)
    good[list(GOOD_RANKS)] = 1
    bad = np.zeros(VOCABULARY, dtype=np.int64)
    bad[list(BAD_RANKS)] = 1
    logits = WORD_EFFECT * (
        np.minimum(np.add.reduceat(good[word_ids], starts), WORD_EFFECT_CAP)
        - np.minimum(np.add.reduceat(bad[word_ids], starts), WORD_EFFECT_CAP)
    )
    flags = {name: rng.random(count) < share for name, (share, _) in MARKERS.items()}
    for name, (_, effect) in MARKERS.items():
        logits = logits + effect * flags[name]
    logits = logits + rng.normal(0.0, ANSWER_NOISE, size=count)

    prompt_lengths = rng.integers(6, 25, size=count)
    prompt_ids = rng.choice(VOCABULARY, size=int(prompt_lengths.sum()), p=zipf).tolist()
    sentence_lengths = rng.integers(6, 16, size=int(lengths.sum())).tolist()
    extra = rng.integers(0, 1 << 30, size=(count, 4)).tolist()
    bullet_ids = rng.choice(VOCABULARY, size=(count, 12), p=zipf).tolist()
    words = [vocabulary[i] for i in word_ids.tolist()]
    prompts: list[str] = []
    responses: list[str] = []
    position = prompt_position = sentence = 0
    for i in range(count):
        end = position + int(lengths[i])
        sentences = []
        while position < end:
            size = min(sentence_lengths[sentence], end - position)
            sentence += 1
            chunk = words[position : position + size]
            position += size
            sentences.append(" ".join([chunk[0].capitalize(), *chunk[1:]]) + ".")
        if flags["emoji"][i]:
            where = extra[i][0] % len(sentences)
            sentences[where] += " " + EMOJIS[extra[i][1] % len(EMOJIS)]
        text = " ".join(sentences)
        if flags["bullets"][i]:
            items = [" ".join(vocabulary[w] for w in bullet_ids[i][k : k + 4]) for k in (0, 4, 8)]
            text += "\n" + "\n".join(f"- {item}" for item in items)
        if flags["unfortunately"][i]:
            text = "Unfortunately, " + text[0].lower() + text[1:]
        if flags["flattery"][i]:
            text = "Great question! " + text
        if flags["sign_off"][i]:
            text += "\n\n" + SIGN_OFFS[extra[i][2] % len(SIGN_OFFS)]
        responses.append(text)
        prompt_end = prompt_position + int(prompt_lengths[i])
        prompt = " ".join(vocabulary[w] for w in prompt_ids[prompt_position:prompt_end])
        prompt_position = prompt_end
        prompts.append(prompt.capitalize() + "?")
    return Texts(prompts, responses, logits)


@dataclass
class Plan:
    """The exposures, oldest first."""

    answer: np.ndarray  # index into the answers
    viewer: np.ndarray  # index of the viewer
    shown_at: np.ndarray  # microseconds since the epoch
    loved: np.ndarray  # bool: a Love reaction follows
    love_delay: np.ndarray  # microseconds from the exposure to the Love
    probability: np.ndarray  # the planted P[Love]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def make_plan(
    rng: np.random.Generator, logits: np.ndarray, viewers: int, exposures: int, newest: datetime
) -> Plan:
    answers = len(logits)
    activity = rng.lognormal(0.0, VIEWER_ACTIVITY_SIGMA, size=viewers)
    viewer = rng.choice(viewers, size=exposures, p=activity / activity.sum())
    seen = np.bincount(viewer, minlength=viewers)
    if seen.max() > answers:
        sys.exit(f"a viewer has {seen.max()} exposures but there are only {answers} answers")
    # A viewer's k-th exposure shows the answer after its previous one in a shuffled order of
    # all answers, from a random start of its own: no viewer sees an answer twice.
    order = np.argsort(viewer, kind="stable")
    first = np.concatenate([[0], np.cumsum(seen)[:-1]])
    nth = np.empty(exposures, dtype=np.int64)
    nth[order] = np.arange(exposures) - first[viewer[order]]
    start = rng.integers(0, answers, size=viewers)
    answer = rng.permutation(answers)[(start[viewer] + nth) % answers]

    spread_us = int(SPREAD / timedelta(microseconds=1))
    newest_us = int(newest.timestamp() * 1_000_000)
    shown_at = newest_us - rng.integers(0, spread_us, size=exposures)
    viewer_offset = rng.normal(0.0, VIEWER_NOISE, size=viewers)
    raw = logits[answer] + viewer_offset[viewer]
    # The base log-odds that makes the mean planted probability LOVE_RATE (bisection).
    low, high = -15.0, 5.0
    for _ in range(40):
        base = (low + high) / 2
        low, high = (base, high) if sigmoid(base + raw).mean() < LOVE_RATE else (low, base)
    probability = sigmoid(base + raw)
    loved = rng.random(exposures) < probability
    love_delay = rng.integers(60_000_000, 3_600_000_000, size=exposures)
    by_time = np.argsort(shown_at, kind="stable")
    return Plan(
        answer[by_time],
        viewer[by_time],
        shown_at[by_time],
        loved[by_time],
        love_delay[by_time],
        probability[by_time],
    )


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC by the rank-sum (Mann-Whitney) formula, ties counted half."""
    from scipy.stats import rankdata

    positive = labels.astype(bool)
    n_positive = int(positive.sum())
    n_negative = len(labels) - n_positive
    ranks = rankdata(scores)
    return float(
        (ranks[positive].sum() - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative)
    )


def temporal_split_index(rows: int, test_fraction: float) -> int:
    """As rewardmodels.training.temporal_split_index (checked against it before the runs)."""
    if rows < 2:
        return rows
    return min(max(math.floor(rows * (1 - test_fraction) + 0.5), 1), rows - 1)


# --- setup and fill ----------------------------------------------------------------------------


def timestamps(microseconds: np.ndarray) -> list[str]:
    """ISO 8601 UTC text for PostgreSQL, vectorised."""
    text = np.datetime_as_string(microseconds.astype("datetime64[us]"), unit="us")
    return [f"{t}+00" for t in text.tolist()]


@dataclass
class Filled:
    seconds: float
    loves: int
    oracle_auc: float  # of the planted probability on the test part
    text_auc: float  # of the answers' part of it (what the texts can tell) on the test part


RESET_MODELS = (
    "UPDATE rewardmodels_rewardmodel SET active_run_id = NULL WHERE project_id = %(project)s",
    "DELETE FROM rewardmodels_trainingrun WHERE project_id = %(project)s",
    "DELETE FROM rewardmodels_rewardmodel WHERE project_id = %(project)s",
)

REACTIONS_FROM_EVENTS = """
INSERT INTO feedback_reaction (project_id, answer_id, viewer, kind, source, event_id, created_at)
SELECT project_id, answer_id, viewer, 'love', source, id, occurred_at
FROM feedback_feedbackevent
WHERE project_id = %(project)s AND type = 'reaction'
ORDER BY id
"""

# Exposures and events whose answer is not the project's, reactions whose event is missing or is
# about another answer or viewer.
DANGLING_REFERENCES = """
SELECT
    (SELECT count(*) FROM feedback_exposure x
     LEFT JOIN feedback_answer a ON a.id = x.answer_id AND a.project_id = x.project_id
     WHERE x.project_id = %(project)s AND a.id IS NULL),
    (SELECT count(*) FROM feedback_reaction r
     LEFT JOIN feedback_feedbackevent e
         ON e.id = r.event_id AND e.answer_id = r.answer_id AND e.viewer = r.viewer
     WHERE r.project_id = %(project)s AND e.id IS NULL),
    (SELECT count(*) FROM feedback_feedbackevent e
     LEFT JOIN feedback_answer a ON a.id = e.answer_id AND a.project_id = e.project_id
     WHERE e.project_id = %(project)s AND a.id IS NULL)
"""

# What p_love must label, counted here without the dataset's code.
EXISTING_COUNTS = """
SELECT
    (SELECT count(*) FROM feedback_answer WHERE project_id = %(project)s),
    (SELECT metadata -> 'bench_train_fill' FROM feedback_answer WHERE project_id = %(project)s
     ORDER BY id LIMIT 1),
    (SELECT count(DISTINCT viewer) FROM feedback_exposure WHERE project_id = %(project)s),
    count(*),
    count(*) FILTER (WHERE x.shown_at <= now() - p.love_window),
    count(*) FILTER (WHERE EXISTS (
        SELECT 1 FROM feedback_reaction r
        WHERE r.answer_id = x.answer_id AND r.viewer = x.viewer AND r.kind = 'love'
          AND r.removed_at IS NULL
          AND r.created_at BETWEEN x.shown_at AND x.shown_at + p.love_window))
FROM feedback_exposure x JOIN feedback_project p ON p.id = x.project_id
WHERE x.project_id = %(project)s
"""


@dataclass
class Existing:
    answers: int
    fingerprint: dict[str, Any] | None  # the parameters of the fill that made the rows
    viewers: int
    exposures: int
    labelled: int
    loves: int


def existing(conn: psycopg.Connection[Any], project_id: int) -> Existing:
    row = conn.execute(EXISTING_COUNTS, {"project": project_id}).fetchone()
    assert row is not None
    return Existing(*row)


def copy_answers(
    conn: psycopg.Connection[Any],
    project_id: int,
    texts: Texts,
    created_at: datetime,
    fingerprint: dict[str, Any],
) -> list[int]:
    """COPY the answers with ids reserved from the sequence; their ids, in order. Each one's
    metadata records the fill's parameters (what --skip-fill compares)."""
    count = len(texts.responses)
    metadata = json.dumps({FINGERPRINT_KEY: fingerprint})
    ids = [
        row[0]
        for row in conn.execute(
            "SELECT nextval(pg_get_serial_sequence('feedback_answer', 'id')) "
            "FROM generate_series(1, %s)",
            [count],
        ).fetchall()
    ]
    with conn.cursor().copy(
        "COPY feedback_answer (id, project_id, external_id, conversation, user_ref, prompt, "
        "prompt_hash, response, model, model_version, metadata, created_at) FROM STDIN"
    ) as copy:
        for i, (answer_id, prompt, response) in enumerate(
            zip(ids, texts.prompts, texts.responses, strict=True)
        ):
            prompt_json = json.dumps([{"role": "user", "content": prompt}], ensure_ascii=False)
            copy.write_row(
                (
                    answer_id,
                    project_id,
                    f"train-{i}",
                    "",
                    f"user-{i % 500}",
                    prompt_json,
                    hashlib.sha256(prompt_json.encode()).hexdigest(),
                    response,
                    "bench-model",
                    ("2025-01", "2025-06")[i % 2],
                    metadata,
                    created_at,
                )
            )
    return ids


def copy_exposures(
    conn: psycopg.Connection[Any], project_id: int, answer_ids: np.ndarray, plan: Plan
) -> None:
    """COPY the exposures (no feedback event: Exposure.event is optional), oldest first."""
    with conn.cursor().copy(
        "COPY feedback_exposure (project_id, answer_id, viewer, surface, source, shown_at, "
        "window_start) FROM STDIN"
    ) as copy:
        for start in range(0, len(plan.answer), COPY_ROWS):
            part = slice(start, start + COPY_ROWS)
            rows = zip(
                answer_ids[plan.answer[part]].tolist(),
                plan.viewer[part].tolist(),
                timestamps(plan.shown_at[part]),
                strict=True,
            )
            copy.write(
                "".join(
                    f"{project_id}\t{a}\tviewer-{v}\tanswer\tapi\t{t}\t{t}\n" for a, v, t in rows
                )
            )


def copy_love_events(
    conn: psycopg.Connection[Any], project_id: int, answer_ids: np.ndarray, plan: Plan
) -> None:
    """COPY a reaction event for every loved exposure; the reactions are made from them."""
    loved = np.flatnonzero(plan.loved)
    at = timestamps(plan.shown_at[loved] + plan.love_delay[loved])
    with conn.cursor().copy(
        "COPY feedback_feedbackevent (project_id, event_id, type, answer_id, viewer, source, "
        "occurred_at, received_at, data) FROM STDIN"
    ) as copy:
        rows = zip(
            loved.tolist(),
            answer_ids[plan.answer[loved]].tolist(),
            plan.viewer[loved].tolist(),
            at,
            strict=True,
        )
        copy.write(
            "".join(
                f'{project_id}\tlove-{n}\treaction\t{a}\tviewer-{v}\tapi\t{t}\t{t}\t{{"reaction": '
                f'"love"}}\n'
                for n, a, v, t in rows
            )
        )


def fill(database_url: str, project_id: int, wanted: dict[str, int]) -> Filled:
    """Replace the bench project's rows with fresh ones in one transaction."""
    from common import refill

    start = time.perf_counter()
    rng = np.random.default_rng(SEED)
    newest = datetime.now(UTC) - NEWEST_AGE
    texts = make_texts(rng, wanted["answers"])
    plan = make_plan(rng, texts.logits, wanted["viewers"], wanted["exposures"], newest)
    test = slice(temporal_split_index(wanted["exposures"], 0.2), None)
    oracle = auc(plan.loved[test], plan.probability[test])
    text_oracle = auc(plan.loved[test], texts.logits[plan.answer[test]])
    loves = int(plan.loved.sum())
    with refill(database_url, project_id, DANGLING_REFERENCES) as conn:
        fingerprint = {**wanted, "loves": loves, "oracle_auc": oracle, "text_auc": text_oracle}
        created_at = newest - SPREAD - timedelta(days=1)
        ids = copy_answers(conn, project_id, texts, created_at, fingerprint)
        answer_ids = np.asarray(ids, dtype=np.int64)
        copy_exposures(conn, project_id, answer_ids, plan)
        copy_love_events(conn, project_id, answer_ids, plan)
        conn.execute(REACTIONS_FROM_EVENTS, {"project": project_id})
    return Filled(time.perf_counter() - start, loves, oracle, text_oracle)


# --- children ----------------------------------------------------------------------------------


@dataclass
class Child:
    stdout: str
    stderr: str
    returncode: int
    wall_seconds: float
    cpu_seconds: float
    peak_mib: float
    postgres_cpu_seconds: float


def run_child(command: list[str], env: dict[str, str], database: str) -> Child:
    """Run a child to its end; its own peak RSS and CPU come from wait4, not RUSAGE_CHILDREN
    (whose ru_maxrss is the largest of all children so far)."""
    from common import BackendCpu

    with tempfile.TemporaryFile() as errors, BackendCpu(database) as backends:
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=errors)
        assert child.stdout is not None
        stdout = child.stdout.read()
        child.stdout.close()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    return Child(
        stdout.decode(errors="replace"),
        stderr,
        child.returncode,
        wall,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,  # KiB on Linux
        backends.seconds(),
    )


def last_json(name: str, child: Child) -> dict[str, Any]:
    if child.returncode != 0:
        sys.exit(
            f"{name} exited with {child.returncode}:\n{child.stdout[-2000:]}{child.stderr[-4000:]}"
        )
    lines = child.stdout.strip().splitlines()
    if not lines:
        sys.exit(f"{name} printed nothing:\n{child.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# Run by `manage.py shell -c`: a new P[Love] reward model and run, trained by the service the
# Celery task calls. Prints the outcome as JSON.
PLATFORM_RUN = """
import json, os, time
from feedback.models import Project
from rewardmodels import services
from rewardmodels.models import Objective, TrainingRun

project = Project.objects.get(slug=os.environ["TRAIN_BENCH_PROJECT"])
model = services.reward_model_create(
    project=project, name=os.environ["TRAIN_BENCH_MODEL"], objective=Objective.P_LOVE,
    config=json.loads(os.environ["TRAIN_BENCH_CONFIG"]), created_by=None,
)
# As services.training_run_start, without sending the task.
run = TrainingRun.objects.create(
    reward_model=model, project_id=model.project_id, config=model.config, requested_by=None,
    message="Waiting for a worker...",
)
start = time.perf_counter()
services.training_run_execute(run_id=run.pk)
seconds = time.perf_counter() - start
run.refresh_from_db()
metrics = run.metrics
print(json.dumps({
    "seconds": seconds,
    "status": run.status,
    "error": run.error,
    "config": run.config,
    "roc_auc": metrics.get("roc_auc"),
    "base_rate": metrics.get("base_rate"),
    "rows_train": metrics.get("rows_train"),
    "rows_test": metrics.get("rows_test"),
    "epochs": metrics.get("epochs"),
    "train_seconds": metrics.get("train_seconds"),
    "artifact_bytes": run.artifact.size if run.artifact else 0,
}))
"""

# Run by `manage.py shell -c`: the COPY of the p_love rows the training run reads (the dataset's
# own queryset, ordered as the run orders it), with its parameters interpolated.
EXPORT_STATEMENT = """
import json, os
from django.db import connection
from django.utils import timezone
from feedback.datasets.definitions import Filters, p_love_rows
from feedback.models import Project

project = Project.objects.get(slug=os.environ["TRAIN_BENCH_PROJECT"])
rows = p_love_rows(project, Filters(), "text", timezone.now())
names = json.loads(os.environ["TRAIN_BENCH_COLUMNS"])
queryset = rows.records.order_by("shown_at", "id").values(
    **{f"c_{name}": rows.columns[name] for name in names}
)
sql, params = queryset.query.sql_with_params()
outer = ", ".join(
    f'q."c_{name}"::int AS "{name}"' if name == "label" else f'q."c_{name}" AS "{name}"'
    for name in names
)
statement = f"COPY (SELECT {outer} FROM ({sql}) q) TO STDOUT (FORMAT csv, HEADER)"
with connection.cursor() as cursor:
    print(json.dumps(cursor.cursor.mogrify(statement, params)))
"""
EXPORT_COLUMNS = ("prompt", "response", "label", "shown_at", "user_ref")


def export_csv(database_url: str, env: dict[str, str], path: Path) -> float:
    """Write the p_love rows to `path` as CSV; seconds taken. (The plain script counts them.)"""
    import psycopg
    from common import manage_json

    start = time.perf_counter()
    columns_env = {**env, "TRAIN_BENCH_COLUMNS": json.dumps(EXPORT_COLUMNS)}
    statement: str = manage_json(columns_env, EXPORT_STATEMENT)
    with (
        psycopg.connect(database_url) as conn,
        path.open("wb") as file,
        conn.cursor().copy(statement) as copy,
    ):
        for block in copy:
            file.write(block)
    return time.perf_counter() - start


def check_plain_settings() -> None:
    """The plain script's constants must be the platform's defaults."""
    from sklearn.linear_model import SGDClassifier

    from rewardmodels import training

    config = training.FeatureConfig()
    expected = {
        "token pattern": (TOKEN_PATTERN, training.TOKEN_PATTERN),
        "word n-grams": (WORD_NGRAMS, config.word_ngrams),
        "char n-grams": (CHAR_NGRAMS, config.char_ngrams),
        "char view": (True, config.use_char),
        "split": (temporal_split_index(1_000_003, 0.2), training.temporal_split_index(1_000_003)),
        "classifier": (
            SGDClassifier(alpha=1e-5, **SGD_SETTINGS).get_params(),
            training.new_p_love_classifier(alpha=1e-5).get_params(),
        ),
    }
    differ = [f"{name}: {a!r} != {b!r}" for name, (a, b) in expected.items() if a != b]
    if differ:
        sys.exit("the plain script no longer mirrors rewardmodels.training: " + "; ".join(differ))


# --- the plain script (run as `train.py --plain-child`) ----------------------------------------


def plain_child(argv: list[str]) -> None:
    """Read the CSV, train and evaluate with plain scikit-learn; print the outcome as JSON."""
    import pyarrow as pa
    import pyarrow.csv as pv
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import normalize

    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--test-fraction", type=float, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--alpha", type=float, required=True)
    parser.add_argument("--n-features", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--chars", choices=("doc", "word"), required=True)
    args = parser.parse_args(argv)

    common: dict[str, Any] = {
        "n_features": args.n_features,
        "alternate_sign": False,
        "dtype": np.float32,
        "norm": "l2",
    }
    words = HashingVectorizer(ngram_range=WORD_NGRAMS, token_pattern=TOKEN_PATTERN, **common)
    chars = HashingVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, **common)
    prompt_words = HashingVectorizer(token_pattern=TOKEN_PATTERN, **common)
    raw_chars = HashingVectorizer(
        analyzer="char_wb", ngram_range=CHAR_NGRAMS, **(common | {"norm": None})
    )

    def char_block(responses: list[str]) -> Any:
        if args.chars == "doc":
            return chars.transform(responses)
        # char_wb n-grams never cross whitespace: hash each distinct word once, then sum.
        vocabulary: dict[str, int] = {}
        ids: list[int] = []
        indptr = [0]
        for text in responses:
            ids += [vocabulary.setdefault(w, len(vocabulary)) for w in text.lower().split()]
            indptr.append(len(ids))
        counts = sp.csr_matrix(
            (np.ones(len(ids)), ids, indptr), shape=(len(responses), len(vocabulary))
        )
        per_word = raw_chars.transform(list(vocabulary)).astype(np.float64)
        return normalize(counts @ per_word).astype(np.float32)

    # The ten format columns (length, bullets, emojis, sign-offs, flattery...) come from the
    # platform's pure function (numpy and re only, no Django): both sides then fit the same
    # model, and the comparison measures the platform's path, not a different feature set.
    sys.path.insert(0, str(ROOT))
    from rewardmodels.training import format_features

    def features(prompts: list[str], responses: list[str]) -> Any:
        return sp.hstack(
            [
                words.transform(responses),
                char_block(responses),
                prompt_words.transform(prompts),
                sp.csr_matrix(format_features(responses), dtype=np.float32),
            ],
            format="csr",
        )

    split = temporal_split_index(args.rows, args.test_fraction)
    spent = {"read": 0.0, "featurize": 0.0, "fit": 0.0, "predict": 0.0}

    def batches(stop: int) -> Iterator[tuple[list[str], list[str], np.ndarray]]:
        """Rows [0, stop) in batches of batch_size that never straddle the split; with stop at
        the end, checks that the file has no more rows."""
        reader = pv.open_csv(
            args.path,
            # Small blocks: with 16 MiB ones the reader's read-ahead alone peaks near 600 MiB.
            read_options=pv.ReadOptions(block_size=1 << 20),
            parse_options=pv.ParseOptions(newlines_in_values=True),
            convert_options=pv.ConvertOptions(
                include_columns=["prompt", "response", "label"],
                column_types={"prompt": pa.string(), "response": pa.string(), "label": pa.int8()},
            ),
        )
        blocks = iter(reader)
        prompts: list[str] = []
        responses: list[str] = []
        labels: list[int] = []
        done = 0
        while done < stop:
            size = min(args.batch_size, (split if done < split else stop) - done)
            while len(responses) < size:
                block = next(blocks, None)
                if block is None:
                    sys.exit(f"the file has {done + len(responses)} rows, expected {args.rows}")
                prompts += block.column("prompt").to_pylist()
                responses += block.column("response").to_pylist()
                labels += block.column("label").to_pylist()
            yield prompts[:size], responses[:size], np.asarray(labels[:size], dtype=np.int64)
            del prompts[:size], responses[:size], labels[:size]
            done += size
        if stop == args.rows:
            extra = len(responses) + sum(block.num_rows for block in blocks)
            if extra:
                sys.exit(f"the file has {args.rows + extra} rows, expected {args.rows}")

    def timed(rows: Iterator[tuple[list[str], list[str], np.ndarray]]) -> Iterator[Any]:
        """The batches, with the time spent reading them added to spent["read"]."""
        while True:
            before = time.perf_counter()
            batch = next(rows, None)
            spent["read"] += time.perf_counter() - before
            if batch is None:
                return
            yield batch

    start = time.perf_counter()
    classifier = SGDClassifier(alpha=args.alpha, **SGD_SETTINGS)
    test_labels: list[np.ndarray] = []
    test_scores: list[np.ndarray] = []
    loves = 0
    for epoch in range(args.epochs):
        last = epoch == args.epochs - 1
        done = 0
        for prompts, responses, labels in timed(batches(args.rows if last else split)):
            if last:
                loves += int(labels.sum())
            before = time.perf_counter()
            x = features(prompts, responses)
            after = time.perf_counter()
            spent["featurize"] += after - before
            if done < split:
                classifier.partial_fit(x, labels, classes=np.array([0, 1]))
                spent["fit"] += time.perf_counter() - after
            else:
                test_labels.append(labels)
                test_scores.append(classifier.predict_proba(x)[:, 1])
                spent["predict"] += time.perf_counter() - after
            done += len(labels)
    y = np.concatenate(test_labels)
    roc_auc = float(roc_auc_score(y, np.concatenate(test_scores)))
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "seconds": seconds,
                "roc_auc": roc_auc,
                "rows_train": split,
                "rows_test": len(y),
                "loves": loves,
                "base_rate": float(y.mean()),
                "spent": spent,
            }
        )
    )


# --- main --------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--exposures", type=int, default=300_000, help="labelled rows in all")
    parser.add_argument("--answers", type=int, default=20_000, help="answers the rows show")
    parser.add_argument("--viewers", type=int, default=20_000, help="viewers the rows show to")
    parser.add_argument("--epochs", type=int, default=1, help="the reward model's epochs")
    parser.add_argument(
        "--skip-fill", action="store_true", help="reuse the project's rows if the counts match"
    )
    parser.add_argument(
        "--plain-chars",
        choices=("doc", "word"),
        default="word",
        help="plain char n-grams: HashingVectorizer on each response, or on each distinct word",
    )
    args = parser.parse_args()
    if args.exposures < 100 or args.answers < 1 or args.viewers < 1:
        parser.error("need --exposures >= 100, --answers >= 1, --viewers >= 1")
    if not 1 <= args.epochs <= 50:
        parser.error("--epochs must be from 1 to 50")
    return args


def main() -> None:
    import psycopg
    from common import bench_setup

    args = parse_args()
    check_plain_settings()
    media = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        bench = bench_setup(
            PROJECT_SLUG,
            extra_env={"MEDIA_ROOT": str(media), "TRAIN_BENCH_PROJECT": PROJECT_SLUG},
        )
        database_url, database, env = bench.database_url, bench.database, bench.env
        project_id = bench.project_id
        with psycopg.connect(database_url, autocommit=True) as conn:
            for statement in RESET_MODELS:
                conn.execute(statement, {"project": project_id})
            found = existing(conn, project_id)
        wanted = {
            "seed": SEED,
            "answers": args.answers,
            "viewers": args.viewers,
            "exposures": args.exposures,
        }
        fingerprint = found.fingerprint or {}
        reuse = args.skip_fill and {k: fingerprint.get(k) for k in wanted} == wanted
        if reuse:
            filled = Filled(
                0.0, fingerprint["loves"], fingerprint["oracle_auc"], fingerprint["text_auc"]
            )
        else:
            print(
                f"filling {args.exposures:,} exposures of {args.answers:,} answers to "
                f"{args.viewers:,} viewers...",
                flush=True,
            )
            filled = fill(database_url, project_id, wanted)
            with psycopg.connect(database_url) as conn:
                found = existing(conn, project_id)
        planned = (args.answers, args.exposures, args.exposures, filled.loves)
        if (found.answers, found.exposures, found.labelled, found.loves) != planned:
            sys.exit(f"the project's rows are not the planned ones {planned}: {found}")
        fill_text = "reused" if reuse else f"{filled.seconds:.1f}s"
        print(
            f"rows={args.exposures:,} answers={found.answers:,} viewers={found.viewers:,} "
            f"loves={found.loves:,} ({found.loves / args.exposures:.2%}) epochs={args.epochs} "
            f"fill={fill_text}",
            flush=True,
        )
        print(
            f"planted P[Love] on the test part: roc_auc={filled.oracle_auc:.4f}; its answer part "
            f"alone (what a text model can learn at best): roc_auc={filled.text_auc:.4f}"
        )

        print("platform: training...", flush=True)
        platform_env = {
            **env,
            "TRAIN_BENCH_MODEL": f"bench-train-{int(time.time())}",
            "TRAIN_BENCH_CONFIG": json.dumps({"epochs": args.epochs}),
        }
        command = [sys.executable, "manage.py", "shell", "-c", PLATFORM_RUN]
        platform_child = run_child(command, platform_env, database)
        platform = last_json("platform", platform_child)
        if platform["status"] != "succeeded":
            sys.exit(f"platform run {platform['status']}: {platform['error']}")
        config = platform["config"]
        total = platform["rows_train"] + platform["rows_test"]

        csv_path = media / "p_love.csv"
        export_seconds = export_csv(database_url, env, csv_path)
        print(
            f"export: {csv_path.stat().st_size / MIB:,.0f} MiB of CSV in {export_seconds:.1f}s "
            "(not timed)",
            flush=True,
        )

        print("plain: training...", flush=True)
        if not config["use_char"] or config["model"] or config["model_version"]:
            sys.exit(f"the plain script does not mirror this config: {config}")
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--plain-child",
            str(csv_path),
            f"--rows={total}",
            f"--test-fraction={config['test_fraction']}",
            f"--batch-size={config['batch_size']}",
            f"--alpha={config['alpha']}",
            f"--n-features={2 ** int(config['n_features_log2'])}",
            f"--epochs={platform['epochs']}",
            f"--chars={args.plain_chars}",
        ]
        plain_child_run = run_child(command, env, database)
        plain = last_json("plain", plain_child_run)
        split = (plain["rows_train"], plain["rows_test"], plain["loves"])
        if split != (platform["rows_train"], platform["rows_test"], found.loves):
            sys.exit(
                f"the plain script read {split[0]} + {split[1]} rows with {split[2]} loves; the "
                f"platform {platform['rows_train']} + {platform['rows_test']}, {found.loves} "
                "loves were planted"
            )
    finally:
        shutil.rmtree(media, ignore_errors=True)

    report(args, platform, platform_child, plain, plain_child_run)


def report(
    args: argparse.Namespace,
    platform: dict[str, Any],
    platform_child: Child,
    plain: dict[str, Any],
    plain_child_run: Child,
) -> None:
    print(
        f"split: train {platform['rows_train']:,} rows, test {platform['rows_test']:,} "
        f"(test Love rate {platform['base_rate']:.2%})"
    )
    for name, result, child in (
        ("platform", platform, platform_child),
        ("plain   ", plain, plain_child_run),
    ):
        print(
            f"{name}: {result['seconds']:8.1f} s  roc_auc={result['roc_auc']:.4f}  "
            f"peak RSS {child.peak_mib:7.1f} MiB"
        )
        print(
            f"          process: wall {child.wall_seconds:.1f} s, cpu {child.cpu_seconds:.1f} s; "
            f"postgres cpu {child.postgres_cpu_seconds:.1f} s"
        )
    spent = ", ".join(f"{k} {v:.1f}" for k, v in plain["spent"].items())
    print(f"          plain ({args.plain_chars} char n-grams) seconds: {spent}")
    difference = platform["roc_auc"] - plain["roc_auc"]
    peak = max(platform_child.peak_mib, plain_child_run.peak_mib)
    ratio = platform["seconds"] / plain["seconds"]
    print(f"auc difference (platform - plain): {difference:+.4f} (tolerance {AUC_TOLERANCE})")
    meets = ratio <= RATIO_TARGET and peak <= MEMORY_TARGET_MIB and abs(difference) <= AUC_TOLERANCE
    print(
        f"target: ratio <= {RATIO_TARGET}, peak RSS <= {MEMORY_TARGET_MIB:.0f} MiB, "
        f"|auc difference| <= {AUC_TOLERANCE}: {'meets' if meets else 'misses'}"
    )
    print(f"ratio={ratio:.3f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--plain-child"]:
        plain_child(sys.argv[2:])
    else:
        main()
