"""Reads of the reward models, always scoped to a project."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Count, Q, QuerySet

from feedback.core.jobs import JobStatus
from feedback.datasets import Rows
from feedback.models import Answer, Critique, Project
from rewardmodels.datasets import build_rows
from rewardmodels.models import (
    BuildStatus,
    C3POBuild,
    C3POItem,
    Generator,
    Objective,
    PromptScope,
    ReviewStatus,
    RewardModel,
    ShadowRun,
    TrainingRun,
    VerbalFeedback,
)


def reward_model_get(*, project: Project, model_id: int) -> RewardModel | None:
    return (
        RewardModel.objects.filter(project=project, pk=model_id)
        .select_related("active_run")
        .first()
    )


def reward_models_for_project(*, project: Project) -> QuerySet[RewardModel]:
    return (
        RewardModel.objects.filter(project=project)
        .select_related("active_run")
        .order_by("-created_at", "-id")
    )


def versions_of(*, reward_model: RewardModel) -> QuerySet[TrainingRun]:
    return reward_model.runs.filter(status=JobStatus.SUCCEEDED).order_by("-version")


def runs_of(*, reward_model: RewardModel) -> QuerySet[TrainingRun]:
    return reward_model.runs.order_by("-created_at", "-id")


def training_run_get(*, project: Project, run_id: int) -> TrainingRun | None:
    return (
        TrainingRun.objects.filter(project=project, pk=run_id)
        .select_related("reward_model")
        .first()
    )


def verbal_feedback_get(*, project: Project, feedback_id: int) -> VerbalFeedback | None:
    return VerbalFeedback.objects.filter(project=project, pk=feedback_id).first()


def verbal_feedback_for_project(*, project: Project) -> QuerySet[VerbalFeedback]:
    return VerbalFeedback.objects.filter(project=project).order_by("-created_at", "-id")


# Pages that only name a generator don't load its key: nothing decrypted that isn't sent.
def generator_get(*, project: Project, generator_id: int) -> Generator | None:
    return Generator.objects.filter(project=project, pk=generator_id).defer("api_key").first()


def generators_for_project(*, project: Project) -> QuerySet[Generator]:
    return Generator.objects.filter(project=project).order_by("name")


def critiques_to_promote(*, project: Project) -> QuerySet[Critique]:
    """The project's critiques not yet promoted to verbal feedback, newest first."""
    promoted = VerbalFeedback.objects.filter(project=project, critique__isnull=False)
    return (
        Critique.objects.filter(project=project)
        .exclude(pk__in=promoted.values("critique_id"))
        .select_related("answer")
        .order_by("-created_at")
    )


def builds_for_feedback(*, feedback: VerbalFeedback) -> QuerySet[C3POBuild]:
    return (
        feedback.builds.select_related("generator")
        .defer("generator__api_key")
        .order_by("-created_at")
    )


def builds_in_review(*, project: Project) -> QuerySet[C3POBuild]:
    """Builds waiting for annotators to review their revised responses."""
    return builds_for_project(project=project).filter(status=BuildStatus.REVIEW)


def build_item_get(*, build: C3POBuild, item_id: int) -> C3POItem | None:
    return C3POItem.objects.filter(build=build, pk=item_id).first()


def build_get(*, project: Project, build_id: int) -> C3POBuild | None:
    return (
        C3POBuild.objects.filter(project=project, pk=build_id)
        .select_related("feedback", "generator")
        .defer("generator__api_key")
        .first()
    )


def builds_for_project(*, project: Project) -> QuerySet[C3POBuild]:
    return (
        C3POBuild.objects.filter(project=project)
        .select_related("feedback", "generator")
        .defer("generator__api_key")
        .order_by("-created_at", "-id")
    )


# --- C3PO builds: review, counts, the dataset, the project's own questions ----------------------

MAX_PROMPT_CHARS = 4000  # longer collected questions are not used as C3PO prompts


def build_items_pending_review(*, build: C3POBuild) -> QuerySet[C3POItem]:
    return build.items.filter(scope=PromptScope.IN_SCOPE, review_status=ReviewStatus.PENDING)


def build_pending_review_count(*, build: C3POBuild) -> int:
    """How many in-scope rows of the build still wait for a reviewer."""
    return build_items_pending_review(build=build).count()


def build_item_next_for_review(*, build: C3POBuild) -> C3POItem | None:
    """The next in-scope row waiting for an annotator; none unless the build is in review."""
    if build.status != BuildStatus.REVIEW:
        return None
    return build_items_pending_review(build=build).order_by("id").first()


def build_dataset(*, build: C3POBuild, part: str) -> Rows:
    """One part of a build's dataset, in TRL's column names (defined in rewardmodels.datasets:
    the same rows the registry's c3po_* datasets export), for `feedback.datasets` to stream."""
    return build_rows(build, part)


def build_dataset_rows(*, build: C3POBuild, part: str) -> Iterator[dict[str, Any]]:
    """The same rows as plain dicts of those columns (a page's preview of a few)."""
    rows = build_rows(build, part)
    for row in rows.queryset().iterator(chunk_size=2000):
        yield {name: row[f"c_{name}"] for name in rows.columns}


def build_counts(*, build: C3POBuild) -> dict[str, Any]:
    """What the build has made so far, per part and review state, in one query."""
    in_scope = Q(scope=PromptScope.IN_SCOPE)
    review = {
        status: Count("id", filter=in_scope & Q(review_status=status))
        for status in ReviewStatus.values
    }
    counts = build.items.aggregate(
        in_scope=Count("id", filter=in_scope),
        near_scope=Count("id", filter=Q(scope=PromptScope.NEAR_SCOPE)),
        out_of_scope=Count("id", filter=Q(scope=PromptScope.OUT_OF_SCOPE)),
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


def collected_questions(*, project_id: int) -> Iterator[tuple[str, str]]:
    """The project's own (question, response) pairs, newest first: the last user message of
    each prompt and the answer given to it, each question once."""
    seen: set[str] = set()
    answers = (
        Answer.objects.filter(project_id=project_id, revision_of__isnull=True)
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


def shadow_run_get(*, project: Project, run_id: int) -> ShadowRun | None:
    return (
        ShadowRun.objects.filter(project=project, pk=run_id)
        .select_related("reward_model", "training_run")
        .first()
    )


def shadow_runs_for_project(*, project: Project) -> QuerySet[ShadowRun]:
    return (
        ShadowRun.objects.filter(project=project)
        .select_related("reward_model", "training_run")
        .order_by("-created_at", "-id")
    )


def p_love_models_with_version(*, project: Project) -> QuerySet[RewardModel]:
    """The models a shadow can speak with: P[Love], with an active version."""
    return (
        RewardModel.objects.filter(
            project=project, objective=Objective.P_LOVE, active_run__isnull=False
        )
        .select_related("active_run")
        .order_by("name", "id")
    )
