"""The datasets researchers export, each defined once as a queryset of rows.

Column names are the ones Hugging Face TRL reads (prompt, completion, label, chosen, rejected),
then the lineage: the ids of the records a row came from. User references leave hashed with the
project's salt. `form` is "conversational" (`[{role, content}]`, multi-turn kept; completions
are assistant messages) or "text" (plain strings).

Filters: `model` and `model_version` select answers (for comparisons, the first answer);
`since` / `until` select by when the feedback happened (for p_love, when the answer was shown).

Simulated feedback (a shadow's or a judge's, `feedback.models.simulated`) is in no dataset
unless `include_simulated` asks for it. Then every row of every dataset carries `simulated`
(false for people's feedback) and `weight` (1 for people's; for a simulated row, how sure its
producer was of the label it gave: the probability of a simulated Love, one minus it for a
simulated "no Love").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    Exists,
    Expression,
    ExpressionWrapper,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Concat

from feedback.datasets.sql import AssistantMessage, HashedRef, PromptText
from feedback.models import (
    Comparison,
    Critique,
    Exposure,
    Intervention,
    Project,
    Reaction,
    SimulatedFeedback,
    SimulatedKind,
)

FORMS = ("conversational", "text")


@dataclass(frozen=True)
class Filters:
    model: str | None = None
    model_version: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    # Simulated feedback too, every row marked `simulated` with a `weight`.
    include_simulated: bool = False


@dataclass(frozen=True)
class Rows:
    """A dataset's records (filtered and ordered) and its columns, in order. `then` chains
    another source with the same columns (dpo: comparisons, then corrected answers)."""

    records: QuerySet[Any]
    columns: dict[str, Any]
    then: Rows | None = None

    def queryset(self) -> QuerySet[Any]:
        # Prefixed names: Django refuses an annotation named like a model field (answer_id).
        return self.records.values(**{f"c_{name}": value for name, value in self.columns.items()})

    def parts(self) -> Iterator[Rows]:
        part: Rows | None = self
        while part is not None:
            yield part
            part = part.then

    def count(self) -> int:
        return sum(part.records.count() for part in self.parts())

    def using(self, alias: str) -> Rows:
        """The same rows, read from the database `alias` (each chained source too)."""
        then = self.then.using(alias) if self.then else None
        return Rows(self.records.using(alias), self.columns, then)


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    rows: Callable[[Project, Filters, str, datetime], Rows]


def _prompt(path: str, form: str) -> Expression | F:
    return F(path) if form == "conversational" else PromptText(F(path))


def _reply(expression: Any, form: str) -> Expression:
    """A response in the prompt's form: an assistant message, or the text."""
    expression = F(expression) if isinstance(expression, str) else expression
    return AssistantMessage(expression) if form == "conversational" else expression


def _user_ref(project: Project, path: str = "viewer") -> HashedRef:
    return HashedRef(Value(project.export_salt), F(path))


def _annotator_ref(project: Project) -> HashedRef:
    """Annotators leave hashed like viewers: the same "user:<id>" the site records."""
    annotator = Concat(Value("user:"), Cast("annotator_id", TextField()), output_field=TextField())
    return HashedRef(Value(project.export_salt), annotator)


def answer_filters(filters: Filters, prefix: str) -> Q:
    q = Q()
    if filters.model:
        q &= Q(**{f"{prefix}model": filters.model})
    if filters.model_version:
        q &= Q(**{f"{prefix}model_version": filters.model_version})
    return q


def time_filters(filters: Filters, field: str) -> Q:
    q = Q()
    if filters.since:
        q &= Q(**{f"{field}__gte": filters.since})
    if filters.until:
        q &= Q(**{f"{field}__lt": filters.until})
    return q


REAL = {
    "simulated": Value(False, output_field=BooleanField()),
    "weight": Value(1.0, output_field=FloatField()),
    "simulated_id": Value(None, output_field=BigIntegerField()),
}


def _marked(columns: dict[str, Any], filters: Filters) -> dict[str, Any]:
    """People's rows as they are, or, when simulated rows are asked for too, marked real."""
    return {**columns, **REAL} if filters.include_simulated else columns


def marked_rows(rows: Rows, filters: Filters) -> Rows:
    """Every part of `rows` marked real when simulated rows are asked for."""
    if not filters.include_simulated:
        return rows
    then = marked_rows(rows.then, filters) if rows.then else None
    return Rows(rows.records, _marked(rows.columns, filters), then)


