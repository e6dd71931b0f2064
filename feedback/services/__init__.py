"""Writes and business rules of the feedback app, one module per context: tenancy (projects,
members, API keys), traces (answers and their stages), signals (exposures, reactions, critiques,
comparisons, follow-ups), annotation (corrections, queues, the pipeline connector, re-runs),
datasets (exports) and operations. Views, APIs, commands and tasks call these; the functions
they use most are re-exported here."""

from feedback.services import (
    annotation,
    datasets,
    operations,
    signals,
    tenancy,
    traces,
    webhooks,
)
from feedback.services.annotation import connector_remove, connector_save
from feedback.services.operations import worker_heartbeat_record
from feedback.services.signals import (
    FeedbackResult,
    exposures_record_views,
    feedback_record,
    reaction_toggle,
)
from feedback.services.tenancy import (
    API_KEY_PREFIX,
    api_key_authenticate,
    api_key_create,
    api_key_hash,
    api_key_revoke,
    member_set,
    project_create,
    project_settings_update,
)
from feedback.services.traces import IngestResult, answers_ingest

__all__ = [
    "API_KEY_PREFIX",
    "FeedbackResult",
    "IngestResult",
    "annotation",
    "answers_ingest",
    "api_key_authenticate",
    "api_key_create",
    "api_key_hash",
    "api_key_revoke",
    "connector_remove",
    "connector_save",
    "datasets",
    "exposures_record_views",
    "feedback_record",
    "member_set",
    "operations",
    "project_create",
    "project_settings_update",
    "reaction_toggle",
    "signals",
    "tenancy",
    "traces",
    "webhooks",
    "worker_heartbeat_record",
]
