"""Reads of the answers list: search, filters, re-run revisions grouped under their original,
and what a viewer already said about an answer.

Search is PostgreSQL full-text search over the prompt's messages and the response (English
stemming: "oiling" finds "oil"; web-search syntax: quotes, `or`, `-word`), using the GIN index
on the same expression. Other databases (the embedded SQLite default) match a substring,
case-insensitively, in the prompt's text or the response.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchVectorField
from django.db import connections
from django.db.models import Exists, F, Func, OuterRef, Prefetch, Q, QuerySet

from feedback.datasets.sql import PromptText
from feedback.models import Answer, Critique, FollowUp, Project, Reaction

SEARCH_CONFIG = "english"
# The searched document; the GIN index `answer_search` (migration) is on this same expression.
DOCUMENT_TEMPLATE = (
    "to_tsvector('english'::regconfig, "
    "COALESCE(jsonb_path_query_array(%(prompt)s, '$[*].content')::text, '') "
    "|| ' ' || COALESCE(%(response)s, ''))"
)


class AnswerDocument(Func):
    """The answer's searchable text as a tsvector: every message of the prompt, then the
    response (PostgreSQL only)."""

    output_field = SearchVectorField()
    arity = 2

    def __init__(self) -> None:
        super().__init__(F("prompt"), F("response"))

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        prompt, prompt_params = compiler.compile(self.source_expressions[0])
        response, response_params = compiler.compile(self.source_expressions[1])
        sql = DOCUMENT_TEMPLATE % {"prompt": prompt, "response": response}
        return sql, [*prompt_params, *response_params]


@dataclass(frozen=True)
class AnswerFilters:
    """What the answers list is narrowed to; empty values mean "any"."""

    search: str = ""
    model: str = ""
    model_version: str = ""
    reaction: str = ""  # "any", "none" or a reaction kind
    critique: str = ""  # "yes" (has a critique) or "no"
    since: datetime | None = None
    until: datetime | None = None  # exclusive


def _matching(project: Project, filters: AnswerFilters) -> QuerySet[Answer]:
    answers = Answer.objects.filter(project=project)
    if filters.search:
        if connections[answers.db].vendor == "postgresql":
            query = SearchQuery(filters.search, config=SEARCH_CONFIG, search_type="websearch")
            answers = answers.annotate(document=AnswerDocument()).filter(document=query)
        else:
            answers = answers.annotate(prompt_text=PromptText(F("prompt"))).filter(
                Q(prompt_text__icontains=filters.search) | Q(response__icontains=filters.search)
            )
    if filters.model:
        answers = answers.filter(model=filters.model)
    if filters.model_version:
        answers = answers.filter(model_version=filters.model_version)
    if filters.reaction:
        active = Reaction.objects.filter(answer=OuterRef("pk"), removed_at__isnull=True)
        if filters.reaction == "none":
            answers = answers.filter(~Exists(active))
        elif filters.reaction == "any":
            answers = answers.filter(Exists(active))
        else:
            answers = answers.filter(Exists(active.filter(kind=filters.reaction)))
    if filters.critique:
        critiqued = Exists(Critique.objects.filter(answer=OuterRef("pk")))
        answers = answers.filter(critiqued if filters.critique == "yes" else ~critiqued)
    if filters.since:
        answers = answers.filter(created_at__gte=filters.since)
    if filters.until:
        answers = answers.filter(created_at__lt=filters.until)
    return answers


def _with_flags(answers: QuerySet[Answer]) -> QuerySet[Answer]:
    return answers.annotate(has_critique=Exists(Critique.objects.filter(answer=OuterRef("pk"))))


def answers_listed(*, project: Project, filters: AnswerFilters) -> QuerySet[Answer]:
    """The answers list, newest first: answers that are not re-runs of another, each with its
    re-runs (`listed_revisions`, newest first) to show beneath it. An answer is listed when it,
    or one of its re-runs, matches the filters."""
    matching = _matching(project, filters)
    # Rows: answers that are not a direct re-run of an original. A re-run of a re-run (made
    # from a revision's debug page) gets a row of its own, marked, so no answer goes unlisted.
    rows = Answer.objects.filter(
        Q(revision_of__isnull=True) | Q(revision_of__revision_of__isnull=False), project=project
    )
    originals = rows.filter(
        Q(pk__in=matching.values("pk")) | Q(pk__in=matching.values("revision_of"))
    ).select_related("revision_of")
    revisions = _with_flags(Answer.objects.order_by("-created_at", "-id"))
    return (
        _with_flags(originals)
        .prefetch_related(Prefetch("revisions", queryset=revisions, to_attr="listed_revisions"))
        .order_by("-created_at", "-id")
    )


def project_model_versions(*, project: Project) -> list[str]:
    """The model versions the project's answers carry, sorted (the list's version filter)."""
    return list(
        Answer.objects.filter(project=project)
        .exclude(model_version="")
        .order_by("model_version")
        .values_list("model_version", flat=True)
        .distinct()
    )


def answer_original(*, answer: Answer) -> Answer | None:
    """The answer a re-run was made from (of the same project), if any."""
    if answer.revision_of_id is None:
        return None
    return Answer.objects.filter(project_id=answer.project_id, pk=answer.revision_of_id).first()


def answer_revisions(*, answer: Answer) -> list[Answer]:
    """The re-runs made from an answer, newest first."""
    return list(
        answer.revisions.order_by("-created_at", "-id").only(
            "id", "external_id", "created_at", "project_id"
        )
    )


def viewer_history(*, answer: Answer, viewer: str) -> dict[str, list[Any]]:
    """What `viewer` already said about this answer: their critiques and follow-ups, newest
    first."""
    return {
        "critiques": list(
            Critique.objects.filter(answer=answer, viewer=viewer).order_by("-created_at", "-id")
        ),
        "followups": list(
            FollowUp.objects.filter(answer=answer, viewer=viewer).order_by("-created_at", "-id")
        ),
    }