def kto_rows(project: Project, filters: Filters, form: str, now: datetime) -> Rows:
    """Active reactions whose kind the project counts as positive or negative; with
    `include_simulated`, then the simulated reactions of those kinds (a shadow's Loves, a
    judge's verdicts), weighted by their producer's probability."""
    positive, negative = project.positive_reactions, project.negative_reactions
    label = Case(
        When(kind__in=positive, then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )
    simulated = None
    if filters.include_simulated:
        simulated = Rows(
            SimulatedFeedback.objects.filter(
                answer_filters(filters, "answer__"),
                time_filters(filters, "created_at"),
                project=project,
                kind__in=[SimulatedKind.PREDICTION, SimulatedKind.VERDICT],
                reaction__in=[*positive, *negative],
            ).order_by("id"),
            dict(
                prompt=_prompt("answer__prompt", form),
                completion=_reply("answer__response", form),
                label=Case(
                    When(reaction__in=positive, then=Value(True)),
                    default=Value(False),
                    output_field=BooleanField(),
                ),
                answer_id=F("answer__external_id"),
                reaction_id=Value(None, output_field=BigIntegerField()),
                reaction=F("reaction"),
                user_ref=_user_ref(project),
                model=F("answer__model"),
                model_version=F("answer__model_version"),
                created_at=F("created_at"),
                simulated=Value(True, output_field=BooleanField()),
                weight=Coalesce(F("probability"), Value(1.0), output_field=FloatField()),
                simulated_id=F("id"),
            ),
        )
    return Rows(
        Reaction.objects.filter(
            answer_filters(filters, "answer__"),
            time_filters(filters, "created_at"),
            project=project,
            removed_at__isnull=True,
            kind__in=[*positive, *negative],
        ).order_by("id"),
        _marked(
            dict(
                prompt=_prompt("answer__prompt", form),
                completion=_reply("answer__response", form),
                label=label,
                answer_id=F("answer__external_id"),
                reaction_id=F("id"),
                reaction=F("kind"),
                user_ref=_user_ref(project),
                model=F("answer__model"),
                model_version=F("answer__model_version"),
                created_at=F("created_at"),
            ),
            filters,
        ),
        then=simulated,
    )


def _corrected_answers(project: Project, filters: Filters) -> QuerySet[Intervention]:
    """Answer edits from debug mode: the source of sft and of dpo's corrected-over-original."""
    return Intervention.objects.filter(
        answer_filters(filters, "answer__"),
        time_filters(filters, "created_at"),
        project=project,
        action="answer_edit",
    ).order_by("id")


def dpo_rows(project: Project, filters: Filters, form: str, now: datetime) -> Rows:
    """Comparisons with a winner (chosen is the winner's response; ties and both-bad are not
    preferences, so they are left out), then answers an annotator corrected (chosen is the
    correction, rejected the original)."""
    a_won = Q(winner="a")
    return Rows(
        Comparison.objects.filter(
            answer_filters(filters, "answer_a__"),
            time_filters(filters, "created_at"),
            project=project,
            winner__in=["a", "b"],
        ).order_by("id"),
        dict(
            prompt=_prompt("answer_a__prompt", form),
            chosen=_reply(
                Case(When(a_won, then=F("answer_a__response")), default=F("answer_b__response")),
                form,
            ),
            rejected=_reply(
                Case(When(a_won, then=F("answer_b__response")), default=F("answer_a__response")),
                form,
            ),
            chosen_answer_id=Case(
                When(a_won, then=F("answer_a__external_id")),
                default=F("answer_b__external_id"),
            ),
            rejected_answer_id=Case(
                When(a_won, then=F("answer_b__external_id")),
                default=F("answer_a__external_id"),
            ),
            source=Value("comparison"),
            comparison_id=F("id"),
            intervention_id=Value(None, output_field=BigIntegerField()),
            user_ref=_user_ref(project),
            created_at=F("created_at"),
        ),
        then=Rows(
            _corrected_answers(project, filters),
            dict(
                prompt=_prompt("answer__prompt", form),
                chosen=_reply(KeyTextTransform("text", "after"), form),
                rejected=_reply("answer__response", form),
                chosen_answer_id=F("answer__external_id"),
                rejected_answer_id=F("answer__external_id"),
                source=Value("edit"),
                comparison_id=Value(None, output_field=BigIntegerField()),
                intervention_id=F("id"),
                user_ref=_annotator_ref(project),
                created_at=F("created_at"),
            ),
        ),
    )


def critiques_rows(project: Project, filters: Filters, form: str, now: datetime) -> Rows:
    """Critiques of answers, with the newest revision re-run from the answer where one exists."""
    from feedback.models import Answer

    newest_revision = Answer.objects.filter(revision_of=OuterRef("answer")).order_by(
        "-created_at", "-id"
    )
    revision = Subquery(newest_revision.values("response")[:1])
    return Rows(
        Critique.objects.filter(
            answer_filters(filters, "answer__"),
            time_filters(filters, "created_at"),
            project=project,
        ).order_by("id"),
        dict(
            prompt=_prompt("answer__prompt", form),
            response=_reply("answer__response", form),
            critique=F("text"),
            revision=Case(
                When(Exists(newest_revision), then=_reply(revision, form)), default=Value(None)
            ),
            quote=F("quote"),
            category=F("category"),
            critique_id=F("id"),
            answer_id=F("answer__external_id"),
            revision_answer_id=Subquery(newest_revision.values("external_id")[:1]),
            user_ref=_user_ref(project),
            created_at=F("created_at"),
        ),
    )


def p_love_rows(project: Project, filters: Filters, form: str, now: datetime) -> Rows:
    """One row per exposure old enough to be labelled: label is true when the same viewer's
    Love reaction to the answer followed within the project's window and was not taken back.
    Exposures younger than the window are left out: their label isn't known yet.

    This is the one definition of a P[Love] example; training reads it from here too."""
    window = project.love_window
    loves = Reaction.objects.filter(
        answer=OuterRef("answer"),
        viewer=OuterRef("viewer"),
        kind="love",
        removed_at__isnull=True,
        created_at__gte=OuterRef("shown_at"),
        created_at__lte=OuterRef("shown_at") + window,
    ).order_by("created_at", "id")
    return Rows(
        Exposure.objects.filter(
            answer_filters(filters, "answer__"),
            time_filters(filters, "shown_at"),
            project=project,
            shown_at__lte=now - window,
        ).order_by("id"),
        (_shadowed if filters.include_simulated else dict)(
            answer_id=F("answer__external_id"),
            prompt=_prompt("answer__prompt", form),
            response=_reply("answer__response", form),
            model=F("answer__model"),
            model_version=F("answer__model_version"),
            user_ref=_user_ref(project),
            shown_at=F("shown_at"),
            label=Exists(loves),
            label_window=Value(int(window.total_seconds())),
            exposure_id=F("id"),
            reaction_id=Subquery(loves.values("id")[:1]),
            source=F("source"),
        ),
    )


def _shadowed(**columns: Any) -> dict[str, Any]:
    """p_love's columns where an exposure nobody loved may carry a shadow's label instead: the
    newest simulated prediction for it, marked, weighted by how sure the shadow was of the label
    it gave. A real Love always wins."""
    real_love = columns["label"]
    shadow = SimulatedFeedback.objects.filter(
        exposure=OuterRef("pk"), kind=SimulatedKind.PREDICTION
    ).order_by("-id")
    shadowed = Exists(shadow)
    simulated_love = ExpressionWrapper(Q(reaction="love"), output_field=BooleanField())
    certainty = Case(
        When(reaction="love", then=F("probability")),
        default=Value(1.0) - F("probability"),
        output_field=FloatField(),
    )
    return {
        **columns,
        "label": Case(
            When(real_love, then=Value(True)),
            When(shadowed, then=Subquery(shadow.values(love=simulated_love)[:1])),
            default=Value(False),
            output_field=BooleanField(),
        ),
        "simulated": Case(
            When(real_love, then=Value(False)),
            When(shadowed, then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
        "weight": Case(
            When(real_love, then=Value(1.0)),
            When(shadowed, then=Subquery(shadow.values(certainty=certainty)[:1])),
            default=Value(1.0),
            output_field=FloatField(),
        ),
        "simulated_id": Case(
            When(real_love, then=Value(None)),
            default=Subquery(shadow.values("id")[:1]),
            output_field=BigIntegerField(),
        ),
    }


def sft_rows(project: Project, filters: Filters, form: str, now: datetime) -> Rows:
    """Answers an annotator corrected: the correction is the completion."""
    return Rows(
        _corrected_answers(project, filters),
        dict(
            prompt=_prompt("answer__prompt", form),
            completion=_reply(KeyTextTransform("text", "after"), form),
            answer_id=F("answer__external_id"),
            intervention_id=F("id"),
            annotator=_annotator_ref(project),
            rationale=F("rationale"),
            created_at=F("created_at"),
        ),
    )


def stages_rows(project: Project, filters: Filters, form: str, now: datetime) -> Rows:
    """Every debug-mode correction with the stage it corrects: what the system produced and
    what the annotator changed (training data for the decomposer, ranker and generator)."""
    return Rows(
        Intervention.objects.filter(
            answer_filters(filters, "answer__"),
            time_filters(filters, "created_at"),
            project=project,
        ).order_by("id"),
        dict(
            answer_id=F("answer__external_id"),
            stage_kind=Cast(F("stage__kind"), TextField()),
            stage_position=F("stage__position"),
            input=F("stage__input"),
            system_output=F("stage__output"),
            action=F("action"),
            before=F("before"),
            corrected_output=F("after"),
            rationale=F("rationale"),
            intervention_id=F("id"),
            annotator=_annotator_ref(project),
            created_at=F("created_at"),
        ),
    )


def _simulated_part(project: Project, filters: Filters, kind: str) -> QuerySet[SimulatedFeedback]:
    return SimulatedFeedback.objects.filter(
        answer_filters(filters, "answer__"),
        time_filters(filters, "created_at"),
        project=project,
        kind=kind,
    ).order_by("id")


SIMULATED = {
    "simulated": Value(True, output_field=BooleanField()),
    "weight": Coalesce(F("probability"), Value(1.0), output_field=FloatField()),
    "simulated_id": F("id"),
}


def critiques_with_simulated(project: Project, filters: Filters, form: str, now: datetime) -> Rows:
    """`critiques_rows`; with `include_simulated`, then the judges' critiques (of verdicts)."""
    rows = marked_rows(critiques_rows(project, filters, form, now), filters)
    if not filters.include_simulated:
        return rows
    judged = Rows(
        _simulated_part(project, filters, SimulatedKind.VERDICT).exclude(text=""),
        dict(
            prompt=_prompt("answer__prompt", form),
            response=_reply("answer__response", form),
            critique=F("text"),
            revision=Value(None, output_field=TextField()),
            quote=Value(""),
            category=Value(""),
            critique_id=Value(None, output_field=BigIntegerField()),
            answer_id=F("answer__external_id"),
            revision_answer_id=Value(None, output_field=TextField()),
            user_ref=_user_ref(project),
            created_at=F("created_at"),
            **SIMULATED,
        ),
    )
    return Rows(rows.records, rows.columns, then=judged)


def stages_with_simulated(project: Project, filters: Filters, form: str, now: datetime) -> Rows:
    """`stages_rows`; with `include_simulated`, then the judges' proposed corrections that no
    annotator has decided yet (an accepted one is an annotator's correction already, a
    rejected one was judged wrong)."""
    rows = marked_rows(stages_rows(project, filters, form, now), filters)
    if not filters.include_simulated:
        return rows
    proposed = Rows(
        _simulated_part(project, filters, SimulatedKind.INTERVENTION).filter(status="pending"),
        dict(
            answer_id=F("answer__external_id"),
            stage_kind=Cast(F("stage__kind"), TextField()),
            stage_position=F("stage__position"),
            input=F("stage__input"),
            system_output=F("stage__output"),
            action=F("action"),
            before=Value(None, output_field=TextField()),
            corrected_output=F("after"),
            rationale=Value(""),
            intervention_id=Value(None, output_field=BigIntegerField()),
            annotator=Value(None, output_field=TextField()),
            created_at=F("created_at"),
            **SIMULATED,
        ),
    )
    return Rows(rows.records, rows.columns, then=proposed)


def _people_only(
    rows: Callable[[Project, Filters, str, datetime], Rows],
) -> Callable[[Project, Filters, str, datetime], Rows]:
    """A dataset with no simulated source yet: with `include_simulated` its rows are marked
    real, so every dataset asked for simulated rows has the same two columns."""

    def marked(project: Project, filters: Filters, form: str, now: datetime) -> Rows:
        return marked_rows(rows(project, filters, form, now), filters)

    marked.__doc__ = rows.__doc__
    return marked


DATASETS = {
    d.name: d
    for d in (
        Dataset("kto", "prompt, completion, label: reactions by the project's polarity", kto_rows),
        Dataset(
            "dpo",
            "prompt, chosen, rejected: comparisons with a winner, corrections",
            _people_only(dpo_rows),
        ),
        Dataset("critiques", "prompt, response, critique, revision", critiques_with_simulated),
        Dataset("p_love", "labelled exposures for P[Love]", p_love_rows),
        Dataset(
            "sft", "prompt, completion: answers corrected in debug mode", _people_only(sft_rows)
        ),
        Dataset(
            "stages",
            "per-stage corrections with the system's output",
            stages_with_simulated,
        ),
    )
}
