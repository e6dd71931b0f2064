"""LLM judges: creating one, and judge runs (queued by the API or a page, executed on the
`c3po` queue, where jobs that wait on a remote model run).

A run goes through the answers its filter selects, in id order, asks the judge's generator
for a structured judgment of each (rewardmodels.judges) and stores what it said as simulated
feedback: a verdict with a critique, a relevance proposal per retrieved document, or a
corrected list of sub-queries. Rows are keyed by run, answer and item, and an answer already
judged by the run is skipped, so a resumed attempt asks nothing twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from config.celery_app import Queue
from feedback.core.errors import ValidationFailed
from feedback.core.jobs import Attempt, JobFailed, JobKind, job_enqueue, job_execute
from feedback.core.validators import bidi_problem
from feedback.datasets.sql import prompt_as_text
from feedback.ingest import parse_timestamp
from feedback.models import (
    Answer,
    Critique,
    Project,
    Reaction,
    SimulatedFeedback,
    SimulatedKind,
    Stage,
)
from rewardmodels import judges
from rewardmodels.generator import ChatClient, GeneratorError, GeneratorSettings
from rewardmodels.models import Generator, Judge, JudgeRun, JudgeTarget

JUDGE_RUN_JOB = JobKind(
    name="judge_run",
    model=JudgeRun,
    task="rewardmodels.tasks.judge_run_execute",
    queue=Queue.C3PO,
    # A generator call may take minutes; the heartbeat thread beats meanwhile.
    stale_after=lambda: timedelta(minutes=5),
    max_attempts=2,
    gave_up="The worker running this judge stopped (it was retried once).",
    on_claim={"progress": 0.01, "message": "Choosing the answers…"},
    select_related=("judge__generator", "project"),
)
INVALID = "The judge is invalid."
RUN_INVALID = "The judge run is invalid."
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
EXAMPLES = 5  # of each kind (critiques, reactions) shown to a personalised judge
STAGE_KINDS = {
    JudgeTarget.DOCUMENT_RELEVANCE: ("retrieval", "rerank"),
    JudgeTarget.SUBQUERIES: ("decomposition",),
}


def judge_create(
    *,
    project: Project,
    name: object,
    generator_id: object,
    rubric: object,
    target: object,
    viewer: object = "",
    created_by: User | None = None,
) -> Judge:
    errors: dict[str, list[str]] = {}
    clean_name = name.strip() if isinstance(name, str) else ""
    if not clean_name or len(clean_name) > 200 or "\x00" in clean_name:
        errors["name"] = ["Must be a name of 1 to 200 characters."]
    elif problem := bidi_problem(clean_name):
        errors["name"] = [problem]
    generator = (
        Generator.objects.filter(project=project, pk=generator_id).first()
        if isinstance(generator_id, int) and not isinstance(generator_id, bool)
        else None
    )
    if generator is None:
        errors["generator"] = ["No such generator in this project."]
    if not isinstance(rubric, str) or not rubric.strip() or len(rubric) > 10_000:
        errors["rubric"] = ["Must be a text of 1 to 10,000 characters."]
    if target not in JudgeTarget.values:
        errors["target"] = [f"Must be one of: {', '.join(JudgeTarget.values)}."]
    if not isinstance(viewer, str) or len(viewer) > 255 or "\x00" in viewer:
        errors["viewer"] = ["Must be a user_ref of at most 255 characters."]
    if errors or generator is None:
        raise ValidationFailed(errors, INVALID)
    try:
        with transaction.atomic():
            return Judge.objects.create(
                project=project,
                name=clean_name,
                generator=generator,
                rubric=str(rubric).strip(),
                target=str(target),
                viewer=str(viewer),
                created_by=created_by,
            )
    except IntegrityError:
        raise ValidationFailed(
            {"name": ["The project already has a judge with this name."]}, INVALID
        ) from None


def _run_filters(raw: object) -> dict[str, Any]:
    """`{"model", "model_version", "since", "until", "limit"}` (answers created in the range),
    checked; stored as given (times as ISO text)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValidationFailed({"filters": ["Must be an object."]}, RUN_INVALID)
    errors: dict[str, list[str]] = {}
    unknown = set(raw) - {"model", "model_version", "since", "until", "limit"}
    if unknown:
        errors["filters"] = [f"Unknown filters: {', '.join(sorted(unknown))}."]
    clean: dict[str, Any] = {}
    for name in ("model", "model_version"):
        value = raw.get(name)
        if value is not None and (not isinstance(value, str) or "\x00" in value):
            errors[f"filters.{name}"] = ["Must be a string."]
        elif value:
            clean[name] = value
    for name in ("since", "until"):
        if raw.get(name) is not None:
            value, error = parse_timestamp(raw[name], now=None, allow_future=True)
            if error:
                errors[f"filters.{name}"] = [error]
            elif value is not None:
                clean[name] = value.isoformat()
    limit = raw.get("limit", DEFAULT_LIMIT)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        errors["filters.limit"] = [f"Must be from 1 to {MAX_LIMIT}."]
    clean["limit"] = limit
    if errors:
        raise ValidationFailed(errors, RUN_INVALID)
    return clean


