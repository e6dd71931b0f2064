"""C3PO: verbal feedback, generators, and the staged build of a feedback's dataset.

A build runs its stages in order (see `C3POBuild.STAGES`); each stage stores what it made
(categories on the build, prompts and responses as C3POItem rows) and skips what is already
there, so a build that stopped (a worker killed, a generator that failed) resumes where it
was and ends with the same rows. The dataset is served only once the build has succeeded:
nothing half-written is exported.

Without a generator (the human path) the prompts and baseline responses come from the
project's own answers, and annotators write the revised responses in the review queue; with
one and `review` on, annotators approve, edit or reject the generated revisions. Either way
the dpo part then uses only approved (or edited) rows.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from feedback.core import outbound
from feedback.core.validators import bidi_problem
from feedback.models import Answer, Critique, Project
from feedback.services.errors import ServiceError
from rewardmodels import c3po
from rewardmodels.datasets import build_rows
from rewardmodels.generator import ChatClient, GeneratorError, GeneratorSettings
from rewardmodels.models import (
    BuildStatus,
    C3POBuild,
    C3POItem,
    Generator,
    ReviewStatus,
    Scope,
    VerbalFeedback,
)
from rewardmodels.services.heartbeat import Heartbeat

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # a build whose worker died is resumed automatically this many times
PARTS = ("dpo", "sft_near", "sft_out")
MAX_TEXT = 5000
SEED_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
MAX_PROMPT_CHARS = 4000  # longer collected questions are not used as C3PO prompts


class C3POInvalid(ServiceError):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("Invalid input; nothing was saved.")
        self.errors = errors


class BuildSuperseded(Exception):
    """This attempt is no longer the build's current one (the sweeper moved on)."""


def _text(
    value: Any, field: str, errors: dict[str, list[str]], *, limit: int, required: bool
) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or "\x00" in value or len(value) > limit:
        errors[field] = [f"Must be text of at most {limit} characters."]
        return ""
    if required and not value.strip():
        errors[field] = ["Must not be empty."]
    return value.strip()


def verbal_feedback_create(
    *,
    project: Project,
    text: Any,
    domain: Any = None,
    effect: Any = None,
    critique: Critique | None = None,
    created_by: User | None = None,
) -> VerbalFeedback:
    errors: dict[str, list[str]] = {}
    clean_text = _text(text, "text", errors, limit=MAX_TEXT, required=True)
    clean_domain = _text(domain, "domain", errors, limit=200, required=False)
    clean_effect = _text(effect, "effect", errors, limit=500, required=False)
    if errors:
        raise C3POInvalid(errors)
    return VerbalFeedback.objects.create(
        project=project,
        text=clean_text,
        domain=clean_domain,
        effect=clean_effect,
        critique=critique,
        created_by=created_by,
    )


def critique_promote(
    *, critique: Critique, created_by: User | None, domain: str = ""
) -> VerbalFeedback:
    """A critique that states a general rule becomes verbal feedback (its text, kept linked)."""
    return verbal_feedback_create(
        project=critique.project,
        text=critique.text,
        domain=domain or critique.category,
        critique=critique,
        created_by=created_by,
    )


def generator_save(
    *,
    project: Project,
    name: Any,
    base_url: Any,
    model: Any,
    api_key: Any = None,
    temperature: Any = 0.7,
    concurrency: Any = 4,
) -> Generator:
    """Create or change a generator by name. `api_key=None` keeps a stored key."""
    errors: dict[str, list[str]] = {}
    clean_name = _text(name, "name", errors, limit=200, required=True)
    url = _text(base_url, "base_url", errors, limit=500, required=True)
    # Credentials in the URL, or an address inside the platform's network, are refused here;
    # every call checks the destination again (feedback.core.outbound).
    problem = outbound.destination_problem(url) if url else None
    if problem:
        errors["base_url"] = [problem]
    clean_model = _text(model, "model", errors, limit=200, required=True)
    for field, shown in (("name", clean_name), ("model", clean_model)):
        if problem := bidi_problem(shown):  # both are shown in lists, exactly as stored
            errors.setdefault(field, [problem])
    key = None if api_key is None else _text(api_key, "api_key", errors, limit=500, required=False)
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= 2
    ):
        errors["temperature"] = ["Must be a number from 0 to 2."]
    if (
        isinstance(concurrency, bool)
        or not isinstance(concurrency, int)
        or not 1 <= concurrency <= 32
    ):
        errors["concurrency"] = ["Must be a whole number from 1 to 32."]
    if errors:
        raise C3POInvalid(errors)
    defaults: dict[str, Any] = {
        "base_url": url,
        "model": clean_model,
        "temperature": float(temperature),
        "concurrency": concurrency,
    }
    if key is not None:
        defaults["api_key"] = key
    generator, _ = Generator.objects.update_or_create(
        project=project, name=clean_name, defaults=defaults
    )
    return generator


