"""Reward models and their training runs.

A run is the unit of work and the truth about it: the Celery task only carries its id. A run
that succeeds becomes a *version* of its model (numbered per model, at most one per run), and
one version is the model's active one, used for scoring.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from feedback.core.fields import EncryptedTextField
from feedback.core.jobs import Job, JobStatus, job_constraints
from feedback.models import Project


class Objective(models.TextChoices):
    P_LOVE = "p_love", "P[Love]"
    PREFERENCE = "preference", "Preference (Bradley-Terry)"


class RewardModel(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reward_models")
    name = models.CharField(max_length=200)
    objective = models.CharField(max_length=16, choices=Objective.choices)
    config = models.JSONField(default=dict, blank=True)
    active_run = models.ForeignKey(
        "TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="reward_model_name_unique"),
            models.CheckConstraint(
                condition=Q(objective__in=Objective.values), name="reward_model_objective_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


def _artifact_path(run: TrainingRun, filename: str) -> str:
    return f"reward-models/{run.project_id}/{run.reward_model_id}/{filename}"


class TrainingRun(Job):
    reward_model = models.ForeignKey(RewardModel, on_delete=models.CASCADE, related_name="runs")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_runs")
    # The model's config when the run was requested: a version records what it was trained with.
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    artifact = models.FileField(upload_to=_artifact_path, blank=True)
    version = models.PositiveIntegerField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            *job_constraints("training_run", JobStatus.values),
            # A version belongs to exactly one succeeded run.
            models.UniqueConstraint(
                fields=["reward_model", "version"],
                condition=Q(version__isnull=False),
                name="training_run_version_unique",
            ),
            models.CheckConstraint(
                condition=Q(version__isnull=True) | Q(status=JobStatus.SUCCEEDED),
                name="training_run_version_only_when_succeeded",
            ),
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="training_run_stale")]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.reward_model_id} ({self.status})"


# --- C3PO: verbal feedback and the datasets built from it ---------------------------------------


class Generator(models.Model):
    """An OpenAI-compatible chat completions server that writes C3PO data (vLLM, Ollama,
    llama.cpp server, OpenAI). The key is write-only: pages and the API never show it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="generators")
    name = models.CharField(max_length=200)
    base_url = models.URLField(max_length=500)
    model = models.CharField(max_length=200)
    # Stored encrypted; at most 500 characters (services.c3po.generator_save).
    api_key = EncryptedTextField(blank=True, default="")
    temperature = models.FloatField(default=0.7)
    concurrency = models.PositiveSmallIntegerField(default=4)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="generator_name_unique"),
            models.CheckConstraint(
                condition=Q(temperature__gte=0, temperature__lte=2),
                name="generator_temperature_range",
            ),
            models.CheckConstraint(
                condition=Q(concurrency__gte=1, concurrency__lte=32),
                name="generator_concurrency_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class VerbalFeedback(models.Model):
    """One sentence of high-level feedback ("don't use emojis when I write to my boss")."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="verbal_feedback")
    text = models.TextField()
    domain = models.CharField(max_length=200, blank=True, default="")
    effect = models.CharField(max_length=500, blank=True, default="")
    # Set when a researcher promoted an end user's critique to verbal feedback.
    critique = models.ForeignKey(
        "feedback.Critique", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.text[:60]


class BuildStatus(models.TextChoices):
    """Every job's statuses, and `review`: generated, waiting for annotators to review the
    revised responses (no worker holds the build then)."""

    QUEUED = JobStatus.QUEUED.value
    RUNNING = JobStatus.RUNNING.value
    REVIEW = "review"
    SUCCEEDED = JobStatus.SUCCEEDED.value
    FAILED = JobStatus.FAILED.value
    CANCELLED = JobStatus.CANCELLED.value


C3PO_STAGES = (
    "categories",
    "in-scope prompts",
    "near-scope prompts",
    "out-of-scope prompts",
    "baseline responses",
    "revised responses",
    "train/test split",
)


class C3POBuild(Job):
    """The staged build of one feedback's dataset. Every stage stores what it made in
    `categories` and C3POItem rows, so a build resumes where it stopped."""

    STAGES = C3PO_STAGES

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="c3po_builds")
    feedback = models.ForeignKey(VerbalFeedback, on_delete=models.CASCADE, related_name="builds")
    # None: the human path (prompts and responses from the project, revisions by annotators).
    generator = models.ForeignKey(
        Generator, null=True, blank=True, on_delete=models.SET_NULL, related_name="builds"
    )
    review = models.BooleanField(default=False)
    counts = models.JSONField(default=dict)
    seed = models.CharField(max_length=32)
    status = models.CharField(
        max_length=16, choices=BuildStatus.choices, default=BuildStatus.QUEUED
    )
    stage = models.PositiveSmallIntegerField(default=0)  # how many of the stages are done
    categories = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            *job_constraints("c3po_build", BuildStatus.values),
            models.CheckConstraint(
                condition=Q(stage__lte=len(C3PO_STAGES)), name="c3po_build_stage_range"
            ),
        ]

    def __str__(self) -> str:
        return f"C3PO build {self.pk} ({self.status})"


class PromptScope(models.TextChoices):
    """Where a C3PO prompt stands to the feedback: it applies (in scope), a similar topic where
    it does not (near scope), or unrelated (out of scope)."""

    IN_SCOPE = "in_scope"
    NEAR_SCOPE = "near_scope"
    OUT_OF_SCOPE = "out_of_scope"


class ReviewStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    EDITED = "edited"
    REJECTED = "rejected"


class C3POItem(models.Model):
    build = models.ForeignKey(C3POBuild, on_delete=models.CASCADE, related_name="items")
    scope = models.CharField(max_length=16, choices=PromptScope.choices)
    category = models.CharField(max_length=200, blank=True, default="")
    prompt = models.TextField()
    prompt_hash = models.CharField(max_length=64)  # sha256 of the prompt: unique per build part
    baseline = models.TextField(blank=True, default="")  # "" until the baselines stage wrote it
    revised = models.TextField(blank=True, default="")  # in scope only; "" until revised
    split = models.CharField(max_length=8, blank=True, default="")
    review_status = models.CharField(
        max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.PENDING
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # A resumed stage can't insert a prompt twice.
            models.UniqueConstraint(
                fields=["build", "scope", "prompt_hash"], name="c3po_item_prompt_unique"
            ),
            models.CheckConstraint(
                condition=Q(scope__in=PromptScope.values), name="c3po_item_scope"
            ),
            models.CheckConstraint(
                condition=Q(review_status__in=ReviewStatus.values), name="c3po_item_review"
            ),
        ]
        indexes = [models.Index(fields=["build", "scope", "id"], name="c3po_item_part")]

    def __str__(self) -> str:
        return f"{self.scope}: {self.prompt[:40]}"


# --- shadow users ---------------------------------------------------------------------------


class ShadowRun(Job):
    """A P[Love] version speaking for viewers who did not react: over the exposures without a
    real reaction from their viewer it records the predicted P[Love], and a simulated Love
    where that passes the threshold (simulated feedback, never a Reaction). `agreement` says
    how well the same version predicts the real reactions it did not train on."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="shadow_runs")
    reward_model = models.ForeignKey(
        RewardModel, on_delete=models.CASCADE, related_name="shadow_runs"
    )
    # The version that speaks: the model's active one when the run was requested.
    training_run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="+")
    since = models.DateTimeField(null=True, blank=True)
    until = models.DateTimeField(null=True, blank=True)
    # One threshold for everybody; None: each viewer's own (see rewardmodels.shadow).
    threshold = models.FloatField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    agreement = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            *job_constraints("shadow_run", JobStatus.values),
            models.CheckConstraint(
                condition=Q(threshold__isnull=True) | Q(threshold__gte=0.0, threshold__lte=1.0),
                name="shadow_run_threshold_range",
            ),
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="shadow_run_stale")]

    @property
    def producer(self) -> str:
        """How its simulated feedback names it."""
        return f"shadow_run:{self.pk}"

    def __str__(self) -> str:
        return f"shadow run {self.pk} ({self.status})"


