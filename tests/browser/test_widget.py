"""The embeddable widget in a real browser, on a host page served from another origin (a small
HTTP server on its own port, as another site would be) under the host's own strict
Content-Security-Policy, talking to the platform on the live server."""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, Route, expect
from rest_framework.test import APIClient

from feedback import widget
from feedback.models import FeedbackEvent, Project
from feedback.services import api_key_create
from feedback.services.widget import widget_demo_key_ensure
from tests.conftest import bearer_client
from tests.factories import AnswerFactory, api_key_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ANSWER = "chat-42-turn-3"
ANSWER_TEXT = "Wipe the chain, then put one drop on each link."
USER_REF = "u-93f1"
# A host page that styles everything it can reach, as careless (or hostile) sites do.
HOSTILE_CSS = """
* { color: red !important; font-size: 31px !important; font-family: serif !important;
    line-height: 4 !important; letter-spacing: 3px !important; text-transform: uppercase !important;
    background: yellow !important; padding: 17px !important; margin: 9px !important; }
button { display: inline !important; border: 5px dotted green !important;
         border-radius: 0 !important; }
textarea { height: 2px !important; width: 20px !important; }
feedback-widget, feedback-widget * { display: none !important; opacity: 0 !important; }
div { all: unset !important; }
"""


class HostSite:
    """Another website: serves the pages and files it is given, from its own origin."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[str, bytes]] = {}
        files = self.files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = files.get(self.path.split("?")[0])
                if found is None:
                    self.send_error(404)
                    return
                content_type, body = found
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def page(self, path: str, *, platform: str, body: str, key: str, token: str | None) -> str:
        """A host page: the answers in its own markup, the widget's script tag, a strict
        policy of its own (scripts and connections only from the platform, styles only from
        itself) and the stylesheet at /host.css."""
        token_attribute = f' data-token="{html.escape(token)}"' if token else ""
        policy = (
            f"default-src 'self'; script-src {platform}; connect-src {platform}; "
            "style-src 'self'; img-src 'self'"
        )
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<title>Host app</title><link rel="stylesheet" href="/host.css"></head>
<body><main><h1>Host app</h1>
<button id="host-button" type="button">Host button</button>
{body}
</main>
<script src="{platform}/widget.js" data-key="{html.escape(key)}"{token_attribute} async></script>
</body></html>"""
        self.files[path] = ("text/html; charset=utf-8", page.encode())
        return self.origin + path

    def stylesheet(self, css: str) -> None:
        self.files["/host.css"] = ("text/css", css.encode())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def host() -> Iterator[HostSite]:
    site = HostSite()
    site.stylesheet("body { font-family: sans-serif; }")
    yield site
    site.close()


@pytest.fixture
def answer(project: Project) -> Any:
    return AnswerFactory.create(project=project, external_id=ANSWER, response=ANSWER_TEXT)


@pytest.fixture
def widget_key(project: Project, host: HostSite) -> str:
    _, raw = api_key_create(project=project, name="host", scopes=["widget"], origins=[host.origin])
    return raw


@pytest.fixture
def token(project: Project) -> str:
    """What the host app's backend asked for, for its signed-in user."""
    client = bearer_client(api_key_for(project, "feedback"))
    response = client.post("/api/v1/viewer-tokens", {"user_ref": USER_REF}, format="json")
    assert response.status_code == 201
    return str(response.json()["token"])


ANSWER_MARKUP = f'<div id="answer" data-feedback-answer="{ANSWER}"><p>{ANSWER_TEXT}</p></div>'


def feed(project: Project) -> list[dict[str, Any]]:
    """What the project's API says it recorded, read as a researcher's script would."""
    client: APIClient = bearer_client(api_key_for(project, "export"))
    response = client.get("/api/v1/feedback", {"answer": ANSWER})
    assert response.status_code == 200
    return list(response.json()["results"])


def events_response(page: Page, event_type: str) -> Any:
    """Waits for the answer to the widget's request carrying an event of `event_type`."""
    return page.expect_response(
        lambda r: (
            "/api/v1/widget/events" in r.url
            and r.request.method == "POST"
            and f'"type":"{event_type}"' in (r.request.post_data or "")
        )
    )


