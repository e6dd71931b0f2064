"""The end users' pages: the project's answer list, an answer, its reaction bar, critiques,
follow-ups, comparisons."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from feedback.models import (
    Comparison,
    Critique,
    Exposure,
    FeedbackEvent,
    FollowUp,
    Project,
    Reaction,
)
from tests.factories import AnswerFactory, MembershipFactory, StageFactory, UserFactory, login

HTMX = {"HX-Request": "true"}


@pytest.fixture
def rater(client: Client, project: Project) -> Any:
    user = UserFactory.create()
    MembershipFactory.create(user=user, project=project, role="rater")
    client.force_login(user)
    return user


@pytest.fixture
def answer(project: Project) -> Any:
    return AnswerFactory.create(
        project=project,
        external_id="a-1",
        response="Oil **one drop** per link. [Guide](https://example.org)",
    )


def page(client: Client, path: str = "/projects/acme/answers/a-1/") -> str:
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def test_answer_page_shows_conversation_markdown_and_reaction_bar(
    client: Client, rater: Any, answer: Any
) -> None:
    content = page(client)

    assert "How do I oil a chain?" in content
    assert "<strong>one drop</strong>" in content
    assert 'rel="noopener noreferrer nofollow"' in content
    for label in ("Love", "Like", "Dislike", "Laugh", "Wow", "Sad", "Angry"):
        assert f'aria-label="{label}" aria-pressed="false"' in content
    assert '<label for="critique-text">Critique</label>' in content
    assert "Send critique" in content


def test_viewing_records_one_exposure_per_window(client: Client, rater: Any, answer: Any) -> None:
    page(client)
    page(client)

    exposure = Exposure.objects.get()
    assert exposure.viewer == f"user:{rater.pk}"
    assert (exposure.surface, exposure.source) == ("answer", "browser")


def test_list_records_exposures_for_rendered_answers_only(
    client: Client, rater: Any, project: Project
) -> None:
    for i in range(30):
        AnswerFactory.create(project=project, external_id=f"a-{i}")

    page(client, "/projects/acme/")

    assert Exposure.objects.filter(surface="list").count() == 25


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def unsafe_markup(html: str) -> list[str]:
    """What in real (parsed) markup could run script: escaped text doesn't count."""
    parser = _Elements()
    parser.feed(html)
    problems = []
    for tag, attrs in parser.found:
        if tag in ("script", "iframe", "object", "embed", "style", "img"):
            problems.append(tag)
        problems += [name for name in attrs if name.startswith("on") or name == "style"]
        problems += [
            f"{name}={value}"
            for name, value in attrs.items()
            if value and value.strip().lower().startswith(("javascript:", "data:", "vbscript:"))
        ]
    return problems


@pytest.mark.parametrize(
    "payload",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        '<a href="javascript:alert(1)">x</a>',
        "![x](https://example.org/x.png)",
        '<iframe src="https://evil.example"></iframe>',
        '<div style="background:url(javascript:alert(1))">x</div>',
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    ],
)
def test_answer_markdown_is_sanitised(
    client: Client, rater: Any, project: Project, payload: str
) -> None:
    AnswerFactory.create(project=project, external_id="evil", response=f"Hello {payload}")

    content = page(client, "/projects/acme/answers/evil/")

    body = content.split('id="answer-body"')[1].split("</article>")[0]
    assert "Hello" in body
    assert unsafe_markup(body) == []


def test_images_render_when_the_project_allows_them(
    client: Client, rater: Any, project: Project
) -> None:
    project.allow_images = True
    project.save()
    AnswerFactory.create(
        project=project, external_id="pic", response="![chain](https://example.org/c.png)"
    )

    assert '<img src="https://example.org/c.png" alt="chain">' in page(
        client, "/projects/acme/answers/pic/"
    )


def test_reaction_click_toggles_and_swaps_only_the_bar(
    client: Client, rater: Any, answer: Any
) -> None:
    on = client.post(
        "/projects/acme/answers/a-1/-/react/", {"reaction": "love", "event_id": "x1"}, headers=HTMX
    )
    off = client.post(
        "/projects/acme/answers/a-1/-/react/", {"reaction": "love", "event_id": "x2"}, headers=HTMX
    )

    on_html = on.content.decode()
    assert on_html.lstrip().startswith('<form id="reaction-bar"')
    assert 'aria-label="Love" aria-pressed="true"' in on_html
    assert 'data-reaction-count="love">1<' in on_html
    assert 'aria-label="Love" aria-pressed="false"' in off.content.decode()
    reaction = Reaction.objects.get()
    assert reaction.removed_at is not None
    assert reaction.source == "browser"


