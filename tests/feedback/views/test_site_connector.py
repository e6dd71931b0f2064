"""The connector settings: an owner points the project at its own pipeline, the secret is never
shown again, only owners may change it; an invalid URL, one with credentials or one inside
the network is refused by the field and changes nothing."""

from __future__ import annotations

import pytest
from django.utils.html import escape

from feedback.models import PipelineConnector, Project, Role
from feedback.pipelines.http import HttpPipeline
from feedback.pipelines.resolve import pipeline_for
from tests.factories import member
from tests.feedback.pipeline_server import SECRET, connector_for, connector_url


def settings_url(project: Project) -> str:
    return f"/projects/{project.slug}/settings/"


@pytest.mark.django_db
def test_an_owner_saves_a_connector_and_the_page_never_shows_the_secret(
    project: Project,
) -> None:
    # given an owner
    owner = member(project, Role.OWNER, "olga")

    # when the owner saves a URL, a secret and a timeout
    response = owner.post(
        connector_url(project),
        {"url": "https://pipeline.example.org/v1", "secret": SECRET, "timeout_seconds": "7"},
    )

    # then the connector is stored, and the settings page names it without its secret
    assert response.status_code == 302
    assert response["Location"] == settings_url(project)
    connector = PipelineConnector.objects.get(project=project)
    assert (connector.url, connector.secret, connector.timeout_seconds) == (
        "https://pipeline.example.org/v1",
        SECRET,
        7,
    )
    page = owner.get(settings_url(project))
    html = page.content.decode()
    assert page.status_code == 200
    assert "https://pipeline.example.org/v1" in html
    assert SECRET not in html
    assert "A secret is set; leave blank to keep it." in html
    assert isinstance(pipeline_for(Project.objects.get(pk=project.pk)), HttpPipeline)


@pytest.mark.django_db
def test_saving_again_with_a_blank_secret_keeps_the_stored_one(project: Project) -> None:
    # given a connector with a secret
    connector_for(project, "https://old.example.org", secret=SECRET, timeout=10)
    owner = member(project, Role.OWNER, "olga")

    # when the owner changes the URL and the timeout, leaving the secret blank
    response = owner.post(
        connector_url(project),
        {"url": "https://new.example.org", "secret": "", "timeout_seconds": "3"},
    )

    # then the new URL and timeout are stored with the old secret
    assert response.status_code == 302
    connector = PipelineConnector.objects.get(project=project)
    assert (connector.url, connector.secret, connector.timeout_seconds) == (
        "https://new.example.org",
        SECRET,
        3,
    )


@pytest.mark.django_db
def test_remove_deletes_the_connector_and_the_demo_pipeline_answers_again(
    project: Project,
) -> None:
    # given a connector
    connector_for(project, "https://pipeline.example.org", secret=SECRET)
    owner = member(project, Role.OWNER, "olga")

    # when the owner ticks "remove"
    response = owner.post(
        connector_url(project), {"url": "", "timeout_seconds": "10", "remove": "on"}
    )

    # then the connector is gone
    assert response.status_code == 302
    assert not PipelineConnector.objects.filter(project=project).exists()
    assert pipeline_for(Project.objects.get(pk=project.pk)).name == "demo"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "status"), [(Role.RESEARCHER, 403), (Role.ANNOTATOR, 403), (Role.RATER, 403)]
)
def test_only_owners_may_change_the_connector(project: Project, role: str, status: int) -> None:
    # given a member below owner
    client = member(project, role, "rob")

    # when they try to register a connector
    response = client.post(
        connector_url(project),
        {"url": "https://evil.example.org", "secret": "x", "timeout_seconds": "5"},
    )

    # then they are refused and nothing is stored
    assert response.status_code == status
    assert not PipelineConnector.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("remove", [False, True], ids=["save", "remove"])
