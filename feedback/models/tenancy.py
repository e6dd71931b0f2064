"""Projects and their members, API keys, answers with their traces, and exposures.

Invariants live here as database constraints: one membership per user and project, one answer
per external_id and project, enums as check constraints. Services rely on them instead of
checking first.
"""

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q

from feedback.core.constraints import choices_check
from feedback.core.fields import EncryptedTextField
from feedback.core.jobs import ACTIVE_STATUSES, Job, JobStatus, job_constraints

DEFAULT_REACTIONS = ["love", "like", "dislike", "laugh", "wow", "sad", "angry"]
DEFAULT_POSITIVE_REACTIONS = ["love", "like"]
DEFAULT_NEGATIVE_REACTIONS = ["dislike", "angry"]


def default_reactions() -> list[str]:
    return list(DEFAULT_REACTIONS)


def default_positive() -> list[str]:
    return list(DEFAULT_POSITIVE_REACTIONS)


def default_negative() -> list[str]:
    return list(DEFAULT_NEGATIVE_REACTIONS)


def new_salt() -> str:
    return secrets.token_hex(16)


class Project(models.Model):
    """The unit of isolation: every other object belongs to exactly one project."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    reaction_set = models.JSONField(default=default_reactions)
    positive_reactions = models.JSONField(default=default_positive)
    negative_reactions = models.JSONField(default=default_negative)
    # Salt for hashing user references in exports; never leaves the server.
    export_salt = models.CharField(max_length=64, default=new_salt, editable=False)
    # What end users see and may do.
    allow_images = models.BooleanField(default=False)
    followup_delay = models.DurationField(default=timedelta(days=1))
    exposure_window = models.DurationField(default=timedelta(minutes=30))
    feedback_rate_per_minute = models.PositiveIntegerField(default=60)
    reactions_per_day = models.PositiveIntegerField(default=200)
    # P[Love]: an exposure is positive when a Love reaction follows within this window.
    love_window = models.DurationField(default=timedelta(hours=24))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(feedback_rate_per_minute__gte=1) & Q(reactions_per_day__gte=1),
                name="project_limits_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.slug


class Role(models.TextChoices):
    """Roles nest: each includes every role below it."""

    OWNER = "owner", "Owner"
    RESEARCHER = "researcher", "Researcher"
    ANNOTATOR = "annotator", "Annotator"
    RATER = "rater", "Rater"


ROLE_RANK = {Role.RATER: 1, Role.ANNOTATOR: 2, Role.RESEARCHER: 3, Role.OWNER: 4}


def role_includes(role: str, required: str) -> bool:
    """True when `role` carries every permission of `required` (owner ⊃ researcher ⊃ ...)."""
    return ROLE_RANK[Role(role)] >= ROLE_RANK[Role(required)]


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "project"], name="membership_one_per_user"),
            choices_check("role", Role, "membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.project_id}:{self.role}"


class Scope(models.TextChoices):
    INGEST = "ingest", "Ingest answers"
    FEEDBACK = "feedback", "Send feedback"
    EXPORT = "export", "Export data"
    TRAIN = "train", "Train models"


# The member role a signed-in browser user needs for what an API key's scope allows.
SCOPE_MIN_ROLE = {
    Scope.INGEST: Role.RESEARCHER,
    Scope.FEEDBACK: Role.RATER,
    Scope.EXPORT: Role.RESEARCHER,
    Scope.TRAIN: Role.RESEARCHER,
}


class ApiKey(models.Model):
    """A project's machine credential. Only a SHA-256 of the key is stored; the key is shown
    once, when it is created. Keys carry 256 bits of randomness, so a fast hash is enough."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Answer(models.Model):
    """One generated response, as the client's system produced it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="answers")
    external_id = models.CharField(max_length=255)
    conversation = models.CharField(max_length=255, blank=True, default="")
    user_ref = models.CharField(max_length=255, blank=True, default="")
    prompt = models.JSONField()  # [{"role", "content"}] up to this turn
    # SHA-256 of the prompt's canonical JSON: finds answers to the same prompt with an index.
    prompt_hash = models.CharField(max_length=64, db_index=False)
    response = models.TextField()
    model = models.CharField(max_length=200)
    model_version = models.CharField(max_length=200, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    # The answer this one was re-run from after a debug-mode correction (online adaptation).
    revision_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="revisions"
    )
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"], name="answer_external_id_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["project", "-created_at", "-id"], name="answer_newest"),
            models.Index(fields=["project", "model", "model_version"], name="answer_model"),
            models.Index(fields=["project", "prompt_hash"], name="answer_same_prompt"),
        ]

    def __str__(self) -> str:
        return self.external_id


class StageKind(models.TextChoices):
    DECOMPOSITION = "decomposition"
    RETRIEVAL = "retrieval"
    RERANK = "rerank"
    GENERATION = "generation"
    TOOL = "tool"
    OTHER = "other"


class Stage(models.Model):
    """One step of the pipeline trace that produced an answer."""

    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="stages")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=StageKind.choices)
    name = models.CharField(max_length=200, blank=True, default="")
    parent_position = models.PositiveIntegerField(null=True, blank=True)
    input = models.JSONField(default=dict)
    output = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["answer", "position"], name="stage_position_unique"),
            choices_check("kind", StageKind, "stage_kind_valid"),
            models.CheckConstraint(
                condition=Q(parent_position__isnull=True)
                | Q(parent_position__lt=models.F("position")),
                name="stage_parent_before_child",
            ),
        ]
        ordering = ["answer", "position"]

    def __str__(self) -> str:
        return f"{self.answer_id}#{self.position} {self.kind}"


class Source(models.TextChoices):
    BROWSER = "browser"
    API = "api"
    SIMULATED = "simulated"


class EventType(models.TextChoices):
    EXPOSURE = "exposure"
    REACTION = "reaction"
    UNREACTION = "unreaction"
    CRITIQUE = "critique"
    COMPARISON = "comparison"
    FOLLOWUP = "followup"


class FeedbackEvent(models.Model):
    """The log of every feedback event, from the browser and the API alike.

    `event_id` is the idempotency key (unique per project): a replay finds its row and writes
    nothing. `GET /api/v1/feedback` pages through this table in id order. The domain rows
    (Exposure, Reaction, ...) point back to the event that made them.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="events")
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=16, choices=EventType.choices)
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="events")
    viewer = models.CharField(max_length=255)
    source = models.CharField(max_length=16, choices=Source.choices)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    data = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "event_id"], name="event_id_unique"),
            choices_check("type", EventType, "event_type_valid"),
            choices_check("source", Source, "event_source_valid"),
        ]
        indexes = [
            models.Index(fields=["project", "viewer", "received_at"], name="event_viewer_recent"),
            models.Index(fields=["project", "type", "id"], name="event_type_page"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class Exposure(models.Model):
    """An answer was shown to a viewer: the denominator of every rate and the negative class of
    P[Love]. A signed-in viewer (source `browser`: the pages and the session API alike) has at
    most one per answer and window (`window_start`); an API key's client records each sighting."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exposures")
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="exposures")
    viewer = models.CharField(max_length=255)
    surface = models.CharField(max_length=32, default="answer")
    source = models.CharField(max_length=16, choices=Source.choices)
    event = models.OneToOneField(
        FeedbackEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="exposure"
    )
    shown_at = models.DateTimeField()
    window_start = models.DateTimeField()

    class Meta:
        constraints = [
            choices_check("source", Source, "exposure_source_valid"),
            models.UniqueConstraint(
                fields=["answer", "viewer", "window_start"],
                condition=Q(source="browser"),
                name="exposure_once_per_window",
            ),
        ]
        indexes = [
            models.Index(fields=["answer", "viewer", "shown_at"], name="exposure_viewer"),
            # P[Love] reads a project's exposures oldest first (temporal split).
            models.Index(fields=["project", "shown_at", "id"], name="exposure_project_time"),
        ]

    def __str__(self) -> str:
        return f"{self.viewer} saw {self.answer_id}"


class Reaction(models.Model):
    """A viewer's reaction of one kind to an answer. Removing sets `removed_at`: the history
    stays, and at most one reaction of a kind per viewer and answer is active."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reactions")
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="reactions")
    viewer = models.CharField(max_length=255)
    kind = models.CharField(max_length=32)
    source = models.CharField(max_length=16, choices=Source.choices)
    event = models.ForeignKey(FeedbackEvent, on_delete=models.CASCADE, related_name="+")
    removed_by = models.ForeignKey(
        FeedbackEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["answer", "viewer", "kind"],
                condition=Q(removed_at__isnull=True),
                name="reaction_one_active_per_kind",
            ),
            choices_check("source", Source, "reaction_source_valid"),
        ]
        indexes = [
            models.Index(
                fields=["answer", "kind"],
                condition=Q(removed_at__isnull=True),
                name="reaction_active_by_answer",
            ),
            models.Index(fields=["project", "viewer", "created_at"], name="reaction_viewer_day"),
        ]

    def __str__(self) -> str:
        return f"{self.viewer} {self.kind} {self.answer_id}"