def test_double_submit_of_one_click_toggles_once(client: Client, rater: Any, answer: Any) -> None:
    client.post(
        "/projects/acme/answers/a-1/-/react/",
        {"reaction": "love", "event_id": "same"},
        headers=HTMX,
    )
    client.post(
        "/projects/acme/answers/a-1/-/react/",
        {"reaction": "love", "event_id": "same"},
        headers=HTMX,
    )

    assert Reaction.objects.filter(removed_at__isnull=True).count() == 1


def test_reaction_without_javascript_redirects_back(
    client: Client, rater: Any, answer: Any
) -> None:
    response = client.post("/projects/acme/answers/a-1/-/react/", {"reaction": "like"})

    assert response.status_code == 302
    assert response["Location"] == "/projects/acme/answers/a-1/"
    assert 'aria-label="Like" aria-pressed="true"' in page(client)


def test_unknown_reaction_is_an_inline_400(client: Client, rater: Any, answer: Any) -> None:
    response = client.post(
        "/projects/acme/answers/a-1/-/react/", {"reaction": "party"}, headers=HTMX
    )

    assert response.status_code == 400
    assert "Unknown reaction." in response.content.decode()
    assert not Reaction.objects.exists()


def test_rate_limited_click_is_429_with_retry_after(
    client: Client, rater: Any, project: Project, answer: Any
) -> None:
    project.feedback_rate_per_minute = 1
    project.save()
    client.post("/projects/acme/answers/a-1/-/react/", {"reaction": "love"}, headers=HTMX)

    response = client.post(
        "/projects/acme/answers/a-1/-/react/", {"reaction": "like"}, headers=HTMX
    )

    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    assert "Too much feedback" in response.content.decode()


def test_stale_page_posting_after_the_answer_was_deleted_is_404(
    client: Client, rater: Any, answer: Any
) -> None:
    answer.delete()

    response = client.post("/projects/acme/answers/a-1/-/critique/", {"text": "late"}, headers=HTMX)
    without_js = client.post("/projects/acme/answers/a-1/-/react/", {"reaction": "love"})

    assert response.status_code == 404
    assert response.content.decode().lstrip().startswith('<div id="critique-form"')
    assert "This answer no longer exists" in response.content.decode()
    assert without_js.status_code == 404
    assert not Critique.objects.exists()


def test_another_projects_answer_pages_are_404(
    client: Client, rater: Any, other_project: Project
) -> None:
    AnswerFactory.create(project=other_project, external_id="secret")

    assert client.get("/projects/rival/answers/secret/").status_code == 404
    assert client.get("/projects/acme/answers/secret/").status_code == 404
    assert (
        client.post("/projects/rival/answers/secret/-/react/", {"reaction": "love"}).status_code
        == 404
    )
    assert not FeedbackEvent.objects.exists()


def test_critique_is_recorded_with_quote_and_category(
    client: Client, rater: Any, answer: Any
) -> None:
    response = client.post(
        "/projects/acme/answers/a-1/-/critique/",
        {"text": "Which oil?", "quote": "one drop", "category": "incomplete", "event_id": "c1"},
        headers=HTMX,
    )

    assert response.status_code == 200
    assert "Thanks: your critique was sent." in response.content.decode()
    critique = Critique.objects.get()
    assert (critique.text, critique.quote, critique.category) == (
        "Which oil?",
        "one drop",
        "incomplete",
    )


@pytest.mark.parametrize(
    ("text", "message"), [("   ", "Must not be blank."), ("x" * 5001, "at most 5000")]
)
def test_bad_critique_is_an_inline_400_keeping_the_text(
    client: Client, rater: Any, answer: Any, text: str, message: str
) -> None:
    response = client.post(
        "/projects/acme/answers/a-1/-/critique/", {"text": text, "quote": "keep me"}, headers=HTMX
    )

    content = response.content.decode()
    assert response.status_code == 400
    assert message in content
    assert 'value="keep me"' in content
    assert not Critique.objects.exists()


def test_followup_is_asked_after_the_projects_delay(
    client: Client, rater: Any, project: Project, answer: Any
) -> None:
    page(client)
    assert "Did this solve your problem?" not in page(client)
    Exposure.objects.update(shown_at=timezone.now() - timedelta(days=2))

    asked = page(client)
    response = client.post(
        "/projects/acme/answers/a-1/-/followup/",
        {"outcome": "solved", "text": "Quiet now."},
        headers=HTMX,
    )

    assert "Did this solve your problem?" in asked
    assert response.status_code == 200
    assert FollowUp.objects.get().outcome == "solved"
    assert "Did this solve your problem?" not in page(client)


