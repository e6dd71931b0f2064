"""C3PO's files in an S3-compatible store (a local moto server). A build keeps its rows in the
database; its parts leave the platform as dataset snapshots, so a snapshot of a part, written
by a worker host, is what a web host that shares no folder with it serves."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
from rest_framework.test import APIClient

from feedback.models import Project
from feedback.services import answers_ingest
from feedback.services import datasets as exports
from rewardmodels.models import Generator, VerbalFeedback
from tests.conftest import Hosts
from tests.rewardmodels.builds import build_run
from tests.rewardmodels.chat_server import ChatServer

COUNTS = {
    "categories": 2,
    "in_scope_per_category": 3,
    "near_scope_per_category": 2,
    "out_of_scope": 4,
    "test_fraction": 0.25,
}


def test_a_part_snapshotted_by_a_worker_is_downloaded_from_a_web_host(
    hosts: Hosts, project: Project, api: APIClient
) -> None:
    # Given a build that a worker host ran, and a snapshot of its dpo part it wrote
    answers_ingest(
        project=project,
        items=[
            {
                "external_id": f"c-{i}",
                "prompt": f"Tyre, step {i}?",
                "response": "Patch.",
                "model": "m",
            }
            for i in range(2)
        ],
    )
    feedback = VerbalFeedback.objects.create(project=project, text="No emojis to my boss.")
    with ChatServer() as chat, hosts.worker():
        generator = Generator.objects.create(
            project=project, name="local", base_url=chat.url, model="tiny"
        )
        build = build_run(feedback, generator, COUNTS)
        export = exports.export_request(
            project=project,
            dataset="c3po_dpo",
            fmt="parquet",
            form=None,
            filters={},
            requested_by="r",
        )
        exports.export_build(export_id=export.pk)
    assert build.status == "succeeded", build.error
    export.refresh_from_db()
    assert export.status == "succeeded", export.error

    # When the web host serves the snapshot
    with hosts.web():
        download = api.get(f"/api/v1/exports/{export.pk}/download")
        body = b"".join(download.streaming_content)  # type: ignore[attr-defined]

    # Then it holds the build's dpo rows, from the bucket; neither host wrote to its disk
    assert download.status_code == 200
    table = pq.read_table(io.BytesIO(body))
    assert table.num_rows == 6
    assert set(table.column("build_id").to_pylist()) == {build.pk}
    assert hosts.s3.keys(hosts.bucket) == [export.file.name]
    assert hosts.files_on_disk() == []