def judge_run_start(
    *, judge: Judge, filters: object = None, requested_by: User | None = None
) -> JudgeRun:
    clean = _run_filters(filters)
    with transaction.atomic():
        run = JudgeRun.objects.create(
            project_id=judge.project_id,
            judge=judge,
            filters=clean,
            requested_by=requested_by,
            message="Waiting for a worker…",
        )
        job_enqueue(kind=JUDGE_RUN_JOB, job_id=run.pk)
    return run


def judge_run_execute(*, run_id: int) -> None:
    job_execute(kind=JUDGE_RUN_JOB, job_id=run_id, work=_judge)


def _answers(run: JudgeRun) -> list[Answer]:
    f = run.filters
    answers = Answer.objects.filter(project_id=run.project_id)
    if f.get("model"):
        answers = answers.filter(model=f["model"])
    if f.get("model_version"):
        answers = answers.filter(model_version=f["model_version"])
    if f.get("since"):
        answers = answers.filter(created_at__gte=f["since"])
    if f.get("until"):
        answers = answers.filter(created_at__lt=f["until"])
    kinds = STAGE_KINDS.get(run.judge.target)  # type: ignore[call-overload]
    if kinds:
        answers = answers.filter(stages__kind__in=kinds).distinct()
    return list(answers.order_by("id")[: f.get("limit", DEFAULT_LIMIT)])


def _examples(project_id: int, viewer: str) -> list[judges.Example]:
    """The personalised viewer's newest critiques and reactions, as the judge is shown them."""
    if not viewer:
        return []
    critiques = Critique.objects.filter(project_id=project_id, viewer=viewer).select_related(
        "answer"
    )
    reactions = Reaction.objects.filter(
        project_id=project_id, viewer=viewer, removed_at__isnull=True
    ).select_related("answer")
    return [
        *(
            judges.Example(prompt_as_text(c.answer.prompt), c.answer.response, critique=c.text)
            for c in critiques.order_by("-created_at", "-id")[:EXAMPLES]
        ),
        *(
            judges.Example(prompt_as_text(r.answer.prompt), r.answer.response, reaction=r.kind)
            for r in reactions.order_by("-created_at", "-id")[:EXAMPLES]
        ),
    ]


def _client(generator: Generator) -> ChatClient:
    return ChatClient(
        GeneratorSettings(
            base_url=generator.base_url,
            model=generator.model,
            api_key=generator.api_key,
            temperature=generator.temperature,
            concurrency=generator.concurrency,
        )
    )