def build_start(
    *,
    feedback: VerbalFeedback,
    generator: Generator | None,
    counts: Any = None,
    review: bool = False,
    seed: Any = None,
    created_by: User | None = None,
) -> C3POBuild:
    """Queue a build; the task is sent once the row is committed. `seed` fixes which collected
    prompts are sampled and which rows are held out (random when not given), so two builds
    with one seed and one generator make the same dataset."""
    try:
        clean_counts = c3po.counts_clean(counts)
    except c3po.CountsInvalid as invalid:
        raise C3POInvalid(invalid.errors) from None
    if seed is not None and (not isinstance(seed, str) or not SEED_PATTERN.fullmatch(seed)):
        raise C3POInvalid({"seed": ["Must be 1 to 32 letters, digits, - or _."]})
    if generator is not None and generator.project_id != feedback.project_id:
        raise C3POInvalid({"generator": ["No such generator in this project."]})
    from rewardmodels.tasks import c3po_build_execute

    with transaction.atomic():
        build = C3POBuild.objects.create(
            project_id=feedback.project_id,
            feedback=feedback,
            generator=generator,
            review=review or generator is None,
            counts=clean_counts,
            seed=seed or secrets.token_hex(8),
            created_by=created_by,
            message="Waiting for a worker…",
        )
        transaction.on_commit(lambda: c3po_build_execute.delay(build.pk))
    return build


def build_resume(*, build: C3POBuild) -> C3POBuild:
    """Queue a failed build again; it continues from the stage where it stopped."""
    from rewardmodels.tasks import c3po_build_execute

    with transaction.atomic():
        resumed = C3POBuild.objects.filter(pk=build.pk, status=BuildStatus.FAILED).update(
            status=BuildStatus.QUEUED, error="", message="Resuming…", attempts=0
        )
        if resumed:
            transaction.on_commit(lambda: c3po_build_execute.delay(build.pk))
    build.refresh_from_db()
    return build


# --- executing a build -----------------------------------------------------------------------


def _int_seed(seed: str) -> int:
    return int(hashlib.sha256(seed.encode()).hexdigest()[:16], 16)


