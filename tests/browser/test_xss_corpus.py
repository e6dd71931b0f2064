"""Stored XSS, page by page: script payloads written straight into every field a page renders
(with the ORM, so no validation hides a rendering hole), then every page of a project opened in
Chromium as its owner, every link whose address comes from data clicked. Nothing may run: no
dialog, no `window.__xss` marker, no injected script, handler, frame or `javascript:` / `data:`
link in the document (and, through the browser conftest, no Content-Security-Policy refusal,
which would mean markup got onto the page and only the policy stopped it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Dialog, Page

from feedback.models import (
    AnnotationQueue,
    Answer,
    ApiKey,
    Critique,
    Export,
    FeedbackEvent,
    FollowUp,
    Intervention,
    PipelineConnector,
    Project,
    QueueAssignment,
    QueueItem,
    Reaction,
    Rerun,
    Stage,
    WebhookDelivery,
    WebhookEndpoint,
)
from rewardmodels.models import (
    C3POBuild,
    C3POItem,
    Generator,
    RewardModel,
    TrainingRun,
    VerbalFeedback,
)
from tests.browser.conftest import log_in
from tests.factories import AnswerFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Each payload, if it ever ran, sets window.__xss or opens a dialog.
PAYLOADS = [
    "<script>window.__xss='script';alert(1)</script>",
    "<img src=x onerror=\"window.__xss='img';alert(1)\">",
    "<svg onload=\"window.__xss='svg';alert(1)\"></svg>",
    "<svg><script>window.__xss='svg-script'</script></svg>",
    "\"><script>window.__xss='attr-break';alert(1)</script>",
    "'><img src=x onerror=alert('single-quote-break')>",
    "'-alert(1)-'",
    '";window.__xss="js-string";//',
    "javascript:window.__xss='js-url';alert(1)",
    " JaVaScRiPt:alert('mixed-case')",
    "java\tscript:alert('tab')",
    "data:text/html,<script>alert('data-url')</script>",
    "vbscript:msgbox(1)",
    "&lt;script&gt;window.__xss='entity'&lt;/script&gt;",
    "&#60;img src=x onerror=alert('numeric-entity')&#62;",
    "{{7*7}} {% debug %} ${7*7} #{7*7}",
    "[x](javascript:alert('markdown-link'))",
    "![x](javascript:alert('markdown-image'))",
    "<a href=\"javascript:window.__xss='raw-link'\">raw link</a>",
    "<iframe src=\"javascript:parent.__xss='iframe'\"></iframe>",
    "<details open ontoggle=\"window.__xss='details'\">x</details>",
    "</textarea><script>window.__xss='textarea'</script>",
    "</title><script>window.__xss='title'</script>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert('mxss')>",
    "<base href=\"javascript:alert('base')//\">",
    "<object data=\"data:text/html,<script>alert('object')</script>\"></object>",
]
ALL = "\n\n".join(PAYLOADS)
# Fields with a short column (a reaction kind is at most 32 characters).
SHORT = [p for p in PAYLOADS if len(p) <= 32]
BAD_URLS = [p for p in PAYLOADS if ":" in p and not p.startswith(("<", "&", "{", "[", "!", "'"))]
TEMPLATE_PROBE = "{{7*7}}"
NOT_FOUND = "%3Cscript%3Ealert(1)%3C/script%3E/"  # a path no answer has: the 404 page

# What the page must not contain, checked in the live document after every navigation.
INSPECT = """() => {
  const found = [];
  const show = (el) => el.outerHTML.slice(0, 120);
  const sameOrigin = (url) => new URL(url, location.href).origin === location.origin;
  if (window.__xss !== undefined) found.push("window.__xss = " + window.__xss);
  for (const a of document.querySelectorAll("a[href], area[href]")) {
    if (["javascript:", "data:", "vbscript:"].includes(a.protocol)) {
      found.push("link to " + a.getAttribute("href"));
    }
  }
  const foreign = ["iframe", "frame", "object", "embed", "svg", "math", "base", "style",
    "meta[http-equiv]", "link:not([rel=stylesheet]):not([rel=icon])"];
  for (const el of document.querySelectorAll(foreign.join(", "))) found.push("element " + show(el));
  for (const s of document.scripts) {
    const own = s.src && sameOrigin(s.src) && new URL(s.src).pathname.startsWith("/static/");
    if (!own || s.textContent.trim()) found.push("script " + show(s));
  }
  for (const img of document.images) if (!sameOrigin(img.src)) found.push("image " + show(img));
  const urlAttribute = /^(href|src|action|formaction|xlink:href|data)$/i;
  const scriptUrl = /^[\\s\\u0000-\\u001f]*(javascript|vbscript|data):/i;
  for (const el of document.querySelectorAll("*")) {
    for (const attr of el.attributes) {
      const where = attr.name + " on <" + el.localName + ">";
      if (/^on/i.test(attr.name)) found.push("handler " + where);
      if (urlAttribute.test(attr.name) && scriptUrl.test(attr.value.replace(/[\\t\\n\\r]/g, ""))) {
        found.push(where + ": " + attr.value.slice(0, 80));
      }
    }
  }
  return found;
}"""


@dataclass
class Corpus:
    rich: Answer
    answers: list[Answer]
    queue: AnnotationQueue
    assignment: QueueAssignment
    paths: list[str] = field(default_factory=list)


def _event(answer: Answer, kind: str, viewer: str) -> FeedbackEvent:
    now = timezone.now()
    return FeedbackEvent.objects.create(
        project=answer.project,
        event_id=f"corpus:{uuid.uuid4()}",
        type=kind,
        answer=answer,
        viewer=viewer,
        source="api",
        occurred_at=now,
        received_at=now,
        data={"payload": ALL},
    )


def _user(name: str) -> User:
    return UserFactory.create(username=name[:150])


def plant_corpus(project: Project, owner: User, live_url: str) -> Corpus:
    """Every rendered field of every page, full of payloads."""
    now = timezone.now()
    # A followable address from data: clicking it must lead somewhere harmless (this server).
    good_url = f"{live_url}/healthz?from=data"
    project.name = PAYLOADS[1]
    project.reaction_set = ["love", *SHORT]
    project.save()

    answers = [
        AnswerFactory.create(
            project=project,
            external_id=f"p{i}{payload}",
            conversation=payload[:255],
            user_ref=payload[:255],
            prompt=[{"role": "user", "content": payload}],
            response=payload,
            model=payload,
            model_version=payload,
            metadata={"payload": payload},
        )
        for i, payload in enumerate(PAYLOADS)
    ]
    prompt = [{"role": p[:200], "content": p} for p in PAYLOADS] + [
        {"role": "user", "content": TEMPLATE_PROBE}
    ]
    markdown = ALL + f"\n\n[a real source]({good_url})\n\n<{good_url}>"
    rich = AnswerFactory.create(
        project=project,
        external_id="rich",
        prompt=prompt,
        response=markdown,
        model=PAYLOADS[0],
        model_version=PAYLOADS[2],
        revision_of=answers[0],
    )
    AnswerFactory.create(project=project, external_id="twin", prompt=prompt, response=ALL)

    documents: list[dict[str, Any]] = [
        {"id": f"d{i}", "title": p, "text": p, "url": p, "score": 0.5}
        for i, p in enumerate(PAYLOADS)
    ]
    documents.append({"id": "d-good", "title": "Good", "text": ALL, "url": good_url})
    documents.append({"id": PAYLOADS[4], "title": PAYLOADS[5], "text": ALL, "url": BAD_URLS[0]})
    stage_contents: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("decomposition", {"question": ALL}, {"subqueries": PAYLOADS}),
        ("retrieval", {"queries": PAYLOADS}, {"documents": documents}),
        ("tool", {"args": ALL}, {"result": ALL}),
        ("generation", {"prompt": ALL}, {"text": ALL}),
    ]
    stages = [
        Stage.objects.create(
            answer=rich, position=i, kind=kind, name=PAYLOADS[3 + i], input=inp, output=out
        )
        for i, (kind, inp, out) in enumerate(stage_contents)
    ]
    decomposition, retrieval, _, generation = stages

    # The owner's own corrections, shown back to them in debug mode.
    corrections: list[tuple[Stage, str, dict[str, Any], dict[str, Any]]] = [
        (decomposition, "subquery_add", {}, {"text": PAYLOADS[7], "position": 0}),
        (decomposition, "subquery_edit", {"index": 1, "text": "x"}, {"text": PAYLOADS[8]}),
        (retrieval, "doc_add", {}, {"title": PAYLOADS[9], "text": ALL, "url": BAD_URLS[1]}),
        (retrieval, "doc_add", {}, {"title": PAYLOADS[10], "text": ALL, "url": good_url}),
        (retrieval, "doc_relevance", {}, {"doc_id": "d0", "relevance": "relevant"}),
        (generation, "answer_edit", {"text": ALL}, {"text": PAYLOADS[11] + ALL}),
        (generation, "claim_flag", {}, {"span": PAYLOADS[12], "reason": PAYLOADS[13]}),
    ]
    for stage, action, before, after in corrections:
        Intervention.objects.create(
            project=project,
            answer=rich,
            stage=stage,
            annotator=owner,
            action=action,
            before=before,
            after=after,
            rationale=ALL,
            event_id=f"corpus:{uuid.uuid4()}",
            created_at=now,
        )
    reruns: list[tuple[Stage, dict[str, Any], dict[str, Any]]] = [
        (decomposition, {"subqueries": PAYLOADS}, {"status": "failed", "message": PAYLOADS[14]}),
        (retrieval, {"documents": documents}, {"status": "succeeded", "revision": answers[2]}),
    ]
    for stage, corrected_output, outcome in reruns:
        Rerun.objects.create(
            project=project,
            answer=rich,
            stage=stage,
            requested_by=owner,
            corrected_output=corrected_output,
            error=ALL if outcome["status"] == "failed" else "",
            progress=1.0,
            **outcome,
        )

    # Feedback on the answers: reactions of every kind, critiques, follow-ups.
    for answer in [rich, *answers[:3]]:
        for kind in project.reaction_set:
            Reaction.objects.create(
                project=project,
                answer=answer,
                viewer=PAYLOADS[0],
                kind=kind,
                source="api",
                event=_event(answer, "reaction", PAYLOADS[0]),
                created_at=now,
            )
    critiques = [
        Critique.objects.create(
            project=project,
            answer=answer,
            viewer=payload[:255],
            source="api",
            event=_event(answer, "critique", "v"),
            text=payload,
            quote=payload,
            category=payload[:64],
            created_at=now,
        )
        for answer, payload in zip(answers, PAYLOADS, strict=True)
    ]
    FollowUp.objects.create(
        project=project,
        answer=rich,
        viewer=PAYLOADS[0],
        outcome="solved",
        text=ALL,
        source="api",
        event=_event(rich, "followup", PAYLOADS[0]),
        created_at=now,
    )

    # An annotation queue, two annotators with payload names who agree (or not) on a document,
    # and an item of the owner's that opens debug mode with the queue's guidelines.
    queue = AnnotationQueue.objects.create(
        project=project, name=PAYLOADS[15], guidelines=ALL, overlap=3, created_by=owner
    )
    item = QueueItem.objects.create(queue=queue, answer=rich)
    for name, relevance in ((PAYLOADS[16], "relevant"), (PAYLOADS[17], "irrelevant")):
        annotator = _user(name)
        MembershipFactory.create(user=annotator, project=project, role="annotator")
        QueueAssignment.objects.create(
            item=item,
            annotator=annotator,
            status="done",
            locked_until=now,
            assigned_at=now,
            finished_at=now,
        )
        Intervention.objects.create(
            project=project,
            answer=rich,
            stage=retrieval,
            annotator=annotator,
            action="doc_relevance",
            after={"doc_id": "d0", "relevance": relevance},
            rationale=ALL,
            event_id=f"corpus:{uuid.uuid4()}",
            created_at=now,
        )
    assignment = QueueAssignment.objects.create(
        item=item, annotator=owner, locked_until=now + timedelta(hours=1), assigned_at=now
    )

    # Operations: a connector, API keys, dataset snapshots.
    PipelineConnector.objects.create(project=project, url=BAD_URLS[0])
    key_maker = _user(PAYLOADS[18])
    for payload in PAYLOADS[:4]:
        ApiKey.objects.create(
            project=project,
            name=payload[:100],
            prefix=payload[:16],
            key_hash=uuid.uuid4().hex,
            scopes=[payload],
            created_by=key_maker,
        )
    for i, payload in enumerate(SHORT[:4]):
        Export.objects.create(
            project=project,
            dataset=payload,
            format="jsonl",
            form=payload[:16],
            filters={"model": payload},
            status="failed" if i % 2 else "succeeded",
            progress=1.0,
            sha256=payload[:64],
            error=ALL,
            requested_by=payload,
        )

    # Webhooks: an endpoint disabled with a reason, its deliveries in every state.
    endpoint = WebhookEndpoint.objects.create(
        project=project,
        url=BAD_URLS[0],
        events=["feedback.created", PAYLOADS[5]],
        description=PAYLOADS[6][:200],
        secret="whsec_corpus",
        created_by=PAYLOADS[7],
        disabled_at=now,
        disabled_reason=ALL[:300],
    )
    for i, status in enumerate(("queued", "succeeded", "failed", "cancelled")):
        WebhookDelivery.objects.create(
            project=project,
            endpoint=endpoint,
            event_type="feedback.created",
            message_id=PAYLOADS[8 + i][:64],
            payload={"data": ALL},
            next_attempt_at=now,
            status=status,
            attempts=i,
            response_status=500,
            message=PAYLOADS[12 + i],
            error=ALL,
        )

    # Reward models: one trained P[Love] version with payload features, a failed run, and a
    # preference model whose run names its sources.
    metrics = {
        "objective": "p_love",
        "roc_auc": 0.7,
        "pr_auc": 0.3,
        "log_loss": 0.5,
        "brier": 0.2,
        "ece": 0.05,
        "base_rate": 0.1,
        "rows_train": 8,
        "rows_test": 2,
        "split_at": PAYLOADS[0],
        "epochs": 1,
        "train_seconds": 0.1,
        "top_features": {
            "positive": [{"feature": p, "weight": 1.0} for p in PAYLOADS],
            "negative": [{"feature": p, "weight": -1.0} for p in PAYLOADS],
        },
        "by_version": [
            {"version": p, "rows": 1, "mean_predicted": 0.5, "observed": 0.5} for p in PAYLOADS
        ],
        "reliability": [{"mean_predicted": 0.5, "observed": 0.4, "count": 3}],
        "histogram": {"edges": [0.0, 0.5, 1.0], "positive": [1, 2], "negative": [3, 1]},
    }
    love = RewardModel.objects.create(
        project=project, name=PAYLOADS[19], objective="p_love", config={"model": ALL}
    )
    trained = TrainingRun.objects.create(
        reward_model=love,
        project=project,
        status="succeeded",
        progress=1.0,
        message=PAYLOADS[20],
        metrics=metrics,
        version=1,
        finished_at=now,
    )
    love.active_run = trained
    love.save()
    failed = TrainingRun.objects.create(
        reward_model=love,
        project=project,
        status="failed",
        progress=0.5,
        message=PAYLOADS[21],
        error=ALL,
        finished_at=now,
    )
    preference = RewardModel.objects.create(
        project=project, name=PAYLOADS[22], objective="preference", config={}
    )
    ranked = TrainingRun.objects.create(
        reward_model=preference,
        project=project,
        status="succeeded",
        progress=1.0,
        version=1,
        finished_at=now,
        metrics={
            "objective": "preference",
            "pairwise_accuracy": 0.6,
            "train_pairwise_accuracy": 0.7,
            "pairs_train": 3,
            "pairs_test": 1,
            "sources": {p: 1 for p in PAYLOADS},
            "top_features": metrics["top_features"],
        },
    )

    # C3PO: verbal feedback (one promoted from a critique), a generator, a finished build with
    # samples, a build waiting for review, a failed build.
    generator = Generator.objects.create(
        project=project, name=PAYLOADS[23], base_url=BAD_URLS[0], model=PAYLOADS[24]
    )
    feedback = VerbalFeedback.objects.create(
        project=project, text=ALL, domain=PAYLOADS[0][:200], effect=PAYLOADS[1], created_by=owner
    )
    VerbalFeedback.objects.create(project=project, text=PAYLOADS[2], critique=critiques[0])
    builds = {
        status: C3POBuild.objects.create(
            project=project,
            feedback=feedback,
            generator=generator if status != "review" else None,
            review=status == "review",
            seed="corpus",
            status=status,
            stage=7 if status == "succeeded" else 5,
            progress=1.0 if status == "succeeded" else 0.5,
            message=PAYLOADS[3],
            error=ALL if status == "failed" else "",
            categories=PAYLOADS,
            finished_at=now,
        )
        for status in ("succeeded", "review", "failed")
    }
    for status, build in builds.items():
        for i, payload in enumerate(PAYLOADS):
            for scope in ("in_scope", "near_scope", "out_of_scope"):
                C3POItem.objects.create(
                    build=build,
                    scope=scope,
                    category=payload[:200],
                    prompt=payload,
                    prompt_hash=f"{i}",
                    baseline=PAYLOADS[-1 - i],
                    revised=payload + " revised",
                    split=("train", "test")[i % 2],
                    review_status="pending" if status == "review" else "approved",
                )

    slug = project.slug
    corpus = Corpus(rich=rich, answers=answers, queue=queue, assignment=assignment)
    corpus.paths = [
        "/projects/",
        f"/projects/{slug}/",
        f"/projects/{slug}/compare/",
        f"/projects/{slug}/compare/?answer=rich",
        f"/projects/{slug}/answers/rich/",
        f"/projects/{slug}/answers/rich/debug/",
        f"/projects/{slug}/answers/rich/debug/?assignment={assignment.pk}",
        f"/projects/{slug}/ask/",
        f"/projects/{slug}/queues/",
        f"/projects/{slug}/queues/{queue.pk}/",
        f"/projects/{slug}/exports/",
        f"/projects/{slug}/settings/",
        f"/projects/{slug}/api-keys/",
        f"/projects/{slug}/webhooks/",
        f"/projects/{slug}/webhooks/{endpoint.pk}/",
        f"/projects/{slug}/models/",
        f"/projects/{slug}/models/{love.pk}/",
        f"/projects/{slug}/models/{preference.pk}/",
        f"/projects/{slug}/models/runs/{trained.pk}/",
        f"/projects/{slug}/models/runs/{failed.pk}/",
        f"/projects/{slug}/models/runs/{ranked.pk}/",
        f"/projects/{slug}/models/feedback/",
        f"/projects/{slug}/models/feedback/{feedback.pk}/",
        *(f"/projects/{slug}/models/builds/{b.pk}/" for b in builds.values()),
        f"/projects/{slug}/models/reviews/",
        f"/projects/{slug}/models/builds/{builds['review'].pk}/review/",
        f"/projects/{slug}/answers/{NOT_FOUND}",
    ]
    return corpus


class Inspector:
    """Opens pages and collects everything that shows a payload escaped its field."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        page.on("dialog", self._dialog)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def check(self) -> None:
        self.page.wait_for_load_state("load")
        self.page.wait_for_timeout(50)  # a payload's timer or handler would have fired by now
        where = self.page.url
        self.problems += [f"{where}: {found}" for found in self.page.evaluate(INSPECT)]
        self.problems += [f"{where}: dialog {message!r}" for message in self.dialogs]
        self.dialogs.clear()

    def open(self, url: str) -> None:
        response = self.page.goto(url)
        expected = 404 if url.endswith(NOT_FOUND) else 200
        if response is None or response.status != expected:
            self.problems.append(f"{url}: {response and response.status}, not {expected}")
        self.check()
        self.click_data_links(url)

    def click_data_links(self, url: str) -> None:
        """Follow each link whose address came from data (rendered with rel=nofollow: an
        answer's markdown link, a document's source), coming back to `url` after each."""
        links = self.page.locator('a[rel~="nofollow"]')
        for i in range(links.count()):
            link = links.nth(i)
            # Debug mode shows one stage at a time: pick the link's stage in the trace first.
            stage = link.locator("xpath=ancestor::li[contains(@class, 'stage')]")
            if not link.is_visible() and stage.count():
                stage_id = stage.get_attribute("id")
                self.page.locator(f'[data-stage-link="{stage_id}"]').click()
            link.click()
            self.check()
            self.page.goto(url)
            self.check()