def test_an_owner_of_another_project_gets_404(
    project: Project, other_project: Project, remove: bool
) -> None:
    # given a connector in one project, and the owner of another project
    connector_for(project, "https://pipeline.example.org", secret=SECRET)
    outsider = member(other_project, Role.OWNER, "otto")
    form = {"url": "https://evil.example.org", "timeout_seconds": "5"}
    if remove:
        form["remove"] = "on"

    # when the outsider posts to the first project's connector
    response = outsider.post(
        connector_url(project), {**form, **({"remove": "on"} if remove else {})}
    )

    # then the project is not found, and its connector is unchanged
    assert response.status_code == 404
    connector = PipelineConnector.objects.get(project=project)
    assert (connector.url, connector.secret) == ("https://pipeline.example.org", SECRET)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "Enter a valid URL."),
        ("http://", "Enter a valid URL."),
        ("https://" + "a" * 500 + ".org", "Ensure this value has at most 500 characters"),
        ("", escape("Give the pipeline's URL, or tick “Remove the connector”.")),
        # The protocol is HTTP POST: an FTP address can never answer it.
        ("ftp://pipeline.example.org/v1", "Enter a valid URL."),
        ("https://acme:hunter2@pipeline.example.org", "Must not contain a user name or password."),
    ],
    ids=["words", "no-host", "too-long", "blank", "ftp", "credentials"],
)
def test_an_invalid_url_is_refused_with_the_field_error_and_changes_nothing(
    project: Project, url: str, expected: str
) -> None:
    # given a connector
    connector_for(project, "https://pipeline.example.org", secret=SECRET, timeout=10)
    owner = member(project, Role.OWNER, "olga")

    # when the owner submits an invalid URL with a new secret
    response = owner.post(
        connector_url(project),
        {"url": url, "secret": "new-secret-5b2d", "timeout_seconds": "3"},
    )

    # then 400 with the error by the field; the stored connector is as it was; no secret echoed,
    # and the form still says a blank secret keeps the stored one
    html = response.content.decode()
    assert response.status_code == 400
    assert expected in html
    assert "new-secret-5b2d" not in html
    assert SECRET not in html
    assert "A secret is set; leave blank to keep it." in html
    connector = PipelineConnector.objects.get(project=project)
    assert (connector.url, connector.secret, connector.timeout_seconds) == (
        "https://pipeline.example.org",
        SECRET,
        10,
    )


# --- Where the platform may send requests, when saved ---------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("nothing_allowed")
@pytest.mark.parametrize(
    ("url", "host", "kind"),
    [
        ("http://127.0.0.1:8080", "127.0.0.1", "is a loopback"),
        ("http://localhost:8080/pipeline", "localhost", "resolves to a loopback"),
        ("http://[::1]:8080", "::1", "is a loopback"),
        ("http://[::ffff:127.0.0.1]:8080", "::ffff:127.0.0.1", "is a loopback"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254", "is a link-local"),
        ("http://10.0.0.7:9000", "10.0.0.7", "is a private"),
    ],
    ids=["loopback", "localhost", "ipv6-loopback", "ipv4-mapped", "metadata", "private"],
)
def test_a_connector_inside_the_network_is_refused_when_saved(
    project: Project, url: str, host: str, kind: str
) -> None:
    # given a connector, and an owner
    connector_for(project, "https://pipeline.example.org", secret=SECRET, timeout=10)
    owner = member(project, Role.OWNER, "olga")

    # when the owner points it at an internal address
    response = owner.post(
        connector_url(project), {"url": url, "secret": "new-secret-5b2d", "timeout_seconds": "3"}
    )

    # then 400, saying why by the URL field; the stored connector is unchanged
    html = response.content.decode()
    assert response.status_code == 400
    assert escape(f"Requests to {host} are not allowed: it {kind} address.") in html
    assert html.index("Pipeline URL") < html.index("are not allowed")
    assert "new-secret-5b2d" not in html
    connector = PipelineConnector.objects.get(project=project)
    assert (connector.url, connector.secret, connector.timeout_seconds) == (
        "https://pipeline.example.org",
        SECRET,
        10,
    )


@pytest.mark.django_db
def test_credentials_in_the_connector_url_are_refused_and_not_shown_again(
    project: Project,
) -> None:
    # given an owner
    owner = member(project, Role.OWNER, "olga")

    # when the URL carries a user name and password
    response = owner.post(
        connector_url(project),
        {"url": "https://bot:pw-91c3e@pipeline.example.org/v1", "timeout_seconds": "5"},
    )

    # then 400 naming the problem; the password is not put back into the page; nothing stored
    html = response.content.decode()
    assert response.status_code == 400
    assert "Must not contain a user name or password." in html
    assert "pw-91c3e" not in html
    assert 'value="https://pipeline.example.org/v1"' in html
    assert not PipelineConnector.objects.exists()
