"""The staged build of a C3PO dataset, run by a worker on the `c3po` queue.

A build runs its stages in order (`C3POBuild.STAGES`, one step each in `STEPS`); each stage
stores what it made (categories on the build, prompts and responses as C3POItem rows) and skips
what is already there, so a build that stopped (a worker killed, a generator that failed)
resumes where it was and ends with the same rows.

A build is a job (feedback.core.jobs): a worker that dies leaves a stale heartbeat, the sweeper
queues the build again to resume, and only the current attempt's writes land. Requests that
start or resume a build, and the reviews that end one, are in `rewardmodels.services.c3po`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from itertools import islice
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from config.celery_app import Queue
from feedback.core.jobs import (
    Attempt,
    JobFailed,
    JobKind,
    job_execute,
    seconds_setting,
)
from feedback.models import WebhookEventType
from feedback.services.webhooks import JobEvents
from rewardmodels import c3po, selectors
from rewardmodels.generator import ChatClient, GeneratorError, GeneratorSettings
from rewardmodels.models import (
    BuildStatus,
    C3POBuild,
    C3POItem,
    Generator,
    PromptScope,
    ReviewStatus,
)

C3PO_BUILD_JOB = JobKind(
    name="c3po_build",
    model=C3POBuild,
    task="rewardmodels.tasks.c3po_build_execute",
    queue=Queue.C3PO,
    stale_after=seconds_setting("TRAINING_STALE_SECONDS"),
    # A build whose worker died resumes by itself this many times in all, then fails; a person
    # can resume it again.
    max_attempts=3,
    gave_up="The worker building this stopped repeatedly; resume it to continue.",
    requeued="Its worker stopped; resuming…",
    select_related=("feedback", "generator"),
)


def _int_seed(seed: str) -> int:
    return int(hashlib.sha256(seed.encode()).hexdigest()[:16], 16)


def _prompt_hash(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()


class _Stage:
    """One stage of one attempt at a build: its progress reports, and the build's items while
    the attempt is the current one (writes through it land nowhere once it was superseded)."""

    def __init__(self, attempt: Attempt[C3POBuild], index: int) -> None:
        self.attempt = attempt
        self.index = index

    @property
    def items(self) -> QuerySet[C3POItem]:
        return C3POItem.objects.filter(build__in=self.attempt.mine)

    def report(self, done: int, total: int) -> None:
        """Called for every item; the attempt writes it at most once per its kind's
        `progress_every`, and always the stage's last item, so a finished stage shows its
        count."""
        within = done / total if total else 1.0
        stages = len(C3POBuild.STAGES)
        self.attempt.progress(
            round((self.index + within) / stages, 4),
            f"Stage {self.index + 1} of {stages}, {C3POBuild.STAGES[self.index]}: "
            f"{done} of {total}",
            force=done >= total,
        )


def build_event(build: C3POBuild) -> dict[str, Any]:
    """What `c3po_build.finished` says about a build."""
    return {
        "id": build.pk,
        "verbal_feedback": build.feedback_id,
        "status": build.status,
        "error": build.error,
    }


# Told when a build ends, by its worker or by the sweeper that found the worker dead.
C3PO_BUILD_EVENTS = JobEvents(C3PO_BUILD_JOB, WebhookEventType.C3PO_BUILD_FINISHED, build_event)


def build_execute(*, build_id: int) -> None:
    """Run (or resume) a build. Only a queued build (or one whose worker died) is claimed: a
    second delivery does nothing."""
    job_execute(kind=C3PO_BUILD_JOB, job_id=build_id, work=_build)


def _build(attempt: Attempt[C3POBuild]) -> None:
    build = attempt.job
    client = _client(build.generator)
    try:
        for index, step in enumerate(STEPS):
            if index < build.stage:
                continue
            try:
                step(build, _Stage(attempt, index), client)
            except GeneratorError as error:
                raise JobFailed(
                    f"Stage {index + 1} ({C3POBuild.STAGES[index]}) stopped: {error.message} "
                    "Fix the generator or the counts, then resume the build."
                ) from error
            attempt.progress(stage=index + 1, force=True)  # a resumed build starts here
            build.stage = index + 1
    finally:
        if client is not None:
            client.close()
    with transaction.atomic():
        # Locked: no review lands between counting what is pending and the status it decides.
        attempt.lock()
        if build.review and selectors.build_items_pending_review(build=build).exists():
            attempt.finish(
                status=BuildStatus.REVIEW,
                message="Waiting for annotators to review the revised responses.",
                finished_at=None,
            )
        else:
            attempt.finish()


def _client(generator: Generator | None) -> ChatClient | None:
    if generator is None:
        return None
    return ChatClient(
        GeneratorSettings(
            base_url=generator.base_url,
            model=generator.model,
            api_key=generator.api_key,
            temperature=generator.temperature,
            concurrency=generator.concurrency,
        )
    )


def _insert(stage: _Stage, scope: str, category: str, prompts: list[str], **extra: Any) -> None:
    """Add items to the build, only while this attempt is the current one: a superseded attempt
    still waiting on the generator would otherwise add a second set of generated prompts (the
    texts differ between runs, so the unique constraint would not catch them)."""
    build = stage.attempt.job
    with transaction.atomic():
        stage.attempt.lock()
        C3POItem.objects.bulk_create(
            [
                C3POItem(
                    build=build,
                    scope=scope,
                    category=category,
                    prompt=prompt,
                    prompt_hash=_prompt_hash(prompt),
                    **{k: v[i] for k, v in extra.items()},
                )
                for i, prompt in enumerate(prompts)
            ],
            ignore_conflicts=True,  # a prompt the model repeated, or a resumed stage's
        )


Step = Callable[[C3POBuild, _Stage, ChatClient | None], None]


def _stage_categories(build: C3POBuild, stage: _Stage, client: ChatClient | None) -> None:
    if build.categories:
        return
    feedback = build.feedback
    if client is None:
        categories = [feedback.domain or "general"]
    else:
        request = c3po.categories_request(
            feedback.text,
            domain=feedback.domain,
            effect=feedback.effect,
            count=build.counts["categories"],
        )
        categories = client.complete_json(
            request.messages, name=request.name, schema=request.schema, validate=request.validate
        )
    stage.attempt.write(categories=categories)
    build.categories = categories


def _stage_prompts(scope: PromptScope) -> Step:
    key = "in_scope_per_category" if scope == PromptScope.IN_SCOPE else "near_scope_per_category"

    def step(build: C3POBuild, stage: _Stage, client: ChatClient | None) -> None:
        count = build.counts[key]
        if client is None:
            if scope == PromptScope.IN_SCOPE and not build.items.filter(scope=scope).exists():
                # The human path: the project's own questions and answers; annotators write
                # the revision where the feedback applies and reject the rest.
                pairs = list(
                    islice(
                        selectors.collected_questions(project_id=build.project_id),
                        count * len(build.categories),
                    )
                )
                _insert(
                    stage,
                    scope,
                    build.categories[0],
                    [q for q, _ in pairs],
                    baseline=[r for _, r in pairs],
                )
            return  # near-scope prompts need a generator
        done_categories = set(
            build.items.filter(scope=scope).values_list("category", flat=True).distinct()
        )
        todo = [c for c in build.categories if c not in done_categories]
        total = len(build.categories)
        done = total - len(todo)
        feedback = build.feedback

        def ask(category: str) -> list[str]:
            request = c3po.prompts_request(
                feedback.text,
                domain=feedback.domain,
                category=category,
                count=count,
                scope=scope.value,  # type: ignore[arg-type]
            )
            assert client is not None
            return client.complete_json(
                request.messages,
                name=request.name,
                schema=request.schema,
                validate=request.validate,
            )

        def store(index: int, prompts: list[str]) -> None:
            nonlocal done
            _insert(stage, scope, todo[index], prompts)
            done += 1
            stage.report(done, total)

        client.map(ask, todo, on_result=store)

    return step


def _stage_out_of_scope(build: C3POBuild, stage: _Stage, client: ChatClient | None) -> None:
    wanted = build.counts["out_of_scope"]
    out_of_scope = build.items.filter(scope=PromptScope.OUT_OF_SCOPE)
    have = out_of_scope.count()
    if have >= wanted:
        return
    used = set(build.items.values_list("prompt", flat=True))
    collected = [
        (q, r)
        for q, r in selectors.collected_questions(project_id=build.project_id)
        if q not in used
    ]
    sampled = c3po.sample_out_of_scope(
        [q for q, _ in collected], wanted - have, seed=_int_seed(build.seed), exclude=used
    )
    response_of = dict(collected)
    # The project's own answers are the baselines of its own prompts when no model is asked.
    baselines = [response_of[q] if client is None else "" for q in sampled]
    _insert(stage, PromptScope.OUT_OF_SCOPE, "", sampled, baseline=baselines)
    missing = wanted - have - len(sampled)
    if missing <= 0 or client is None:
        return
    batch, round_ = 50, 0
    while missing > 0:
        request = c3po.out_of_scope_request(
            count=min(batch, missing),
            avoid=build.feedback.domain or build.feedback.text,
            batch=round_,
        )
        round_ += 1
        prompts = client.complete_json(
            request.messages, name=request.name, schema=request.schema, validate=request.validate
        )
        before = out_of_scope.count()
        _insert(stage, PromptScope.OUT_OF_SCOPE, "", [p for p in prompts if p not in used])
        added = out_of_scope.count() - before
        if added == 0:
            raise GeneratorError(
                "The generator keeps repeating out-of-scope prompts; lower the count.",
                kind="invalid",
            )
        missing -= added
        stage.report(wanted - missing, wanted)


def _fill(
    stage: _Stage,
    client: ChatClient | None,
    *,
    items: QuerySet[C3POItem],
    field: str,
    messages: Callable[[C3POItem], list[dict[str, str]]],
) -> None:
    """Ask the generator for one text per item still missing it, storing each as it comes."""
    if client is None:
        return
    todo = list(items.filter(**{field: ""}).order_by("id"))
    total = items.count()
    done = total - len(todo)

    def store(index: int, text: str) -> None:
        nonlocal done
        stage.items.filter(pk=todo[index].pk).update(**{field: text})
        done += 1
        stage.report(done, total)

    client.map(lambda item: client.complete_text(messages(item)), todo, on_result=store)


def _stage_baselines(build: C3POBuild, stage: _Stage, client: ChatClient | None) -> None:
    _fill(
        stage,
        client,
        items=build.items.all(),
        field="baseline",
        messages=lambda item: c3po.baseline_messages(item.prompt),
    )


def _stage_revisions(build: C3POBuild, stage: _Stage, client: ChatClient | None) -> None:
    text = build.feedback.text
    _fill(
        stage,
        client,
        items=build.items.filter(scope=PromptScope.IN_SCOPE),
        field="revised",
        messages=lambda item: c3po.revise_messages(text, item.prompt, item.baseline),
    )
    if not build.review:  # generated revisions are used as they are
        stage.items.filter(scope=PromptScope.IN_SCOPE, review_status=ReviewStatus.PENDING).update(
            review_status=ReviewStatus.APPROVED
        )


def _stage_split(build: C3POBuild, stage: _Stage, client: ChatClient | None) -> None:
    fraction = build.counts["test_fraction"]
    for scope in PromptScope.values:
        items = list(build.items.filter(scope=scope).values_list("id", "prompt_hash"))
        test = [
            pk
            for pk, key in items
            if c3po.split_of(key, test_fraction=fraction, seed=build.seed) == "test"
        ]
        stage.items.filter(scope=scope).update(split="train")
        stage.items.filter(pk__in=test).update(split="test")


# One step per entry of C3POBuild.STAGES, in its order.
STEPS: tuple[Step, ...] = (
    _stage_categories,
    _stage_prompts(PromptScope.IN_SCOPE),
    _stage_prompts(PromptScope.NEAR_SCOPE),
    _stage_out_of_scope,
    _stage_baselines,
    _stage_revisions,
    _stage_split,
)
