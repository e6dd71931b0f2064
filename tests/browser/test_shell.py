"""The site's shell in a real browser: the project bar each role sees, starting a project and
bringing members in, an API key shown once, error pages in the layout, inline validation errors
with DEBUG on, and every main page at phone width and under axe-core."""

from __future__ import annotations

import re
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth.models import User
from django.urls import NoReverseMatch, reverse
from playwright.sync_api import Dialog, Page, ViewportSize, expect

from feedback import services
from feedback.models import ApiKey, Membership, Project, Role
from feedback.selectors import QueueFilter
from feedback.services.annotation import queue_create
from rewardmodels.services import reward_model_create
from tests.browser.conftest import PASSWORD, log_in
from tests.factories import AnswerFactory, MembershipFactory, UserFactory, answer_payload

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = ViewportSize(width=390, height=844)

# The bar's sections each role sees, in order (the dashboard only once its page exists).
SECTIONS = {
    Role.RATER: ["Answers", "Compare", "Ask"],
    Role.ANNOTATOR: ["Answers", "Compare", "Ask", "Queues", "Reviews"],
    Role.RESEARCHER: [
        "Answers",
        "Compare",
        "Ask",
        "Queues",
        "Reviews",
        "Dashboard",
        "Exports",
        "Models",
    ],
    Role.OWNER: [
        "Answers",
        "Compare",
        "Ask",
        "Queues",
        "Reviews",
        "Dashboard",
        "Exports",
        "Models",
        "Settings",
        "Members",
        "API keys",
    ],
}


def dashboard_exists() -> bool:
    try:
        reverse("feedback:dashboard", kwargs={"slug": "acme"})
    except NoReverseMatch:
        return False
    return True


def expected_sections(role: str) -> list[str]:
    return [s for s in SECTIONS[Role(role)] if s != "Dashboard" or dashboard_exists()]


def bar(page: Page) -> Any:
    return page.get_by_role("navigation", name=re.compile(r"^Project "))


# --- navigation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.RATER, Role.ANNOTATOR, Role.RESEARCHER, Role.OWNER])
def test_each_role_sees_the_sections_it_may_open_and_where_it_is(
    page: Page, live_server: Any, project: Project, role: str
) -> None:
    log_in(page, live_server, project, f"member-{role}", role)

    page.goto(f"{live_server.url}/projects/acme/compare/")

    links = bar(page).get_by_role("link")
    expect(links).to_have_text(expected_sections(role))
    expect(bar(page).locator("[aria-current=page]")).to_have_text("Compare")
    # Every section it shows opens for this role.
    for href in [link.get_attribute("href") for link in links.all()]:
        response = page.goto(f"{live_server.url}{href}")
        assert response is not None, href
        assert response.status == 200, href
        expect(bar(page).locator("[aria-current=page]")).to_have_count(1)


# --- projects and members ------------------------------------------------------------------------


def test_a_user_starts_a_project_and_brings_in_a_new_member_who_logs_in_and_sees_it(
    page: Page, second_page: Page, live_server: Any, db: Any
) -> None:
    UserFactory.create(username="olga")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("You are not a member of any project yet.")).to_be_visible()

    page.get_by_label("Name").fill("Bike shop")
    page.get_by_role("button", name="Create project").click()

    page.wait_for_url(f"{live_server.url}/projects/bike-shop/")
    expect(page.get_by_text("Project Bike shop created: you are its owner.")).to_be_visible()
    membership = Membership.objects.get(project__slug="bike-shop")
    assert (membership.user.username, membership.role) == ("olga", Role.OWNER)

    bar(page).get_by_role("link", name="Members").click()
    create = page.locator("form", has=page.get_by_role("button", name="Create account"))
    create.get_by_label("Username").fill("newbie")
    create.get_by_label("Role").select_option("annotator")
    create.get_by_role("button", name="Create account").click()

    page.wait_for_url(f"{live_server.url}/projects/bike-shop/members/")
    link = page.get_by_label("One-time link for newbie").input_value()
    assert "/accounts/set-password/" in link
    page.reload()
    expect(page.get_by_label("One-time link for newbie")).to_have_count(0)
    assert User.objects.filter(username="newbie").count() == 1

    second_page.goto(link)
    second_page.get_by_label("New password", exact=True).fill("a long new passphrase 42")
    second_page.get_by_label("New password confirmation").fill("a long new passphrase 42")
    second_page.get_by_role("button", name="Set password").click()
    second_page.get_by_role("link", name="Log in").last.click()
    second_page.get_by_label("Username").fill("newbie")
    second_page.get_by_label("Password").fill("a long new passphrase 42")
    second_page.get_by_role("button", name="Log in").click()

    second_page.get_by_role("link", name="Bike shop").click()
    expect(bar(second_page).get_by_role("link")).to_have_text(expected_sections("annotator"))
    # The link worked once.
    second_page.goto(link)
    expect(second_page.get_by_text("This link no longer works")).to_be_visible()


