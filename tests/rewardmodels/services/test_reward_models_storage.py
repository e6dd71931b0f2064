"""Reward-model artifacts in an S3-compatible store (a local moto server): a worker host writes
the artifact, a web host that shares no folder with it scores with it from its own copy, and a
stored object with a type outside the allowlist is refused there too."""

from __future__ import annotations

import pytest
import skops.io as sio
from rest_framework.test import APIClient

from feedback.models import Project
from rewardmodels import services
from rewardmodels.models import RewardModel
from rewardmodels.services import reward_models
from tests.conftest import Hosts
from tests.rewardmodels.conftest import MARKER, plant_comparisons

ITEMS = [
    {"prompt": "compare 1", "response": f"{MARKER} detailed steps"},
    {"prompt": "compare 1", "response": "plain reply"},
]


@pytest.fixture
def trained(hosts: Hosts, project: Project) -> RewardModel:
    """A preference model trained on the worker host (the task's code path), and no model
    loaded in this process yet."""
    plant_comparisons(project)
    model = services.reward_model_create(
        project=project, name="pref", objective="preference", config={}, created_by=None
    )
    with hosts.worker():
        run = services.training_run_start(reward_model=model, requested_by=None)
        services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    reward_models._loaded.cache_clear()
    model.refresh_from_db()
    return model


def test_a_web_host_scores_with_the_artifact_a_worker_stored(
    hosts: Hosts, trained: RewardModel, api: APIClient
) -> None:
    # Given the artifact in the bucket, and on neither host's disk
    run = trained.active_run
    assert run is not None
    assert hosts.s3.keys(hosts.bucket) == [run.artifact.name]
    assert hosts.files_on_disk() == []

    # When the web host scores through the API
    with hosts.web():
        scored = api.post(
            f"/api/v1/reward-models/{trained.pk}/score", {"items": ITEMS}, format="json"
        )

    # Then the model answers, from the web host's own copy of the artifact
    assert scored.status_code == 200, scored.json()
    good, plain = (score["reward"] for score in scored.json()["scores"])
    assert good > plain
    assert [path.split("/")[:2] for path in hosts.files_on_disk()] == [["web", "cache"]]


def test_a_stored_artifact_with_a_type_outside_the_allowlist_is_refused(
    hosts: Hosts, trained: RewardModel
) -> None:
    # Given the web host scored once, so it holds a copy of the good artifact
    with hosts.web():
        services.reward_model_score(reward_model=trained, items=ITEMS)

        # When the stored object is replaced by a skops file holding a function call
        run = trained.active_run
        assert run is not None
        hosts.s3.client().put_object(
            Bucket=hosts.bucket,
            Key=run.artifact.name,
            Body=sio.dumps({"hook": print}),
        )
        reward_models._loaded.cache_clear()

        # Then the changed object is fetched again, and refused before anything in it runs
        with pytest.raises(
            ValueError, match=r"refusing to load model artifact with types: builtins\.print"
        ):
            services.reward_model_score(reward_model=trained, items=ITEMS)
