"""The models of feedback, one module per context:

- tenancy: projects, members and their roles, API keys and their scopes;
- traces: answers, the pipeline stages behind them, and the OpenTelemetry spans they come from;
- signals: exposures, reactions, critiques, comparisons, follow-ups and the event log;
- annotation: debug-mode interventions, annotation queues, the pipeline connector, re-runs;
- datasets: exports;
- operations: worker heartbeats;
- webhooks: the endpoints that hear about events, and the deliveries to them.

Every model and helper is re-exported here, so `from feedback.models import Answer` reads the
same wherever a model lives.
"""

from feedback.models.annotation import (
    AnnotationQueue,
    AssignmentStatus,
    Intervention,
    InterventionAction,
    PipelineConnector,
    QueueAssignment,
    QueueItem,
    Rerun,
)
from feedback.models.datasets import Export, ExportFormat, export_path
from feedback.models.operations import WorkerHeartbeat
from feedback.models.signals import (
    Comparison,
    Critique,
    EventType,
    Exposure,
    FeedbackEvent,
    FollowUp,
    Outcome,
    Reaction,
    Source,
    Winner,
)
from feedback.models.simulated import ProposalStatus, SimulatedFeedback, SimulatedKind
from feedback.models.tenancy import (
    DEFAULT_NEGATIVE_REACTIONS,
    DEFAULT_POSITIVE_REACTIONS,
    DEFAULT_REACTIONS,
    ROLE_RANK,
    SCOPE_MIN_ROLE,
    ApiKey,
    Membership,
    Project,
    Role,
    Scope,
    default_negative,
    default_positive,
    default_reactions,
    new_salt,
    role_includes,
)
from feedback.models.traces import Answer, Stage, StageKind, TraceSpan
from feedback.models.webhooks import WebhookDelivery, WebhookEndpoint, WebhookEventType

# Applied migrations name these callables by their old place, feedback.models._<name>: the
# same functions must answer there, or the migrations stop loading.
_default_reactions = default_reactions
_default_positive = default_positive
_default_negative = default_negative
_new_salt = new_salt
_export_path = export_path

__all__ = [
    "DEFAULT_NEGATIVE_REACTIONS",
    "DEFAULT_POSITIVE_REACTIONS",
    "DEFAULT_REACTIONS",
    "ROLE_RANK",
    "SCOPE_MIN_ROLE",
    "AnnotationQueue",
    "Answer",
    "ApiKey",
    "AssignmentStatus",
    "Comparison",
    "Critique",
    "EventType",
    "Export",
    "ExportFormat",
    "Exposure",
    "FeedbackEvent",
    "FollowUp",
    "Intervention",
    "InterventionAction",
    "Membership",
    "Outcome",
    "PipelineConnector",
    "Project",
    "ProposalStatus",
    "QueueAssignment",
    "QueueItem",
    "Reaction",
    "Rerun",
    "Role",
    "Scope",
    "SimulatedFeedback",
    "SimulatedKind",
    "Source",
    "Stage",
    "StageKind",
    "TraceSpan",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEventType",
    "Winner",
    "WorkerHeartbeat",
    "default_negative",
    "default_positive",
    "default_reactions",
    "export_path",
    "new_salt",
    "role_includes",
]