class Critique(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="critiques")
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="critiques")
    viewer = models.CharField(max_length=255)
    source = models.CharField(max_length=16, choices=Source.choices)
    event = models.OneToOneField(FeedbackEvent, on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    quote = models.TextField(blank=True, default="")
    category = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [choices_check("source", Source, "critique_source_valid")]

    def __str__(self) -> str:
        return self.text[:40]


class Winner(models.TextChoices):
    A = "a", "A is better"
    B = "b", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


class Comparison(models.Model):
    """A viewer compared two answers to the same prompt."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="comparisons")
    answer_a = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="+")
    answer_b = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="+")
    viewer = models.CharField(max_length=255)
    winner = models.CharField(max_length=16, choices=Winner.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    event = models.OneToOneField(FeedbackEvent, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            choices_check("winner", Winner, "comparison_winner_valid"),
            choices_check("source", Source, "comparison_source_valid"),
            models.CheckConstraint(
                condition=~Q(answer_a=models.F("answer_b")), name="comparison_two_answers"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.answer_a_id} vs {self.answer_b_id}: {self.winner}"


class Outcome(models.TextChoices):
    SOLVED = "solved", "Solved"
    PARTLY = "partly", "Partly"
    NOT_SOLVED = "not_solved", "Not solved"


class FollowUp(models.Model):
    """Hindsight feedback: asked some time after the viewer saw the answer."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="followups")
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="followups")
    viewer = models.CharField(max_length=255)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    text = models.TextField(blank=True, default="")
    source = models.CharField(max_length=16, choices=Source.choices)
    event = models.OneToOneField(FeedbackEvent, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            choices_check("outcome", Outcome, "followup_outcome_valid"),
            choices_check("source", Source, "followup_source_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.viewer} {self.outcome} {self.answer_id}"


class WorkerHeartbeat(models.Model):
    """Last time each Celery worker ran the periodic heartbeat task; /healthz reports it."""

    hostname = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.hostname


class ExportFormat(models.TextChoices):
    JSONL = "jsonl", "JSON Lines"
    PARQUET = "parquet", "Parquet"
    CSV = "csv", "CSV"


def export_path(export: "Export", filename: str) -> str:
    return f"exports/{export.project_id}/{filename}"


class Export(Job):
    """An immutable snapshot of a dataset, written by a worker. The file is attached only once
    it is complete, so nothing half-written is ever served."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exports")
    dataset = models.CharField(max_length=32)
    format = models.CharField(max_length=8, choices=ExportFormat.choices)
    form = models.CharField(max_length=16, default="conversational")
    filters = models.JSONField(default=dict)
    rows = models.PositiveBigIntegerField(default=0)
    total_rows = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    file = models.FileField(upload_to=export_path, blank=True)
    requested_by = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        constraints = [
            choices_check("format", ExportFormat, "export_format_valid"),
            *job_constraints("export", JobStatus.values),
        ]
        indexes = [models.Index(fields=["project", "-created_at"], name="export_newest")]

    def __str__(self) -> str:
        return f"{self.dataset}.{self.format} #{self.pk}"


class InterventionAction(models.TextChoices):
    SUBQUERY_ADD = "subquery_add"
    SUBQUERY_REMOVE = "subquery_remove"
    SUBQUERY_EDIT = "subquery_edit"
    SUBQUERY_REORDER = "subquery_reorder"
    DOC_RELEVANCE = "doc_relevance"
    DOC_RERANK = "doc_rerank"
    DOC_ADD = "doc_add"
    ANSWER_EDIT = "answer_edit"
    CLAIM_FLAG = "claim_flag"


class Intervention(models.Model):
    """One debug-mode correction of one stage of an answer's pipeline, by an annotator.
    `before` and `after` are validated per action (feedback.interventions)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="interventions")
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="interventions")
    stage = models.ForeignKey(
        Stage, null=True, blank=True, on_delete=models.CASCADE, related_name="interventions"
    )
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=24, choices=InterventionAction.choices)
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    rationale = models.TextField(blank=True, default="")
    event_id = models.CharField(max_length=255)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            choices_check("action", InterventionAction, "intervention_action_valid"),
            models.UniqueConstraint(
                fields=["project", "event_id"], name="intervention_event_id_unique"
            ),
        ]
        indexes = [models.Index(fields=["project", "action", "id"], name="intervention_action")]

    def __str__(self) -> str:
        return f"{self.action} on {self.answer_id}"


