"""The widget's API: viewer tokens, publishable keys with allowed origins (CORS and
preflights), anonymous viewers, the per-address limit, and what a widget event may say."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from feedback import widget
from feedback.core.errors import ValidationFailed
from feedback.models import ApiKey, FeedbackEvent, Project, Reaction
from feedback.services import api_key_create
from feedback.services.widget import viewer_token_issue
from tests.conftest import bearer_client
from tests.factories import AnswerFactory, api_key_for, login

ORIGIN = "https://app.example.com"
EVENTS = "/api/v1/widget/events"
CONFIG = "/api/v1/widget/config"


@pytest.fixture
def answer(project: Project) -> Any:
    return AnswerFactory.create(project=project, external_id="chat-42-turn-3")


@pytest.fixture
def widget_key(project: Project) -> str:
    _, raw = api_key_create(project=project, name="web", scopes=["widget"], origins=[ORIGIN])
    return raw


@pytest.fixture
def token(project: Project) -> str:
    return viewer_token_issue(project=project, user_ref="u-93f1", ttl_seconds=600)[0]


def post_events(
    key: str, viewer: str | None, *events: dict[str, Any], origin: str | None = ORIGIN, **extra: Any
) -> Any:
    headers: dict[str, str] = {}
    if origin is not None:
        headers["Origin"] = origin
    if viewer is not None:
        headers["X-Feedback-Viewer"] = viewer
    return Client().post(
        f"{EVENTS}?key={key}",
        orjson.dumps({"events": list(events)}),
        content_type="application/json",
        headers=headers,
        **extra,
    )


def reaction(event_id: str = "evt-000001", **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "reaction",
        "answer": "chat-42-turn-3",
        "reaction": "love",
        **fields,
    }


# --- viewer tokens -------------------------------------------------------------------------------


def test_a_feedback_key_gets_a_token_bound_to_its_project_and_user_ref(project: Project) -> None:
    client = bearer_client(api_key_for(project, "feedback"))
    response = client.post(
        "/api/v1/viewer-tokens", {"user_ref": "u-93f1", "ttl_seconds": 3600}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["user_ref"] == "u-93f1"
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(minutes=59) < expires - timezone.now() <= timedelta(hours=1)
    now = timezone.now()
    assert widget.viewer_token_read(body["token"], project_id=project.pk, now=now) == "u-93f1"
    with pytest.raises(widget.BadViewer):
        widget.viewer_token_read(body["token"], project_id=project.pk + 1, now=now)
    with pytest.raises(widget.BadViewer):
        widget.viewer_token_read(body["token"], project_id=project.pk, now=expires)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_ref": "u-1", "ttl_seconds": 59}, "ttl_seconds"),
        ({"user_ref": "u-1", "ttl_seconds": 86401}, "ttl_seconds"),
        ({"user_ref": "u-1", "ttl_seconds": "60"}, "ttl_seconds"),
        ({"ttl_seconds": 60}, "user_ref"),
        ({"user_ref": ""}, "user_ref"),
        ({"user_ref": "anon:0123456789abcdef0123456789abcdef"}, "user_ref"),
        ({"user_ref": "user:1"}, "user_ref"),
        ({"user_ref": "x" * 256}, "user_ref"),
    ],
)
def test_a_bad_token_request_names_its_field(project: Project, body: Any, field: str) -> None:
    client = bearer_client(api_key_for(project, "feedback"))
    response = client.post("/api/v1/viewer-tokens", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


@pytest.mark.parametrize("scopes", [("export",), ("ingest", "train")])
def test_tokens_need_the_feedback_scope(project: Project, scopes: tuple[str, ...]) -> None:
    client = bearer_client(api_key_for(project, *scopes))
    response = client.post("/api/v1/viewer-tokens", {"user_ref": "u-1"}, format="json")
    assert response.status_code == 403


def test_a_widget_key_gets_no_token_and_no_other_endpoint(
    project: Project, widget_key: str
) -> None:
    client = bearer_client(widget_key)
    assert (
        client.post("/api/v1/viewer-tokens", {"user_ref": "u-1"}, format="json").status_code == 403
    )
    body = {"events": [reaction(user_ref="u-1")]}
    assert client.post("/api/v1/feedback", body, format="json").status_code == 403
    assert client.get("/api/v1/feedback").status_code == 403


def test_a_signed_in_member_gets_a_token_for_themselves(project: Project) -> None:
    client = APIClient()
    user = login(client, project, "rater")
    response = client.post(
        "/api/v1/viewer-tokens?project=acme", {"user_ref": "someone-else"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["user_ref"] == f"user:{user.pk}"


# --- keys and origins ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("https://App.Example.com", "https://app.example.com"),
        ("https://app.example.com/", "https://app.example.com"),
        ("https://app.example.com:443", "https://app.example.com"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://[::1]:3000", "http://[::1]:3000"),
    ],
)
def test_origins_are_kept_as_browsers_send_them(given: str, normal: str) -> None:
    assert widget.origin_normalize(given) == normal


@pytest.mark.parametrize(
    "bad",
    [
        "app.example.com",
        "ftp://app.example.com",
        "https://app.example.com/path",
        "https://*.example.com",
        "https://user@app.example.com",
        "https://app.example.com?x=1",
        "https://app.example.com:0",
        "https://exämple.com",
        "null",
    ],
)
def test_bad_origins_are_refused(project: Project, bad: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        api_key_create(project=project, name="w", scopes=["widget"], origins=[bad])
    assert "origins" in refused.value.errors


@pytest.mark.parametrize(
    ("scopes", "origins", "field"),
    [
        (["widget"], [], "origins"),
        (["widget", "feedback"], [ORIGIN], "scopes"),
        (["feedback"], [ORIGIN], "origins"),
    ],
)
def test_widget_keys_stand_alone_with_origins(
    project: Project, scopes: list[str], origins: list[str], field: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        api_key_create(project=project, name="w", scopes=scopes, origins=origins)
    assert field in refused.value.errors


def test_create_api_key_makes_a_widget_key(project: Project, capsys: Any) -> None:
    call_command(
        "create_api_key",
        "--project=acme",
        "--scopes=widget",
        "--origins=https://app.example.com,http://localhost:3000/",
    )
    raw = capsys.readouterr().out.strip().splitlines()[-1]
    key = ApiKey.objects.get(project=project)
    assert raw.startswith("fbk_")
    assert key.scopes == ["widget"]
    assert key.origins == ["https://app.example.com", "http://localhost:3000"]
    with pytest.raises(CommandError, match="origins"):
        call_command(
            "create_api_key", "--project=acme", "--scopes=widget", "--origins=https://*.x.com"
        )


def test_the_api_keys_page_makes_a_widget_key(project: Project) -> None:
    client = Client()
    login(client, project, "owner")
    response = client.post(
        "/projects/acme/api-keys/create/",
        {
            "name": "site",
            "scopes": ["widget"],
            "origins": "https://app.example.com\nhttps://b.example.com",
        },
    )
    assert response.status_code == 302  # to the keys page, which shows the new key once
    key = ApiKey.objects.get(project=project)
    assert key.origins == ["https://app.example.com", "https://b.example.com"]
    refused = client.post(
        "/projects/acme/api-keys/create/",
        {"name": "site", "scopes": ["widget"], "origins": "https://a.example.com/path"},
    )
    assert refused.status_code == 400
    assert ApiKey.objects.filter(project=project).count() == 1


# --- CORS ----------------------------------------------------------------------------------------


def test_preflight_is_answered_for_an_allowed_origin_only(widget_key: str) -> None:
    client = Client()
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-feedback-viewer",
    }
    url = f"{EVENTS}?key={widget_key}"
    allowed = client.options(url, headers={**preflight, "Origin": ORIGIN})
    assert allowed.status_code == 204
    assert allowed["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in allowed["Vary"]
    assert "POST" in allowed["Access-Control-Allow-Methods"]
    assert "X-Feedback-Viewer" in allowed["Access-Control-Allow-Headers"]
    other = client.options(url, headers={**preflight, "Origin": "https://evil.example"})
    assert other.status_code == 403
    assert "Access-Control-Allow-Origin" not in other
    wrong_method = client.options(
        url, headers={"Access-Control-Request-Method": "DELETE", "Origin": ORIGIN}
    )
    assert wrong_method.status_code == 405


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "https://app.example.com:8443", "null", None]
)
def test_other_origins_write_nothing(
    answer: Any, widget_key: str, token: str, origin: str | None
) -> None:
    response = post_events(widget_key, token, reaction(), origin=origin)
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response
    assert not FeedbackEvent.objects.exists()


def test_an_allowed_origin_records_for_the_tokens_user_ref(
    answer: Any, widget_key: str, token: str
) -> None:
    response = post_events(widget_key, token, reaction())
    assert response.status_code == 201, response.content
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert response.json()["results"] == [
        {"index": 0, "status": "created", "event_id": "evt-000001"}
    ]
    active = Reaction.objects.get()
    assert (active.viewer, active.kind, active.source) == ("u-93f1", "love", "browser")
    again = post_events(widget_key, token, reaction())
    assert again.json()["results"][0]["status"] == "duplicate"
    assert FeedbackEvent.objects.count() == 1


def test_the_platforms_own_pages_may_use_a_key_that_allows_them(
    project: Project, answer: Any, token: str
) -> None:
    _, key = api_key_create(
        project=project, name="own", scopes=["widget"], origins=["http://testserver"]
    )
    same = Client().get(
        f"{CONFIG}?key={key}&answer=chat-42-turn-3",
        HTTP_X_FEEDBACK_VIEWER=token,
        HTTP_SEC_FETCH_SITE="same-origin",
    )
    assert same.status_code == 200, same.content
    cross = Client().get(
        f"{CONFIG}?key={key}&answer=chat-42-turn-3",
        HTTP_X_FEEDBACK_VIEWER=token,
        HTTP_SEC_FETCH_SITE="cross-site",
    )
    assert cross.status_code == 403


# --- viewers -------------------------------------------------------------------------------------


def tampered(token: str) -> str:
    payload, signature = token.rsplit(":", 1)
    return f"{payload}:{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


@pytest.mark.parametrize("case", ["missing", "tampered", "expired", "other project", "garbage"])
def test_a_bad_viewer_gets_401_and_writes_nothing(
    project: Project, other_project: Project, answer: Any, widget_key: str, token: str, case: str
) -> None:
    viewer = {
        "missing": None,
        "tampered": tampered(token),
        "expired": widget.viewer_token_sign(
            project_id=project.pk,
            user_ref="u-93f1",
            expires_at=timezone.now() - timedelta(seconds=1),
        ),
        "other project": viewer_token_issue(project=other_project, user_ref="u-93f1")[0],
        "garbage": "not a token",
    }[case]
    response = post_events(widget_key, viewer, reaction())
    assert response.status_code == 401
    assert response["Access-Control-Allow-Origin"] == ORIGIN  # the page may read why
    assert not FeedbackEvent.objects.exists()


@pytest.mark.parametrize("field", ["user_ref", "at", "surface", "winner"])
def test_an_event_may_not_name_its_viewer_time_or_surface(
    answer: Any, widget_key: str, token: str, field: str
) -> None:
    response = post_events(widget_key, token, reaction(**{field: "u-someone-else"}))
    assert response.json()["results"][0]["errors"] == {
        field: ["Not accepted from the widget in a reaction event."]
    }
    assert not FeedbackEvent.objects.exists()


def test_comparisons_are_not_taken_from_the_widget(
    answer: Any, widget_key: str, token: str
) -> None:
    event = {"event_id": "cmp-000001", "type": "comparison", "answer": "chat-42-turn-3"}
    response = post_events(widget_key, token, event)
    assert "type" in response.json()["results"][0]["errors"]


def test_anonymous_viewers_only_where_the_project_allows_them(
    project: Project, answer: Any, widget_key: str
) -> None:
    anonymous = "anon:" + "0f" * 16
    assert post_events(widget_key, anonymous, reaction()).status_code == 401
    project.allow_anonymous_viewers = True
    project.save()
    for bad in ("anon:" + "0F" * 16, "anon:" + "0f" * 15, "anon:" + "0f" * 16 + "\n", "anon:"):
        assert post_events(widget_key, bad, reaction()).status_code == 401
    assert post_events(widget_key, anonymous, reaction()).status_code == 201
    assert Reaction.objects.get().viewer == anonymous


# --- limits --------------------------------------------------------------------------------------


def test_each_client_address_has_a_limit(
    project: Project, answer: Any, widget_key: str, settings: Any
) -> None:
    settings.WIDGET_EVENTS_PER_ADDRESS_PER_MINUTE = 3
    project.allow_anonymous_viewers = True
    project.save()
    for n in range(3):  # three viewers, one address
        response = post_events(widget_key, "anon:" + f"{n:032x}", reaction(f"evt-00000{n}"))
        assert response.status_code == 201
    over = post_events(widget_key, "anon:" + "9" * 32, reaction("evt-000009"))
    assert over.status_code == 429
    assert int(over["Retry-After"]) >= 1
    other_address = post_events(
        widget_key, "anon:" + "9" * 32, reaction("evt-000009"), REMOTE_ADDR="10.0.0.2"
    )
    assert other_address.status_code == 201
    assert FeedbackEvent.objects.count() == 4


def test_each_viewer_has_the_projects_limits(
    project: Project, answer: Any, widget_key: str, token: str
) -> None:
    project.feedback_rate_per_minute = 2
    project.save()
    critique = {"type": "critique", "answer": "chat-42-turn-3", "text": "Too vague."}
    assert post_events(widget_key, token, {**critique, "event_id": "crit-00001"}).status_code == 201
    assert post_events(widget_key, token, {**critique, "event_id": "crit-00002"}).status_code == 201
    assert post_events(widget_key, token, {**critique, "event_id": "crit-00003"}).status_code == 429
    assert FeedbackEvent.objects.count() == 2


# --- config and follow-ups -----------------------------------------------------------------------


def test_config_shows_reactions_state_and_the_followup_once_due(
    project: Project, answer: Any, widget_key: str, token: str
) -> None:
    project.followup_delay = timedelta(0)
    project.save()

    def config() -> dict[str, Any]:
        response = Client().get(
            f"{CONFIG}?key={widget_key}&answer=chat-42-turn-3",
            HTTP_ORIGIN=ORIGIN,
            HTTP_X_FEEDBACK_VIEWER=token,
        )
        assert response.status_code == 200, response.content
        assert response["Access-Control-Allow-Origin"] == ORIGIN
        return dict(response.json())

    first = config()
    assert first["reactions"][0] == {"kind": "love", "label": "Love"}
    assert first["active"] == []
    assert first["followup"]["due_in_seconds"] is None
    followup = {
        "event_id": "fup-000001",
        "type": "followup",
        "answer": "chat-42-turn-3",
        "outcome": "solved",
    }
    early = post_events(widget_key, token, followup)
    assert "outcome" in early.json()["results"][0]["errors"]
    exposure = {"event_id": "exp-000001", "type": "exposure", "answer": "chat-42-turn-3"}
    post_events(widget_key, token, reaction(), exposure)
    seen = config()
    assert seen["active"] == ["love"]
    assert seen["followup"]["due_in_seconds"] == 0
    assert post_events(widget_key, token, {**followup, "event_id": "fup-000002"}).status_code == 201
    # A retry of the recorded follow-up is a duplicate, not "no follow-up due".
    retry = post_events(widget_key, token, {**followup, "event_id": "fup-000002"})
    assert retry.json()["results"][0]["status"] == "duplicate"
    assert config()["followup"]["answered"] is True


def test_config_of_an_unknown_answer_is_404(widget_key: str, token: str) -> None:
    response = Client().get(
        f"{CONFIG}?key={widget_key}&answer=nope", HTTP_ORIGIN=ORIGIN, HTTP_X_FEEDBACK_VIEWER=token
    )
    assert response.status_code == 404


def test_the_script_is_served_for_other_sites(client: Client) -> None:
    response = client.get("/widget.js", HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Content-Encoding"] == "gzip"
    assert "max-age" in response["Cache-Control"]
    assert response["Cross-Origin-Resource-Policy"] == "cross-origin"
    etag = response["ETag"]
    assert client.get("/widget.js", HTTP_IF_NONE_MATCH=etag).status_code == 304