def test_an_owner_adds_a_user_changes_their_role_removes_them_and_stays_the_last_owner(
    page: Page, live_server: Any, project: Project
) -> None:
    log_in(page, live_server, project, "olga", Role.OWNER)
    UserFactory.create(username="bert", email="bert@example.org")
    page.goto(f"{live_server.url}/projects/acme/members/")

    add = page.locator("form", has=page.get_by_role("button", name="Add member"))
    add.get_by_label("Username or email address").fill("BERT@example.org")
    add.get_by_label("Role").select_option("researcher")
    add.get_by_role("button", name="Add member").click()

    expect(page.get_by_text("bert added as Researcher.")).to_be_visible()
    page.get_by_label("Role of bert", exact=True).select_option("annotator")
    page.get_by_role("button", name="Change the role of bert").click()
    expect(page.get_by_text("bert is now annotator.")).to_be_visible()
    assert Membership.objects.get(user__username="bert").role == Role.ANNOTATOR

    page.get_by_label("Role of olga", exact=True).select_option("rater")
    page.get_by_role("button", name="Change the role of olga").click()
    expect(page.get_by_role("alert")).to_contain_text("A project needs an owner")
    # Removing asks first: the first answer is "cancel", the others "OK".
    answers = [False]
    questions: list[str] = []

    def answer(dialog: Dialog) -> None:
        questions.append(dialog.message)
        if answers.pop(0) if answers else True:
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", answer)
    page.get_by_role("button", name="Remove bert").click()  # cancelled: nothing is sent
    page.get_by_role("button", name="Remove olga").click()
    expect(page.get_by_role("alert")).to_contain_text("A project needs an owner")
    assert Membership.objects.get(user__username="olga").role == Role.OWNER
    assert Membership.objects.filter(user__username="bert").exists()

    page.get_by_role("button", name="Remove bert").click()
    expect(page.get_by_text("bert removed from the project.")).to_be_visible()
    assert not Membership.objects.filter(user__username="bert").exists()
    assert questions[0] == "Remove bert from Acme? Their feedback stays."


# --- API keys ------------------------------------------------------------------------------------


def test_a_new_api_key_is_shown_once_after_a_redirect_and_a_reload_mints_nothing(
    page: Page, live_server: Any, project: Project
) -> None:
    log_in(page, live_server, project, "olga", Role.OWNER)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{live_server.url}/projects/acme/api-keys/")

    page.get_by_label("Name").fill("chat backend")
    page.get_by_label("Send feedback (feedback)").check()
    page.get_by_role("button", name="Create key").click()

    page.wait_for_url(f"{live_server.url}/projects/acme/api-keys/")
    raw = page.get_by_label("New API key").input_value()
    assert raw.startswith("fbk_")
    page.get_by_role("button", name="Copy key").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == raw

    page.reload()

    expect(page.get_by_label("New API key")).to_have_count(0)
    assert raw not in page.content()
    assert ApiKey.objects.count() == 1
    assert services.api_key_authenticate(raw_key=raw) == ApiKey.objects.get()


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_a_page_above_the_role_answers_403_in_the_layout(
    page: Page, live_server: Any, project: Project, settings: Any, debug: bool
) -> None:
    settings.DEBUG = debug
    log_in(page, live_server, project, "rita", Role.RATER)

    response = page.goto(f"{live_server.url}/projects/acme/settings/")

    assert response is not None
    assert response.status == 403
    expect(page.get_by_role("heading", name="You can't open this page")).to_be_visible()
    expect(page.get_by_text("Your role in Acme is rater")).to_be_visible()
    expect(bar(page).get_by_role("link")).to_have_text(SECTIONS[Role.RATER])
    page.get_by_role("link", name="Back to Acme").click()
    page.wait_for_url(f"{live_server.url}/projects/acme/")