class PipelineConnector(models.Model):
    """A project's own pipeline, reached over HTTP (protocol: feedback/pipelines/protocol.py).
    A project without one is answered by the built-in demo pipeline."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="connector")
    url = models.URLField(max_length=500)
    # Sent as a Bearer token to the pipeline; written by owners, never rendered back, stored
    # encrypted. At most 500 characters (ConnectorForm).
    secret = EncryptedTextField(blank=True, default="")
    timeout_seconds = models.PositiveSmallIntegerField(default=10)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    timeout_seconds__gte=1, timeout_seconds__lte=120
                ),  # http.MAX_TIMEOUT_SECONDS
                name="connector_timeout_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} → {self.url}"


class AnnotationQueue(models.Model):
    """Answers that annotators work through in debug mode, each seen by `overlap` annotators.
    `filters` records how the items were chosen when the queue was created."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="queues")
    name = models.CharField(max_length=200)
    guidelines = models.TextField(blank=True, default="")
    overlap = models.PositiveSmallIntegerField(default=1)
    lock_minutes = models.PositiveSmallIntegerField(default=30)
    filters = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="queue_name_unique"),
            models.CheckConstraint(
                condition=Q(overlap__gte=1, overlap__lte=10), name="queue_overlap_range"
            ),
            models.CheckConstraint(
                condition=Q(lock_minutes__gte=1, lock_minutes__lte=24 * 60),
                name="queue_lock_minutes_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class QueueItem(models.Model):
    queue = models.ForeignKey(AnnotationQueue, on_delete=models.CASCADE, related_name="items")
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="queue_items")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["queue", "answer"], name="queue_item_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.queue_id}:{self.answer_id}"


