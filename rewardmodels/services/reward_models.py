"""Reward models: creating them, training runs (queued by the API or a page, executed by a
Celery task on the `training` queue), recovery of runs whose worker died, picking the active
version, and scoring.

The data comes from the feedback app's dataset definitions, so a P[Love] example here is
exactly a row of the `p_love` dataset and a preference pair a row of `dpo`. The fitting, the
metrics and the artifact format are pure code in `rewardmodels.training`.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Count, IntegerField, Max, Q, QuerySet, Sum
from django.db.models.functions import Cast
from django.utils import timezone

from config.celery_app import Queue
from feedback.core.databases import heavy_reads
from feedback.core.errors import NotReady, ValidationFailed
from feedback.core.jobs import (
    Attempt,
    JobFailed,
    JobKind,
    JobStatus,
    job_cancel,
    job_enqueue,
    job_execute,
    seconds_setting,
)
from feedback.core.storage import local_copy
from feedback.core.validators import bidi_problem
from feedback.datasets.definitions import DATASETS, Filters, Rows, p_love_rows
from feedback.models import Project, WebhookEventType
from feedback.services.webhooks import JobEvents
from rewardmodels import training
from rewardmodels.models import Objective, RewardModel, TrainingRun

TRAINING_RUN_JOB = JobKind(
    name="training_run",
    model=TrainingRun,
    task="rewardmodels.tasks.training_run_execute",
    queue=Queue.TRAINING,
    stale_after=seconds_setting("TRAINING_STALE_SECONDS"),
    max_attempts=2,  # a run whose worker died is tried once more, then marked failed
    gave_up="The worker training this run stopped (it was retried once).",
    on_claim={"progress": 0.01, "message": "Reading the data…"},
    select_related=("reward_model__project",),
)
IN_MEMORY_ROWS = 100_000  # up to this many training rows are read once and kept for epochs
# The alpha and the feature group are chosen on the newest fifth of the training part (the
# validation slice), each candidate fitted on the rows before it, when the training part has at
# most SELECT_ALL_ROWS rows: that is where a text model can lose to a ruler. A larger training
# part keeps the configured alpha and all features: a choice made on a sample favours simpler
# models than the full data supports. The candidates are still compared there, on a sample of
# the newest rows (a twentieth of them, 2,000 to 10,000), and reported, so the run shows how
# close the length-only model comes; that costs a few percent of one epoch (measured at 100k
# rows: about 5%).
SELECT_ALL_ROWS = 5_000
SELECT_MIN_ROWS = 2_000
SELECT_ROWS = 10_000
VALIDATION_FRACTION = 0.2
MIN_VALIDATION_ROWS = 20
PER_VIEWER_MIN_ROWS = 10  # held-out rows a viewer needs for a per-viewer ROC-AUC
MAX_SCORE_ITEMS = 1000

# name: (default, check, message). `None` as a default means "decided from the data".
P_LOVE_CONFIG: dict[str, tuple[Any, Callable[[Any], bool], str]] = {
    "test_fraction": (0.2, lambda v: _number(v) and 0.05 <= v <= 0.5, "between 0.05 and 0.5"),
    "epochs": (None, lambda v: v is None or (_integer(v) and 1 <= v <= 50), "from 1 to 50"),
    "alpha": (1e-6, lambda v: _number(v) and 1e-9 <= v <= 1.0, "between 1e-9 and 1"),
    "viewer_cap": (200, lambda v: _integer(v) and 1 <= v <= 1_000_000, "from 1 to 1000000"),
    "uniform_factor": (0.25, lambda v: _number(v) and 0 <= v <= 1, "between 0 and 1"),
    "batch_size": (10_000, lambda v: _integer(v) and 100 <= v <= 100_000, "from 100 to 100000"),
    "n_features_log2": (18, lambda v: _integer(v) and 10 <= v <= 22, "from 10 to 22"),
    "use_char": (True, lambda v: isinstance(v, bool), "true or false"),
    "model": ("", lambda v: isinstance(v, str) and len(v) <= 200, "a model name"),
    "model_version": ("", lambda v: isinstance(v, str) and len(v) <= 200, "a model version"),
    "selection": (
        "validation",
        lambda v: v in ("validation", "off"),
        '"validation" (alpha and feature groups chosen on the newest training rows) or "off"',
    ),
    "personalization": (
        "none",
        lambda v: v in ("none", "viewer"),
        '"none" or "viewer" (per-viewer adjustments to the global model)',
    ),
    # Also learn from simulated feedback (shadow runs), each row weighted by its `weight`.
    "include_simulated": (False, lambda v: isinstance(v, bool), "true or false"),
}
PREFERENCE_CONFIG: dict[str, tuple[Any, Callable[[Any], bool], str]] = {
    "test_fraction": P_LOVE_CONFIG["test_fraction"],
    "C": (1.0, lambda v: _number(v) and 1e-4 <= v <= 1e4, "between 1e-4 and 1e4"),
    "n_features_log2": P_LOVE_CONFIG["n_features_log2"],
    "use_char": P_LOVE_CONFIG["use_char"],
    "model": P_LOVE_CONFIG["model"],
    "model_version": P_LOVE_CONFIG["model_version"],
}
CONFIG_SCHEMAS = {Objective.P_LOVE: P_LOVE_CONFIG, Objective.PREFERENCE: PREFERENCE_CONFIG}
# Settings that name a model: shown in lists, so shown exactly as they are (no bidi controls).
NAMES = ("model", "model_version")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


INVALID = "The reward model is invalid."


def config_clean(objective: str, config: object) -> dict[str, Any]:
    """The config (None or an object) with defaults filled in, or ValidationFailed naming each
    bad key."""
    schema = CONFIG_SCHEMAS.get(objective)  # type: ignore[call-overload]
    if schema is None:
        raise ValidationFailed(
            {"objective": [f"Must be one of: {', '.join(Objective.values)}."]}, INVALID
        )
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ValidationFailed({"config": ["Must be an object."]}, INVALID)
    errors: dict[str, list[str]] = {}
    for key in config:
        if key not in schema:
            errors[f"config.{key}"] = [f"Unknown setting; known: {', '.join(schema)}."]
    clean: dict[str, Any] = {}
    for key, (default, check, message) in schema.items():
        value = config.get(key, default)
        if not check(value):
            errors[f"config.{key}"] = [f"Must be {message}."]
        elif key in NAMES and (problem := bidi_problem(value)):
            errors[f"config.{key}"] = [problem]
        clean[key] = value
    if errors:
        raise ValidationFailed(errors, INVALID)
    return clean


def reward_model_create(
    *,
    project: Project,
    name: object,
    objective: object,
    config: object,
    created_by: User | None,
) -> RewardModel:
    """The values are checked here, types included, whoever calls (a page's form passes text,
    and a config of the settings it read; the API, its checked body with the config as sent)."""
    errors: dict[str, list[str]] = {}
    clean_name = name.strip() if isinstance(name, str) else ""
    if not isinstance(name, str) or not clean_name or len(name) > 200 or "\x00" in name:
        errors["name"] = ["Must be a name of 1 to 200 characters."]
    elif problem := bidi_problem(name):
        errors["name"] = [problem]
    clean: dict[str, Any] = {}
    clean_objective = objective if isinstance(objective, str) else ""
    if clean_objective in Objective.values:
        try:
            clean = config_clean(clean_objective, config)
        except ValidationFailed as invalid:
            errors.update(invalid.errors)
    else:
        errors["objective"] = [f"Must be one of: {', '.join(Objective.values)}."]
    if errors:
        raise ValidationFailed(errors, INVALID)
    try:
        with transaction.atomic():
            return RewardModel.objects.create(
                project=project,
                name=clean_name,
                objective=clean_objective,
                config=clean,
                created_by=created_by,
            )
    except IntegrityError:
        raise ValidationFailed(
            {"name": ["The project already has a reward model with this name."]}, INVALID
        ) from None


def training_run_start(*, reward_model: RewardModel, requested_by: User | None) -> TrainingRun:
    """Queue a run; the task is sent once the run's row is committed."""
    with transaction.atomic():
        run = TrainingRun.objects.create(
            reward_model=reward_model,
            project_id=reward_model.project_id,
            config=reward_model.config,
            requested_by=requested_by,
            message="Waiting for a worker…",
        )
        job_enqueue(kind=TRAINING_RUN_JOB, job_id=run.pk)
    return run