def _judge(attempt: Attempt[JudgeRun]) -> None:
    run = attempt.job
    judge = run.judge
    reactions = list(run.project.reaction_set)
    examples = _examples(run.project_id, judge.viewer)
    label = f"judge {judge.name} ({judge.generator.model})"
    answers = _answers(run)
    done = set(
        SimulatedFeedback.objects.filter(producer=run.producer).values_list("answer_id", flat=True)
    )
    with _client(judge.generator) as client:
        for n, answer in enumerate(answers, start=1):
            if answer.pk not in done:
                rows = _judge_answer(client, run, answer, reactions, examples, label)
                with transaction.atomic():
                    attempt.lock()  # only the current attempt writes
                    SimulatedFeedback.objects.bulk_create(rows, ignore_conflicts=True)
            attempt.progress(
                0.02 + 0.96 * n / len(answers), f"Judged {n:,} of {len(answers):,} answers…"
            )
    judged = SimulatedFeedback.objects.filter(producer=run.producer)
    attempt.finish(
        counts={"answers": len(answers), "judgments": judged.count()},
        message=f"Judged {len(answers):,} answers.",
    )


def _ask(
    client: ChatClient, target: str, rubric: str, item: judges.Item, reactions: list[str]
) -> dict[str, Any]:
    try:
        return client.complete_json(
            judges.messages(target, rubric, item, reactions=reactions),
            name=f"judge_{target}",
            schema=judges.schema(target, reactions=reactions),
            validate=lambda reply: judges.check(target, reply, item, reactions=reactions),
        )
    except GeneratorError as error:
        raise JobFailed(error.message) from error


def _judge_answer(
    client: ChatClient,
    run: JudgeRun,
    answer: Answer,
    reactions: list[str],
    examples: list[judges.Example],
    label: str,
) -> list[SimulatedFeedback]:
    judge = run.judge
    prompt = prompt_as_text(answer.prompt)
    common = {
        "project_id": run.project_id,
        "answer": answer,
        "viewer": judge.viewer,
        "producer": run.producer,
        "model_version": label,
    }
    if judge.target == JudgeTarget.ANSWER:
        item = judges.Item(prompt, answer.response, examples=examples)
        said = _ask(client, judge.target, judge.rubric, item, reactions)
        return [
            SimulatedFeedback(
                kind=SimulatedKind.VERDICT,
                reaction=said["verdict"],
                text=said["critique"],
                **common,
            )
        ]
    rows: list[SimulatedFeedback] = []
    stages: list[Stage] = list(
        answer.stages.filter(kind__in=STAGE_KINDS[judge.target]).order_by("position")  # type: ignore[index]
    )
    for stage in stages:
        output = stage.output if isinstance(stage.output, dict) else {}
        if judge.target == JudgeTarget.DOCUMENT_RELEVANCE:
            documents = [
                d for d in output.get("documents") or [] if isinstance(d, dict) and "id" in d
            ]
            if not documents:
                continue
            item = judges.Item(prompt, answer.response, documents=documents, examples=examples)
            said = _ask(client, judge.target, judge.rubric, item, reactions)
            rows += [
                SimulatedFeedback(
                    kind=SimulatedKind.INTERVENTION,
                    stage=stage,
                    action="doc_relevance",
                    after={"doc_id": doc_id, "relevance": relevance},
                    item=f"{stage.position}:{doc_id}"[:300],
                    **common,
                )
                for doc_id, relevance in said["documents"].items()
            ]
        else:
            subqueries = [s for s in output.get("subqueries") or [] if isinstance(s, str)]
            item = judges.Item(prompt, answer.response, subqueries=subqueries, examples=examples)
            said = _ask(client, judge.target, judge.rubric, item, reactions)
            rows.append(
                SimulatedFeedback(
                    kind=SimulatedKind.INTERVENTION,
                    stage=stage,
                    action="subqueries",
                    after={"subqueries": said["subqueries"], "before": subqueries},
                    item=f"{stage.position}:subqueries",
                    **common,
                )
            )
    return rows
