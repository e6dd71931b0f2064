"""Reads of traces: a project's answers and the stages behind each."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from feedback.models import (
    Answer,
    Project,
    Stage,
)


def answer_get_detailed(*, project: Project, external_id: str) -> Answer | None:
    """One answer with its trace, its revisions' external ids and its feedback counts."""
    return (
        Answer.objects.filter(project=project, external_id=external_id)
        .select_related("revision_of")
        .prefetch_related(
            Prefetch("stages", queryset=Stage.objects.order_by("position")),
            Prefetch("revisions", queryset=Answer.objects.only("id", "external_id", "revision_of")),
        )
        .first()
    )


def answers_for_project(*, project: Project) -> QuerySet[Answer]:
    return (
        Answer.objects.filter(project=project)
        .annotate(stage_count=Count("stages"))
        .order_by("-created_at", "-id")
    )


def project_models(*, project: Project) -> list[str]:
    """The model names the project's answers carry, sorted (filters on the list and queue pages)."""
    return list(
        Answer.objects.filter(project=project)
        .order_by("model")
        .values_list("model", flat=True)
        .distinct()
    )


def answer_for_page(*, project: Project, external_id: str) -> Answer | None:
    return Answer.objects.filter(project=project, external_id=external_id).first()


def stages_for_answer(*, answer: Answer) -> list[Stage]:
    """The answer's trace, in pipeline order."""
    return list(answer.stages.order_by("position"))


def stage_get(*, answer: Answer, position: int) -> Stage | None:
    return answer.stages.filter(position=position).first()


def has_same_prompt_answer(*, answer: Answer) -> bool:
    """Is there another answer to this prompt in the project (something to compare with)?"""
    return (
        Answer.objects.filter(project_id=answer.project_id, prompt_hash=answer.prompt_hash)
        .exclude(pk=answer.pk)
        .exists()
    )


def answer_get(*, answer_id: int) -> Answer:
    return Answer.objects.get(pk=answer_id)


def answer_stages(*, answer: Answer) -> QuerySet[Stage]:
    """An answer's trace, in order."""
    return answer.stages.order_by("position")
