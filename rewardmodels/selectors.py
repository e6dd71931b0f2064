"""Reads of the reward models, always scoped to a project."""

from __future__ import annotations

from django.db.models import QuerySet

from feedback.core.jobs import JobStatus
from feedback.models import Project
from rewardmodels.models import (
    C3POBuild,
    Generator,
    RewardModel,
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


def generator_get(*, project: Project, generator_id: int) -> Generator | None:
    return Generator.objects.filter(project=project, pk=generator_id).first()


def generators_for_project(*, project: Project) -> QuerySet[Generator]:
    return Generator.objects.filter(project=project).order_by("name")


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
