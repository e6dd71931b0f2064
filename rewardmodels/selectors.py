"""Reads of the reward models, always scoped to a project."""

from __future__ import annotations

from django.db.models import QuerySet

from feedback.models import Critique, Project
from rewardmodels.models import (
    BuildStatus,
    C3POBuild,
    C3POItem,
    Generator,
    ReviewStatus,
    RewardModel,
    RunStatus,
    Scope,
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
    return reward_model.runs.filter(status=RunStatus.SUCCEEDED).order_by("-version")


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


def generator_get(*, project: Project, generator_id: int) -> Generator | None:
    return Generator.objects.filter(project=project, pk=generator_id).first()


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
    return feedback.builds.select_related("generator").order_by("-created_at")


def builds_in_review(*, project: Project) -> QuerySet[C3POBuild]:
    """Builds waiting for annotators to review their revised responses."""
    return builds_for_project(project=project).filter(status=BuildStatus.REVIEW)


def build_item_get(*, build: C3POBuild, item_id: int) -> C3POItem | None:
    return C3POItem.objects.filter(build=build, pk=item_id).first()


def build_items_pending_review(*, build: C3POBuild) -> int:
    """How many in-scope items of the build still wait for a reviewer."""
    return build.items.filter(scope=Scope.IN_SCOPE, review_status=ReviewStatus.PENDING).count()


def build_get(*, project: Project, build_id: int) -> C3POBuild | None:
    return (
        C3POBuild.objects.filter(project=project, pk=build_id)
        .select_related("feedback", "generator")
        .first()
    )


def builds_for_project(*, project: Project) -> QuerySet[C3POBuild]:
    return (
        C3POBuild.objects.filter(project=project)
        .select_related("feedback", "generator")
        .order_by("-created_at", "-id")
    )
