"""Online adaptation: asking the project's pipeline, and re-running an answer's later stages
from an annotator's corrected stage. The re-run itself runs in a Celery task (`rerun_execute`);
its row is the truth about its progress."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from feedback.debug_mode import Correction, corrected_output
from feedback.models import Answer, Intervention, Project, Rerun, RerunStatus, Stage
from feedback.pipelines.http import MAX_TIMEOUT_SECONDS, worst_case_seconds
from feedback.pipelines.protocol import PipelineError, checked_reply
from feedback.pipelines.resolve import pipeline_for, rerun_unavailable_reason
from feedback.services.answers import answers_ingest
from feedback.services.errors import ServiceError

logger = logging.getLogger(__name__)

# The re-run task's limits allow every connector attempt at the longest timeout a project may
# set; a re-run running longer than the hard limit (plus a margin) has lost its worker.
RERUN_SOFT_TIME_LIMIT = int(worst_case_seconds(MAX_TIMEOUT_SECONDS)) + 30
RERUN_TIME_LIMIT = RERUN_SOFT_TIME_LIMIT + 30
RERUN_STALE = timedelta(seconds=RERUN_TIME_LIMIT + 60)
RERUNNABLE_KINDS = ("decomposition", "retrieval", "rerank")


class RerunUnavailable(ServiceError):
    pass


def question_of(answer: Answer) -> str:
    """The last user turn of the prompt: what the pipeline is asked."""
    for message in reversed(answer.prompt):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def answer_ask(*, project: Project, question: str, user_ref: str) -> Answer:
    """Ask the project's pipeline and store its answer with the full trace. Raises
    PipelineError (nothing stored) when the pipeline fails or replies with an invalid answer."""
    question = question.strip()
    if not question:
        raise PipelineError("Type a question first.")
    reply = pipeline_for(project).ask(question)
    payload, _ = checked_reply(reply, external_id=f"ask-{uuid.uuid4().hex}", now=timezone.now())
    payload["user_ref"] = user_ref
    [result] = answers_ingest(project=project, items=[payload])
    if result.id is None:
        raise PipelineError(f"The answer could not be stored: {result.errors}")
    return Answer.objects.get(pk=result.id)


def corrections_of(*, stage: Stage, annotator: Any) -> list[Correction]:
    return [
        Correction(i.action, i.before, i.after, i.created_at)
        for i in Intervention.objects.filter(stage=stage, annotator=annotator).order_by("id")
    ]


def rerun_request(*, answer: Answer, stage: Stage, user: User) -> Rerun:
    """Queue a re-run from `stage` with the user's corrections of it. A second request while
    one is queued or running returns that one."""
    reason = rerun_unavailable_reason(answer, pipeline_for(answer.project))
    if reason:
        raise RerunUnavailable(reason)
    if stage.kind not in RERUNNABLE_KINDS:
        raise RerunUnavailable("Only a decomposition or retrieval stage can be re-run from.")
    corrections = corrections_of(stage=stage, annotator=user)
    if not corrections:
        raise RerunUnavailable("Save a correction of this stage first; then re-run from it.")
    output = corrected_output(stage.kind, stage.output, corrections)
    from feedback.tasks import rerun_execute

    try:
        with transaction.atomic():
            rerun = Rerun.objects.create(
                project_id=answer.project_id,
                answer=answer,
                stage=stage,
                requested_by=user,
                corrected_output=output,
                message="Waiting for a worker…",
            )
            transaction.on_commit(lambda: rerun_execute.delay(rerun.pk))
    except IntegrityError:  # one is already queued or running for this stage and user
        return Rerun.objects.get(stage=stage, requested_by=user, status__in=["queued", "running"])
    return rerun


def rerun_execute(*, rerun_id: int) -> None:
    """Run a queued re-run: only a `queued` row is claimed, so a second delivery does nothing."""
    now = timezone.now()
    claimed = Rerun.objects.filter(pk=rerun_id, status=RerunStatus.QUEUED).update(
        status=RerunStatus.RUNNING, started_at=now, progress=0.1, message="Asking the pipeline…"
    )
    if not claimed:
        return
    rerun = Rerun.objects.select_related("answer__project", "stage").get(pk=rerun_id)
    mine = Rerun.objects.filter(pk=rerun_id, status=RerunStatus.RUNNING)
    answer = rerun.answer
    trace = [
        {
            "kind": s.kind,
            "position": s.position,
            **({"parent": s.parent_position} if s.parent_position is not None else {}),
            **({"name": s.name} if s.name else {}),
            "input": s.input,
            "output": rerun.corrected_output if s.pk == rerun.stage_id else s.output,
        }
        for s in answer.stages.order_by("position")
    ]
    try:
        reply = pipeline_for(answer.project).rerun(
            question_of(answer), trace, from_position=rerun.stage.position
        )
        mine.update(progress=0.7, message="Storing the revised answer…")
        payload, _ = checked_reply(
            reply, external_id=f"{answer.external_id}~rerun-{rerun.pk}", now=timezone.now()
        )
        payload["user_ref"] = answer.user_ref
        payload["conversation"] = answer.conversation
        payload["metadata"] = {
            **(payload.get("metadata") or {}),
            "rerun": {"of": answer.external_id, "from_position": rerun.stage.position},
        }
        with transaction.atomic():
            [result] = answers_ingest(project=answer.project, items=[payload])
            if result.id is None:
                raise PipelineError("The revised answer could not be stored.")
            Answer.objects.filter(pk=result.id).update(revision_of=answer)
            done = mine.update(
                status=RerunStatus.SUCCEEDED,
                progress=1.0,
                message="Done.",
                revision_id=result.id,
                finished_at=timezone.now(),
            )
            if not done:  # the sweeper gave up on this run meanwhile: keep nothing
                transaction.set_rollback(True)
    except PipelineError as error:
        mine.update(
            status=RerunStatus.FAILED, error=str(error), message="", finished_at=timezone.now()
        )
    except SoftTimeLimitExceeded:
        mine.update(
            status=RerunStatus.FAILED,
            error="The re-run took longer than the worker allows; try again.",
            message="",
            finished_at=timezone.now(),
        )
    except Exception as error:  # recorded on the row; the task itself must not retry
        logger.exception("rerun %s failed", rerun_id)
        mine.update(
            status=RerunStatus.FAILED,
            error=f"{type(error).__name__}: {error}"[:2000],
            message="",
            finished_at=timezone.now(),
        )


def reruns_sweep(*, now: datetime | None = None) -> int:
    """Fail re-runs whose worker died or whose task was lost, so none waits for ever."""
    now = now or timezone.now()
    return Rerun.objects.filter(
        Q(status=RerunStatus.RUNNING, started_at__lt=now - RERUN_STALE)
        | Q(status=RerunStatus.QUEUED, created_at__lt=now - 2 * RERUN_STALE)
    ).update(
        status=RerunStatus.FAILED,
        error="The re-run did not finish (its worker stopped); start it again.",
        message="",
        finished_at=now,
    )
