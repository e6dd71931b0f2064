"""The read replica: with DATABASE_REPLICA_URL the heavy reads (dataset streams, export
snapshots, training) go to it, a job's own row and every write stay on the primary; without
it nothing changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from feedback.core.databases import REPLICA
from feedback.models import Export, Project
from feedback.services import datasets as exports
from rewardmodels import services
from rewardmodels.models import TrainingRun
from tests.config.test_settings import run_manage
from tests.rewardmodels.conftest import plant_exposures

REPLICA_APP = "feedback-replica-under-test"


@pytest.fixture(scope="module", autouse=True)
def replica(django_db_setup: None) -> Iterator[str]:
    """A "replica" alias on the test database, as DATABASE_REPLICA_URL adds one (a test mirror
    of the primary), on a connection of its own that names itself to PostgreSQL. Added before
    any test of this module sets up, so the tests can allow it (`databases`); they are
    transactional: the replica's connection sees only committed rows, as a real one would."""
    primary = connections[DEFAULT_DB_ALIAS].settings_dict
    options = {**primary["OPTIONS"], "application_name": REPLICA_APP}
    test = {**primary["TEST"], "MIRROR": DEFAULT_DB_ALIAS}
    # connections reads its aliases from this very dict.
    django_settings.DATABASES[REPLICA] = {**primary, "OPTIONS": options, "TEST": test}
    yield REPLICA
    connections[REPLICA].close()
    del connections[REPLICA]
    del django_settings.DATABASES[REPLICA]


BOTH = pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA])


def last_statement_of_the_replica() -> str:
    """What the replica's connection ran last, as PostgreSQL saw it (a COPY runs outside
    Django's query log)."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT query FROM pg_stat_activity WHERE application_name = %s", [REPLICA_APP]
        )
        rows = cursor.fetchall()
    assert len(rows) == 1
    return str(rows[0][0])


WRITES = ("INSERT", "UPDATE", "DELETE")


def reads(queries: CaptureQueriesContext) -> str:
    """The statements that read (SELECT, or DECLARE of a cursor over one), as one text."""
    return " ".join(q["sql"] for q in queries.captured_queries if not q["sql"].startswith(WRITES))


def writes(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith(WRITES)]


SHOW_SETTINGS = (
    "from django.conf import settings; from django.db import router;"
    "from feedback.core.databases import heavy_reads;"
    "replica = settings.DATABASES.get('replica', {});"
    "print(heavy_reads(), replica.get('HOST'), replica.get('OPTIONS', {}).get('options'),"
    " router.allow_migrate('replica', 'feedback'), router.allow_migrate('default', 'feedback'))"
)


@pytest.mark.parametrize(
    ("environment", "shown"),
    [
        ({}, "default None None False True"),
        (
            {"DATABASE_REPLICA_URL": "postgres://reader@replica.internal:5432/feedback"},
            "replica replica.internal -c default_transaction_read_only=on False True",
        ),
    ],
    ids=["without", "with"],
)
def test_the_setting_adds_a_read_only_replica_that_is_never_migrated(
    environment: dict[str, str], shown: str
) -> None:
    done = run_manage(environment, "shell", "-c", SHOW_SETTINGS)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == shown


@BOTH
def test_the_dataset_stream_is_copied_from_the_replica(api: APIClient, reactions: None) -> None:
    with CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as primary:
        response: Any = api.get("/api/v1/datasets/kto.jsonl")
        body = b"".join(response.streaming_content)

    assert body.count(b"\n") == 3
    assert last_statement_of_the_replica().startswith("COPY (SELECT row_to_json(r)")
    assert "feedback_reaction" not in reads(primary)


@BOTH
def test_an_export_snapshot_reads_its_rows_from_the_replica_and_its_own_row_from_the_primary(
    project: Project, reactions: None, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    export = Export.objects.create(project=project, dataset="kto", format="jsonl")

    with (
        CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as primary,
        CaptureQueriesContext(connections[REPLICA]) as secondary,
    ):
        exports.export_build(export_id=export.pk)

    export.refresh_from_db()
    assert (export.status, export.rows) == ("succeeded", 3)
    # the rows: counted and copied on the replica, which only read
    assert "feedback_reaction" in reads(secondary)
    assert writes(secondary) == []
    assert last_statement_of_the_replica().startswith("COPY (SELECT row_to_json(r)")
    # the job: claimed, fenced and finished on the primary, which read no dataset row
    assert "feedback_reaction" not in reads(primary)
    assert "feedback_export" not in reads(secondary)
    assert writes(primary)
    assert all('"feedback_export"' in sql for sql in writes(primary))


@BOTH
def test_training_reads_its_rows_from_the_replica_and_its_run_from_the_primary(
    project: Project, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    plant_exposures(project, answers=10, viewers=10)
    model = services.reward_model_create(
        project=project, name="love", objective="p_love", config={}, created_by=None
    )
    run = TrainingRun.objects.create(reward_model=model, project=project, config=model.config)

    with (
        CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as primary,
        CaptureQueriesContext(connections[REPLICA]) as secondary,
    ):
        services.training_run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert "feedback_exposure" in reads(secondary)
    assert writes(secondary) == []
    assert "feedback_exposure" not in reads(primary)
    assert "rewardmodels_trainingrun" not in reads(secondary)
    assert any('"rewardmodels_trainingrun"' in sql for sql in writes(primary))
