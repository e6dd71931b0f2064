"""Shadow runs: a P[Love] version speaks for the viewers who did not react.

A run (queued by the API or a page, executed on the `training` queue) reads the project's
labelled exposures (the p_love dataset's rows, the one definition of a label), scores them with
the version it was started with, and from the older ones (the version's training part) sets
each viewer's threshold. Then it goes through the exposures in its time range that have no real
reaction from their viewer, in id order, and records for each the predicted P[Love] and, where
it passes the viewer's threshold, a simulated Love (simulated feedback, and an event of source
`simulated` in the log). Rows are keyed by run and exposure, so a resumed attempt writes
nothing twice. Finally it measures agreement on the newer labelled exposures, which the version
did not train on (rewardmodels.shadow).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from config.celery_app import Queue
from feedback.core.errors import NotReady, ValidationFailed
from feedback.core.jobs import (
    Attempt,
    JobKind,
    job_cancel,
    job_enqueue,
    job_execute,
    seconds_setting,
)
from feedback.datasets.definitions import Filters, p_love_rows
from feedback.datasets.sql import prompt_as_text
from feedback.models import (
    EventType,
    Exposure,
    FeedbackEvent,
    Reaction,
    SimulatedFeedback,
    SimulatedKind,
    Source,
)
from rewardmodels import shadow
from rewardmodels.models import Objective, RewardModel, ShadowRun, TrainingRun
from rewardmodels.services.reward_models import MAX_SCORE_ITEMS, reward_model_score

SHADOW_RUN_JOB = JobKind(
    name="shadow_run",
    model=ShadowRun,
    task="rewardmodels.tasks.shadow_run_execute",
    queue=Queue.TRAINING,
    stale_after=seconds_setting("TRAINING_STALE_SECONDS"),
    max_attempts=2,
    gave_up="The worker running this shadow stopped (it was retried once).",
    on_claim={"progress": 0.01, "message": "Reading the labelled exposures…"},
    select_related=("reward_model__project", "training_run"),
)
INVALID = "The shadow run is invalid."
CHUNK = MAX_SCORE_ITEMS


def shadow_run_start(
    *,
    reward_model: RewardModel,
    since: datetime | None = None,
    until: datetime | None = None,
    threshold: float | None = None,
    requested_by: User | None = None,
) -> ShadowRun:
    """Queue a run with the model's active version; NotReady when it has none."""
    errors: dict[str, list[str]] = {}
    if reward_model.objective != Objective.P_LOVE:
        errors["reward_model"] = ["Must be a P[Love] model."]
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        errors["threshold"] = ["Must be between 0 and 1."]
    if since is not None and until is not None and until <= since:
        errors["until"] = ["Must be later than since."]
    if errors:
        raise ValidationFailed(errors, INVALID)
    if reward_model.active_run is None:
        raise NotReady("The model has no trained version yet; train it first.")
    with transaction.atomic():
        run = ShadowRun.objects.create(
            project_id=reward_model.project_id,
            reward_model=reward_model,
            training_run=reward_model.active_run,
            since=since,
            until=until,
            threshold=threshold,
            requested_by=requested_by,
            message="Waiting for a worker…",
        )
        job_enqueue(kind=SHADOW_RUN_JOB, job_id=run.pk)
    return run


def shadow_run_cancel(*, run: ShadowRun) -> ShadowRun:
    return job_cancel(job=run)


def shadow_run_execute(*, run_id: int) -> None:
    """Only a queued run (or one whose worker died) is claimed: a redelivery does nothing."""
    job_execute(kind=SHADOW_RUN_JOB, job_id=run_id, work=_shadow)


def _version_label(run: ShadowRun) -> str:
    return f"{run.reward_model.name} v{run.training_run.version}"


def _scorer(run: ShadowRun) -> Callable[[Sequence[dict[str, str]]], list[float]]:
    """Scores with the version the run was started with, whatever is active now. Each item
    carries its viewer (`user_ref`) for a model that personalises; others ignore it."""
    model = run.reward_model
    model.active_run = run.training_run

    def score(items: Sequence[dict[str, str]]) -> list[float]:
        if not items:
            return []
        _, values = reward_model_score(reward_model=model, items=items)
        return [v["p_love"] for v in values]

    return score


def _split_at(training_run: TrainingRun) -> datetime | None:
    raw = training_run.metrics.get("split_at") if training_run.metrics else None
    return parse_datetime(raw) if isinstance(raw, str) else None


def _labelled(run: ShadowRun, now: datetime) -> Iterator[list[dict[str, Any]]]:
    rows = p_love_rows(run.project, Filters(), "text", now)
    columns = rows.columns
    records = rows.records.order_by("shown_at", "id").values(
        "viewer",
        "shown_at",
        prompt_text=columns["prompt"],
        response_text=columns["response"],
        loved=columns["label"],
    )
    chunk: list[dict[str, Any]] = []
    for row in records.iterator(chunk_size=CHUNK):
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _unrated(run: ShadowRun) -> Any:
    """Exposures in the run's range with no active real reaction from their viewer and no row
    of this run yet (a resumed attempt starts where the last one stopped)."""
    reacted = Reaction.objects.filter(
        answer=OuterRef("answer"), viewer=OuterRef("viewer"), removed_at__isnull=True
    )
    done = SimulatedFeedback.objects.filter(producer=run.producer, exposure=OuterRef("pk"))
    exposures = Exposure.objects.filter(project_id=run.project_id).filter(
        ~Exists(reacted), ~Exists(done)
    )
    if run.since:
        exposures = exposures.filter(shown_at__gte=run.since)
    if run.until:
        exposures = exposures.filter(shown_at__lt=run.until)
    return exposures.select_related("answer").order_by("id")


