"""C3PO: verbal feedback, generators, the requests that start or resume the build of a
feedback's dataset, and the reviews of its revised responses.

The build itself, stage by stage, runs on a worker (`rewardmodels.services.c3po_build`). Without
a generator (the human path) the prompts and baseline responses come from the project's own
answers, and annotators write the revised responses in the review queue; with one and `review`
on, annotators approve, edit or reject the generated revisions. Either way the dpo part then
uses only approved (or edited) rows, and the dataset is served only once the build has
succeeded: nothing half-written is exported.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from feedback.core import outbound
from feedback.core.errors import NON_FIELD, ValidationFailed
from feedback.core.jobs import job_enqueue, job_resume
from feedback.core.validators import bidi_problem
from feedback.models import Critique, Project, WebhookEventType
from feedback.services.webhooks import webhook_events_emit
from rewardmodels import c3po, selectors
from rewardmodels.models import (
    BuildStatus,
    C3POBuild,
    C3POItem,
    Generator,
    PromptScope,
    ReviewStatus,
    VerbalFeedback,
)
from rewardmodels.services.c3po_build import C3PO_BUILD_JOB, build_event

MAX_TEXT = 5000
SEED_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
SEED_RULE = "Must be 1 to 32 letters, digits, - or _."
INVALID = "Invalid input; nothing was saved."
GENERATOR_TEMPERATURE = 0.7
GENERATOR_CONCURRENCY = 4
TEMPERATURE_RULE = "Must be a number from 0 to 2."
CONCURRENCY_RULE = "Must be a whole number from 1 to 32."


def _text(
    value: object, field: str, errors: dict[str, list[str]], *, limit: int, required: bool
) -> str:
    """`value` stripped, or "" with the reason in `errors` (its type is checked too, whoever
    calls)."""
    if value is None and not required:
        return ""
    if not isinstance(value, str) or "\x00" in value or len(value) > limit:
        errors[field] = [f"Must be text of at most {limit} characters."]
        return ""
    if required and not value.strip():
        errors[field] = ["Must not be empty."]
    return value.strip()


def _between(value: object, low: int, high: int, *, whole: bool) -> float | None:
    """`value` if it is a number from `low` to `high` (a whole one when `whole`), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if (whole and not isinstance(value, int)) or not low <= value <= high:
        return None
    return value


def verbal_feedback_create(
    *,
    project: Project,
    text: object,
    domain: object = None,
    effect: object = None,
    critique: Critique | None = None,
    created_by: User | None = None,
) -> VerbalFeedback:
    errors: dict[str, list[str]] = {}
    clean_text = _text(text, "text", errors, limit=MAX_TEXT, required=True)
    clean_domain = _text(domain, "domain", errors, limit=200, required=False)
    clean_effect = _text(effect, "effect", errors, limit=500, required=False)
    if errors:
        raise ValidationFailed(errors, INVALID)
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
    name: object,
    base_url: object,
    model: object,
    api_key: object = None,
    temperature: object = GENERATOR_TEMPERATURE,
    concurrency: object = GENERATOR_CONCURRENCY,
) -> Generator:
    """Create or change a generator by name. `api_key=None` keeps a stored key. The values are
    checked here, types included, whoever calls."""
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
    clean_temperature = _between(temperature, 0, 2, whole=False)
    if clean_temperature is None:
        errors["temperature"] = [TEMPERATURE_RULE]
    clean_concurrency = _between(concurrency, 1, 32, whole=True)
    if clean_concurrency is None:
        errors["concurrency"] = [CONCURRENCY_RULE]
    if errors:
        raise ValidationFailed(errors, INVALID)
    defaults: dict[str, Any] = {
        "base_url": url,
        "model": clean_model,
        "temperature": float(clean_temperature or 0),
        "concurrency": clean_concurrency,
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
    generator_id: int | None = None,
    counts: object = None,
    review: bool = False,
    seed: object = None,
    created_by: User | None = None,
) -> C3POBuild:
    """Queue a build; the task is sent once the row is committed. Without a generator (its id
    in the feedback's project) annotators write the revisions. `seed` fixes which collected
    prompts are sampled and which rows are held out (random when not given), so two builds
    with one seed and one generator make the same dataset."""
    clean_counts, errors = c3po.counts_clean(counts)
    if errors:
        raise ValidationFailed(errors, INVALID)
    if seed is not None and (not isinstance(seed, str) or not SEED_PATTERN.fullmatch(seed)):
        raise ValidationFailed({"seed": [SEED_RULE]}, INVALID)
    generator = None
    if generator_id is not None:
        generator = selectors.generator_get(project=feedback.project, generator_id=generator_id)
        if generator is None:  # another project's generator is as unknown as a deleted one
            raise ValidationFailed({"generator": ["No such generator in this project."]}, INVALID)
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
        job_enqueue(kind=C3PO_BUILD_JOB, job_id=build.pk)
    return build


def build_resume(*, build: C3POBuild) -> C3POBuild:
    """Queue a failed build again; it continues from the stage where it stopped."""
    return job_resume(kind=C3PO_BUILD_JOB, job=build)


# --- review -------------------------------------------------------------------------------------


def item_review(
    *, item: C3POItem, reviewer: User, action: str, revised: str | None = None
) -> C3POItem:
    """Approve, edit (with the new revised response) or reject one in-scope row of a build in
    review. The review that leaves nothing pending completes the build, in the same
    transaction."""
    if action not in ("approve", "edit", "reject"):
        raise ValidationFailed({"action": ["Must be approve, edit or reject."]}, INVALID)
    if item.scope != PromptScope.IN_SCOPE:
        raise ValidationFailed.of(NON_FIELD, "Only in-scope rows are reviewed.")
    fields: dict[str, Any] = {"reviewed_by": reviewer, "reviewed_at": timezone.now()}
    if action == "edit":
        errors: dict[str, list[str]] = {}
        text = _text(revised, "revised", errors, limit=50_000, required=True)
        if errors:
            raise ValidationFailed(errors, INVALID)
        fields |= {"revised": text, "review_status": ReviewStatus.EDITED}
    elif action == "approve":
        if not item.revised.strip():
            raise ValidationFailed(
                {"revised": ["There is no revised response to approve; edit it."]}, INVALID
            )
        fields["review_status"] = ReviewStatus.APPROVED
    else:
        fields["review_status"] = ReviewStatus.REJECTED
    with transaction.atomic():
        # The build's row lock orders this review after the build's own last step and after
        # every other review, so exactly one review sees nothing left pending.
        build = C3POBuild.objects.select_for_update().get(pk=item.build_id)
        if build.status != BuildStatus.REVIEW:
            raise ValidationFailed.of(
                NON_FIELD, f"The build is {build.get_status_display().lower()}, not in review."
            )
        C3POItem.objects.filter(pk=item.pk).update(**fields)
        if not selectors.build_items_pending_review(build=build).exists():
            build.status = BuildStatus.SUCCEEDED
            build.message = "Done: every revised response was reviewed."
            build.finished_at = timezone.now()
            build.save(update_fields=["status", "message", "finished_at"])
            webhook_events_emit(
                project=build.project_id,
                event_type=WebhookEventType.C3PO_BUILD_FINISHED,
                payloads=[build_event(build)],
            )
    item.refresh_from_db()
    return item
