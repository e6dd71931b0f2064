"""Dataset snapshots: POST /api/v1/exports, status, download; files in three formats; the
worker, its heartbeat and the sweeper."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from rest_framework.test import APIClient

from feedback.core import jobs
from feedback.core.jobs import Attempt, JobSuperseded, Swept, jobs_sweep
from feedback.models import Export, Project
from feedback.services import datasets as exports
from feedback.services import feedback_record
from tests.conftest import bearer_client
from tests.factories import AnswerFactory, api_key_for
from tests.feedback.conftest import MULTI_TURN
from tests.rewardmodels.conftest import plant_exposures


def request_export(client: APIClient, **body: Any) -> Any:
    return client.post("/api/v1/exports", data=orjson.dumps(body), content_type="application/json")


def content(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def build(client: APIClient, **body: Any) -> dict[str, Any]:
    """Request a snapshot and run the worker's service for it, as the worker would."""
    response = request_export(client, **body)
    assert response.status_code == 202, response.content
    exports.export_build(export_id=response.json()["id"])
    return client.get(f"/api/v1/exports/{response.json()['id']}").json()


def test_jsonl_snapshot_matches_the_stream_and_its_sha256(
    api: APIClient, reactions: None, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path

    export = build(api, dataset="kto", format="jsonl")
    download = api.get(export["download"])
    streamed = content(api.get("/api/v1/datasets/kto.jsonl"))

    assert export["status"] == "succeeded"
    assert (export["rows"], export["total_rows"], export["progress"]) == (3, 3, 1.0)
    body = content(download)
    assert body == streamed
    assert export["sha256"] == hashlib.sha256(body).hexdigest()


def test_parquet_holds_the_same_rows_as_jsonl(
    api: APIClient, reactions: None, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path

    jsonl = build(api, dataset="kto", format="jsonl", form="conversational")
    parquet = build(api, dataset="kto", format="parquet", form="conversational")

    lines = [orjson.loads(line) for line in content(api.get(jsonl["download"])).splitlines()]
    table = pq.read_table(io.BytesIO(content(api.get(parquet["download"]))))
    for row in lines:
        row["created_at"] = datetime.fromisoformat(row["created_at"])
    assert table.to_pylist() == lines
    assert (
        str(table.schema.field("prompt").type)
        == "list<element: struct<role: string, content: string>>"
    )
    assert lines[0]["prompt"] == MULTI_TURN


def test_csv_neutralises_formulas(
    api: APIClient, reactions: None, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path

    export = build(api, dataset="kto", format="csv", form="text")
    rows = list(csv.DictReader(io.StringIO(content(api.get(export["download"])).decode())))

    completions = sorted(r["completion"] for r in rows)
    assert completions == ["'+1 and @you", "'=SUM(A1)", "'=SUM(A1)"]
    assert {r["label"] for r in rows} == {"true", "false"}


def test_download_before_it_is_ready_is_409(api: APIClient, reactions: None) -> None:
    export_id = request_export(api, dataset="kto", format="jsonl").json()["id"]

    response = api.get(f"/api/v1/exports/{export_id}/download")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_ready"


def test_a_snapshot_that_fails_is_marked_failed_with_no_file(
    api: APIClient, reactions: None, settings: Any, tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "media"
    not_a_folder.write_text("a file where the media folder should be")
    settings.MEDIA_ROOT = not_a_folder

    export = build(api, dataset="kto", format="parquet")

    assert export["status"] == "failed"
    assert export["error"]
    assert export["download"] is None
    assert api.get(f"/api/v1/exports/{export['id']}/download").status_code == 409


def test_a_second_delivery_does_nothing(
    api: APIClient, reactions: None, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    export = build(api, dataset="kto", format="jsonl")

    exports.export_build(export_id=export["id"])

    assert Export.objects.get().finished_at.isoformat() == export["finished_at"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dataset": "everything", "format": "jsonl"}, "dataset"),
        ({"dataset": "kto", "format": "xlsx"}, "format"),
        ({"dataset": "kto", "format": "csv", "form": "yaml"}, "form"),
        ({"dataset": "kto", "format": "csv", "filters": {"since": "later"}}, "filters.since"),
        ({"dataset": "kto", "format": "csv", "filters": {"colour": "red"}}, "filters"),
        ({"dataset": "kto", "format": "csv", "filters": []}, "filters"),
    ],
)
def test_bad_requests_are_400_and_create_nothing(
    api: APIClient, body: dict[str, Any], field: str
) -> None:
    response = request_export(api, **body)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Export.objects.exists()


def test_another_projects_export_is_404(api: APIClient, other_project: Project) -> None:
    theirs = Export.objects.create(project=other_project, dataset="kto", format="jsonl")

    assert api.get(f"/api/v1/exports/{theirs.pk}").status_code == 404
    assert api.get(f"/api/v1/exports/{theirs.pk}/download").status_code == 404


def test_exports_need_the_export_scope(project: Project) -> None:
    response = request_export(
        bearer_client(api_key_for(project, "ingest")), dataset="kto", format="csv"
    )

    assert response.status_code == 403


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_on_the_exports_queue_writes_the_snapshot(
    settings: Any, tmp_path: Path, celery_worker: None
) -> None:
    settings.MEDIA_ROOT = tmp_path
    project = Project.objects.create(slug="acme", name="Acme")
    AnswerFactory.create(project=project, external_id="a-1")
    feedback_record(
        project=project,
        items=[
            {
                "event_id": "e1",
                "type": "reaction",
                "answer": "a-1",
                "user_ref": "u",
                "reaction": "love",
            }
        ],
        source="api",
    )
    client = bearer_client(api_key_for(project, "export"))

    export_id = request_export(client, dataset="kto", format="parquet").json()["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = client.get(f"/api/v1/exports/{export_id}").json()["status"]
        if status in ("succeeded", "failed"):
            break
        time.sleep(0.2)

    assert status == "succeeded"
    assert (
        pq.read_table(
            io.BytesIO(content(client.get(f"/api/v1/exports/{export_id}/download")))
        ).num_rows
        == 1
    )


def test_an_export_whose_worker_died_is_retried_once_then_failed(
    api: APIClient, reactions: None
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    stale = timezone.now() - timedelta(minutes=10)
    export_id = request_export(api, dataset="kto", format="jsonl").json()["id"]
    Export.objects.filter(pk=export_id).update(status="running", heartbeat_at=stale, attempts=1)

    first = jobs_sweep(kind=exports.EXPORT_JOB)
    Export.objects.filter(pk=export_id).update(status="running", heartbeat_at=stale, attempts=2)
    second = jobs_sweep(kind=exports.EXPORT_JOB)

    assert first == Swept(requeued=1, failed=0, cancelled=0)
    assert second == Swept(requeued=0, failed=1, cancelled=0)
    export = Export.objects.get()
    assert export.status == "failed"
    assert "stopped" in export.error


def test_a_redelivery_takes_over_only_a_stale_export(
    api: APIClient, reactions: None, settings: Any, tmp_path: Path
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    settings.MEDIA_ROOT = tmp_path
    export_id = request_export(api, dataset="kto", format="jsonl").json()["id"]
    Export.objects.filter(pk=export_id).update(status="running", heartbeat_at=timezone.now())

    exports.export_build(export_id=export_id)  # a live worker has it: nothing happens
    assert Export.objects.get().status == "running"

    Export.objects.filter(pk=export_id).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    exports.export_build(export_id=export_id)

    assert Export.objects.get().status == "succeeded"


def test_a_presumed_dead_attempt_cannot_overwrite_a_failed_export(
    api: APIClient, reactions: None, settings: Any, tmp_path: Path
) -> None:
    from feedback.services.datasets import _write_file

    settings.MEDIA_ROOT = tmp_path
    export_id = request_export(api, dataset="kto", format="jsonl").json()["id"]
    Export.objects.filter(pk=export_id).update(status="running", attempts=1)
    export = Export.objects.select_related("project").get()
    attempt = Attempt(exports.EXPORT_JOB, export)
    Export.objects.filter(pk=export_id).update(status="failed", error="worker lost")  # the sweep

    with pytest.raises(JobSuperseded):
        _write_file(attempt)  # the slow first worker goes on after all

    export.refresh_from_db()
    assert (export.status, export.error) == ("failed", "worker lost")
    assert not export.file
    assert not any(tmp_path.rglob("*.jsonl"))


def test_stages_export_to_parquet_with_json_text_columns(
    api: APIClient, project: Project, settings: Any, tmp_path: Path
) -> None:
    from feedback.services.annotation import interventions_save
    from tests.factories import StageFactory, UserFactory

    settings.MEDIA_ROOT = tmp_path
    answer = AnswerFactory.create(project=project, external_id="a-1")
    StageFactory.create(
        answer=answer, position=0, kind="decomposition", output={"subqueries": ["oil"]}
    )
    interventions_save(
        answer=answer,
        annotator=UserFactory.create(),
        changes=[
            {"stage": 0, "action": "subquery_edit", "index": 0, "after": {"text": "chain oil"}}
        ],
    )

    export = build(api, dataset="stages", format="parquet")
    table = pq.read_table(io.BytesIO(content(api.get(export["download"]))))

    assert export["status"] == "succeeded", export["error"]
    row = table.to_pylist()[0]
    assert orjson.loads(row["corrected_output"]) == {"text": "chain oil"}
    assert orjson.loads(row["system_output"]) == {"subqueries": ["oil"]}


@pytest.mark.django_db(transaction=True)
def test_an_export_keeps_its_heartbeat_while_its_query_waits(
    project: Project, reactions: None, settings: Any, tmp_path: Path
) -> None:
    import threading

    from django.db import connection, transaction

    settings.MEDIA_ROOT = tmp_path
    settings.JOB_HEARTBEAT_SECONDS = 0.1
    export = Export.objects.create(project=project, dataset="kto", format="jsonl")

    def work() -> None:  # as a worker would, on a connection of its own
        try:
            exports.export_build(export_id=export.pk)
        finally:
            connection.close()

    worker = threading.Thread(target=work)

    # Given an export whose count of the rows waits (here: on a lock another transaction holds,
    # as it would behind a long migration or a slow disk)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("LOCK TABLE feedback_reaction IN ACCESS EXCLUSIVE MODE")
        worker.start()
        deadline = time.monotonic() + 10
        while Export.objects.get(pk=export.pk).status != "running":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        claimed = Export.objects.get(pk=export.pk).heartbeat_at

        # When a while passes with the query still waiting
        time.sleep(1.0)
        waiting = Export.objects.get(pk=export.pk)

    # Then its heartbeat went on meanwhile (the sweeper sees a live worker), and it finishes
    worker.join(timeout=30)
    assert waiting.total_rows is None  # still counting
    assert waiting.heartbeat_at is not None
    assert claimed is not None
    assert (waiting.heartbeat_at - claimed).total_seconds() >= 0.5
    assert Export.objects.get(pk=export.pk).status == "succeeded"


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_a_snapshot_writes_its_progress_while_its_copy_is_still_streaming(
    project: Project, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a dataset of several 64 KiB chunks, no replica, and a clock by which every report
    # is due: the job writes its row between chunks of one COPY. On the COPY's own connection
    # that write would wait for the COPY, which waits for the write: the worker hung for ever.
    settings.MEDIA_ROOT = tmp_path
    planted = plant_exposures(project, answers=40, viewers=30)
    ticks = itertools.count(step=10.0)
    monkeypatch.setattr(jobs, "clock", lambda: next(ticks))
    export = exports.export_request(
        project=project, dataset="p_love", fmt="jsonl", form=None, filters={}, requested_by="t"
    )

    exports.export_build(export_id=export.pk)

    export.refresh_from_db()
    assert export.status == "succeeded", export.error
    assert export.rows == planted["exposures"] > 1000
    assert export.file.size > 3 * 64 * 1024