def _shadow(attempt: Attempt[ShadowRun]) -> None:
    run = attempt.job
    now = timezone.now()
    score = _scorer(run)
    split_at = _split_at(run.training_run)

    # 1. The labelled exposures, scored: the older part sets thresholds, the newer is held out.
    older: list[shadow.Labelled] = []
    held_out: list[shadow.Labelled] = []
    for chunk in _labelled(run, now):
        values = score(
            [
                {
                    "prompt": r["prompt_text"] or "",
                    "response": r["response_text"] or "",
                    "user_ref": r["viewer"],
                }
                for r in chunk
            ]
        )
        for r, p in zip(chunk, values, strict=True):
            row = shadow.Labelled(r["viewer"], bool(r["loved"]), p)
            (held_out if split_at is not None and r["shown_at"] >= split_at else older).append(row)
        attempt.progress(0.05, f"Scored {len(older) + len(held_out):,} labelled exposures…")
    overall, own = shadow.thresholds(older)
    if run.threshold is not None:
        overall, own = run.threshold, {}

    # 2. The exposures nobody reacted to.
    unrated = _unrated(run)
    total = unrated.count()
    recorded = SimulatedFeedback.objects.filter(producer=run.producer)
    done = 0
    label = _version_label(run)
    last_id = 0
    while True:
        # Keyset pages: each query starts after the last exposure seen, however many are done.
        batch = list(unrated.filter(pk__gt=last_id)[:CHUNK])
        if not batch:
            break
        last_id = batch[-1].pk
        values = score(
            [
                {
                    "prompt": prompt_as_text(e.answer.prompt),
                    "response": e.answer.response,
                    "user_ref": e.viewer,
                }
                for e in batch
            ]
        )
        _record(run, batch, values, overall, own, label, now)
        done += len(batch)
        attempt.progress(
            0.1 + 0.8 * min(1.0, done / max(1, total)),
            f"Simulated {done:,} of {total:,} exposures…",
        )

    # 3. Agreement with the real reactions the version did not train on.
    # A version whose metrics don't say where its training data ended has no held-out part.
    attempt.progress(0.95, "Measuring agreement…", force=True)
    agreement = shadow.agreement(held_out, overall_threshold=overall, own=own)
    agreement["held_out_since"] = split_at.isoformat() if split_at else None
    counts = {
        "exposures": recorded.count(),
        "simulated_loves": recorded.filter(reaction="love").count(),
        "viewers": recorded.values("viewer").distinct().count(),
        "threshold": round(overall, 6),
        "own_thresholds": len(own),
        "labelled_scored": len(older) + len(held_out),
    }
    attempt.finish(
        counts=counts,
        agreement=agreement,
        message=f"{counts['simulated_loves']:,} simulated Loves over {counts['exposures']:,} "
        "exposures.",
    )


def _record(
    run: ShadowRun,
    batch: list[Exposure],
    values: list[float],
    overall: float,
    own: dict[str, float],
    label: str,
    now: datetime,
) -> None:
    """One chunk's rows and the events of its simulated Loves, in one transaction."""
    loves = {
        e.pk: p
        for e, p in zip(batch, values, strict=True)
        if shadow.passes(p, own.get(e.viewer, overall))
    }
    with transaction.atomic():
        events = [
            FeedbackEvent(
                project_id=run.project_id,
                event_id=_event_id(run, e),
                type=EventType.REACTION,
                answer_id=e.answer_id,
                viewer=e.viewer,
                source=Source.SIMULATED,
                occurred_at=e.shown_at + timedelta(seconds=1),
                received_at=now,
                data={
                    "reaction": "love",
                    "simulated": True,
                    "probability": round(loves[e.pk], 6),
                    "producer": run.producer,
                    "model_version": label,
                },
            )
            for e in batch
            if e.pk in loves
        ]
        FeedbackEvent.objects.bulk_create(events, ignore_conflicts=True)
        event_ids = dict(
            FeedbackEvent.objects.filter(
                project_id=run.project_id, event_id__in=[e.event_id for e in events]
            ).values_list("event_id", "pk")
        )
        SimulatedFeedback.objects.bulk_create(
            [
                SimulatedFeedback(
                    project_id=run.project_id,
                    answer_id=e.answer_id,
                    viewer=e.viewer,
                    kind=SimulatedKind.PREDICTION,
                    producer=run.producer,
                    model_version=label,
                    probability=min(1.0, max(0.0, p)),
                    exposure=e,
                    reaction="love" if e.pk in loves else "",
                    event_id=event_ids.get(_event_id(run, e)),
                )
                for e, p in zip(batch, values, strict=True)
            ],
            ignore_conflicts=True,
        )


def _event_id(run: ShadowRun, exposure: Exposure) -> str:
    return f"{run.producer}:{exposure.pk}"
