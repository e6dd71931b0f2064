"""Exposures of a signed-in rater, recorded both by the pages they open and by the session API.

A person sees an answer at most once per exposure window, however the sighting arrives: the
first record stands, every later one (page or API, in any order, at the same moment) is
already recorded. The pages keep answering 200 and the API reports `duplicate`.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import orjson
import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from feedback.models import Answer, Exposure, FeedbackEvent, Project
from feedback.services.signals import window_start
from tests.conftest import bearer_client
from tests.factories import AnswerFactory, MembershipFactory, UserFactory, api_key_for

API = "/api/v1/feedback?project=acme"
PAGES = {
    "list": "/projects/acme/",
    "answer": "/projects/acme/answers/a-1/",
    "compare": "/projects/acme/compare/?answer=a-1",
}


def signed_in_rater(project: Project) -> tuple[Any, Client]:
    """A rater with a browser session that enforces CSRF, holding the token a page gave it."""
    user = UserFactory.create()
    MembershipFactory.create(user=user, project=project, role="rater")
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(user)
    assert client.get("/projects/").status_code == 200  # sets the CSRF cookie
    return user, client


def send_exposures(client: Client, *exposures: tuple[str, str]) -> Any:
    """POST exposure events, given as (event_id, answer), through the session API."""
    events = [{"event_id": e, "type": "exposure", "answer": a} for e, a in exposures]
    return client.post(
        API,
        data=orjson.dumps({"events": events}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )


def send_exposure(client: Client, event_id: str, answer: str = "a-1") -> Any:
    return send_exposures(client, (event_id, answer))


def answers_to_one_prompt(project: Project) -> None:
    # A window longer than any test run, so no test straddles two windows.
    project.exposure_window = timedelta(days=7)
    project.save()
    first = AnswerFactory.create(project=project, external_id="a-1")
    AnswerFactory.create(project=project, external_id="a-2", prompt=first.prompt)


@pytest.mark.parametrize("surface", PAGES)
def test_pages_still_open_after_the_session_api_recorded_the_exposure(
    project: Project, surface: str
) -> None:
    answers_to_one_prompt(project)
    user, client = signed_in_rater(project)
    sent = send_exposure(client, "seen-in-app")
    assert sent.status_code == 201
    assert sent.json()["results"][0]["status"] == "created"

    response = client.get(PAGES[surface])

    assert response.status_code == 200
    assert Exposure.objects.filter(answer__external_id="a-1", viewer=f"user:{user.pk}").count() == 1


@pytest.mark.parametrize("surface", PAGES)
def test_the_session_api_reports_an_exposure_a_page_recorded_as_duplicate(
    project: Project, surface: str
) -> None:
    answers_to_one_prompt(project)
    user, client = signed_in_rater(project)
    assert client.get(PAGES[surface]).status_code == 200
    events_before = FeedbackEvent.objects.count()

    response = send_exposure(client, "seen-in-app")

    assert response.status_code == 200
    assert response.json()["results"] == [
        {"index": 0, "status": "duplicate", "event_id": "seen-in-app"}
    ]
    assert Exposure.objects.filter(answer__external_id="a-1", viewer=f"user:{user.pk}").count() == 1
    assert FeedbackEvent.objects.count() == events_before  # nothing written


def test_two_api_exposures_in_one_window_record_one(project: Project) -> None:
    answers_to_one_prompt(project)
    _, client = signed_in_rater(project)

    first = send_exposure(client, "first")
    second = send_exposure(client, "second")
    other_answer = send_exposure(client, "third", answer="a-2")

    assert (first.status_code, second.status_code, other_answer.status_code) == (201, 200, 201)
    assert first.json()["results"][0]["status"] == "created"
    assert second.json()["results"][0]["status"] == "duplicate"
    assert other_answer.json()["results"][0]["status"] == "created"
    assert Exposure.objects.count() == 2
    assert sorted(FeedbackEvent.objects.values_list("event_id", flat=True)) == ["first", "third"]


@pytest.mark.parametrize("sender", ["another rater's session", "an API key"])
def test_no_client_can_send_the_id_of_a_page_view_before_the_page(
    project: Project, sender: str
) -> None:
    # given a rater about to open an answer, and the id the page will give that view
    answers_to_one_prompt(project)
    rater, browser = signed_in_rater(project)
    answer = Answer.objects.get(project=project, external_id="a-1")
    start = int(window_start(timezone.now(), project.exposure_window).timestamp())
    page_view_id = f"view:user:{rater.pk}:{answer.pk}:{start}"

    # when a client sends that id first, for the other answer
    if sender == "an API key":
        event = {"event_id": page_view_id, "type": "exposure", "answer": "a-2", "user_ref": "u-1"}
        sent = bearer_client(api_key_for(project)).post(
            "/api/v1/feedback", {"events": [event]}, format="json"
        )
    else:
        _, other = signed_in_rater(project)
        sent = send_exposure(other, page_view_id, answer="a-2")

    # then the event is refused, naming its event_id, and the page records the rater's view
    [result] = sent.json()["results"]
    assert (result["status"], list(result["errors"])) == ("error", ["event_id"])
    assert browser.get(PAGES["answer"]).status_code == 200
    assert list(Exposure.objects.values_list("answer__external_id", "viewer")) == [
        ("a-1", f"user:{rater.pk}")
    ]


@pytest.mark.django_db(transaction=True)
def test_concurrent_pages_and_api_events_record_one_exposure_per_answer() -> None:
    project = Project.objects.create(slug="acme", name="Acme")
    answers_to_one_prompt(project)
    user = UserFactory.create()
    MembershipFactory.create(user=user, project=project, role="rater")
    clients = []
    for _ in range(9):
        client = Client(enforce_csrf_checks=True, raise_request_exception=False)
        client.force_login(user)
        assert client.get("/projects/").status_code == 200
        clients.append(client)
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []
    api_results: list[str] = []

    def open_page(client: Client, path: str) -> None:
        try:
            barrier.wait()
            statuses.append(client.get(path).status_code)
        finally:
            connections.close_all()

    def send(client: Client, name: str) -> None:
        try:
            barrier.wait()
            # Both answers, in the opposite order to the list page's.
            response = send_exposures(client, (f"{name}-2", "a-2"), (f"{name}-1", "a-1"))
            statuses.append(response.status_code)
            if response.status_code in (200, 201):
                api_results.extend(r["status"] for r in response.json()["results"])
        finally:
            connections.close_all()

    # Every page twice (list and compare show both answers) and three API batches, at once.
    threads = [
        threading.Thread(target=open_page, args=(client, path))
        for client, path in zip(clients[:6], [*PAGES.values()] * 2, strict=True)
    ] + [
        threading.Thread(target=send, args=(client, f"app-{i}"))
        for i, client in enumerate(clients[6:])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(statuses) == len(clients)
    assert set(statuses) <= {200, 201}
    assert len(api_results) == 6
    assert set(api_results) <= {"created", "duplicate"}
    assert api_results.count("created") <= 2
    seen = Exposure.objects.filter(viewer=f"user:{user.pk}").values_list(
        "answer__external_id", flat=True
    )
    assert sorted(seen) == ["a-1", "a-2"]
    assert FeedbackEvent.objects.filter(type="exposure").count() == 2
