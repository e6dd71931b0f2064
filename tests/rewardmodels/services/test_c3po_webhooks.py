"""C3PO builds tell the project's webhooks when they end: a build that waits for reviews
when its last review lands, once."""

from __future__ import annotations

from typing import Any

import pytest

from feedback.models import Project, WebhookDelivery
from feedback.services import answers_ingest
from feedback.services.webhooks import webhook_endpoint_create
from rewardmodels.models import C3POItem, VerbalFeedback
from rewardmodels.services import c3po as c3po_services
from rewardmodels.services import c3po_build
from tests.factories import MembershipFactory, UserFactory


@pytest.mark.django_db
def test_a_build_finished_by_its_last_review_is_told_once(project: Project, settings: Any) -> None:
    # Given an endpoint for finished builds, and a human-path build (annotators revise)
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    webhook_endpoint_create(
        project=project, url="http://127.0.0.1:9/hooks", events=["c3po_build.finished"]
    )
    answers_ingest(
        project=project,
        items=[
            {
                "external_id": f"c-{i}",
                "prompt": [{"role": "user", "content": f"How do I fix a bike tyre, step {i}?"}],
                "response": f"Patch it, part {i}.",
                "model": "m",
            }
            for i in range(3)
        ],
    )
    feedback = VerbalFeedback.objects.create(project=project, text="No emojis to my boss.")
    counts = {
        "categories": 1,
        "in_scope_per_category": 2,
        "near_scope_per_category": 2,
        "out_of_scope": 0,
        "test_fraction": 0.25,
    }
    build = c3po_services.build_start(feedback=feedback, counts=counts)

    # When it has run, it waits for reviews: not finished yet
    c3po_build.build_execute(build_id=build.pk)
    c3po_build.build_execute(build_id=build.pk)
    build.refresh_from_db()
    assert build.status == "review"
    assert not WebhookDelivery.objects.exists()

    # Then the last review finishes it, and that is told once
    annotator = UserFactory.create(username="anna")
    MembershipFactory.create(user=annotator, project=project, role="annotator")
    for item in C3POItem.objects.filter(build=build, scope="in_scope"):
        c3po_services.item_review(item=item, reviewer=annotator, action="edit", revised="Ok.")
    [delivery] = WebhookDelivery.objects.all()
    assert delivery.event_type == "c3po_build.finished"
    assert delivery.payload["data"]["id"] == build.pk
    assert delivery.payload["data"]["status"] == "succeeded"
