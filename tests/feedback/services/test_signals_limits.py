"""The per-viewer limits on feedback hold exactly when one viewer's clients send at once.

Every client runs in its own thread with its own database connection and waits at a barrier,
so all requests reach the application together, as many clients of one viewer would.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from django.db import connections
from rest_framework.test import APIClient

from feedback.models import Critique, Project, Reaction
from tests.conftest import bearer_client
from tests.factories import AnswerFactory, api_key_for

URL = "/api/v1/feedback"


def run_together(requests: list[Callable[[], Any]]) -> list[Any]:
    """Run the requests in threads released at once; their responses, in order."""
    barrier = threading.Barrier(len(requests))
    responses: list[Any] = [None] * len(requests)

    def run(index: int) -> None:
        try:
            barrier.wait()
            responses[index] = requests[index]()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def sender(client: APIClient, events: list[dict[str, Any]]) -> Callable[[], Any]:
    body = orjson.dumps({"events": events})
    return lambda: client.post(URL, data=body, content_type="application/json")


def outcomes(response: Any, sent: int) -> list[str]:
    """What became of each event of a batch: `created`, or the limit that refused it."""
    if response.status_code == 429:  # every event of the batch refused by the rate limit
        assert response["Retry-After"] == "60"
        assert response.json()["error"]["code"] == "throttled"
        return ["rate_limited"] * sent
    assert response.status_code in (200, 201), response.content
    found = []
    for result in response.json()["results"]:
        if result["status"] == "error":
            message = " ".join(m for ms in result["errors"].values() for m in ms)
            assert message.startswith(("Too much feedback", "Daily cap")), message
            found.append("rate_limited" if "user_ref" in result["errors"] else "reaction_cap")
        else:
            found.append(result["status"])
    return found


@pytest.mark.django_db(transaction=True)
def test_concurrent_clients_of_one_viewer_get_exactly_the_rate_limit() -> None:
    project = Project.objects.create(slug="busy", name="Busy")
    assert project.feedback_rate_per_minute == 60
    AnswerFactory.create(project=project, external_id="a-1")
    key = api_key_for(project, "feedback")

    def critiques(viewer: str, client: int) -> list[dict[str, Any]]:
        return [
            {
                "event_id": f"{viewer}-{client}-{n}",
                "type": "critique",
                "answer": "a-1",
                "user_ref": viewer,
                "text": "Too long.",
            }
            for n in range(3)
        ]

    # 40 clients of one viewer send 3 critiques each; 5 clients of another viewer, at once.
    batches = [critiques("u-1", i) for i in range(40)] + [critiques("u-2", i) for i in range(5)]
    responses = run_together([sender(bearer_client(key), batch) for batch in batches])

    busy = Counter(s for r in responses[:40] for s in outcomes(r, 3))
    other = Counter(s for r in responses[40:] for s in outcomes(r, 3))
    assert busy == {"created": 60, "rate_limited": 60}
    assert other == {"created": 15}
    assert Critique.objects.filter(viewer="u-1").count() == 60
    assert Critique.objects.filter(viewer="u-2").count() == 15


@pytest.mark.django_db(transaction=True)
def test_concurrent_reactions_of_one_viewer_get_exactly_the_daily_cap() -> None:
    project = Project.objects.create(slug="busy", name="Busy", reactions_per_day=10)
    for i in range(20):
        AnswerFactory.create(project=project, external_id=f"a-{i}")
    key = api_key_for(project, "feedback")

    def love(viewer: str, answer: int) -> list[dict[str, Any]]:
        return [
            {
                "event_id": f"{viewer}-{answer}",
                "type": "reaction",
                "answer": f"a-{answer}",
                "user_ref": viewer,
                "reaction": "love",
            }
        ]

    # One viewer loves 20 answers from 20 clients at once; another viewer loves 3.
    batches = [love("u-1", i) for i in range(20)] + [love("u-2", i) for i in range(3)]
    responses = run_together([sender(bearer_client(key), batch) for batch in batches])

    busy = Counter(s for r in responses[:20] for s in outcomes(r, 1))
    other = Counter(s for r in responses[20:] for s in outcomes(r, 1))
    assert busy == {"created": 10, "reaction_cap": 10}
    assert other == {"created": 3}
    assert Reaction.objects.filter(viewer="u-1").count() == 10
