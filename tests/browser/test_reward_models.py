"""A researcher in a real browser: create a P[Love] model, train it with a real worker, watch
the progress, read metrics and plots, compare two versions and pick the active one."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from feedback.models import Project
from rewardmodels.models import RewardModel
from tests.browser.conftest import log_in
from tests.rewardmodels.conftest import plant_exposures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_train_inspect_and_activate_a_p_love_model(
    page: Page, live_server: Any, project: Project, celery_worker: None
) -> None:
    plant_exposures(project)
    log_in(page, live_server, project, "rosa", "researcher")
    page.goto(f"{live_server.url}/projects/acme/")
    page.get_by_role("link", name="Models", exact=True).click()

    # Create
    page.get_by_label("Name").fill("love")
    page.get_by_label("Objective").select_option("p_love")
    page.get_by_label("Epochs (P[Love]; blank: decided by the amount of data)").fill("5")
    page.get_by_role("button", name="Create reward model").click()
    expect(page.get_by_role("heading", name="love")).to_be_visible()

    # Train and follow the run until it is done, without reloading
    page.get_by_role("button", name="Train a new version").click()
    page.wait_for_url(re.compile(r"/models/runs/\d+/$"))
    expect(page.get_by_role("progressbar", name="Training progress")).to_be_attached()
    expect(page.get_by_text("ROC-AUC")).to_be_visible(timeout=60_000)
    reliability = page.get_by_role("img", name=re.compile("Reliability curve"))
    expect(reliability).to_be_visible()
    # The PNG really loads (the partial that holds it was just swapped in: wait for it).
    page.wait_for_function(
        "() => [...document.images].some(i => i.alt.startsWith('Reliability curve')"
        " && i.complete && i.naturalWidth > 100)"
    )
    expect(page.get_by_role("table", name="Most positive")).to_contain_text("sunflower")

    # A second version; compare and make it the active one
    page.get_by_role("link", name="← love").click()
    page.get_by_role("button", name="Train a new version").click()
    expect(page.get_by_text("ROC-AUC")).to_be_visible(timeout=60_000)
    page.get_by_role("link", name="← love").click()
    expect(page.get_by_role("link", name="v2")).to_be_visible()
    page.get_by_role("button", name="Make version 2 active").click()
    expect(page.get_by_role("row", name=re.compile(r"^v2 .*active"))).to_be_visible()
    model = RewardModel.objects.get(name="love")
    assert model.active_run is not None
    assert model.active_run.version == 2

    # Try a score on the page
    page.get_by_label("Response").fill("rice water sunflower garden")
    page.get_by_role("button", name="Score").click()
    expect(page.get_by_role("status").filter(has_text="P[Love] =")).to_be_visible()
