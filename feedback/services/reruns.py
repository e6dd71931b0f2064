"""Online adaptation: asking the project's pipeline, and re-running an answer's later stages
from an annotator's corrected stage. The re-run itself runs in a Celery task (`rerun_execute`);
its row is the truth about its progress."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.celery_app import Queue
from feedback import selectors
from feedback.core.errors import ServiceError
from feedback.core.jobs import Attempt, JobFailed, JobKind, job_enqueue, job_execute
from feedback.debug_mode import Correction, corrected_output
from feedback.models import Answer, Project, Rerun, Stage
from feedback.pipelines.http import MAX_TIMEOUT_SECONDS, worst_case_seconds
from feedback.pipelines.protocol import PipelineError, checked_reply
from feedback.pipelines.resolve import pipeline_for, rerun_unavailable_reason
from feedback.services.answers import answers_ingest

# The re-run task's limits allow every connector attempt at the longest timeout a project may
# set; a re-run running longer than the hard limit (plus a margin) has lost its worker.
RERUN_SOFT_TIME_LIMIT = int(worst_case_seconds(MAX_TIMEOUT_SECONDS)) + 30
RERUN_TIME_LIMIT = RERUN_SOFT_TIME_LIMIT + 30
RERUN_STALE = timedelta(seconds=RERUN_TIME_LIMIT + 60)
RERUNNABLE_KINDS = ("decomposition", "retrieval", "rerank")

RERUN_JOB = JobKind(
    name="rerun",
    model=Rerun,
    task="feedback.tasks.rerun_execute",
    queue=Queue.DEFAULT,
    stale_after=lambda: RERUN_STALE,
    # A re-run asks the project's pipeline: it is never asked twice behind the annotator's back.
    max_attempts=1,
    gave_up="The re-run did not finish (its worker stopped); start it again.",
    queued_lost_after=lambda: 2 * RERUN_STALE,
    time_limit_error="The re-run took longer than the worker allows; try again.",
    on_claim={"progress": 0.1, "message": "Asking the pipeline…"},
    select_related=("answer__project", "stage"),
)


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
    return selectors.answer_get(answer_id=result.id)


def corrections_of(*, stage: Stage, annotator: User) -> list[Correction]:
    return [
        Correction(i.action, i.before, i.after, i.created_at)
        for i in selectors.stage_interventions(stage=stage, annotator=annotator)
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
    for _ in range(3):
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
                job_enqueue(kind=RERUN_JOB, job_id=rerun.pk)
            return rerun
        except IntegrityError:  # one is already queued or running for this stage and user
            active = selectors.rerun_active(stage=stage, user=user)
            if active is not None:
                return active
            # ...and it finished between our insert and that read: ask for a new one again.
    raise RerunUnavailable("Another re-run of this stage was starting; try again.")


def rerun_execute(*, rerun_id: int) -> None:
    """Run a queued re-run: only a `queued` row is claimed, so a second delivery does nothing."""
    job_execute(kind=RERUN_JOB, job_id=rerun_id, work=_rerun)


def _rerun(attempt: Attempt[Rerun]) -> None:
    rerun = attempt.job
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
        for s in selectors.answer_stages(answer=answer)
    ]
    try:
        reply = pipeline_for(answer.project).rerun(
            question_of(answer), trace, from_position=rerun.stage.position
        )
        attempt.progress(0.7, "Storing the revised answer…")
        payload, _ = checked_reply(
            reply, external_id=f"{answer.external_id}~rerun-{rerun.pk}", now=timezone.now()
        )
        payload["user_ref"] = answer.user_ref
        payload["conversation"] = answer.conversation
        payload["metadata"] = {
            **(payload.get("metadata") or {}),
            "rerun": {"of": answer.external_id, "from_position": rerun.stage.position},
        }
        # One transaction: when the sweeper gave up on this run meanwhile, the finish raises
        # and the revised answer is not kept either.
        with transaction.atomic():
            [result] = answers_ingest(project=answer.project, items=[payload])
            if result.id is None:
                raise PipelineError("The revised answer could not be stored.")
            Answer.objects.filter(pk=result.id).update(revision_of=answer)
            attempt.finish(revision_id=result.id)
    except PipelineError as error:
        raise JobFailed(str(error)) from error
