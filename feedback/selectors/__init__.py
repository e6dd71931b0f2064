"""Reads of the feedback app, always scoped to a project or to the projects of a user; one
module per context (tenancy, traces, signals, annotation, datasets, operations).

Every read is re-exported here, so `selectors.answer_get(...)` works wherever it lives.
"""

from feedback.selectors.annotation import (
    REACTION_STATES,
    RELEVANCE_ORDER,
    QueueFilter,
    answers_matching,
    connector_get,
    interventions_by_annotator,
    queue_agreement,
    queue_assignment_get,
    queue_assignment_of_answer,
    queue_get,
    queue_item_count,
    queue_progress,
    queue_progress_for,
    queues_with_progress,
    rerun_active,
    rerun_get,
    reruns_by_requester,
    stage_interventions,
)
from feedback.selectors.answers import (
    AnswerFilters,
    answer_original,
    answer_revisions,
    answers_listed,
    project_model_versions,
    viewer_history,
)
from feedback.selectors.dashboard import (
    dashboard_get,
)
from feedback.selectors.datasets import (
    export_get,
    exports_for_project,
)
from feedback.selectors.operations import (
    worker_heartbeat_latest,
)
from feedback.selectors.signals import (
    FEEDBACK_EVENT_FIELDS,
    REACTION_FILTERS,
    answer_feedback_counts,
    answers_filtered,
    comparison_pair,
    critique_get,
    feedback_events_page,
    followup_due,
    reaction_counts,
    reactions_of_viewer,
)
from feedback.selectors.tenancy import (
    api_keys_for_project,
    membership_get,
    projects_for_user,
)
from feedback.selectors.traces import (
    answer_for_page,
    answer_get,
    answer_get_detailed,
    answer_stages,
    answers_for_project,
    has_same_prompt_answer,
    project_models,
    stage_get,
    stages_for_answer,
)

__all__ = [
    "FEEDBACK_EVENT_FIELDS",
    "REACTION_FILTERS",
    "REACTION_STATES",
    "RELEVANCE_ORDER",
    "AnswerFilters",
    "QueueFilter",
    "answer_feedback_counts",
    "answer_for_page",
    "answer_get",
    "answer_get_detailed",
    "answer_original",
    "answer_revisions",
    "answer_stages",
    "answers_filtered",
    "answers_for_project",
    "answers_listed",
    "answers_matching",
    "api_keys_for_project",
    "comparison_pair",
    "connector_get",
    "critique_get",
    "dashboard_get",
    "export_get",
    "exports_for_project",
    "feedback_events_page",
    "followup_due",
    "has_same_prompt_answer",
    "interventions_by_annotator",
    "membership_get",
    "project_model_versions",
    "project_models",
    "projects_for_user",
    "queue_agreement",
    "queue_assignment_get",
    "queue_assignment_of_answer",
    "queue_get",
    "queue_item_count",
    "queue_progress",
    "queue_progress_for",
    "queues_with_progress",
    "reaction_counts",
    "reactions_of_viewer",
    "rerun_active",
    "rerun_get",
    "reruns_by_requester",
    "stage_get",
    "stage_interventions",
    "stages_for_answer",
    "viewer_history",
    "worker_heartbeat_latest",
]