# --- LLM judges -----------------------------------------------------------------------------


class JudgeTarget(models.TextChoices):
    # A verdict from the project's reactions, and a critique.
    ANSWER = "answer"
    # Relevant / partly relevant / irrelevant for each retrieved document, as debug mode asks.
    DOCUMENT_RELEVANCE = "document_relevance"
    # A corrected list of sub-queries.
    SUBQUERIES = "subqueries"


class Judge(models.Model):
    """A model (one of the project's generators) that judges answers by a rubric. What it says
    is simulated feedback; with a `viewer` it speaks for that viewer, shown their own past
    critiques and reactions."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judges")
    name = models.CharField(max_length=200)
    generator = models.ForeignKey(Generator, on_delete=models.PROTECT, related_name="judges")
    rubric = models.TextField()
    target = models.CharField(max_length=24, choices=JudgeTarget.choices)
    viewer = models.CharField(max_length=255, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="judge_name_unique"),
            models.CheckConstraint(
                condition=Q(target__in=JudgeTarget.values), name="judge_target_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class JudgeRun(Job):
    """One pass of a judge over the answers a filter selects."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judge_runs")
    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="runs")
    filters = models.JSONField(default=dict, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [*job_constraints("judge_run", JobStatus.values)]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="judge_run_stale")]

    @property
    def producer(self) -> str:
        return f"judge_run:{self.pk}"

    def __str__(self) -> str:
        return f"judge run {self.pk} ({self.status})"