class AssignmentStatus(models.TextChoices):
    ASSIGNED = "assigned"
    DONE = "done"
    SKIPPED = "skipped"


class QueueAssignment(models.Model):
    """One annotator's turn at one item. An `assigned` row holds a place in the item's overlap
    until `locked_until`; after that the place is free again."""

    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=AssignmentStatus.choices, default=AssignmentStatus.ASSIGNED
    )
    locked_until = models.DateTimeField()
    assigned_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Never the same item twice to one annotator.
            models.UniqueConstraint(fields=["item", "annotator"], name="assignment_once_each"),
            choices_check("status", AssignmentStatus, "assignment_status_valid"),
        ]
        indexes = [models.Index(fields=["item", "status"], name="assignment_item_status")]

    def __str__(self) -> str:
        return f"{self.item_id} → {self.annotator_id} ({self.status})"


class Rerun(Job):
    """Re-running the stages after a corrected one. The stage-level pair is the original
    `stage` (before) and `corrected_output` (after); `revision` is the new answer."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reruns")
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="reruns")
    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="reruns")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    corrected_output = models.JSONField()
    revision = models.OneToOneField(
        Answer, null=True, blank=True, on_delete=models.SET_NULL, related_name="rerun_source"
    )

    class Meta:
        constraints = [
            *job_constraints("rerun", JobStatus.values),
            # A double click starts one re-run, not two.
            models.UniqueConstraint(
                fields=["stage", "requested_by"],
                condition=Q(status__in=ACTIVE_STATUSES),
                name="rerun_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"rerun of {self.answer_id} from {self.stage_id} ({self.status})"
