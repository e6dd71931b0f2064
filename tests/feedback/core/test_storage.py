"""Files in an S3-compatible store (a local moto server): a snapshot a worker wrote is served by
a web host that shares no folder with it, streamed or by a short-lived signed URL, only to the
snapshot's project; a streamed download never holds the file whole; a host's local copy of an
object is fetched again once the object changed."""

from __future__ import annotations

import hashlib
import tracemalloc
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import FileResponse
from django.test import Client
from rest_framework.test import APIClient

from feedback.core.storage import download_response, local_copy
from feedback.models import Export, Project
from feedback.services import datasets as exports
from tests.conftest import Hosts
from tests.factories import MembershipFactory, UserFactory


def _researcher(project: Project) -> Client:
    user = UserFactory.create()
    MembershipFactory.create(user=user, project=project, role="researcher")
    browser = Client()
    browser.force_login(user)
    return browser


def _snapshot_on_worker(hosts: Hosts, project: Project, fmt: str = "csv") -> Export:
    """A kto snapshot requested and written on the worker host (the task's code path)."""
    with hosts.worker():
        export = exports.export_request(
            project=project, dataset="kto", fmt=fmt, form="text", filters={}, requested_by="r"
        )
        exports.export_build(export_id=export.pk)
    export.refresh_from_db()
    assert export.status == "succeeded", export.error
    return export


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_snapshot_written_by_a_worker_is_streamed_by_a_web_host(
    hosts: Hosts, project: Project, reactions: None, api: APIClient, fmt: str
) -> None:
    # Given a snapshot written on the worker host
    export = _snapshot_on_worker(hosts, project, fmt)

    # When the web host serves it, through the API and the datasets page
    with hosts.web():
        from_api = api.get(f"/api/v1/exports/{export.pk}/download")
        from_page = _researcher(project).get(f"/projects/acme/exports/{export.pk}/download/")
        bodies = [b"".join(r.streaming_content) for r in (from_api, from_page)]  # type: ignore[union-attr]

    # Then both stream the stored object, whole, and nothing was written to either host's disk
    stored = hosts.s3.client().get_object(Bucket=hosts.bucket, Key=export.file.name)
    assert hosts.s3.keys(hosts.bucket) == [f"exports/{project.pk}/acme-kto-{export.pk}.{fmt}"]
    for response, body in zip((from_api, from_page), bodies, strict=True):
        assert response.status_code == 200
        assert response["Content-Length"] == str(stored["ContentLength"])
        assert f'filename="acme-kto-{export.pk}.{fmt}"' in response["Content-Disposition"]
        assert hashlib.sha256(body).hexdigest() == export.sha256
    if fmt == "csv":
        assert bodies[0].startswith(b"prompt,completion,label")
    assert hosts.files_on_disk() == []


def test_with_redirects_on_a_download_is_a_signed_url_that_expires(
    hosts: Hosts, project: Project, reactions: None, api: APIClient, settings: Any
) -> None:
    # Given a snapshot in the store, and downloads answered by signed URLs valid for 60 s
    export = _snapshot_on_worker(hosts, project)
    settings.STORAGE_DOWNLOAD_REDIRECT = True
    settings.STORAGE_DOWNLOAD_URL_SECONDS = 60

    # When the web host answers the API and the page
    with hosts.web():
        redirects = [
            api.get(f"/api/v1/exports/{export.pk}/download"),
            _researcher(project).get(f"/projects/acme/exports/{export.pk}/download/"),
        ]

    # Then each is a redirect to the object, signed for 60 s, that serves the file as a download
    for response in redirects:
        assert response.status_code == 302
        location = response["Location"]
        assert location.startswith(f"{hosts.s3.url}/{hosts.bucket}/exports/")
        assert parse_qs(urlsplit(location).query)["X-Amz-Expires"] == ["60"]
        fetched = httpx.get(location)
        assert fetched.status_code == 200
        assert hashlib.sha256(fetched.content).hexdigest() == export.sha256
        assert fetched.headers["content-disposition"].startswith("attachment;")


@pytest.mark.parametrize("redirect", [False, True])
def test_another_projects_snapshot_is_a_404_either_way(
    hosts: Hosts,
    project: Project,
    other_project: Project,
    api: APIClient,
    settings: Any,
    redirect: bool,
) -> None:
    # Given a snapshot of the other project in the store
    theirs = _snapshot_on_worker(hosts, other_project)
    settings.STORAGE_DOWNLOAD_REDIRECT = redirect

    # When this project's key and researcher ask for it
    with hosts.web():
        from_api = api.get(f"/api/v1/exports/{theirs.pk}/download")
        from_page = _researcher(project).get(f"/projects/acme/exports/{theirs.pk}/download/")
        from_their_url = _researcher(project).get(f"/projects/rival/exports/{theirs.pk}/download/")

    # Then nothing tells it exists, let alone where
    assert [from_api.status_code, from_page.status_code, from_their_url.status_code] == [404] * 3
    assert hosts.s3.url not in from_api.content.decode() + from_page.content.decode()


def test_a_streamed_download_holds_a_few_blocks_of_the_object_not_all_of_it(
    hosts: Hosts, project: Project
) -> None:
    # Given a 16 MB object
    export = Export.objects.create(project=project, dataset="kto", format="jsonl")
    export.file.save("big.jsonl", ContentFile(b"x" * (16 << 20)), save=False)

    # When a web host streams it
    with hosts.web():
        assert export.file.size == 16 << 20  # (and the store's client is set up)
        tracemalloc.start()
        try:
            response = download_response(export.file)
            assert isinstance(response, FileResponse)
            sent = sum(len(block) for block in response)
            response.close()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    # Then all of it was sent while the process held a small part of it at any time
    assert sent == 16 << 20
    assert peak < 4 << 20


def test_a_local_copy_is_fetched_again_once_the_object_changed(
    hosts: Hosts, project: Project
) -> None:
    # Given an object a host has copied to its disk
    export = Export.objects.create(project=project, dataset="kto", format="jsonl")
    export.file.save("copied.jsonl", ContentFile(b"first version\n"), save=False)
    with hosts.web():
        first = local_copy(export.file)
        again = local_copy(export.file)

        # When the object is replaced under the same name
        name = export.file.name or ""
        default_storage.delete(name)
        default_storage.save(name, ContentFile(b"second, longer version\n"))
        second = local_copy(export.file)

    # Then the first copy served until then, and the change is fetched
    assert again == first
    assert first.read_bytes() == b"first version\n"
    assert second.read_bytes() == b"second, longer version\n"
    assert all(path.is_relative_to(hosts.folders / "web" / "cache") for path in (first, second))