def _prompt_hash(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()


class _Run:
    """One attempt at a build: its progress writes, and the fence that stops an attempt the
    sweeper has given up on."""

    def __init__(self, build: C3POBuild) -> None:
        self.build = build
        self.mine = C3POBuild.objects.filter(
            pk=build.pk, status=BuildStatus.RUNNING, attempts=build.attempts
        )

    def report(self, stage: int, done: int, total: int) -> None:
        within = done / total if total else 1.0
        progress = round((stage + within) / len(C3POBuild.STAGES), 4)
        name = C3POBuild.STAGES[stage]
        if not self.mine.update(
            progress=min(progress, 1.0),
            message=f"Stage {stage + 1} of 7, {name}: {done} of {total}",
            heartbeat_at=timezone.now(),
        ):
            raise BuildSuperseded

    def stage_done(self, stage: int) -> None:
        if not self.mine.update(stage=stage + 1, heartbeat_at=timezone.now()):
            raise BuildSuperseded


def build_execute(*, build_id: int) -> None:
    """Run (or resume) a build. Only a queued build is claimed: a second delivery does nothing."""
    now = timezone.now()
    claimed = C3POBuild.objects.filter(pk=build_id, status=BuildStatus.QUEUED).update(
        status=BuildStatus.RUNNING,
        started_at=now,
        heartbeat_at=now,
        attempts=F("attempts") + 1,
        error="",
    )
    if not claimed:
        return
    build = C3POBuild.objects.select_related("feedback", "generator").get(pk=build_id)
    run = _Run(build)
    client = _client(build.generator)
    try:
        with Heartbeat(run.mine):
            for stage, step in enumerate(STEPS):
                if stage < build.stage:
                    continue
                try:
                    step(build, run, client)
                except GeneratorError as error:
                    name = C3POBuild.STAGES[stage]
                    run.mine.update(
                        status=BuildStatus.FAILED,
                        error=f"Stage {stage + 1} ({name}) stopped: {error.message} "
                        "Fix the generator or the counts, then resume the build.",
                        message="",
                        finished_at=timezone.now(),
                    )
                    return
                run.stage_done(stage)
                build.stage = stage + 1
        pending = build.items.filter(scope=Scope.IN_SCOPE, review_status=ReviewStatus.PENDING)
        needs_people = build.review and pending.exists()
        run.mine.update(
            status=BuildStatus.REVIEW if needs_people else BuildStatus.SUCCEEDED,
            progress=1.0,
            message=(
                "Waiting for annotators to review the revised responses."
                if needs_people
                else "Done."
            ),
            finished_at=None if needs_people else timezone.now(),
        )
    except BuildSuperseded:
        logger.info("c3po build %s: attempt %s superseded", build_id, build.attempts)
    except Exception as error:  # recorded on the row; the task itself must not retry
        logger.exception("c3po build %s failed", build_id)
        run.mine.update(
            status=BuildStatus.FAILED,
            error=f"{type(error).__name__}: {error}"[:2000],
            message="",
            finished_at=timezone.now(),
        )
    finally:
        if client is not None:
            client.close()


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


def _insert(build: C3POBuild, scope: str, category: str, prompts: list[str], **extra: Any) -> None:
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


def _collected(build: C3POBuild) -> Iterator[tuple[str, str]]:
    """The project's own (question, response) pairs, newest first: the last user message of
    each prompt and the answer given to it."""
    seen: set[str] = set()
    answers = (
        Answer.objects.filter(project_id=build.project_id, revision_of__isnull=True)
        .order_by("-created_at", "-id")
        .values_list("prompt", "response")
    )
    for prompt, response in answers.iterator(chunk_size=2000):
        question = next(
            (m.get("content", "") for m in reversed(prompt) if m.get("role") == "user"), ""
        )
        if question and question not in seen and len(question) <= MAX_PROMPT_CHARS:
            seen.add(question)
            yield question, response


def _stage_categories(build: C3POBuild, run: _Run, client: ChatClient | None) -> None:
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
    C3POBuild.objects.filter(pk=build.pk).update(categories=categories)
    build.categories = categories


def _stage_prompts(scope: str) -> Callable[[C3POBuild, _Run, ChatClient | None], None]:
    key = "in_scope_per_category" if scope == Scope.IN_SCOPE else "near_scope_per_category"
    stage = 1 if scope == Scope.IN_SCOPE else 2

    def step(build: C3POBuild, run: _Run, client: ChatClient | None) -> None:
        count = build.counts[key]
        if client is None:
            if scope == Scope.IN_SCOPE and not build.items.filter(scope=scope).exists():
                # The human path: the project's own questions and answers; annotators write
                # the revision where the feedback applies and reject the rest.
                pairs = list(_take(_collected(build), count * len(build.categories)))
                _insert(
                    build,
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
                scope=scope,  # type: ignore[arg-type]
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
            _insert(build, scope, todo[index], prompts)
            done += 1
            run.report(stage, done, total)

        client.map(ask, todo, on_result=store)

    return step


def _take(pairs: Iterator[tuple[str, str]], n: int) -> Iterator[tuple[str, str]]:
    for i, pair in enumerate(pairs):
        if i >= n:
            return
        yield pair


def _stage_out_of_scope(build: C3POBuild, run: _Run, client: ChatClient | None) -> None:
    wanted = build.counts["out_of_scope"]
    have = build.items.filter(scope=Scope.OUT_OF_SCOPE).count()
    if have >= wanted:
        return
    used = set(build.items.values_list("prompt", flat=True))
    collected = [(q, r) for q, r in _collected(build) if q not in used]
    sampled = c3po.sample_out_of_scope(
        [q for q, _ in collected], wanted - have, seed=_int_seed(build.seed), exclude=used
    )
    response_of = dict(collected)
    # The project's own answers are the baselines of its own prompts when no model is asked.
    baselines = [response_of[q] if client is None else "" for q in sampled]
    _insert(build, Scope.OUT_OF_SCOPE, "", sampled, baseline=baselines)
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
        before = build.items.filter(scope=Scope.OUT_OF_SCOPE).count()
        _insert(build, Scope.OUT_OF_SCOPE, "", [p for p in prompts if p not in used])
        added = build.items.filter(scope=Scope.OUT_OF_SCOPE).count() - before
        if added == 0:
            raise GeneratorError(
                "The generator keeps repeating out-of-scope prompts; lower the count.",
                kind="invalid",
            )
        missing -= added
        run.report(3, wanted - missing, wanted)


def _fill(
    build: C3POBuild,
    run: _Run,
    client: ChatClient | None,
    *,
    stage: int,
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
        C3POItem.objects.filter(pk=todo[index].pk).update(**{field: text})
        done += 1
        run.report(stage, done, total)

    client.map(lambda item: client.complete_text(messages(item)), todo, on_result=store)


def _stage_baselines(build: C3POBuild, run: _Run, client: ChatClient | None) -> None:
    _fill(
        build,
        run,
        client,
        stage=4,
        items=build.items.all(),
        field="baseline",
        messages=lambda item: c3po.baseline_messages(item.prompt),
    )


def _stage_revisions(build: C3POBuild, run: _Run, client: ChatClient | None) -> None:
    text = build.feedback.text
    _fill(
        build,
        run,
        client,
        stage=5,
        items=build.items.filter(scope=Scope.IN_SCOPE),
        field="revised",
        messages=lambda item: c3po.revise_messages(text, item.prompt, item.baseline),
    )
    if not build.review:  # generated revisions are used as they are
        build.items.filter(scope=Scope.IN_SCOPE, review_status=ReviewStatus.PENDING).update(
            review_status=ReviewStatus.APPROVED
        )


def _stage_split(build: C3POBuild, run: _Run, client: ChatClient | None) -> None:
    fraction = build.counts["test_fraction"]
    for scope in Scope.values:
        items = list(build.items.filter(scope=scope).values_list("id", "prompt_hash"))
        test = [
            pk
            for pk, key in items
            if c3po.split_of(key, test_fraction=fraction, seed=build.seed) == "test"
        ]
        build.items.filter(scope=scope).update(split="train")
        build.items.filter(pk__in=test).update(split="test")


STEPS: tuple[Callable[[C3POBuild, _Run, ChatClient | None], None], ...] = (
    _stage_categories,
    _stage_prompts(Scope.IN_SCOPE),
    _stage_prompts(Scope.NEAR_SCOPE),
    _stage_out_of_scope,
    _stage_baselines,
    _stage_revisions,
    _stage_split,
)


def builds_sweep(*, now: datetime | None = None) -> tuple[int, int]:
    """Builds whose worker died (running, heartbeat stale) are queued again to resume, up to
    MAX_ATTEMPTS, then failed (a person can still resume them). Returns (requeued, failed)."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=float(settings.TRAINING_STALE_SECONDS))
    stale = C3POBuild.objects.filter(status=BuildStatus.RUNNING, heartbeat_at__lt=stale_before)
    failed = stale.filter(attempts__gte=MAX_ATTEMPTS).update(
        status=BuildStatus.FAILED,
        error="The worker building this stopped repeatedly; resume it to continue.",
        message="",
        finished_at=now,
    )
    requeue = list(stale.filter(attempts__lt=MAX_ATTEMPTS).values_list("pk", flat=True))
    C3POBuild.objects.filter(pk__in=requeue, status=BuildStatus.RUNNING).update(
        status=BuildStatus.QUEUED, message="Its worker stopped; resuming…"
    )
    from rewardmodels.tasks import c3po_build_execute

    for build_id in requeue:
        c3po_build_execute.delay(build_id)
    return len(requeue), failed


# --- review and the dataset -------------------------------------------------------------------


def item_review(
    *, item: C3POItem, reviewer: User, action: str, revised: str | None = None
) -> C3POItem:
    """Approve, edit (with the new revised response) or reject one in-scope row. When the last
    pending row of a build in review is reviewed, the build succeeds."""
    if action not in ("approve", "edit", "reject"):
        raise C3POInvalid({"action": ["Must be approve, edit or reject."]})
    if item.scope != Scope.IN_SCOPE:
        raise C3POInvalid({"item": ["Only in-scope rows are reviewed."]})
    fields: dict[str, Any] = {"reviewed_by": reviewer, "reviewed_at": timezone.now()}
    if action == "edit":
        errors: dict[str, list[str]] = {}
        text = _text(revised, "revised", errors, limit=50_000, required=True)
        if errors:
            raise C3POInvalid(errors)
        fields |= {"revised": text, "review_status": ReviewStatus.EDITED}
    elif action == "approve":
        if not item.revised.strip():
            raise C3POInvalid({"revised": ["There is no revised response to approve; edit it."]})
        fields["review_status"] = ReviewStatus.APPROVED
    else:
        fields["review_status"] = ReviewStatus.REJECTED
    with transaction.atomic():
        C3POItem.objects.filter(pk=item.pk).update(**fields)
        build = C3POBuild.objects.select_for_update().get(pk=item.build_id)
        pending = build.items.filter(scope=Scope.IN_SCOPE, review_status=ReviewStatus.PENDING)
        if build.status == BuildStatus.REVIEW and not pending.exists():
            build.status = BuildStatus.SUCCEEDED
            build.message = "Done: every revised response was reviewed."
            build.finished_at = timezone.now()
            build.save(update_fields=["status", "message", "finished_at"])
    item.refresh_from_db()
    return item


def item_next_for_review(*, build: C3POBuild) -> C3POItem | None:
    return (
        build.items.filter(scope=Scope.IN_SCOPE, review_status=ReviewStatus.PENDING)
        .order_by("id")
        .first()
    )


def dataset_rows(*, build: C3POBuild, part: str) -> Iterator[dict[str, Any]]:
    """One part of a build's dataset, in TRL's column names (defined in rewardmodels.datasets,
    the same rows the registry's c3po_* datasets export)."""
    rows = build_rows(build, part)
    for row in rows.queryset().iterator(chunk_size=2000):
        yield {name: row[f"c_{name}"] for name in rows.columns}


def build_counts(*, build: C3POBuild) -> dict[str, Any]:
    """What the build has made so far, per part and review state, in one query."""
    in_scope = Q(scope=Scope.IN_SCOPE)
    review = {
        status: Count("id", filter=in_scope & Q(review_status=status))
        for status in ReviewStatus.values
    }
    counts = build.items.aggregate(
        in_scope=Count("id", filter=in_scope),
        near_scope=Count("id", filter=Q(scope=Scope.NEAR_SCOPE)),
        out_of_scope=Count("id", filter=Q(scope=Scope.OUT_OF_SCOPE)),
        baselines=Count("id", filter=~Q(baseline="")),
        revised=Count("id", filter=in_scope & ~Q(revised="")),
        test=Count("id", filter=Q(split="test")),
        **{f"review_{status}": count for status, count in review.items()},
    )
    return {
        "categories": len(build.categories),
        **{k: v for k, v in counts.items() if not k.startswith("review_")},
        "review": {status: counts[f"review_{status}"] for status in ReviewStatus.values},
    }