def training_run_cancel(*, run: TrainingRun) -> TrainingRun:
    """A queued run is cancelled at once; a running one stops at the end of a batch, about a
    second later (or one batch, when batches are slower)."""
    return job_cancel(job=run)


def reward_model_activate(*, reward_model: RewardModel, version: int) -> RewardModel:
    run = reward_model.runs.filter(version=version, status=JobStatus.SUCCEEDED).first()
    if run is None:
        raise ValidationFailed({"version": ["No succeeded run has this version."]}, INVALID)
    RewardModel.objects.filter(pk=reward_model.pk).update(active_run=run)
    reward_model.refresh_from_db()
    return reward_model


# --- executing a run --------------------------------------------------------------------------


@dataclass
class _Progress:
    """The training loop's progress, reported after every batch (the attempt writes it at most
    once per its kind's `progress_every`) and at every step; it stops the run when a cancel was
    asked for (JobCancelled) or another attempt took over (JobSuperseded)."""

    attempt: Attempt[TrainingRun]
    total: int
    low: float = 0.05
    high: float = 0.85
    done: int = 0

    def __call__(self, rows: int) -> None:
        self.done += rows
        fraction = self.low + (self.high - self.low) * min(1.0, self.done / max(1, self.total))
        self.attempt.progress(round(fraction, 4), f"Training: {self.done:,} of {self.total:,} rows")

    def step(self, fraction: float, message: str) -> None:
        self.attempt.progress(fraction, message, force=True)