@pytest.mark.parametrize(
    "path",
    ["/projects/acme/queues/999/", "/projects/acme/answers/nope/", "/projects/nope/", "/nowhere/"],
)
def test_a_missing_page_answers_404_in_the_layout_without_internal_messages(
    page: Page, live_server: Any, project: Project, path: str
) -> None:
    log_in(page, live_server, project, "anna", Role.ANNOTATOR)

    response = page.goto(f"{live_server.url}{path}")

    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name="This page doesn't exist")).to_be_visible()
    expect(page.get_by_role("link", name="Your projects").last).to_be_visible()
    body = page.locator("body").inner_text()
    assert "matches the given query" not in body
    assert "AnnotationQueue" not in body


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_a_blank_critique_is_refused_inline_with_debug_on_and_off(
    page: Page, live_server: Any, project: Project, settings: Any, debug: bool
) -> None:
    settings.DEBUG = debug
    AnswerFactory.create(project=project, external_id="a-1")
    log_in(page, live_server, project, "rita", Role.RATER)
    page.goto(f"{live_server.url}/projects/acme/answers/a-1/")
    page.evaluate("window.__samePage = true")

    page.get_by_label("Critique").fill("   ")
    page.get_by_role("button", name="Send critique").click()

    expect(page.locator("#critique-form [role=alert]")).to_be_visible()
    # Still the whole page, not the 400 fragment in its place.
    assert page.evaluate("window.__samePage") is True
    expect(page.get_by_role("link", name="Feedback platform")).to_be_visible()
    expect(bar(page)).to_be_visible()
    expect(page.locator("#answer-body")).to_be_visible()


# --- every main page: phone width and axe --------------------------------------------------------


def _world(project: Project) -> dict[str, Any]:
    """What the main pages show: answers (one with a trace), a queue, a reward model."""
    trace = [
        {"kind": "decomposition", "output": {"subqueries": ["chain oil", "how often"]}},
        {
            "kind": "retrieval",
            "parent": 0,
            "output": {
                "documents": [
                    {
                        "id": "doc-1",
                        "text": "Oil sparingly. " + "averyveryverylongwordwithoutanybreaks" * 3,
                        "url": "https://example.org/" + "long-path-segment/" * 8,
                    }
                ]
            },
        },
        {"kind": "generation", "parent": 1, "output": {"text": "Oil it."}},
    ]
    question = [{"role": "user", "content": "How do I oil a chain?"}]
    services.answers_ingest(
        project=project,
        items=[
            answer_payload("a-1", prompt=question, response="Oil it.", trace=trace),
            answer_payload("a-2", prompt=question, response="Wipe it, then one drop per link."),
        ],
    )
    owner = UserFactory.create(username="setup-owner")
    MembershipFactory.create(user=owner, project=project, role=Role.OWNER)
    queue = queue_create(
        project=project,
        created_by=owner,
        name="Check chains",
        guidelines="Mark what is relevant.",
        overlap=1,
        spec=QueueFilter(),
    )
    model = reward_model_create(
        project=project, name="Love", objective="p_love", config=None, created_by=owner
    )
    return {"queue": queue.pk, "model": model.pk}


