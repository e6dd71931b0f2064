"""The datasets page: a researcher requests a snapshot, watches its progress and downloads it;
others may not; a bad request is refused by the form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from feedback.models import Export, Project
from feedback.services import datasets as exports


def test_researchers_snapshot_and_download_from_the_page(
    client: Any, project: Project, reactions: None, settings: Any, tmp_path: Path
) -> None:
    from tests.factories import MembershipFactory, UserFactory

    settings.MEDIA_ROOT = tmp_path
    user = UserFactory.create()
    MembershipFactory.create(user=user, project=project, role="researcher")
    client.force_login(user)

    created = client.post(
        "/projects/acme/exports/create/", {"dataset": "kto", "format": "csv", "form": "text"}
    )
    export = Export.objects.get()
    polling = client.get("/projects/acme/exports/", headers={"HX-Request": "true"}).content.decode()
    exports.export_build(export_id=export.pk)
    page = client.get("/projects/acme/exports/").content.decode()
    download = client.get(f"/projects/acme/exports/{export.pk}/download/")

    assert created.status_code == 302
    assert 'hx-trigger="every 2s"' in polling
    assert "<progress" in polling
    assert 'hx-trigger="every 2s"' not in page
    assert download.status_code == 200
    assert b"prompt,completion,label" in b"".join(download.streaming_content)


def test_the_datasets_page_is_for_researchers(client: Any, project: Project) -> None:
    from tests.factories import MembershipFactory, UserFactory

    user = UserFactory.create()
    MembershipFactory.create(user=user, project=project, role="annotator")
    client.force_login(user)

    assert client.get("/projects/acme/exports/").status_code == 403
    assert client.post("/projects/acme/exports/create/", {"dataset": "kto"}).status_code == 403
    assert not Export.objects.exists()


def test_bad_snapshot_request_from_the_page_is_an_inline_400(client: Any, project: Project) -> None:
    from tests.factories import MembershipFactory, UserFactory

    user = UserFactory.create()
    MembershipFactory.create(user=user, project=project, role="owner")
    client.force_login(user)

    response = client.post("/projects/acme/exports/create/", {"dataset": "kto", "format": "xlsx"})

    assert response.status_code == 400
    assert "format: Must be one of" in response.content.decode()