def _run_event(run: TrainingRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "reward_model": run.reward_model_id,
        "status": run.status,
        "version": run.version,
        "metrics": run.metrics,
        "error": run.error,
    }


# Told when a run ends, by its worker or by the sweeper that found the worker dead.
TRAINING_RUN_EVENTS = JobEvents(
    TRAINING_RUN_JOB, WebhookEventType.TRAINING_RUN_FINISHED, _run_event
)


def training_run_execute(*, run_id: int) -> None:
    """Train one run. Only a queued run (or one whose worker died) is claimed, so a second
    delivery of the task does nothing; only the current attempt may finish the run."""
    job_execute(kind=TRAINING_RUN_JOB, job_id=run_id, work=_train)


def _train(attempt: Attempt[TrainingRun]) -> None:
    run = attempt.job
    progress = _Progress(attempt, total=1)
    try:
        if run.reward_model.objective == Objective.P_LOVE:
            result = _train_p_love(run, progress)
        else:
            result = _train_preference(run, progress)
    except (ValueError, TrainingDataError) as error:
        raise JobFailed(str(error)) from error
    _finish(attempt, result)


class TrainingDataError(Exception):
    """Not enough (or not varied enough) data to train; the message says what is missing."""


@dataclass
class _Result:
    artifact: bytes
    metrics: dict[str, Any]


def _finish(attempt: Attempt[TrainingRun], result: _Result) -> None:
    """Store the artifact and number the version, while this attempt is the current one and no
    cancel was asked for."""
    run = attempt.job
    with transaction.atomic():
        model = RewardModel.objects.select_for_update().get(pk=run.reward_model_id)
        attempt.lock()
        version = (model.runs.aggregate(v=Max("version"))["v"] or 0) + 1
        run.artifact.save(
            f"run-{run.pk}-v{version}.skops", ContentFile(result.artifact), save=False
        )
        attempt.finish(
            artifact=run.artifact.name,
            version=version,
            metrics=result.metrics,
            message=f"Version {version} is ready.",
        )
        if model.active_run_id is None:
            model.active_run_id = run.pk
            model.save(update_fields=["active_run"])