# (least role, path) of the main pages; a path is formatted with the ids of `_world`.
MAIN_PAGES: list[tuple[str, str]] = [
    (Role.RATER, "/projects/"),
    (Role.RATER, "/projects/acme/"),
    (Role.RATER, "/projects/acme/answers/a-1/"),
    (Role.RATER, "/projects/acme/compare/"),
    (Role.RATER, "/projects/acme/ask/"),
    (Role.ANNOTATOR, "/projects/acme/answers/a-1/debug/"),
    (Role.ANNOTATOR, "/projects/acme/queues/"),
    (Role.ANNOTATOR, "/projects/acme/queues/{queue}/"),
    (Role.ANNOTATOR, "/projects/acme/models/reviews/"),
    (Role.RESEARCHER, "/projects/acme/dashboard/"),
    (Role.RESEARCHER, "/projects/acme/exports/"),
    (Role.RESEARCHER, "/projects/acme/models/"),
    (Role.RESEARCHER, "/projects/acme/models/{model}/"),
    (Role.RESEARCHER, "/projects/acme/models/feedback/"),
    (Role.OWNER, "/projects/acme/"),
    (Role.OWNER, "/projects/acme/settings/"),
    (Role.OWNER, "/projects/acme/members/"),
    (Role.OWNER, "/projects/acme/api-keys/"),
]

# Pages other parts of the site own that do not pass yet: (role, path) -> why.
KNOWN_WIDTH_FAILURES: dict[tuple[str, str], str] = {}
KNOWN_AXE_FAILURES: dict[tuple[str, str], str] = {}


def _cases(known: dict[tuple[str, str], str]) -> list[Any]:
    cases = []
    for role, path in MAIN_PAGES:
        marks = []
        if (role, path) in known:
            marks.append(pytest.mark.xfail(strict=True, reason=known[(role, path)]))
        cases.append(pytest.param(role, path, marks=marks, id=f"{role}:{path}"))
    return cases


def _open(page: Page, live_server: Any, project: Project, role: str, path: str) -> None:
    ids = _world(project)
    if path.endswith("/dashboard/") and not dashboard_exists():
        pytest.skip("the dashboard page is not served by this build")
    log_in(page, live_server, project, f"member-{role}", role)
    response = page.goto(live_server.url + path.format(**ids))
    assert response is not None
    assert response.status == 200


@pytest.mark.parametrize(("role", "path"), _cases(KNOWN_WIDTH_FAILURES))
def test_no_main_page_scrolls_sideways_on_a_phone(
    page: Page, live_server: Any, project: Project, role: str, path: str
) -> None:
    page.set_viewport_size(PHONE)

    _open(page, live_server, project, role, path)

    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{path} is {width} px wide at {PHONE['width']} px"


@pytest.mark.parametrize(("role", "path"), _cases(KNOWN_AXE_FAILURES))
def test_no_main_page_has_serious_accessibility_violations(
    page: Page, live_server: Any, project: Project, role: str, path: str
) -> None:
    _open(page, live_server, project, role, path)

    results = Axe().run(page)

    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"][:5])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not serious, "\n".join(serious)


@pytest.mark.parametrize(
    "path", ["/projects/acme/", "/projects/acme/members/", "/projects/acme/api-keys/"]
)
def test_the_dark_scheme_keeps_every_text_readable(
    page: Page, live_server: Any, project: Project, path: str
) -> None:
    page.emulate_media(color_scheme="dark")

    _open(page, live_server, project, Role.OWNER, path)

    assert page.evaluate("getComputedStyle(document.body).backgroundColor") != "rgb(255, 255, 255)"
    results = Axe().run(page, options={"runOnly": ["color-contrast"]})
    assert [v["id"] for v in results.response["violations"]] == []


@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/set-password/MQ/expired/"])
def test_the_pages_before_logging_in_fit_a_phone_and_pass_axe(
    page: Page, live_server: Any, db: Any, path: str
) -> None:
    page.set_viewport_size(PHONE)

    page.goto(live_server.url + path)

    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    violations = Axe().run(page).response["violations"]
    assert [v["id"] for v in violations if v["impact"] in ("serious", "critical")] == []
