"""The shadow-run pages: starting a run from the form, and a finished run's agreement."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from feedback.core.jobs import JobStatus
from feedback.models import Project
from rewardmodels.models import ShadowRun
from tests.factories import MembershipFactory, UserFactory
from tests.rewardmodels.test_apis_shadow import shadow_model


@pytest.fixture
def researcher(project: Project) -> Client:
    client = Client()
    user = UserFactory.create()
    MembershipFactory.create(user=user, project=project, role="researcher")
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_form_queues_a_run_and_refuses_a_bad_threshold(
    project: Project, researcher: Client
) -> None:
    model = shadow_model(project)

    refused = researcher.post(
        "/projects/acme/models/shadow/create/", {"reward_model": model.pk, "threshold": "2"}
    )
    started = researcher.post(
        "/projects/acme/models/shadow/create/", {"reward_model": model.pk, "threshold": "0.3"}
    )

    assert refused.status_code == 400
    assert "threshold: Must be between 0 and 1." in refused.content.decode()
    run = ShadowRun.objects.get()
    assert started.status_code == 302
    assert started["Location"] == f"/projects/acme/models/shadow/{run.pk}/"
    assert run.threshold == 0.3
    assert run.training_run_id == model.active_run_id


@pytest.mark.django_db
def test_a_finished_run_shows_its_counts_and_agreement_escaped(
    project: Project, researcher: Client
) -> None:
    model = shadow_model(project)
    assert model.active_run is not None
    run = ShadowRun.objects.create(
        project=project,
        reward_model=model,
        training_run=model.active_run,
        status=JobStatus.SUCCEEDED,
        progress=1.0,
        finished_at=timezone.now(),
        counts={"exposures": 22, "simulated_loves": 3, "viewers": 11, "threshold": 0.5},
        agreement={
            "held_out_since": "2026-01-01T00:00:00+00:00",
            "viewers": [
                {
                    "viewer": "<b>alice</b>",
                    "rows": 4,
                    "loved": 2,
                    "simulated_loves": 2,
                    "threshold": 0.5,
                    "own_threshold": False,
                    "roc_auc": 1.0,
                    "accuracy": 1.0,
                    "kappa": None,
                }
            ],
            "overall": {
                "rows": 4,
                "loved": 2,
                "simulated_loves": 2,
                "roc_auc": 1.0,
                "accuracy": 1.0,
                "kappa": 0.16,
            },
        },
    )

    page = researcher.get(f"/projects/acme/models/shadow/{run.pk}/").content.decode()
    listing = researcher.get("/projects/acme/models/shadow/").content.decode()

    assert "&lt;b&gt;alice&lt;/b&gt;" in page
    assert "<b>alice</b>" not in page
    assert "undefined" in page  # kappa None
    assert "0.160" in page
    assert "3 of 22" in listing


@pytest.mark.django_db
def test_the_list_takes_the_same_queries_for_few_runs_as_for_many(
    project: Project, researcher: Client
) -> None:
    model = shadow_model(project)
    version = model.active_run
    assert version is not None

    def queries_with(runs: int) -> int:
        ShadowRun.objects.all().delete()
        for _ in range(runs):
            ShadowRun.objects.create(project=project, reward_model=model, training_run=version)
        with CaptureQueriesContext(connection) as captured:
            assert researcher.get("/projects/acme/models/shadow/").status_code == 200
        return len(captured)

    assert queries_with(2) == queries_with(20)