def _filters(config: dict[str, Any]) -> Filters:
    return Filters(
        model=config.get("model") or None,
        model_version=config.get("model_version") or None,
        include_simulated=bool(config.get("include_simulated", False)),
    )


def _feature_config(config: dict[str, Any]) -> training.FeatureConfig:
    return training.FeatureConfig(
        n_features=2 ** int(config.get("n_features_log2", 18)),
        use_char=bool(config.get("use_char", True)),
    )


def _p_love_source(run: TrainingRun, now: datetime) -> Rows:
    """The p_love dataset (its one definition) for this run's filters, read from the replica
    when there is one."""
    rows = p_love_rows(run.reward_model.project, _filters(run.config), "text", now)
    return rows.using(heavy_reads())


def _p_love_queryset(run: TrainingRun, now: datetime, source: Rows | None = None) -> QuerySet[Any]:
    """The p_love dataset's rows, oldest exposure first, with what training reads."""
    rows = source or _p_love_source(run, now)
    columns = rows.columns
    return rows.records.order_by("shown_at", "id").values(
        "id",
        "shown_at",
        "viewer",
        prompt_text=columns["prompt"],
        response_text=columns["response"],
        loved=columns["label"],
        version=columns["model_version"],
        # Simulated rows (only when the config includes them) count for their weight.
        **(
            {"row_weight": columns["weight"], "simulated": columns["simulated"]}
            if "weight" in columns
            else {}
        ),
    )


