"""POST /api/v1/answers and GET /api/v1/answers/{external_id}."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import orjson
import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from feedback.models import Answer, ApiKey, Project, Stage
from feedback.services import api_key_revoke
from tests.conftest import bearer_client
from tests.factories import (
    AnswerFactory,
    MembershipFactory,
    UserFactory,
    answer_payload,
    api_key_for,
)

URL = "/api/v1/answers"


def post(client: APIClient, body: Any) -> Any:
    return client.post(URL, data=orjson.dumps(body), content_type="application/json")


def test_single_answer_is_created_with_its_trace(api: APIClient, project: Project) -> None:
    response = post(api, answer_payload("a-1"))

    assert response.status_code == 201
    assert response.json()["results"] == [
        {"index": 0, "status": "created", "external_id": "a-1", "id": Answer.objects.get().pk}
    ]
    answer = Answer.objects.get(project=project, external_id="a-1")
    assert answer.prompt == [{"role": "user", "content": "How do I oil a bicycle chain?"}]
    assert answer.metadata == {"latency_ms": 812}
    stages = list(answer.stages.order_by("position"))
    assert [(s.position, s.kind, s.parent_position) for s in stages] == [
        (0, "decomposition", None),
        (1, "retrieval", 0),
        (2, "generation", 1),
    ]
    assert stages[1].output["documents"][0]["id"] == "doc-1"


def test_plain_string_prompt_is_stored_as_one_user_message(api: APIClient) -> None:
    post(api, answer_payload("a-1", prompt="Hello?"))

    assert Answer.objects.get().prompt == [{"role": "user", "content": "Hello?"}]


def test_replay_reports_duplicate_and_writes_nothing(api: APIClient) -> None:
    post(api, answer_payload("a-1"))

    response = post(api, answer_payload("a-1", response="something else"))

    assert response.status_code == 200
    assert response.json()["results"][0]["status"] == "duplicate"
    assert Answer.objects.get().response.startswith("Wipe the chain")
    assert Stage.objects.count() == 3


def test_batch_writes_valid_items_and_names_the_bad_fields(api: APIClient) -> None:
    body = {
        "answers": [
            answer_payload("a-1"),
            answer_payload("a-2", prompt=[]),
            answer_payload("a-3"),
            answer_payload("a-1"),
            answer_payload(
                "a-4",
                trace=[{"kind": "retrieval", "output": {"documents": [{"id": "d", "score": "x"}]}}],
            ),
        ]
    }

    response = post(api, body)

    assert response.status_code == 201
    data = response.json()
    assert [r["status"] for r in data["results"]] == [
        "created",
        "error",
        "created",
        "duplicate",
        "error",
    ]
    assert data["results"][1]["errors"] == {"prompt": ["Must contain at least one message."]}
    assert set(data["results"][4]["errors"]) == {
        "trace[0].output.documents[0].text",
        "trace[0].output.documents[0].score",
    }
    assert (data["created"], data["duplicates"], data["errors"]) == (2, 1, 2)
    assert set(Answer.objects.values_list("external_id", flat=True)) == {"a-1", "a-3"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"external_id": ""}, "external_id"),
        ({"external_id": "x" * 256}, "external_id"),
        ({"prompt": [{"role": "wizard", "content": "hi"}]}, "prompt[0].role"),
        ({"prompt": 42}, "prompt"),
        ({"response": None}, "response"),
        ({"model": 7}, "model"),
        ({"metadata": []}, "metadata"),
        ({"metadata": {"k": "nul\u0000"}}, "metadata"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"created_at": "2999-01-01T00:00:00Z"}, "created_at"),
        ({"created_at": "2024-01-01T00:00:00"}, "created_at"),
        ({"trace": {}}, "trace"),
        ({"trace": [{"kind": "magic", "output": {}}]}, "trace[0].kind"),
        ({"trace": [{"kind": "generation", "output": {"text": 1}}]}, "trace[0].output.text"),
        ({"trace": [{"kind": "decomposition", "output": {}}]}, "trace[0].output.subqueries"),
        ({"trace": [{"kind": "other", "output": {}, "parent": 0}]}, "trace[0].parent"),
        (
            {
                "trace": [
                    {"kind": "other", "output": {}},
                    {"kind": "other", "output": {}, "position": 0},
                ]
            },
            "trace[1].position",
        ),
    ],
)
def test_single_invalid_answer_is_a_400_naming_the_field(
    api: APIClient, overrides: dict[str, Any], field: str
) -> None:
    response = post(api, {**answer_payload("a-1"), **overrides})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"]
    assert not Answer.objects.exists()


def test_missing_required_fields_are_all_named(api: APIClient) -> None:
    response = post(api, {"external_id": "a-1"})

    assert set(response.json()["error"]["fields"]) == {"prompt", "response", "model"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"answers": []}, "answers"),
        ({"answers": "nope"}, "answers"),
        ([1, 2], "non_field_errors"),
    ],
)
def test_bad_envelopes_are_400(api: APIClient, body: Any, field: str) -> None:
    response = post(api, body)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_batch_over_the_limit_is_refused_whole(api: APIClient) -> None:
    body = {"answers": [answer_payload(f"a-{i}", trace=[]) for i in range(1001)]}

    response = post(api, body)

    assert response.status_code == 400
    assert "answers" in response.json()["error"]["fields"]
    assert not Answer.objects.exists()


def test_malformed_json_is_a_json_400(api: APIClient) -> None:
    response = api.post(URL, data=b'{"external_id": ', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


@override_settings(API_MAX_BODY_BYTES=1000)
def test_body_over_the_limit_is_a_json_413(api: APIClient) -> None:
    response = post(api, answer_payload("a-1", response="x" * 2000))

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not Answer.objects.exists()


def test_no_key_is_401(project: Project) -> None:
    response = post(APIClient(), answer_payload())

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer fbk_not-a-real-key", "Bearer", "Bearer a b"])
def test_bad_key_is_401(project: Project, header: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = post(client, answer_payload())

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_revoked_key_is_401(project: Project) -> None:
    raw = api_key_for(project, "ingest")
    api_key_revoke(project=project, key_id=ApiKey.objects.get().pk)

    response = post(bearer_client(raw), answer_payload())

    assert response.status_code == 401


def test_key_without_the_scope_is_403(project: Project) -> None:
    response = post(bearer_client(api_key_for(project, "feedback")), answer_payload())

    assert response.status_code == 403
    assert "ingest" in response.json()["error"]["message"]
    assert not Answer.objects.exists()


def test_key_use_is_recorded(api: APIClient) -> None:
    post(api, answer_payload())

    assert ApiKey.objects.get().last_used_at is not None


def test_detail_returns_trace_revisions_and_counts(api: APIClient, project: Project) -> None:
    post(api, answer_payload("a-1"))
    original = Answer.objects.get()
    AnswerFactory.create(project=project, external_id="a-1-rev", revision_of=original)

    response = api.get(f"{URL}/a-1")

    assert response.status_code == 200
    data = response.json()
    assert data["external_id"] == "a-1"
    assert [s["kind"] for s in data["trace"]] == ["decomposition", "retrieval", "generation"]
    assert data["trace"][2]["parent"] == 1
    assert data["revisions"] == ["a-1-rev"]
    assert data["feedback_counts"] == {
        "exposures": 0,
        "reactions": {},
        "critiques": 0,
        "comparisons": 0,
        "followups": {},
    }


def test_detail_accepts_export_scope_and_refuses_others(project: Project) -> None:
    AnswerFactory.create(project=project, external_id="a-1")

    assert bearer_client(api_key_for(project, "export")).get(f"{URL}/a-1").status_code == 200
    assert bearer_client(api_key_for(project, "train")).get(f"{URL}/a-1").status_code == 403


def test_external_ids_with_slashes_round_trip(api: APIClient) -> None:
    post(api, answer_payload("tenant/42/answer 7"))

    assert api.get(f"{URL}/tenant/42/answer%207").json()["external_id"] == "tenant/42/answer 7"


def test_another_projects_answer_is_404(api: APIClient, other_project: Project) -> None:
    AnswerFactory.create(project=other_project, external_id="secret")

    response = api.get(f"{URL}/secret")

    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "not_found",
            "message": "No answer with that external_id in this project.",
        }
    }


def test_same_external_id_in_two_projects_are_separate(
    api: APIClient, project: Project, other_project: Project
) -> None:
    post(bearer_client(api_key_for(other_project)), answer_payload("a-1", response="theirs"))

    response = post(api, answer_payload("a-1", response="ours"))

    assert response.json()["results"][0]["status"] == "created"
    assert Answer.objects.get(project=project).response == "ours"
    assert Answer.objects.get(project=other_project).response == "theirs"


def test_session_user_acts_on_a_named_project_with_enough_role(project: Project) -> None:
    researcher = UserFactory.create()
    MembershipFactory.create(user=researcher, project=project, role="researcher")
    rater = UserFactory.create()
    MembershipFactory.create(user=rater, project=project, role="rater")
    client = APIClient(enforce_csrf_checks=False)

    client.force_login(researcher)
    assert post(client, answer_payload()).status_code == 400  # no ?project=
    created = client.post(
        f"{URL}?project=acme", data=orjson.dumps(answer_payload()), content_type="application/json"
    )
    assert created.status_code == 201
    assert client.get(f"{URL}/a-1?project=rival").status_code == 404

    client.force_login(rater)
    assert client.get(f"{URL}/a-1?project=acme").status_code == 403


def test_session_api_requests_need_csrf(project: Project) -> None:
    user = UserFactory.create()
    MembershipFactory.create(user=user, project=project, role="owner")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post(
        f"{URL}?project=acme", data=orjson.dumps(answer_payload()), content_type="application/json"
    )

    assert response.status_code == 403
    assert not Answer.objects.exists()


def test_concurrent_identical_requests_create_the_answer_once(live_server: Any) -> None:
    """Two clients replay the same batch at the same moment against the real server."""
    project = Project.objects.create(slug="race", name="Race")
    raw_key = api_key_for(project, "ingest")
    body = orjson.dumps({"answers": [answer_payload(f"a-{i}") for i in range(50)]})
    barrier = threading.Barrier(2)
    outcomes: list[list[str]] = []

    def send() -> None:
        request = urllib.request.Request(
            f"{live_server.url}{URL}",
            data=body,
            headers={"Authorization": f"Bearer {raw_key}", "Content-Type": "application/json"},
        )
        barrier.wait()
        with urllib.request.urlopen(request) as response:
            outcomes.append([r["status"] for r in orjson.loads(response.read())["results"]])

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Answer.objects.filter(project=project).count() == 50
    assert Stage.objects.filter(answer__project=project).count() == 150
    statuses = [s for outcome in outcomes for s in outcome]
    assert statuses.count("created") == 50
    assert statuses.count("duplicate") == 50


def test_unmatched_api_urls_answer_json_404(api: APIClient) -> None:
    response = api.get("/api/v1/answers/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"created_at": "0001-01-01T00:00:00+01:00"}, "created_at"),
        ({"created_at": "1850-06-01T00:00:00Z"}, "created_at"),
        (
            {"metadata": {"deep": __import__("functools").reduce(lambda a, _: [a], range(300), 1)}},
            "metadata",
        ),
        ({"external_id": "line\nbreak"}, "external_id"),
        ({"external_id": "tab\there"}, "external_id"),
    ],
)
def test_edge_values_in_a_batch_fail_alone(
    api: APIClient, overrides: dict[str, Any], field: str
) -> None:
    body = {"answers": [{**answer_payload("bad"), **overrides}, answer_payload("good")]}

    # The standard library's encoder, which nests deeper than orjson writes.
    response = api.post(URL, data=json.dumps(body), content_type="application/json")

    results = response.json()["results"]
    assert response.status_code == 201
    assert field in results[0]["errors"]
    assert results[1]["status"] == "created"


@pytest.mark.parametrize(
    "path",
    ["/api/v1/answers/a%00b", "/api/v1/feedback?answer=%00", "/api/v1/answers/x?project=%00"],
)
def test_nul_characters_in_urls_are_400_not_500(api: APIClient, path: str) -> None:
    response = api.get(path)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_detail_counts_every_kind_of_feedback(api: APIClient, project: Project) -> None:
    post(api, answer_payload("a-1"))
    post(api, answer_payload("a-2"))
    events = [
        {"event_id": "1", "type": "exposure", "answer": "a-1", "user_ref": "u"},
        {"event_id": "2", "type": "reaction", "answer": "a-1", "user_ref": "u", "reaction": "love"},
        {"event_id": "3", "type": "reaction", "answer": "a-1", "user_ref": "v", "reaction": "love"},
        {"event_id": "4", "type": "critique", "answer": "a-1", "user_ref": "u", "text": "Hm."},
        {
            "event_id": "5",
            "type": "comparison",
            "answer": "a-2",
            "user_ref": "u",
            "other_answer": "a-1",
            "winner": "tie",
        },
        {
            "event_id": "6",
            "type": "followup",
            "answer": "a-1",
            "user_ref": "u",
            "outcome": "solved",
        },
    ]
    api.post(
        "/api/v1/feedback", data=orjson.dumps({"events": events}), content_type="application/json"
    )

    counts = api.get(f"{URL}/a-1").json()["feedback_counts"]

    assert counts == {
        "exposures": 1,
        "reactions": {"love": 2},
        "critiques": 1,
        "comparisons": 1,
        "followups": {"solved": 1},
    }


# --- what ingestion refuses to store: links that would run, identifiers that would spoof ------

BIDI = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
BIDI_MESSAGE = "Must not contain bidirectional control characters"


def traced_with_document(
    external_id: str, document: dict[str, Any], kind: str = "retrieval"
) -> dict[str, Any]:
    """An answer whose second stage (a retrieval or rerank) shows `document` after a good one."""
    good = {"id": "doc-1", "title": "Chains", "text": "Oil sparingly.", "url": "https://ok.example"}
    return answer_payload(
        external_id,
        trace=[
            {"kind": "decomposition", "output": {"subqueries": ["chain oil"]}},
            {"kind": kind, "parent": 0, "output": {"documents": [good, document]}},
        ],
    )


@pytest.mark.parametrize("kind", ["retrieval", "rerank"])
@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(document.cookie)",
        "java\tscript:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "https://user:secret@docs.example.org/",
        "https:///no-host",
    ],
)
def test_a_document_url_that_is_not_a_plain_http_link_is_refused_for_that_item_only(
    api: APIClient, url: str, kind: str
) -> None:
    # Given a batch whose middle answer shows a document with a link that would run or leak
    bad = {"id": "doc-2", "title": "Click me", "text": "x", "url": url}
    body = {
        "answers": [
            traced_with_document("a-1", {"id": "doc-2", "text": "y", "url": "http://b.example/"}),
            traced_with_document("a-2", bad, kind),
            answer_payload("a-3"),
        ]
    }

    # When the batch is ingested
    response = post(api, body)

    # Then that answer is an error naming the field, and the others are stored
    assert response.status_code == 201
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["created", "error", "created"]
    assert list(results[1]["errors"]) == ["trace[1].output.documents[1].url"]
    assert set(Answer.objects.values_list("external_id", flat=True)) == {"a-1", "a-3"}
    assert Stage.objects.count() == 2 + 3
    stored = orjson.dumps(list(Stage.objects.values_list("output", flat=True))).decode()
    assert "script" not in stored.lower()
    assert "secret" not in stored


def test_a_single_answer_with_a_javascript_url_is_a_400_and_stores_nothing(
    api: APIClient,
) -> None:
    payload = traced_with_document("a-1", {"id": "d", "text": "x", "url": "javascript:alert(1)"})

    response = post(api, payload)

    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert fields == {
        "trace[1].output.documents[1].url": ["Must be an http:// or https:// URL with a host."]
    }
    assert not Answer.objects.exists()
    assert not Stage.objects.exists()


@pytest.mark.parametrize("url", [None, "", "https://docs.example.org/chains?lang=en#oil"])
def test_a_document_without_a_url_or_with_an_http_one_is_stored(
    api: APIClient, url: str | None
) -> None:
    response = post(api, traced_with_document("a-1", {"id": "d", "text": "x", "url": url}))

    assert response.status_code == 201
    assert Stage.objects.get(position=1).output["documents"][1]["url"] == url


@pytest.mark.parametrize("char", BIDI, ids=[f"U+{ord(c):04X}" for c in BIDI])
def test_an_external_id_with_any_bidi_control_is_refused(api: APIClient, char: str) -> None:
    response = post(api, answer_payload(f"invoice{char}txt.exe"))

    assert response.status_code == 400
    [message] = response.json()["error"]["fields"]["external_id"]
    assert message.startswith(BIDI_MESSAGE)
    assert not Answer.objects.exists()


@pytest.mark.parametrize("field", ["user_ref", "conversation", "model", "model_version"])
def test_names_with_a_bidi_control_are_refused_for_that_item_only(
    api: APIClient, field: str
) -> None:
    body = {
        "answers": [
            answer_payload("a-1", **{field: "gpt\u202e4-mini"}),
            answer_payload("a-2", **{field: "abc\u2067def\u2069"}),
            answer_payload("a-3"),
        ]
    }

    response = post(api, body)

    results = response.json()["results"]
    assert [r["status"] for r in results] == ["error", "error", "created"]
    for result in results[:2]:
        assert list(result["errors"]) == [field]
        assert result["errors"][field][0].startswith(BIDI_MESSAGE)
    assert list(Answer.objects.values_list("external_id", flat=True)) == ["a-3"]