def test_no_payload_runs_on_any_page(page: Page, live_server: Any, project: Project) -> None:
    owner_name = "\"><svg onload=alert('owner')>"
    log_in(page, live_server, project, owner_name, "owner")
    owner = User.objects.get(username=owner_name)
    corpus = plant_corpus(project, owner, live_server.url)
    inspector = Inspector(page)

    for path in corpus.paths:
        inspector.open(f"{live_server.url}{path}")

    # Every answer, reached by clicking its link on the list (the address holds its
    # external_id), then its debug mode through the page's own link.
    listing = f"{live_server.url}/projects/{project.slug}/"
    opened = 0
    for list_page in (f"{listing}?page=1", f"{listing}?page=2"):
        inspector.open(list_page)
        for i in range(page.locator("#answer-list tbody a").count()):
            page.goto(list_page)
            page.locator("#answer-list tbody a").nth(i).click()
            page.wait_for_url(f"{listing}answers/**")
            inspector.check()
            inspector.click_data_links(page.url)
            page.get_by_role("link", name="Debug mode").click()
            page.wait_for_url("**/debug/")
            inspector.check()
            inspector.click_data_links(page.url)
            opened += 1
    assert opened == len(corpus.answers) + 2

    # Data reached the pages as text: the payloads are shown, the template probe is not
    # evaluated.
    page.goto(listing)
    assert page.get_by_role("heading", name=PAYLOADS[1], exact=True).count() == 1
    page.goto(f"{live_server.url}/projects/{project.slug}/answers/rich/")
    assert page.get_by_text(TEMPLATE_PROBE, exact=True).count() >= 1
    assert page.locator('a[rel~="nofollow"][href$="/healthz?from=data"]').count() >= 1
    assert inspector.problems == [], "\n".join(inspector.problems)
