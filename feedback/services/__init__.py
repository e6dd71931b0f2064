"""Writes and business rules of the feedback app. Views, APIs, commands and tasks call these;
each module covers one area and is re-exported here."""

from feedback.services import exports, queues, reruns
from feedback.services.accounts import (
    API_KEY_PREFIX,
    api_key_authenticate,
    api_key_create,
    api_key_hash,
    api_key_revoke,
    connector_remove,
    connector_save,
    member_set,
    project_create,
    project_settings_update,
    worker_heartbeat_record,
)
from feedback.services.answers import IngestResult, answers_ingest
from feedback.services.feedback import (
    FeedbackResult,
    exposures_record_views,
    feedback_record,
    reaction_toggle,
)

__all__ = [
    "API_KEY_PREFIX",
    "FeedbackResult",
    "IngestResult",
    "answers_ingest",
    "api_key_authenticate",
    "api_key_create",
    "api_key_hash",
    "api_key_revoke",
    "connector_remove",
    "connector_save",
    "exports",
    "exposures_record_views",
    "feedback_record",
    "member_set",
    "project_create",
    "project_settings_update",
    "queues",
    "reaction_toggle",
    "reruns",
    "worker_heartbeat_record",
]
