"""Reads of the reward models, always scoped to a project."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Count, Q, QuerySet

from feedback.core.jobs import JobStatus
from feedback.datasets import Rows
from feedback.models import (
    Answer,
    Critique,
    Intervention,
    Project,
    ProposalStatus,
    Reaction,
    SimulatedFeedback,
    SimulatedKind,
)
from rewardmodels import judges
from rewardmodels.datasets import build_rows
from rewardmodels.models import (
    BuildStatus,
    C3POBuild,
    C3POItem,
    Generator,
    Judge,
    JudgeRun,
    JudgeTarget,
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


def judge_get(*, project: Project, judge_id: int) -> Judge | None:
    return Judge.objects.filter(project=project, pk=judge_id).select_related("generator").first()


def judges_for_project(*, project: Project) -> QuerySet[Judge]:
    return Judge.objects.filter(project=project).select_related("generator").order_by("name", "id")


def judge_runs_of(*, judge: Judge) -> QuerySet[JudgeRun]:
    return judge.runs.order_by("-created_at", "-id")


def judge_run_get(*, project: Project, run_id: int) -> JudgeRun | None:
    return JudgeRun.objects.filter(project=project, pk=run_id).select_related("judge").first()


def judge_agreement(*, judge: Judge) -> dict[str, Any]:
    """How far the judge agrees with people on the answers it judged: for document relevance,
    Cohen's kappa against each annotator and Krippendorff's alpha with all of them (a rejected
    proposal counts as a disagreement in each annotator's raw agreement); for verdicts, the
    share of people's reactions whose polarity it matched; and what annotators did with its
    proposals."""
    producers = [f"judge_run:{pk}" for pk in judge.runs.values_list("pk", flat=True)]
    said = SimulatedFeedback.objects.filter(project_id=judge.project_id, producer__in=producers)
    decisions = (
        said.exclude(status=ProposalStatus.PENDING)
        .values("decided_by__username", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    decided: dict[str, dict[str, int]] = {}
    for row in decisions:
        who = row["decided_by__username"] or "(deleted user)"
        decided.setdefault(who, {"accepted": 0, "rejected": 0})[row["status"]] = row["n"]
    result: dict[str, Any] = {
        "target": judge.target,
        "decisions": [{"annotator": k, **v} for k, v in sorted(decided.items())],
    }
    if judge.target == JudgeTarget.DOCUMENT_RELEVANCE:
        units: dict[tuple[int, str], dict[str, str]] = {}
        rejected: dict[tuple[int, str], set[str]] = {}
        for answer_id, after, status, who in (
            said.filter(action="doc_relevance")
            .order_by("id")
            .values_list("answer_id", "after", "status", "decided_by__username")
        ):
            unit = (answer_id, str(after.get("doc_id")))
            units.setdefault(unit, {})[judges.JUDGE_CODER] = after.get("relevance")
            if status == ProposalStatus.REJECTED and who:
                rejected.setdefault(unit, set()).add(who)
        people = Intervention.objects.filter(
            project_id=judge.project_id,
            action="doc_relevance",
            answer_id__in={answer_id for answer_id, _ in units},
        ).order_by("created_at", "id")
        for answer_id, after, who in people.values_list(
            "answer_id", "after", "annotator__username"
        ):
            unit = (answer_id, str(after.get("doc_id")))
            if unit in units and who:
                units[unit][who] = after.get("relevance")
        relevance = judges.relevance_agreement(units)
        # An annotator who only rejected proposals disagreed all the same.
        labelled = {row["annotator"] for row in relevance["annotators"]}
        for who in sorted(set().union(*rejected.values()) - labelled) if rejected else []:
            relevance["annotators"].append(
                {"annotator": who, "items": 0, "agreed": 0, "kappa": None}
            )
        relevance["annotators"].sort(key=lambda row: row["annotator"])
        for row in relevance["annotators"]:
            # Rejections with no label of the annotator's own: disagreements kappa can't place.
            extra = sum(
                1
                for unit, whom in rejected.items()
                if row["annotator"] in whom and row["annotator"] not in units[unit]
            )
            row["rejected_without_label"] = extra
            total = row["items"] + extra
            row["agreement"] = round(row["agreed"] / total, 6) if total else None
        result["relevance"] = relevance
    elif judge.target == JudgeTarget.ANSWER:
        project = judge.project
        positive, negative = set(project.positive_reactions), set(project.negative_reactions)

        def polarity(kind: str) -> str | None:
            return "positive" if kind in positive else "negative" if kind in negative else None

        verdicts: dict[int, str] = {}
        for answer_id, kind in (
            said.filter(kind=SimulatedKind.VERDICT)
            .order_by("id")
            .values_list("answer_id", "reaction")
        ):
            verdicts[answer_id] = kind
        pairs = []
        for answer_id, kind in Reaction.objects.filter(
            answer_id__in=verdicts, removed_at__isnull=True
        ).values_list("answer_id", "kind"):
            judged, person = polarity(verdicts[answer_id]), polarity(kind)
            if judged and person:
                pairs.append((judged, person))
        result["verdicts"] = judges.verdict_accuracy(pairs)
    return result