def test_reactions_critique_followup_and_exposure_land_for_the_tokens_user_ref(
    page: Page,
    live_server: Any,
    host: HostSite,
    project: Project,
    answer: Any,
    widget_key: str,
    token: str,
) -> None:
    project.followup_delay = timedelta(0)
    project.save()
    url = host.page(
        "/chat", platform=live_server.url, body=ANSWER_MARKUP, key=widget_key, token=token
    )
    page.goto(url)

    love = page.get_by_role("button", name="Love", exact=True)
    expect(love).to_have_attribute("aria-pressed", "false")
    accessibility = Axe().run(page)
    assert accessibility.violations_count == 0, accessibility.generate_report()
    # Half visible for a second: the exposure is recorded, after which the follow-up (no delay
    # in this project) is asked.
    expect(page.get_by_text("Did this solve your problem?")).to_be_visible()
    with events_response(page, "reaction"):
        love.click()
    expect(love).to_have_attribute("aria-pressed", "true")
    with events_response(page, "reaction"):
        page.get_by_role("button", name="Like", exact=True).click()
    with events_response(page, "unreaction"):
        page.get_by_role("button", name="Like", exact=True).click()  # toggles it off again
    expect(page.get_by_role("button", name="Like", exact=True)).to_have_attribute(
        "aria-pressed", "false"
    )

    page.locator("#answer > p").select_text()
    expect(page.get_by_label("Quote")).to_have_value(ANSWER_TEXT)
    page.get_by_label("Critique").fill("Which oil, though?")
    page.get_by_role("button", name="Send critique").click()
    expect(page.get_by_text("Thank you: your critique was sent.")).to_be_visible()

    page.get_by_role("button", name="Solved", exact=True).click()
    expect(page.get_by_text("Thank you for telling us.")).to_be_visible()

    events = feed(project)
    assert [e["type"] for e in events] == [
        "exposure",
        "reaction",
        "reaction",
        "unreaction",
        "critique",
        "followup",
    ]
    assert {e["user_ref"] for e in events} == {USER_REF}
    assert {e["source"] for e in events} == {"browser"}
    assert events[0]["surface"] == "widget"
    assert (events[4]["text"], events[4]["quote"]) == ("Which oil, though?", ANSWER_TEXT)
    assert events[5]["outcome"] == "solved"

    # Seen again within the exposure window: no second exposure; the reaction state is kept.
    page.reload()
    expect(page.get_by_role("button", name="Love", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    page.wait_for_timeout(1500)  # longer than the second an exposure needs
    assert [e["type"] for e in feed(project)].count("exposure") == 1


def _fetch_events(page: Page, platform: str, key: str, viewer: str) -> Any:
    """An event sent by a script of the host page straight to the platform; the status, or
    "blocked" when the browser refuses to hand the answer to the page."""
    return page.evaluate(
        """async ([url, viewer]) => {
          try {
            const response = await fetch(url, {method: "POST", mode: "cors",
              headers: {"Content-Type": "application/json", "X-Feedback-Viewer": viewer},
              body: JSON.stringify({events: [{event_id: "forged-0001", type: "reaction",
                answer: "chat-42-turn-3", reaction: "love"}]})});
            return response.status;
          } catch (error) { return "blocked"; }
        }""",
        [f"{platform}/api/v1/widget/events?key={key}", viewer],
    )


@pytest.mark.parametrize("case", ["disallowed origin", "tampered token", "expired token"])
def test_refused_viewers_and_origins_write_nothing(
    page: Page,
    live_server: Any,
    host: HostSite,
    project: Project,
    answer: Any,
    token: str,
    case: str,
) -> None:
    allowed = ["https://app.example.com"] if case == "disallowed origin" else [host.origin]
    _, key = api_key_create(project=project, name="host", scopes=["widget"], origins=allowed)
    viewer = {
        "disallowed origin": token,
        "tampered token": token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"),
        "expired token": widget.viewer_token_sign(
            project_id=project.pk,
            user_ref=USER_REF,
            expires_at=timezone.now() - timedelta(seconds=1),
        ),
    }[case]
    url = host.page("/chat", platform=live_server.url, body=ANSWER_MARKUP, key=key, token=viewer)
    if case == "disallowed origin":  # the browser refuses the platform's answer to the page
        with page.expect_event("requestfailed", lambda r: "/api/v1/widget/config" in r.url):
            page.goto(url)
    else:  # the platform refuses the viewer; the widget says so to the developer, not the user
        with page.expect_console_message(lambda m: "Feedback widget:" in m.text):
            page.goto(url)

    expect(page.locator("#host-button")).to_be_visible()  # the host page itself is fine
    assert page.get_by_role("button", name="Love", exact=True).count() == 0
    status = _fetch_events(page, live_server.url, key, viewer)
    assert status == ("blocked" if case == "disallowed origin" else 401)
    assert not FeedbackEvent.objects.exists()
    assert feed(project) == []


STYLES = """(host) => {
  const shadow = document.querySelector("feedback-widget").shadowRoot;
  const read = (node) => {
    const s = getComputedStyle(node);
    return ["display", "color", "font-size", "font-family", "line-height", "letter-spacing",
            "text-transform", "background-color", "padding-top", "margin-top", "border-top-style",
            "height", "opacity"].map((p) => p + "=" + s.getPropertyValue(p));
  };
  return {
    host: read(document.querySelector("feedback-widget")).filter((p) => !p.startsWith("height")),
    box: read(shadow.querySelector(".fbw")).filter((p) => !p.startsWith("height")),
    button: read(shadow.querySelector("button")),
    textarea: read(shadow.querySelector("textarea")),
  };
}"""


def test_the_host_pages_css_does_not_change_the_widget(
    page: Page,
    live_server: Any,
    host: HostSite,
    project: Project,
    answer: Any,
    widget_key: str,
    token: str,
) -> None:
    markup = f'<section data-feedback-answer="{ANSWER}"><p>{ANSWER_TEXT}</p></section>'
    url = host.page("/plain", platform=live_server.url, body=markup, key=widget_key, token=token)
    page.goto(url)
    expect(page.get_by_role("button", name="Love", exact=True)).to_be_visible()
    plain = page.evaluate(STYLES)
    host_button_before = page.evaluate(
        "getComputedStyle(document.querySelector('#host-button')).cssText || "
        "Array.from(getComputedStyle(document.querySelector('#host-button'))).map("
        "(p) => p + ':' + getComputedStyle(document.querySelector('#host-button'))"
        ".getPropertyValue(p)).join(';')"
    )

    host.stylesheet(HOSTILE_CSS)
    page.goto(url)
    expect(page.get_by_role("button", name="Love", exact=True)).to_be_visible()
    hostile = page.evaluate(STYLES)
    assert (
        page.evaluate("getComputedStyle(document.querySelector('#host-button')).color")
        == "rgb(255, 0, 0)"
    )  # the hostile sheet did apply to the host's own page
    assert hostile == plain

    # And the widget's styles stay out of the host page.
    host.stylesheet("body { font-family: sans-serif; }")
    page.goto(url.replace("/plain", "/plain?again"))
    expect(page.get_by_role("button", name="Love", exact=True)).to_be_visible()
    host_button_after = page.evaluate(
        "getComputedStyle(document.querySelector('#host-button')).cssText || "
        "Array.from(getComputedStyle(document.querySelector('#host-button'))).map("
        "(p) => p + ':' + getComputedStyle(document.querySelector('#host-button'))"
        ".getPropertyValue(p)).join(';')"
    )
    assert host_button_after == host_button_before


def test_double_clicks_and_retries_record_once(
    page: Page,
    live_server: Any,
    host: HostSite,
    project: Project,
    answer: Any,
    widget_key: str,
    token: str,
) -> None:
    project.exposure_window = timedelta(minutes=30)
    project.save()
    url = host.page(
        "/chat", platform=live_server.url, body=ANSWER_MARKUP, key=widget_key, token=token
    )
    page.goto(url)
    love = page.get_by_role("button", name="Love", exact=True)
    expect(love).to_be_visible()

    with events_response(page, "reaction"):
        love.dblclick()
    expect(love).to_have_attribute("aria-pressed", "true")

    # The network loses the answer to the first critique request after the platform recorded
    # it: the widget sends it again, with the same event_id.
    lost: list[str] = []

    def lose_first_answer(route: Route) -> None:
        if route.request.method != "POST" or lost:
            route.continue_()
            return
        route.fetch()  # the platform records the critique...
        lost.append(route.request.post_data or "")
        route.abort("connectionreset")  # ...and the page never hears back

    page.route("**/api/v1/widget/events*", lose_first_answer)
    page.get_by_label("Critique").fill("Too vague.")
    page.get_by_role("button", name="Send critique").dblclick()
    expect(page.get_by_text("Thank you: your critique was sent.")).to_be_visible()

    assert len(lost) == 1
    types = [e["type"] for e in feed(project) if e["type"] != "exposure"]
    assert types == ["reaction", "critique"]


def test_anonymous_viewers_and_the_api_for_single_page_apps(
    page: Page, live_server: Any, host: HostSite, project: Project, answer: Any, widget_key: str
) -> None:
    project.allow_anonymous_viewers = True
    project.save()
    # No data-feedback-answer yet: the app mounts the widget itself once it shows the answer.
    markup = f'<div id="answer"><p>{ANSWER_TEXT}</p></div>'
    url = host.page("/spa", platform=live_server.url, body=markup, key=widget_key, token=None)
    page.goto(url)
    page.wait_for_function("window.FeedbackWidget !== undefined")
    page.evaluate(
        f"FeedbackWidget.mount(document.querySelector('#answer'), {{answer: '{ANSWER}'}})"
    )
    with events_response(page, "reaction"):
        page.get_by_role("button", name="Wow", exact=True).click()

    viewer = page.evaluate("localStorage.getItem('feedback-widget:viewer')")
    events = feed(project)
    assert events[-1]["user_ref"] == f"anon:{viewer}"
    assert len(viewer) == 32

    page.evaluate("FeedbackWidget.unmountAll()")
    assert page.locator("feedback-widget").count() == 0
    page.reload()  # the same browser is the same anonymous viewer
    page.wait_for_function("window.FeedbackWidget !== undefined")
    page.evaluate(
        f"FeedbackWidget.mount(document.querySelector('#answer'), {{answer: '{ANSWER}'}})"
    )
    expect(page.get_by_role("button", name="Wow", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )


def test_the_demo_page_records_for_the_signed_in_person(
    rater_page: Page, live_server: Any, project: Project, answer: Any
) -> None:
    widget_demo_key_ensure(project=project, origins=[live_server.url])
    rater_page.goto(f"{live_server.url}/widget/demo/acme/")
    love = rater_page.get_by_role("button", name="Love", exact=True)
    with events_response(rater_page, "reaction"):
        love.click()
    expect(love).to_have_attribute("aria-pressed", "true")
    rater = User.objects.get(username="rita")
    assert [(e["type"], e["user_ref"]) for e in feed(project) if e["type"] == "reaction"] == [
        ("reaction", f"user:{rater.pk}")
    ]
