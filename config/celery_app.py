"""The Celery application: `celery -A config worker` finds it through config/__init__.py."""

import os
from enum import StrEnum

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


class Queue(StrEnum):
    """Every task names one of these. One worker may serve them all, or each its own pool of
    workers (platform/entrypoint.sh: WORKER_QUEUES). C3PO builds have their own queue: they wait
    on a remote model for hours and must not hold up exports or training."""

    DEFAULT = "default"
    TRAINING = "training"
    EXPORTS = "exports"
    C3PO = "c3po"


app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Every task is routed to one queue here; workers declare the queues they consume. A job's task
# is sent by name to the queue its JobKind names (feedback.core.jobs), the same one as here.
app.conf.task_routes = {
    "feedback.tasks.worker_heartbeat": {"queue": Queue.DEFAULT},
    "feedback.tasks.export_build": {"queue": Queue.EXPORTS},
    "feedback.tasks.jobs_sweep": {"queue": Queue.DEFAULT},
    "feedback.tasks.otel_spans_expire": {"queue": Queue.DEFAULT},
    "feedback.tasks.rerun_execute": {"queue": Queue.DEFAULT},
    "feedback.tasks.webhook_deliveries_dispatch": {"queue": Queue.DEFAULT},
    "feedback.tasks.webhook_delivery_send": {"queue": Queue.DEFAULT},
    "feedback.tasks.webhook_deliveries_expire": {"queue": Queue.DEFAULT},
    "rewardmodels.tasks.training_run_execute": {"queue": Queue.TRAINING},
    "rewardmodels.tasks.c3po_build_execute": {"queue": Queue.C3PO},
    "rewardmodels.tasks.shadow_run_execute": {"queue": Queue.TRAINING},
    "rewardmodels.tasks.judge_run_execute": {"queue": Queue.C3PO},
}
app.autodiscover_tasks()
