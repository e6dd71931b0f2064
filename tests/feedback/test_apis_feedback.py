"""POST and GET /api/v1/feedback, and the rules of feedback records."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest
from django.db import connections
from rest_framework.test import APIClient

from feedback.models import (
    Comparison,
    Critique,
    Exposure,
    FeedbackEvent,
    FollowUp,
    Project,
    Reaction,
)
from feedback.services import feedback_record, reaction_toggle
from tests.conftest import bearer_client
from tests.factories import AnswerFactory, api_key_for

URL = "/api/v1/feedback"


def send(client: APIClient, *events: dict[str, Any]) -> Any:
    return client.post(
        URL, data=orjson.dumps({"events": list(events)}), content_type="application/json"
    )


def event(event_id: str, type_: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "type": type_, "answer": "a-1", "user_ref": "u-1", **fields}


@pytest.fixture
def answer(project: Project) -> Any:
    return AnswerFactory.create(project=project, external_id="a-1")


def test_every_event_type_is_recorded(api: APIClient, project: Project, answer: Any) -> None:
    AnswerFactory.create(project=project, external_id="a-2", prompt=answer.prompt)

    response = send(
        api,
        event("e1", "exposure", surface="chat"),
        event("e2", "reaction", reaction="love"),
        event("e3", "critique", text="Too long.", quote="one drop", category="verbosity"),
        event("e4", "comparison", other_answer="a-2", winner="b"),
        event("e5", "followup", outcome="partly", text="Chain still squeaks."),
        event("e6", "unreaction", reaction="love"),
    )

    assert response.status_code == 201
    assert [r["status"] for r in response.json()["results"]] == ["created"] * 6
    assert Exposure.objects.get().surface == "chat"
    reaction = Reaction.objects.get()
    assert reaction.removed_at is not None  # history kept
    assert reaction.removed_by == FeedbackEvent.objects.get(event_id="e6")
    assert Critique.objects.get().quote == "one drop"
    assert Comparison.objects.get().winner == "b"
    assert FollowUp.objects.get().outcome == "partly"
    assert set(FeedbackEvent.objects.values_list("source", flat=True)) == {"api"}


def test_replay_reports_duplicate_and_writes_nothing(api: APIClient, answer: Any) -> None:
    send(api, event("e1", "critique", text="Too long."))

    response = send(
        api, event("e1", "critique", text="Too long."), event("e1", "reaction", reaction="love")
    )

    assert [r["status"] for r in response.json()["results"]] == ["duplicate", "duplicate"]
    assert Critique.objects.count() == 1
    assert not Reaction.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"type": "shrug"}, "type"),
        ({"answer": "nope"}, "answer"),
        ({"type": "reaction", "reaction": "party"}, "reaction"),
        ({"type": "reaction"}, "reaction"),
        ({"type": "critique", "text": "   "}, "text"),
        ({"type": "critique", "text": "x" * 5001}, "text"),
        ({"type": "comparison", "other_answer": "a-1", "winner": "a"}, "other_answer"),
        ({"type": "comparison", "other_answer": "a-3", "winner": "a"}, "other_answer"),
        ({"type": "comparison", "other_answer": "a-2", "winner": "maybe"}, "winner"),
        ({"type": "followup", "outcome": "meh"}, "outcome"),
        ({"at": "2999-01-01T00:00:00Z"}, "at"),
        ({"user_ref": ""}, "user_ref"),
        ({"event_id": None}, "event_id"),
    ],
)
def test_bad_events_name_the_field_and_write_nothing(
    api: APIClient, project: Project, answer: Any, fields: dict[str, Any], field: str
) -> None:
    AnswerFactory.create(
        project=project, external_id="a-3", prompt=[{"role": "user", "content": "Other?"}]
    )
    AnswerFactory.create(project=project, external_id="a-2", prompt=answer.prompt)
    bad = {**event("bad", "exposure"), **fields}

    response = send(api, bad, event("good", "exposure"))

    results = response.json()["results"]
    assert results[0]["status"] == "error"
    assert field in results[0]["errors"]
    assert results[1]["status"] == "created"
    assert FeedbackEvent.objects.get().event_id == "good"


def test_another_projects_answer_is_unknown(api: APIClient, other_project: Project) -> None:
    AnswerFactory.create(project=other_project, external_id="a-1")

    response = send(api, event("e1", "reaction", reaction="love"))

    assert response.json()["results"][0]["errors"] == {
        "answer": ["No answer with this external_id in the project."]
    }


def test_project_reaction_set_decides_what_is_known(
    api: APIClient, project: Project, answer: Any
) -> None:
    project.reaction_set = ["love", "fire"]
    project.save()

    response = send(
        api, event("e1", "reaction", reaction="fire"), event("e2", "reaction", reaction="like")
    )

    assert [r["status"] for r in response.json()["results"]] == ["created", "error"]


def test_events_recorded_earlier_keep_their_time(api: APIClient, answer: Any) -> None:
    send(api, event("e1", "exposure", at="2026-01-02T03:04:05Z"))

    assert Exposure.objects.get().shown_at.isoformat() == "2026-01-02T03:04:05+00:00"


def test_rate_limit_answers_429_with_retry_after(
    api: APIClient, project: Project, answer: Any
) -> None:
    project.feedback_rate_per_minute = 2
    project.save()

    first = send(api, *(event(f"e{i}", "critique", text="no") for i in range(3)))
    second = send(api, event("e9", "critique", text="no"))
    other_viewer = send(api, event("e10", "critique", text="no", user_ref="u-2"))

    assert [r["status"] for r in first.json()["results"]] == ["created", "created", "error"]
    assert second.status_code == 429
    assert second["Retry-After"] == "60"
    assert second.json()["error"]["code"] == "throttled"
    assert other_viewer.status_code == 201
    assert Critique.objects.count() == 3


def test_daily_reaction_cap(api: APIClient, project: Project, answer: Any) -> None:
    project.reactions_per_day = 1
    project.save()

    response = send(
        api, event("e1", "reaction", reaction="love"), event("e2", "reaction", reaction="like")
    )

    assert response.json()["results"][1]["errors"]["reaction"][0].startswith("Daily cap")
    assert Reaction.objects.count() == 1


def test_feedback_needs_its_scope(project: Project, answer: Any) -> None:
    response = send(bearer_client(api_key_for(project, "ingest")), event("e1", "exposure"))

    assert response.status_code == 403


@pytest.mark.parametrize("body", [{}, {"events": []}, {"events": "x"}, [1]])
def test_bad_envelopes_are_400(api: APIClient, body: Any) -> None:
    response = api.post(URL, data=orjson.dumps(body), content_type="application/json")

    assert response.status_code == 400
    assert "events" in response.json()["error"]["fields"]


def test_list_pages_with_a_stable_cursor_and_filters(
    api: APIClient, project: Project, answer: Any
) -> None:
    AnswerFactory.create(project=project, external_id="a-2")
    send(api, *(event(f"e{i}", "exposure") for i in range(5)))
    send(api, event("r1", "reaction", reaction="love", answer="a-2"))

    first = api.get(URL, {"limit": 2}).json()
    second = api.get(URL, {"limit": 2, "cursor": first["next"]}).json()
    reactions = api.get(URL, {"type": "reaction"}).json()
    on_a2 = api.get(URL, {"answer": "a-2"}).json()
    since_future = api.get(URL, {"since": "2026-11-25T00:00:00Z"}).json()

    assert [e["event_id"] for e in first["results"]] == ["e0", "e1"]
    assert [e["event_id"] for e in second["results"]] == ["e2", "e3"]
    assert reactions["results"][0] | {"id": 0, "at": "", "received_at": ""} == {
        "id": 0,
        "event_id": "r1",
        "type": "reaction",
        "answer": "a-2",
        "user_ref": "u-1",
        "source": "api",
        "at": "",
        "received_at": "",
        "reaction": "love",
    }
    assert reactions["next"] is None
    assert [e["event_id"] for e in on_a2["results"]] == ["r1"]
    assert len(since_future["results"]) == 6


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"type": "x"}, "type"),
        ({"since": "soon"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "zz"}, "cursor"),
    ],
)
def test_list_rejects_bad_parameters(api: APIClient, params: dict[str, str], field: str) -> None:
    response = api.get(URL, params)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_list_shows_only_this_projects_events(api: APIClient, other_project: Project) -> None:
    AnswerFactory.create(project=other_project, external_id="theirs")
    send(bearer_client(api_key_for(other_project)), event("e1", "exposure", answer="theirs"))

    assert api.get(URL).json() == {"results": [], "next": None}


@pytest.mark.parametrize("rows", [10, 100])
def test_list_query_count_does_not_grow(
    api: APIClient, answer: Any, rows: int, django_assert_num_queries: Any, settings: Any
) -> None:
    send(api, *(event(f"e{i}", "exposure") for i in range(rows)))
    settings.API_KEY_CACHE_SECONDS = 0  # the key is looked up again, not taken from the send

    with django_assert_num_queries(2):  # the key with its project, the page
        api.get(URL, {"limit": 1000})


def test_browser_toggle_reads_back_through_the_api(
    api: APIClient, project: Project, answer: Any
) -> None:
    reaction_toggle(project=project, answer=answer, viewer="user:7", kind="love", event_id="b1")
    reaction_toggle(project=project, answer=answer, viewer="user:7", kind="love", event_id="b2")

    listed = api.get(URL).json()["results"]

    assert [(e["type"], e["user_ref"], e["source"]) for e in listed] == [
        ("reaction", "user:7", "browser"),
        ("unreaction", "user:7", "browser"),
    ]
    assert Reaction.objects.filter(removed_at__isnull=True).count() == 0


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_toggles_leave_at_most_one_active_reaction() -> None:
    project = Project.objects.create(slug="race", name="Race")
    answer = AnswerFactory.create(project=project, external_id="a-1")
    barrier = threading.Barrier(2)

    def click(event_id: str) -> None:
        barrier.wait()
        try:
            reaction_toggle(
                project=project, answer=answer, viewer="user:1", kind="love", event_id=event_id
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click, args=(f"click-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    active = Reaction.objects.filter(answer=answer, removed_at__isnull=True).count()
    assert active <= 1
    assert FeedbackEvent.objects.filter(project=project).count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_replays_of_one_event_write_it_once() -> None:
    project = Project.objects.create(slug="race", name="Race")
    AnswerFactory.create(project=project, external_id="a-1")
    barrier = threading.Barrier(2)
    statuses: list[str] = []

    def replay() -> None:
        barrier.wait()
        try:
            result = feedback_record(
                project=project, items=[event("same", "critique", text="Wrong.")], source="api"
            )
            statuses.append(result[0].status)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=replay) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == ["created", "duplicate"]
    assert Critique.objects.filter(project=project).count() == 1


def test_a_signed_in_user_can_only_speak_for_themselves(project: Project, answer: Any) -> None:
    from tests.factories import MembershipFactory, UserFactory

    user = UserFactory.create()
    MembershipFactory.create(user=user, project=project, role="rater")
    client = APIClient()
    client.force_login(user)

    client.post(
        f"{URL}?project=acme",
        data=orjson.dumps(
            {"events": [event("e1", "reaction", reaction="love", user_ref="someone-else")]}
        ),
        content_type="application/json",
    )

    assert list(FeedbackEvent.objects.values_list("viewer", "source")) == [
        (f"user:{user.pk}", "browser")
    ]


def test_backdated_reactions_still_count_towards_the_daily_cap(
    api: APIClient, project: Project, answer: Any
) -> None:
    project.reactions_per_day = 2
    project.save()
    old = "2026-01-01T00:00:00Z"

    results = [
        send(api, event(f"e{i}", "reaction", reaction=kind, at=old)).json()["results"][0]["status"]
        for i, kind in enumerate(["love", "like", "wow"])
    ]

    assert results == ["created", "created", "error"]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "²"},
        {"since": "0001-01-01T00:00:00+01:00"},
        {"cursor": "ZTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5"},
    ],
)
def test_odd_list_parameters_are_400(api: APIClient, params: dict[str, str]) -> None:
    assert api.get(URL, params).status_code == 400


BIDI = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
BIDI_MESSAGE = "Must not contain bidirectional control characters"


@pytest.mark.parametrize("char", BIDI, ids=[f"U+{ord(c):04X}" for c in BIDI])
@pytest.mark.parametrize(
    ("type_", "field", "extra"),
    [
        ("exposure", "user_ref", {}),
        ("exposure", "event_id", {}),
        ("exposure", "answer", {}),
        ("comparison", "other_answer", {"winner": "a"}),
        ("reaction", "reaction", {}),
    ],
)
def test_identifiers_with_a_bidi_control_are_refused_by_name(
    api: APIClient,
    project: Project,
    answer: Any,
    type_: str,
    field: str,
    extra: dict[str, Any],
    char: str,
) -> None:
    # Given a project whose reaction set and answers (stored before names were checked) hold
    # spoofed names, so only the check on the name can refuse the event
    project.reaction_set = ["love", f"love{char}"]
    project.save()
    for external_id in ("a-2", f"a-1{char}", f"a-2{char}"):
        AnswerFactory.create(project=project, external_id=external_id, prompt=answer.prompt)
    bad = event("bad", type_, other_answer="a-2", reaction="love", **extra)
    bad[field] = f"{bad[field]}{char}"

    # When an event names something with a bidi control, next to a good event
    response = send(api, bad, event("good", "exposure"))

    # Then it is refused naming that field, and only the good one is recorded
    results = response.json()["results"]
    assert results[0]["status"] == "error"
    assert list(results[0]["errors"]) == [field]
    assert results[0]["errors"][field][0].startswith(BIDI_MESSAGE)
    assert results[1]["status"] == "created"
    assert list(FeedbackEvent.objects.values_list("event_id", flat=True)) == ["good"]