def test_followup_before_it_is_due_is_refused(client: Client, rater: Any, answer: Any) -> None:
    response = client.post(
        "/projects/acme/answers/a-1/-/followup/", {"outcome": "solved"}, headers=HTMX
    )

    assert response.status_code == 400
    assert not FollowUp.objects.exists()


def test_comparison_hides_models_and_records_the_choice(
    client: Client, rater: Any, project: Project, answer: Any
) -> None:
    AnswerFactory.create(
        project=project, external_id="a-2", model="secret-model-b", prompt=answer.prompt
    )

    content = page(client, "/projects/acme/compare/")
    shown_a = content.split('name="answer_a" value="')[1].split('"')[0]
    shown_b = content.split('name="answer_b" value="')[1].split('"')[0]
    response = client.post(
        "/projects/acme/compare/submit/",
        {"answer_a": shown_a, "answer_b": shown_b, "winner": "b", "event_id": "cmp1"},
        headers=HTMX,
    )

    assert {shown_a, shown_b} == {"a-1", "a-2"}
    assert "secret-model-b" not in content
    assert "demo-small" not in content
    assert 'aria-keyshortcuts="1"' in content
    assert response.status_code == 200
    comparison = Comparison.objects.get()
    assert (comparison.answer_a.external_id, comparison.winner) == (shown_a, "b")


def test_comparison_of_different_prompts_is_refused(
    client: Client, rater: Any, project: Project, answer: Any
) -> None:
    AnswerFactory.create(
        project=project, external_id="other", prompt=[{"role": "user", "content": "Else?"}]
    )

    response = client.post(
        "/projects/acme/compare/submit/",
        {"answer_a": "a-1", "answer_b": "other", "winner": "a"},
        headers=HTMX,
    )

    assert response.status_code == 400
    assert "same prompt" in response.content.decode()
    assert not Comparison.objects.exists()


@pytest.mark.parametrize("items", [10, 100])
def test_answer_page_query_count_does_not_grow(
    client: Client,
    rater: Any,
    project: Project,
    answer: Any,
    items: int,
    django_assert_num_queries: Any,
) -> None:
    for i in range(items):
        StageFactory.create(answer=answer, position=i)
        Reaction.objects.create(
            project=project,
            answer=answer,
            viewer=f"v{i}",
            kind="love",
            source="api",
            event=FeedbackEvent.objects.create(
                project=project,
                event_id=f"e{i}",
                type="reaction",
                answer=answer,
                viewer=f"v{i}",
                source="api",
                occurred_at=timezone.now(),
                received_at=timezone.now(),
            ),
            created_at=timezone.now(),
        )
    page(client)  # the first view records the exposure

    # session, user, membership, answer, follow-up due, reaction counts, mine, comparison
    # candidate, its re-runs, the viewer's critiques and follow-ups, known exposure event (a
    # reload in the window writes nothing)
    with django_assert_num_queries(12):
        page(client)


def test_project_page_lists_answers_newest_first(client: Client, project: Project) -> None:
    login(client, project, "rater")
    AnswerFactory.create(project=project, external_id="older")
    AnswerFactory.create(project=project, external_id="newer")

    content = client.get("/projects/acme/").content.decode()

    assert content.index("newer") < content.index("older")


def test_htmx_pagination_returns_only_the_list(client: Client, project: Project) -> None:
    login(client, project, "rater")
    for i in range(30):
        AnswerFactory.create(project=project, external_id=f"a-{i}")

    response = client.get("/projects/acme/?page=2", HTTP_HX_REQUEST="true")

    content = response.content.decode()
    assert content.lstrip().startswith('<section id="answer-list"')
    assert "<html" not in content
    assert "Page 2 of 2" in content


@pytest.mark.parametrize("rows", [10, 100])
def test_project_page_query_count_does_not_grow_with_rows(
    client: Client, project: Project, rows: int, django_assert_num_queries: Any
) -> None:
    login(client, project, "rater")
    AnswerFactory.create_batch(rows, project=project)

    # session, user, membership, pager count, the page, the page's re-runs; exposures: known
    # events, answers and the project's webhook endpoints (one round trip), events, exposures
    # (no savepoint: they join the request's transaction or make their own); reaction counts;
    # the model and version filters' options
    with django_assert_num_queries(12):
        response = client.get("/projects/acme/")

    assert response.status_code == 200