def _batches_of(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _train_p_love(run: TrainingRun, progress: _Progress) -> _Result:
    config = run.config
    feature_config = _feature_config(config)
    personal = config.get("personalization", "none") == "viewer"
    started = time.monotonic()
    now = timezone.now()
    source = _p_love_source(run, now)
    rows = _p_love_queryset(run, now, source)
    total = rows.count()
    if total < 10:
        raise TrainingDataError(
            f"Only {total} labelled exposures; P[Love] needs at least 10 (exposures older "
            f"than the project's Love window)."
        )
    split = training.temporal_split_index(total, config["test_fraction"])
    cut = rows.values_list("shown_at", "id")[split]
    train_part = Q(shown_at__lt=cut[0]) | Q(shown_at=cut[0], id__lt=cut[1])
    train_rows, test_rows = rows.filter(train_part), rows.exclude(train_part)

    # Per-viewer totals (train part) decide each row's weight before its batch is used.
    progress.step(0.03, "Counting each viewer's exposures…")
    per_viewer = (
        source.records.filter(train_part)
        .annotate(loved=Cast(source.columns["label"], IntegerField()))
        .values("viewer")
        .annotate(exposures=Count("id"), loves=Sum("loved"))
        .order_by()
    )
    weights = {
        v["viewer"]: training.viewer_weight(
            training.ViewerStats(v["exposures"], v["loves"] or 0),
            cap=config["viewer_cap"],
            uniform_factor=config["uniform_factor"],
        )
        for v in per_viewer.iterator(chunk_size=10_000)
    }
    batch_size = config["batch_size"]
    in_memory = split <= IN_MEMORY_ROWS
    epochs = config["epochs"] or training.suggested_epochs(split)

    def to_batch(batch: list[dict[str, Any]]) -> training.Batch:
        return training.Batch(
            prompts=[r["prompt_text"] or "" for r in batch],
            responses=[r["response_text"] or "" for r in batch],
            labels=np.fromiter((r["loved"] for r in batch), dtype=bool, count=len(batch)),
            weights=np.fromiter(
                (weights.get(r["viewer"], 1.0) * r.get("row_weight", 1.0) for r in batch),
                dtype=float,
                count=len(batch),
            ),
            viewers=[r["viewer"] for r in batch],
        )

    progress.step(0.04, "Choosing the regularisation on the newest training rows…")
    choice = _choose(rows, train_rows, split, to_batch, config, feature_config, personal=personal)

    # What the baselines learn from: each training row's length, version and label, gathered
    # on the first pass over the batches.
    seen = _Seen()
    cached: list[training.Batch] | None = None

    def batches() -> Iterator[training.Batch]:
        nonlocal cached
        if cached is not None:
            yield from cached
            return
        keep: list[training.Batch] = []
        first = not seen.done
        for chunk in _batches_of(train_rows.iterator(chunk_size=batch_size), batch_size):
            batch = to_batch(chunk)
            if first:
                seen.add(chunk, batch.labels)
            if in_memory:
                keep.append(batch)
            yield batch
        seen.done = True
        if in_memory:
            cached = keep

    progress.total, progress.low, progress.high = split * epochs, 0.05, 0.8
    namer = training.FeatureNamer(feature_config)
    classifier = training.fit_p_love(
        batches,
        config=feature_config,
        epochs=epochs,
        alpha=choice.alpha,
        on_batch=progress,
        namer=namer,
        group=choice.group,
    )
    adjustments: training.ViewerAdjustments | None = None
    if personal:
        progress.step(0.82, "Fitting each viewer's adjustments…")
        adjustments = _fit_adjustments(classifier, batches(), feature_config, choice.strength)
    cached = None
    progress.step(0.87, "Evaluating on the newest exposures…")
    labels: list[np.ndarray] = []
    predictions: list[np.ndarray] = []
    personalised: list[np.ndarray] = []
    test_seen = _Seen(viewers=True)
    simulated_left_out = 0
    for rows_read in _batches_of(test_rows.iterator(chunk_size=batch_size), batch_size):
        # Held out, only people's own labels count: a shadow's label would measure agreement
        # with the shadow, not with the viewers.
        chunk = [r for r in rows_read if not r.get("simulated")]
        simulated_left_out += len(rows_read) - len(chunk)
        if not chunk:
            continue
        batch = to_batch(chunk)
        test_seen.add(chunk, batch.labels)
        labels.append(batch.labels)
        predicted = training.predict_p_love(
            classifier, batch.prompts, batch.responses, feature_config
        )
        predictions.append(predicted)
        if adjustments is not None:
            personalised.append(
                training.personalise(predicted, adjustments, batch.responses, batch.viewers)[0]
            )
    if not labels:
        raise TrainingDataError(
            "Every held-out exposure has a simulated label: the newest part needs people's own "
            "labels to measure the model on."
        )
    y, p = np.concatenate(labels), np.concatenate(predictions)
    metrics = training.evaluate_p_love(y, p, versions=test_seen.versions)
    baselines = training.baseline_predictions(seen.rows(), test_seen.rows(with_labels=False))
    metrics |= {
        "objective": Objective.P_LOVE,
        "rows_train": split,
        "rows_test": total - split - simulated_left_out,
        "epochs": epochs,
        "split_at": cut[0].isoformat(),
        "top_features": training.top_features(classifier.coef_.ravel(), namer),
        "baselines": training.compare_to_baselines(y, p, baselines),
        "selection": choice.report,
        "personalization": None,
    }
    if _filters(config).include_simulated:
        metrics["simulated"] = {
            "rows_train": seen.simulated,
            "rows_held_out_left_out": simulated_left_out,
        }
    artifact: Any = classifier
    if adjustments is not None:
        mine = np.concatenate(personalised)
        metrics["personalization"] = {
            "mode": "viewer",
            "strength": adjustments.strength,
            "viewers_adjusted": int(adjustments.keys.size),
            "min_training_rows": training.VIEWER_MIN_ROWS,
            "global": training.compare_to_baselines(y, p, {})["model"],
            "personal": training.compare_to_baselines(y, mine, {})["model"],
            "per_viewer": training.per_viewer_auc(
                y, p, mine, test_seen.viewers or [], min_rows=PER_VIEWER_MIN_ROWS
            ),
        }
        artifact = training.personal_artifact(classifier, adjustments)
    metrics["train_seconds"] = round(time.monotonic() - started, 2)
    progress.step(0.95, "Saving the model…")
    return _Result(_dump(artifact), metrics)


class _Seen:
    """Lengths, versions (and viewers, when asked) and labels of rows as they stream by, in a
    few bytes a row: versions are kept as codes of the distinct names."""

    def __init__(self, *, viewers: bool = False) -> None:
        self.lengths = array("q")
        self.codes = array("i")
        self.names: dict[str, int] = {}
        self.viewers: list[str] | None = [] if viewers else None
        self.labels: list[np.ndarray] = []
        self.simulated = 0  # rows labelled by a shadow, not by the viewer
        self.done = False

    def add(self, chunk: Sequence[dict[str, Any]], labels: np.ndarray) -> None:
        names = self.names
        self.lengths.extend(len(r["response_text"] or "") for r in chunk)
        self.codes.extend(names.setdefault(r["version"] or "", len(names)) for r in chunk)
        self.simulated += sum(1 for r in chunk if r.get("simulated"))
        if self.viewers is not None:
            self.viewers += [r["viewer"] for r in chunk]
        self.labels.append(labels)

    @property
    def versions(self) -> list[str]:
        by_code = list(self.names)
        return [by_code[code] for code in self.codes]

    def rows(self, *, with_labels: bool = True) -> training.BaselineRows:
        labels = np.concatenate(self.labels) if with_labels and self.labels else None
        return training.BaselineRows(
            np.frombuffer(self.lengths, dtype=np.int64).astype(np.float64), self.versions, labels
        )


@dataclass
class _Choice:
    alpha: float
    group: str
    strength: float
    report: dict[str, Any]


def _choose(
    rows: QuerySet[Any],
    train_rows: QuerySet[Any],
    split: int,
    to_batch: Callable[[list[dict[str, Any]]], training.Batch],
    config: dict[str, Any],
    feature_config: training.FeatureConfig,
    *,
    personal: bool,
) -> _Choice:
    """The alpha, feature group (and per-viewer strength) for the run: a small grid searched on
    the newest training rows, the newest fifth of them held out (see `SELECT_ROWS`)."""
    alpha = float(config["alpha"])
    default = _Choice(alpha, "all", training.STRENGTH_GRID[0], {})
    if config.get("selection", "validation") == "off":
        default.report = {"method": "off", "alpha": alpha, "group": "all"}
        return default
    started = time.monotonic()
    whole = split <= SELECT_ALL_ROWS
    size = split if whole else min(SELECT_ROWS, max(SELECT_MIN_ROWS, split // 20))
    sample = train_rows
    if size < split:
        start = rows.values_list("shown_at", "id")[split - size]
        sample = train_rows.filter(
            Q(shown_at__gt=start[0]) | Q(shown_at=start[0], id__gte=start[1])
        )
    batch = to_batch(list(sample.iterator(chunk_size=size)))
    at = training.temporal_split_index(len(batch.responses), VALIDATION_FRACTION)
    fit_labels = batch.labels[:at]
    if (
        len(batch.responses) - at < MIN_VALIDATION_ROWS
        or fit_labels.all()
        or not fit_labels.any()
        or not batch.weights[:at].any()
    ):
        default.report = {
            "method": "defaults",
            "alpha": alpha,
            "group": "all",
            "reason": (
                f"The newest training rows hold too few labelled exposures of both kinds to "
                f"choose on (at least {MIN_VALIDATION_ROWS} held out and both labels before)."
            ),
        }
        return default
    features = training.featurize(batch.prompts, batch.responses, feature_config)
    fit = training.Sample(features[:at], batch.labels[:at], batch.weights[:at], batch.viewers[:at])
    validation = training.Sample(
        features[at:], batch.labels[at:], batch.weights[at:], batch.viewers[at:]
    )
    # The configured alpha first: on a tie it is kept.
    alphas = [alpha, *(a for a in training.ALPHA_GRID if a != alpha)] if whole else [alpha]
    epochs = config["epochs"] or training.suggested_epochs(at)
    selection = training.select_p_love(
        fit, validation, config=feature_config, alphas=alphas, epochs=epochs
    )
    if not whole:
        selection.alpha, selection.group = alpha, "all"
        selection.classifier = selection.fitted["all", alpha]
    report: dict[str, Any] = {
        "method": "validation" if whole else "advisory",
        "alpha": selection.alpha,
        "group": selection.group,
        "rows_fit": at,
        "rows_validation": len(batch.responses) - at,
        "grid": selection.grid,
    }
    strength = training.STRENGTH_GRID[0]
    if personal:
        strength, report["strength_grid"] = _choose_strength(selection.classifier, fit, validation)
        report["strength"] = strength
    report["seconds"] = round(time.monotonic() - started, 2)
    return _Choice(selection.alpha, selection.group, strength, report)


def _formats(features: Any) -> np.ndarray:
    """The format columns (the last ones) of featurized rows, dense."""
    return np.asarray(features[:, -len(training.FORMAT_FEATURE_NAMES) :].toarray())


def _choose_strength(
    classifier: Any, fit: training.Sample, validation: training.Sample
) -> tuple[float, list[dict[str, Any]]]:
    """The per-viewer penalty with the lowest validation log loss (ties: the stronger one)."""
    logits = classifier.decision_function(fit.features)
    held = classifier.decision_function(validation.features)
    keys = training.viewer_keys(fit.viewers)
    held_keys = training.viewer_keys(validation.viewers)
    y = np.asarray(validation.labels)
    grid: list[dict[str, Any]] = []
    for strength in sorted(training.STRENGTH_GRID, reverse=True):
        adjustments = training.fit_viewer_adjustments(
            logits, _formats(fit.features), fit.labels, keys, strength=strength
        )
        shifted = held + adjustments.shift(_formats(validation.features), held_keys)
        p = 1 / (1 + np.exp(-np.clip(shifted, -35, 35)))
        p = np.clip(p, 1e-15, 1 - 1e-15)
        loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
        grid.append({"strength": strength, "log_loss": loss})
    best = min(grid, key=lambda point: point["log_loss"])
    return float(best["strength"]), grid


def _fit_adjustments(
    classifier: Any,
    batches: Iterable[training.Batch],
    feature_config: training.FeatureConfig,
    strength: float,
) -> training.ViewerAdjustments:
    """Each viewer's adjustment to the global model, from one more pass over the training rows."""
    logits: list[np.ndarray] = []
    formats: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    keys: list[np.ndarray] = []
    for batch in batches:
        features = training.featurize(batch.prompts, batch.responses, feature_config)
        logits.append(classifier.decision_function(features))
        formats.append(_formats(features))
        labels.append(np.asarray(batch.labels))
        keys.append(training.viewer_keys(batch.viewers))
    return training.fit_viewer_adjustments(
        np.concatenate(logits),
        np.concatenate(formats),
        np.concatenate(labels),
        np.concatenate(keys),
        strength=strength,
    )


def _train_preference(run: TrainingRun, progress: _Progress) -> _Result:
    config = run.config
    feature_config = _feature_config(config)
    started = time.monotonic()
    project = run.reward_model.project
    rows = DATASETS["dpo"].rows(project, _filters(config), "text", timezone.now())
    rows = rows.using(heavy_reads())
    pairs: list[tuple[Any, str, str, str, str]] = []
    for part in rows.parts():
        for r in part.queryset().iterator(chunk_size=5000):
            pairs.append(
                (
                    r["c_created_at"],
                    r["c_prompt"] or "",
                    r["c_chosen"] or "",
                    r["c_rejected"] or "",
                    r["c_source"],
                )
            )
    if len(pairs) < 10:
        raise TrainingDataError(
            f"Only {len(pairs)} preference pairs (comparisons with a winner, and corrected "
            f"answers); a preference model needs at least 10."
        )
    pairs.sort(key=lambda p: p[0])
    split = training.temporal_split_index(len(pairs), config["test_fraction"])
    train, test = pairs[:split], pairs[split:]
    progress.step(0.2, f"Fitting on {len(train):,} pairs…")

    def sides(
        part: Sequence[tuple[Any, str, str, str, str]],
    ) -> tuple[tuple[list[str], list[str]], tuple[list[str], list[str]]]:
        prompts = [p[1] for p in part]
        return (prompts, [p[2] for p in part]), (prompts, [p[3] for p in part])

    chosen, rejected = sides(train)
    model = training.fit_preference(chosen, rejected, config=feature_config, C=config["C"])
    namer = training.FeatureNamer(feature_config)
    namer.observe(chosen[0] + rejected[0], chosen[1] + rejected[1])
    test_chosen, test_rejected = sides(test)
    accuracy = training.pairwise_accuracy(model, test_chosen, test_rejected, feature_config)
    longer = training.longer_wins_accuracy(test_chosen[1], test_rejected[1])
    metrics = {
        "objective": Objective.PREFERENCE,
        "pairs_train": len(train),
        "pairs_test": len(test),
        "pairwise_accuracy": accuracy,
        # The honest baseline: "the longer answer wins", on the same held-out pairs.
        "baselines": {
            "longer_wins": {
                "pairwise_accuracy": longer,
                "lift": None if accuracy is None or longer is None else accuracy - longer,
            },
            "beats_baselines": accuracy is not None and longer is not None and accuracy > longer,
        },
        "train_pairwise_accuracy": training.pairwise_accuracy(
            model, chosen, rejected, feature_config
        ),
        "sources": {s: sum(1 for p in pairs if p[4] == s) for s in sorted({p[4] for p in pairs})},
        "top_features": training.top_features(model.coef_.ravel(), namer),
        "train_seconds": round(time.monotonic() - started, 2),
    }
    progress.step(0.95, "Saving the model…")
    return _Result(_dump(model), metrics)


def _dump(model: Any) -> bytes:
    return training.dumps_artifact(model)


# --- scoring ---------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _loaded(run_id: int, name: str) -> Any:
    """Artifacts never change once written, so a loaded model is cached by run. It is read from
    this host's copy of the stored file, and only after the allowlist has passed its types."""
    run = TrainingRun.objects.get(pk=run_id)
    return training.load_artifact(local_copy(run.artifact))


def reward_model_score(
    *, reward_model: RewardModel, items: Sequence[Mapping[str, Any]]
) -> tuple[int, list[dict[str, Any]]]:
    """Score (prompt, response) pairs, `{"prompt", "response"}` texts and an optional
    `user_ref` (the viewer, as feedback names them), with the active version: NotReady when there
    is none. A personalised P[Love] scores an item for its viewer when it learned about them
    (`personalized` true), otherwise with the global model."""
    run = reward_model.active_run
    if run is None:
        raise NotReady("The model has no trained version yet; train it first.")
    if not items or len(items) > MAX_SCORE_ITEMS:
        raise ValidationFailed({"items": [f"Must hold 1 to {MAX_SCORE_ITEMS} items."]}, INVALID)
    prompts = [item["prompt"] for item in items]
    responses = [item["response"] for item in items]
    model = _loaded(run.pk, run.artifact.name)
    feature_config = _feature_config(run.config)
    if reward_model.objective == Objective.P_LOVE:
        viewers = [item.get("user_ref") or None for item in items]
        values, known = training.predict_p_love_for(
            model, prompts, responses, viewers, feature_config
        )
        return run.version or 0, [
            {"p_love": round(float(v), 6), "personalized": bool(k)}
            for v, k in zip(values, known, strict=True)
        ]
    rewards = training.preference_rewards(model, prompts, responses, feature_config)
    return run.version or 0, [{"reward": round(float(v), 6)} for v in rewards]
