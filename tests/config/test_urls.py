"""Who may do what, on every URL the site serves: the access matrix.

Every route of the URLconf (pages, API, admin) is requested by every kind of caller: nobody
signed in, each member role of the project `acme`, the owner of another project (`rival`),
and on the API also a key of `acme` with each single scope, a revoked key, and a key of
`rival`. What each cell must answer comes from one table, `ROUTES`, which says per route what
to send and the least role (pages) or the scopes (API) it needs. A route the URLconf serves
without an entry fails, and so does an entry for a route that no longer exists.

The rules the table encodes:
- a page answers a visitor who is not signed in with a redirect to the login page, a member
  whose role is too small with 403, and anyone outside the project with 404: another
  project's objects are never confirmed to exist;
- the API answers missing or revoked credentials with 401, a key without the scope or a
  member without the role with 403, and anything outside the caller's project with 404; a
  key acts for its own project, whatever `?project=` says;
- `acme`'s owner (or key) naming `rival`'s objects in `acme`'s URLs gets 404;
- no response to a caller contains data of a project they are not in: each project's data
  carries a marker string, looked for in every response body; where the table says a route
  shows data, an allowed caller's response must contain their project's marker (so the
  search has something to find).

Unsafe requests carry a harmless or invalid body: they show who gets past the access check
without doing much. Every request runs in a savepoint that is rolled back, with a cache of
its own, so no cell sees what another did.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import numpy as np
import orjson
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpResponseBase
from django.shortcuts import resolve_url
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.resolvers import RoutePattern
from django.utils import timezone

from feedback import services
from feedback.core.jobs import JobStatus
from feedback.datasets import DATASETS
from feedback.models import (
    Answer,
    Critique,
    Membership,
    Project,
    Role,
    Scope,
    SimulatedFeedback,
    WebhookDelivery,
)
from feedback.services.annotation import (
    QueueFilter,
    answer_ask,
    interventions_save,
    queue_create,
    queue_item_next_for,
    rerun_request,
)
from feedback.services.datasets import export_build, export_request
from feedback.services.webhooks import webhook_endpoint_create, webhook_events_emit
from rewardmodels.models import (
    BuildStatus,
    C3POBuild,
    C3POItem,
    Generator,
    Judge,
    JudgeRun,
    PromptScope,
    ReviewStatus,
    ShadowRun,
    TrainingRun,
)
from rewardmodels.services import reward_model_create, training_run_start
from rewardmodels.services.c3po import build_start, verbal_feedback_create
from rewardmodels.training import evaluate_p_love
from tests.factories import MembershipFactory, ProjectFactory, UserFactory, answer_payload

# --- who asks -----------------------------------------------------------------------------------

ANONYMOUS = "anonymous"
MEMBERS = {
    "rater": Role.RATER,
    "annotator": Role.ANNOTATOR,
    "researcher": Role.RESEARCHER,
    "owner": Role.OWNER,
}
# Roles nest: each one may do everything the roles below it may.
RANK = {Role.RATER: 1, Role.ANNOTATOR: 2, Role.RESEARCHER: 3, Role.OWNER: 4}
# On the API, a signed-in member needs this role for what a key's scope allows.
SCOPE_ROLE = {
    Scope.INGEST: Role.RESEARCHER,
    Scope.FEEDBACK: Role.RATER,
    Scope.EXPORT: Role.RESEARCHER,
    Scope.TRAIN: Role.RESEARCHER,
    Scope.WIDGET: Role.RATER,
}


def includes(role: Role, required: Role) -> bool:
    return RANK[role] >= RANK[required]


OTHER_OWNER = "other_owner"  # owner of `rival`, nothing in `acme`
PEOPLE = (ANONYMOUS, *MEMBERS, OTHER_OWNER)
KEYS = {f"key:{scope}": scope for scope in Scope}  # keys of `acme` with one scope each
REVOKED_KEY = "revoked_key"  # a key of `acme` with every scope, revoked
OTHER_KEY = "other_key"  # a key of `rival` with every scope
KEY_HOLDERS = (*KEYS, REVOKED_KEY, OTHER_KEY)
# `acme`'s owner, and a key of `acme` with every scope, naming `rival`'s objects in URLs.
OWNER_WITH_RIVAL_IDS = "owner+rival_ids"
KEY_WITH_RIVAL_IDS = "key+rival_ids"

# --- what comes back ----------------------------------------------------------------------------

LOGIN = "login"  # a redirect to the site's login page
ADMIN_LOGIN = "admin-login"  # a redirect to the admin's login page
REDIRECT = "redirect"  # any other redirect (back to a page, after a form)


def outcome_of(response: HttpResponseBase) -> str:
    if response.status_code in (301, 302, 303, 307, 308):
        path = urlsplit(response["Location"]).path
        if path == resolve_url(settings.LOGIN_URL):
            return LOGIN
        if path == reverse("admin:login"):
            return ADMIN_LOGIN
        return REDIRECT
    return str(response.status_code)


# --- the world: two projects with one of everything ---------------------------------------------


@dataclass
class Objects:
    """One project's objects, by the ids its URLs take."""

    marker: str  # in the project's name and data; must never reach an outsider
    answer: str  # external_id of an ingested answer with a trace (it contains a slash)
    critique_id: int
    queue_id: int
    export_id: int  # a snapshot that succeeded (its file exists)
    key_id: int
    model_id: int
    run_id: int  # a run that succeeded, with metrics to plot
    rerun_id: int
    feedback_id: int  # verbal feedback
    build_id: int  # a C3PO build that succeeded
    item_id: int  # an in-scope row of that build, waiting for review
    generator_id: int
    webhook_id: int  # a webhook endpoint, with one delivery that succeeded
    delivery_id: int
    member_id: int  # a membership that is not the owner's own
    shadow_run_id: int  # a shadow run that succeeded
    judge_id: int
    judge_run_id: int  # a judge run that succeeded
    proposal_id: int  # its pending proposal for the answer's retrieval stage


@dataclass
class World:
    acme: Objects
    rival: Objects
    sessions: dict[str, str]  # principal → session cookie
    keys: dict[str, str]  # principal → raw API key
    visible: dict[str, set[str]]  # principal → markers of the projects they are in

    def objects_for(self, principal: str) -> Objects:
        return self.rival if principal in (OWNER_WITH_RIVAL_IDS, KEY_WITH_RIVAL_IDS) else self.acme

    def other_than(self, objects: Objects) -> Objects:
        return self.rival if objects is self.acme else self.acme


def _populate(project: Project, users: Mapping[str, User], *, prefix: str) -> Objects:
    """One of every object a URL can name, made through the services as users make them, and
    feedback enough that every dataset has a row with the project's marker in it. States only a
    worker reaches (a finished run, a finished build) are set on the row."""
    marker = project.name.split()[-1]
    owner = users["owner"]
    annotator = users.get("annotator", owner)
    question = [{"role": "user", "content": f"How do I oil a chain? {marker}"}]
    external_id = f"conv/{prefix}-1"
    trace = [
        {"kind": "decomposition", "output": {"subqueries": [f"chain oil {marker}", "how often"]}},
        {
            "kind": "retrieval",
            "parent": 0,
            "output": {"documents": [{"id": f"doc-{marker}", "text": f"Oil sparingly. {marker}"}]},
        },
        {"kind": "generation", "parent": 1, "output": {"text": f"Oil it. {marker}"}},
    ]
    answers = [
        answer_payload(external_id, prompt=question, response=f"Oil it. {marker}", trace=trace),
        answer_payload(f"{prefix}-2", prompt=question, response=f"Wipe it. {marker}"),
    ]
    results = services.answers_ingest(project=project, items=answers)
    assert all(r.status == "created" for r in results), results
    shown = timezone.now() - timedelta(days=3)
    seen = {"answer": external_id, "user_ref": "u-1"}
    events = [
        {**seen, "event_id": f"{prefix}-seen", "type": "exposure", "at": shown.isoformat()},
        {
            **seen,
            "event_id": f"{prefix}-love",
            "type": "reaction",
            "reaction": "love",
            "at": (shown + timedelta(minutes=1)).isoformat(),
        },
        {
            **seen,
            "event_id": f"{prefix}-critique",
            "type": "critique",
            "text": f"Which oil? {marker}",
        },
        {
            **seen,
            "event_id": f"{prefix}-compare",
            "type": "comparison",
            "other_answer": f"{prefix}-2",
            "winner": "a",
        },
    ]
    recorded = services.feedback_record(project=project, items=events, source="api")
    assert all(r.status == "created" for r in recorded), recorded
    critique = Critique.objects.get(project=project)
    ingested = Answer.objects.get(project=project, external_id=external_id)
    corrections = [
        {
            "stage": 1,
            "action": "doc_relevance",
            "after": {"doc_id": f"doc-{marker}", "relevance": "relevant"},
        },
        {"stage": 2, "action": "answer_edit", "after": {"text": f"Wipe, then oil. {marker}"}},
    ]
    interventions_save(answer=ingested, annotator=annotator, changes=corrections)

    # An answer of the demo pipeline can be re-run from a corrected stage.
    demo = answer_ask(project=project, question="How do I oil a chain?", user_ref="u-2")
    edit = {"stage": 0, "action": "subquery_edit", "index": 0, "after": {"text": "chain oil"}}
    interventions_save(answer=demo, annotator=annotator, changes=[edit])
    rerun = rerun_request(answer=demo, stage=demo.stages.get(position=0), user=annotator)

    queue = queue_create(
        project=project,
        created_by=owner,
        name=f"Check {marker}",
        guidelines="",
        overlap=3,
        spec=QueueFilter(),
    )
    for principal, user in users.items():  # each annotator and up holds the queue's item
        if principal != "rater":
            assert queue_item_next_for(queue=queue, annotator=user) is not None

    export = export_request(
        project=project, dataset="kto", fmt="jsonl", form=None, filters={}, requested_by="t"
    )
    export_build(export_id=export.pk)
    export.refresh_from_db()
    assert export.status == "succeeded", export.error

    key, _ = services.api_key_create(project=project, name=f"Key {marker}", scopes=["export"])

    model = reward_model_create(
        project=project, name=f"Love {marker}", objective="p_love", config=None, created_by=owner
    )
    run = training_run_start(reward_model=model, requested_by=owner)
    rng = np.random.default_rng(0)
    predictions = rng.random(50)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=JobStatus.SUCCEEDED,
        version=1,
        progress=1.0,
        metrics=evaluate_p_love(rng.random(50) < predictions, predictions),
        finished_at=timezone.now(),
    )

    feedback = verbal_feedback_create(project=project, text=f"Be brief. {marker}")
    build = build_start(feedback=feedback)
    C3POBuild.objects.filter(pk=build.pk).update(
        status=BuildStatus.SUCCEEDED, stage=7, progress=1.0, finished_at=timezone.now()
    )
    items = []
    for scope, review in [
        (PromptScope.IN_SCOPE, ReviewStatus.APPROVED),
        (PromptScope.NEAR_SCOPE, ReviewStatus.PENDING),
        (PromptScope.OUT_OF_SCOPE, ReviewStatus.PENDING),
        (PromptScope.IN_SCOPE, ReviewStatus.PENDING),  # waits for review
    ]:
        prompt = f"How do I boil rice? {scope} {review} {marker}"
        items.append(
            C3POItem.objects.create(
                build=build,
                scope=scope,
                prompt=prompt,
                prompt_hash=hashlib.sha256(prompt.encode()).hexdigest(),
                baseline=f"Boil it. {marker}",
                revised=f"Boil. {marker}" if scope == PromptScope.IN_SCOPE else "",
                split="train",
                review_status=review,
            )
        )
    # Never called: only its id matters, to be named from the other project.
    generator = Generator.objects.create(
        project=project, name=f"Gen {marker}", base_url="https://llm.example/v1", model="m"
    )
    endpoint, _ = webhook_endpoint_create(
        project=project,
        url=f"https://hooks.invalid/{prefix}",
        events=["answer.created"],
        description=f"Hooks {marker}",
    )
    webhook_events_emit(project=project, event_type="answer.created", payloads=[{"id": marker}])
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=JobStatus.SUCCEEDED, response_status=200, finished_at=timezone.now()
    )
    shadow_run = ShadowRun.objects.create(
        project=project,
        reward_model=model,
        training_run=run,
        status=JobStatus.SUCCEEDED,
        progress=1.0,
        finished_at=timezone.now(),
    )
    judge = Judge.objects.create(
        project=project,
        name=f"Judge {marker}",
        generator=generator,
        rubric="Is it relevant?",
        target="document_relevance",
    )
    judge_run = JudgeRun.objects.create(
        project=project, judge=judge, status=JobStatus.SUCCEEDED, finished_at=timezone.now()
    )
    proposal = SimulatedFeedback.objects.create(
        project=project,
        answer=ingested,
        kind="intervention",
        producer=judge_run.producer,
        stage=ingested.stages.get(position=1),
        action="doc_relevance",
        after={"doc_id": f"doc-{marker}", "relevance": "irrelevant"},
        item=f"1:doc-{marker}",
    )
    return Objects(
        marker=marker,
        answer=external_id,
        critique_id=critique.pk,
        queue_id=queue.pk,
        export_id=export.pk,
        key_id=key.pk,
        model_id=model.pk,
        run_id=run.pk,
        rerun_id=rerun.pk,
        feedback_id=feedback.pk,
        build_id=build.pk,
        item_id=items[-1].pk,
        generator_id=generator.pk,
        webhook_id=endpoint.pk,
        delivery_id=delivery.pk,
        member_id=Membership.objects.get(project=project, user=users.get("rater", owner)).pk,
        shadow_run_id=shadow_run.pk,
        judge_id=judge.pk,
        judge_run_id=judge_run.pk,
        proposal_id=proposal.pk,
    )


def _build_world() -> World:
    acme = ProjectFactory.create(slug="acme", name="Acme acme-private-7d3e")
    rival = ProjectFactory.create(slug="rival", name="Rival rival-private-91cb")
    people = {
        name: UserFactory.create(username=name, password=None) for name in (*MEMBERS, OTHER_OWNER)
    }
    for name, role in MEMBERS.items():
        MembershipFactory.create(user=people[name], project=acme, role=role)
    MembershipFactory.create(user=people[OTHER_OWNER], project=rival, role=Role.OWNER)

    in_acme = _populate(acme, {name: people[name] for name in MEMBERS}, prefix="acme")
    in_rival = _populate(rival, {"owner": people[OTHER_OWNER]}, prefix="rival")

    sessions = {}
    for name, user in people.items():
        client = Client()
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        sessions[name] = client.cookies[settings.SESSION_COOKIE_NAME].value
    sessions[OWNER_WITH_RIVAL_IDS] = sessions["owner"]

    keys = {}
    for principal, scope in KEYS.items():
        # A widget key must name the pages allowed to use it; it can't be combined.
        origins = ["https://app.example.com"] if scope == Scope.WIDGET else []
        _, keys[principal] = services.api_key_create(
            project=acme, name=principal, scopes=[scope], origins=origins
        )
    every_scope = [scope for scope in Scope if scope != Scope.WIDGET]
    revoked, keys[REVOKED_KEY] = services.api_key_create(
        project=acme, name=REVOKED_KEY, scopes=every_scope
    )
    services.api_key_revoke(project=acme, key_id=revoked.pk)
    _, keys[OTHER_KEY] = services.api_key_create(project=rival, name="all", scopes=every_scope)
    _, keys[KEY_WITH_RIVAL_IDS] = services.api_key_create(
        project=acme, name="all", scopes=every_scope
    )

    visible = {p: {in_acme.marker} for p in (*MEMBERS, *KEYS, REVOKED_KEY)}
    visible |= {p: {in_acme.marker} for p in (OWNER_WITH_RIVAL_IDS, KEY_WITH_RIVAL_IDS)}
    visible |= {OTHER_OWNER: {in_rival.marker}, OTHER_KEY: {in_rival.marker}, ANONYMOUS: set()}
    return World(acme=in_acme, rival=in_rival, sessions=sessions, keys=keys, visible=visible)


@pytest.fixture(scope="module")
def world(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """Built once for the module, inside a transaction rolled back at its end; each test runs
    in a savepoint inside it (pytest-django's `db`)."""
    media = override_settings(MEDIA_ROOT=Path(tmp_path_factory.mktemp("media")))
    outer = transaction.atomic()
    with django_db_blocker.unblock():
        outer.__enter__()
    media.enable()
    try:
        with django_db_blocker.unblock():
            built = _build_world()
        yield built
    finally:
        media.disable()
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


# --- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """What a body is built from: the world, the objects the URL names, who asks."""

    world: World
    objects: Objects
    principal: str


Body = Mapping[str, Any] | Callable[[Cell], Mapping[str, Any]]


@dataclass(frozen=True)
class Call:
    """One request to a route, and what a caller who is allowed gets back."""

    method: str
    ok: tuple[str, ...]
    body: Body | None = None
    query: Mapping[str, str] = field(default_factory=dict)
    htmx: bool = False
    data: bool = False  # an allowed caller's 2xx response shows their project's data
    role: Role | None = None  # pages: the least role
    scopes: tuple[Scope, ...] = ()  # API: any one of these
    # API routes that name no object: a key of another project acts on its own project.
    other_key: str | None = None


def GET(*ok: int | str, **options: Any) -> Call:
    return _call("GET", ok, options)


def POST(*ok: int | str, **options: Any) -> Call:
    return _call("POST", ok, options)


def _call(method: str, ok: tuple[int | str, ...], options: dict[str, Any]) -> Call:
    scope = options.pop("scope", None)
    if scope is not None:
        options["scopes"] = scope if isinstance(scope, tuple) else (scope,)
    if options.get("other_key") is not None:
        options["other_key"] = str(options["other_key"])
    return Call(method, tuple(str(o) for o in ok), **options)


# The URL's parameters (besides the project's slug) from a project's objects; a list when the
# route is tried with several values.
Kwargs = Callable[[Objects], dict[str, Any] | list[dict[str, Any]]]


def no_kwargs(o: Objects) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Entry:
    kind: str  # "page" (a project's page), "api" (the project API), "site" (the rest)
    calls: tuple[Call, ...]
    kwargs: Kwargs = no_kwargs
    # "site" routes: the outcome for particular callers (the others get the call's `ok`).
    outcomes: Mapping[str, str] = field(default_factory=dict)

    def variants(self, objects: Objects) -> list[dict[str, Any]]:
        kwargs = self.kwargs(objects)
        return kwargs if isinstance(kwargs, list) else [kwargs]


def page(role: Role, *calls: Call, kwargs: Kwargs = no_kwargs) -> Entry:
    """A page of a project, for members with at least `role`."""
    return Entry("page", tuple(replace(c, role=role) for c in calls), kwargs)


def api(*calls: Call, kwargs: Kwargs = no_kwargs) -> Entry:
    """An endpoint of the project API; each call names the scopes it needs."""
    return Entry("api", calls, kwargs)


def site(*calls: Call, **outcomes: int | str) -> Entry:
    """A route outside any project: the same for everyone except the callers named."""
    return Entry("site", calls, outcomes={k: str(v) for k, v in outcomes.items()})


def answer(o: Objects) -> dict[str, Any]:
    return {"external_id": o.answer}


def queue(o: Objects) -> dict[str, Any]:
    return {"queue_id": o.queue_id}


def model(o: Objects) -> dict[str, Any]:
    return {"model_id": o.model_id}


def run(o: Objects) -> dict[str, Any]:
    return {"run_id": o.run_id}


def feedback(o: Objects) -> dict[str, Any]:
    return {"feedback_id": o.feedback_id}


def build(o: Objects) -> dict[str, Any]:
    return {"build_id": o.build_id}


def export(o: Objects) -> dict[str, Any]:
    return {"export_id": o.export_id}


def webhook(o: Objects) -> dict[str, Any]:
    return {"endpoint_id": o.webhook_id}


def delivery(o: Objects) -> dict[str, Any]:
    return {"endpoint_id": o.webhook_id, "delivery_id": o.delivery_id}


def shadow_run(o: Objects) -> dict[str, Any]:
    return {"run_id": o.shadow_run_id}


def judge(o: Objects) -> dict[str, Any]:
    return {"judge_id": o.judge_id}


def judge_run(o: Objects) -> dict[str, Any]:
    return {"run_id": o.judge_run_id}


def proposal(o: Objects) -> dict[str, Any]:
    return {"external_id": o.answer, "proposal_id": o.proposal_id}


def other_projects_generator(cell: Cell) -> dict[str, Any]:
    return {"generator": cell.world.other_than(cell.objects).generator_id}


INGEST, FEEDBACK, EXPORT, TRAIN = Scope.INGEST, Scope.FEEDBACK, Scope.EXPORT, Scope.TRAIN
RATER, ANNOTATOR, RESEARCHER, OWNER = Role.RATER, Role.ANNOTATOR, Role.RESEARCHER, Role.OWNER

ROUTES: dict[str, Entry] = {
    # --- outside any project ---------------------------------------------------------------
    "home": site(GET(REDIRECT), anonymous=LOGIN),
    # Liveness: no data; 200 or 503 by the health of the database and broker, not by who asks.
    "healthz": site(GET(200, 503)),
    "login": site(GET(REDIRECT), anonymous=200),
    "logout": site(POST(LOGIN)),
    "schema": site(GET(200)),  # the API's description is public
    "api-docs": site(GET(200)),
    "feedback:project_list": site(
        GET(200, data=True), POST(400, body={"name": ""}), anonymous=LOGIN
    ),
    # A new member's one-time link: a link that is not (or no longer) valid says so.
    "password_set": Entry(
        "site", (GET(200),), kwargs=lambda o: {"uidb64": "MQ", "token": "not-a-token"}
    ),
    "password_set_done": site(GET(200)),
    # --- a project's pages -----------------------------------------------------------------
    "feedback:project_detail": page(RATER, GET(200, data=True)),
    "feedback:compare": page(RATER, GET(200, data=True)),
    "feedback:compare_submit": page(RATER, POST(REDIRECT, body={"winner": "nobody"})),
    "feedback:answer_detail": page(RATER, GET(200, data=True), kwargs=answer),
    "feedback:answer_react": page(RATER, POST(REDIRECT, body={"reaction": "no"}), kwargs=answer),
    "feedback:answer_critique": page(RATER, POST(REDIRECT, body={"text": ""}), kwargs=answer),
    "feedback:answer_followup": page(RATER, POST(REDIRECT), kwargs=answer),
    "feedback:ask": page(RATER, GET(200), POST(400, body={"question": " "})),
    "feedback:answer_debug": page(ANNOTATOR, GET(200, data=True), kwargs=answer),
    # A form from another tab (its version is stale) is refused: nothing is saved.
    "feedback:answer_debug_save": page(
        ANNOTATOR, POST(409, body={"version": "stale"}), kwargs=answer
    ),
    "feedback:answer_debug_diff": page(ANNOTATOR, POST(200), kwargs=answer),
    "feedback:answer_rerun": page(ANNOTATOR, POST(REDIRECT, body={"stage": "0"}), kwargs=answer),
    "feedback:rerun_status": page(
        ANNOTATOR, GET(200, htmx=True), kwargs=lambda o: {"rerun_id": o.rerun_id}
    ),
    "feedback:queue_list": page(ANNOTATOR, GET(200, data=True)),
    "feedback:queue_create": page(RESEARCHER, POST(400, body={"name": ""})),
    "feedback:queue_detail": page(ANNOTATOR, GET(200, data=True), kwargs=queue),
    "feedback:queue_next": page(ANNOTATOR, POST(REDIRECT), kwargs=queue),
    # Members below the role post the annotator's real assignment; they must not get past.
    "feedback:export_list": page(RESEARCHER, GET(200)),
    "feedback:export_create": page(RESEARCHER, POST(400, body={"dataset": "nope"})),
    "feedback:export_download": page(RESEARCHER, GET(200, data=True), kwargs=export),
    "feedback:project_settings": page(OWNER, GET(200, data=True), POST(400, body={"name": ""})),
    "feedback:connector_save": page(OWNER, POST(400, body={"url": "not a url"})),
    "feedback:api_keys": page(OWNER, GET(200, data=True)),
    "feedback:api_key_create": page(OWNER, POST(400, body={"name": ""})),
    "feedback:api_key_revoke": page(OWNER, POST(REDIRECT), kwargs=lambda o: {"key_id": o.key_id}),
    "feedback:webhook_list": page(OWNER, GET(200, data=True)),
    "feedback:webhook_create": page(OWNER, POST(400, body={"url": ""})),
    "feedback:webhook_detail": page(OWNER, GET(200, data=True), kwargs=webhook),
    "feedback:webhook_delete": page(OWNER, POST(REDIRECT), kwargs=webhook),
    "feedback:webhook_enable": page(OWNER, POST(REDIRECT), kwargs=webhook),
    "feedback:webhook_delivery_resend": page(OWNER, POST(REDIRECT), kwargs=delivery),
    "feedback:dashboard": page(RESEARCHER, GET(200, data=True)),
    "feedback:members": page(OWNER, GET(200, data=True)),
    "feedback:member_add": page(OWNER, POST(400, body={"user": ""})),
    "feedback:member_create": page(OWNER, POST(400, body={"username": ""})),
    "feedback:member_role": page(
        OWNER, POST(400, body={"role": "nope"}), kwargs=lambda o: {"member_id": o.member_id}
    ),
    "feedback:member_remove": page(
        OWNER, POST(REDIRECT), kwargs=lambda o: {"member_id": o.member_id}
    ),
    "rewardmodels:model_list": page(RESEARCHER, GET(200, data=True)),
    "rewardmodels:model_create": page(RESEARCHER, POST(400, body={"name": ""})),
    "rewardmodels:model_detail": page(RESEARCHER, GET(200, data=True), kwargs=model),
    "rewardmodels:model_train": page(RESEARCHER, POST(REDIRECT), kwargs=model),
    "rewardmodels:model_activate": page(
        RESEARCHER, POST(REDIRECT, body={"version": "9"}), kwargs=model
    ),
    # The model has no active version: trying a score is refused with the reason.
    "rewardmodels:model_score": page(
        RESEARCHER, POST(400, body={"prompt": "q", "response": "a"}), kwargs=model
    ),
    "rewardmodels:run_detail": page(RESEARCHER, GET(200, data=True), kwargs=run),
    "rewardmodels:run_cancel": page(RESEARCHER, POST(REDIRECT), kwargs=run),
    "rewardmodels:run_plot": page(
        RESEARCHER, GET(200), kwargs=lambda o: {**run(o), "name": "reliability"}
    ),
    "rewardmodels:feedback_list": page(RESEARCHER, GET(200, data=True)),
    "rewardmodels:feedback_create": page(RESEARCHER, POST(400, body={"text": ""})),
    "rewardmodels:feedback_detail": page(RESEARCHER, GET(200, data=True), kwargs=feedback),
    "rewardmodels:build_create": page(
        RESEARCHER, POST(400, body={"categories": "many"}), kwargs=feedback
    ),
    "rewardmodels:critique_promote": page(
        RESEARCHER, POST(REDIRECT), kwargs=lambda o: {"critique_id": o.critique_id}
    ),
    "rewardmodels:generator_save": page(RESEARCHER, POST(400, body={"name": ""})),
    "rewardmodels:build_detail": page(RESEARCHER, GET(200, data=True), kwargs=build),
    "rewardmodels:build_resume": page(RESEARCHER, POST(REDIRECT), kwargs=build),
    "rewardmodels:build_dataset": page(
        RESEARCHER, GET(200, query={"part": "dpo"}, data=True), kwargs=build
    ),
    "rewardmodels:review_list": page(ANNOTATOR, GET(200)),
    "rewardmodels:review": page(ANNOTATOR, GET(200, data=True), kwargs=build),
    "rewardmodels:review_submit": page(
        ANNOTATOR,
        POST(400, body={"action": "nothing"}),
        kwargs=lambda o: {**build(o), "item_id": o.item_id},
    ),
    "rewardmodels:shadow_list": page(RESEARCHER, GET(200, data=True)),
    "rewardmodels:shadow_create": page(RESEARCHER, POST(400, body={"reward_model": ""})),
    "rewardmodels:shadow_detail": page(RESEARCHER, GET(200, data=True), kwargs=shadow_run),
    # A finished run: cancelling changes nothing, and the page says so.
    "rewardmodels:shadow_cancel": page(RESEARCHER, POST(REDIRECT), kwargs=shadow_run),
    "rewardmodels:judge_list": page(RESEARCHER, GET(200, data=True)),
    "rewardmodels:judge_create": page(RESEARCHER, POST(400, body={"name": ""})),
    "rewardmodels:judge_detail": page(RESEARCHER, GET(200, data=True), kwargs=judge),
    "rewardmodels:judge_run_create": page(RESEARCHER, POST(400, body={"limit": "0"}), kwargs=judge),
    "rewardmodels:judge_run_detail": page(RESEARCHER, GET(200, data=True), kwargs=judge_run),
    # A judge's proposal: accepting makes it the annotator's own correction.
    "feedback:proposal_accept": page(ANNOTATOR, POST(REDIRECT), kwargs=proposal),
    "feedback:proposal_reject": page(ANNOTATOR, POST(REDIRECT), kwargs=proposal),
    # --- the API ---------------------------------------------------------------------------
    "api-answers": api(POST(400, scope=INGEST, other_key=400)),
    # `{}` is an OTLP/JSON export with no spans: accepted, nothing written.
    "api-otel-traces": api(POST(200, scope=INGEST, other_key=200)),
    "api-answer-detail": api(GET(200, scope=(INGEST, EXPORT), data=True), kwargs=answer),
    "api-feedback": api(
        GET(200, scope=EXPORT, other_key=200, data=True),
        POST(400, scope=FEEDBACK, body={"events": []}, other_key=400),
    ),
    "api-qrels": api(GET(200, scope=EXPORT, other_key=200, data=True)),
    "api-dataset": api(
        GET(200, scope=EXPORT, other_key=200, data=True),
        kwargs=lambda o: [{"name": name} for name in sorted(DATASETS)],
    ),
    "api-exports": api(POST(400, scope=EXPORT, other_key=400)),
    "api-export": api(GET(200, scope=EXPORT), kwargs=export),
    "api-export-download": api(GET(200, scope=EXPORT, data=True), kwargs=export),
    "api-reward-models": api(POST(400, scope=TRAIN, other_key=400)),
    "api-reward-model": api(GET(200, scope=TRAIN, data=True), kwargs=model),
    "api-reward-model-train": api(POST(202, scope=TRAIN), kwargs=model),
    # The model has no active version yet: 409 tells an allowed caller to train it first.
    "api-reward-model-score": api(
        POST(409, scope=TRAIN, body={"items": [{"prompt": "q", "response": "a"}]}), kwargs=model
    ),
    "api-training-run": api(GET(200, scope=TRAIN), kwargs=run),
    "api-verbal-feedback": api(POST(400, scope=TRAIN, other_key=400)),
    # The other project's generator is refused like an unknown one.
    "api-c3po-build-create": api(
        POST(400, scope=TRAIN, body=other_projects_generator), kwargs=feedback
    ),
    "api-generators": api(POST(400, scope=TRAIN, other_key=400)),
    "api-c3po-build": api(GET(200, scope=TRAIN), kwargs=build),
    # Only a failed build can be resumed; this one succeeded.
    "api-c3po-build-resume": api(POST(409, scope=TRAIN), kwargs=build),
    # Webhooks hear every event of a project: a signed-in member needs the owner role.
    "api-webhooks": api(
        GET(200, scope=FEEDBACK, role=OWNER, other_key=200, data=True),
        POST(400, scope=FEEDBACK, role=OWNER, other_key=400),
    ),
    "api-webhook": api(GET(200, scope=FEEDBACK, role=OWNER, data=True), kwargs=webhook),
    "api-webhook-deliveries": api(GET(200, scope=FEEDBACK, role=OWNER), kwargs=webhook),
    "api-webhook-delivery-resend": api(POST(202, scope=FEEDBACK, role=OWNER), kwargs=delivery),
    "api-webhook-enable": api(POST(200, scope=FEEDBACK, role=OWNER, data=True), kwargs=webhook),
    "api-c3po-dataset": api(GET(200, scope=TRAIN, query={"part": "dpo"}, data=True), kwargs=build),
    # A member gets a token for themselves; ttl_seconds is out of range for every caller.
    "api-viewer-tokens": api(POST(400, scope=FEEDBACK, body={"ttl_seconds": 1}, other_key=400)),
    # The widget's endpoints take no session and no Authorization header, only a widget key
    # in the query (tests/feedback/test_apis_widget.py): without one, 401 for everyone.
    "api-widget-config": site(GET(401)),
    "api-widget-events": site(POST(401)),
    "widget-script": site(GET(200)),
    "widget-demo": page(RATER, GET(200, data=True)),
    "api-shadow-runs": api(POST(400, scope=TRAIN, other_key=400)),
    "api-shadow-run": api(GET(200, scope=TRAIN), kwargs=shadow_run),
    "api-judges": api(POST(400, scope=TRAIN, other_key=400)),
    "api-judge": api(GET(200, scope=TRAIN, data=True), kwargs=judge),
    "api-judge-runs": api(POST(400, scope=TRAIN, body={"filters": {"limit": 0}}), kwargs=judge),
    "api-judge-run": api(GET(200, scope=TRAIN), kwargs=judge_run),
}


def admin_entry(route: Route) -> Entry:
    """Django's admin is for staff. None of the callers is staff, so every admin page sends
    them to the admin's login page, which answers; logging out leads back to the admin."""
    if route.key == "admin:login":
        return site(GET(200))
    if route.key == "admin:logout":
        return site(POST(REDIRECT))
    return site(GET(ADMIN_LOGIN))


# Routes that a framework generates for a whole namespace, each checked by one rule.
NAMESPACES: dict[str, Callable[[Route], Entry]] = {"admin": admin_entry}
# Values for the parameters of those routes.
SAMPLE_KWARGS = {
    "app_label": "auth",
    "content_type_id": "1",
    "id": "1",
    "object_id": "1",
    "url": "no-such-page/",
}


# --- the URLconf --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    key: str  # the route's name with its namespace, or its pattern when it has no name
    namespace: str
    patterns: tuple[Any, ...]  # the patterns from the root of the URLconf down to the view
    callback: Callable[..., Any]

    @property
    def parameters(self) -> set[str]:
        names: set[str] = set()
        for pattern in self.patterns:
            if isinstance(pattern, RoutePattern):
                names |= set(pattern.converters)
            else:
                names |= set(pattern.regex.groupindex)
        return names

    def path(self, kwargs: Mapping[str, Any]) -> str:
        """The route's URL with `kwargs` filled in (it works for routes without a name too)."""
        parts = []
        for pattern in self.patterns:
            text = str(pattern)
            if isinstance(pattern, RoutePattern):
                text = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: _quoted(kwargs[m[1]]), text)
            else:
                text = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: _quoted(kwargs[m[1]]), text)
                text = text.removeprefix("^").removesuffix("$")
            parts.append(text)
        return "/" + "".join(parts)


def _quoted(value: Any) -> str:
    return quote(str(value), safe="/")


def urlconf_routes() -> dict[str, Route]:
    """Every route the URLconf serves, found by walking its resolvers."""
    routes: dict[str, Route] = {}

    def walk(patterns: list[Any], namespace: str, above: tuple[Any, ...]) -> None:
        for item in patterns:
            if isinstance(item, URLResolver):
                inner = ":".join(n for n in (namespace, item.namespace or "") if n)
                walk(item.url_patterns, inner, (*above, item.pattern))
            elif isinstance(item, URLPattern):
                chain = (*above, item.pattern)
                if item.name:
                    key = f"{namespace}:{item.name}" if namespace else item.name
                else:
                    key = "".join(str(p) for p in chain)
                assert key not in routes, f"two routes are both called {key!r}"
                routes[key] = Route(key, namespace, chain, item.callback)

    walk(get_resolver().url_patterns, "", ())
    return routes


URLCONF = urlconf_routes()


def entry_for(key: str) -> Entry | None:
    if key in ROUTES:
        return ROUTES[key]
    route = URLCONF.get(key)
    if route is not None and route.namespace in NAMESPACES:
        return NAMESPACES[route.namespace](route)
    return None


# --- expectations -------------------------------------------------------------------------------


def principals(entry: Entry, names_objects: bool) -> tuple[str, ...]:
    if entry.kind == "site":
        return PEOPLE
    if entry.kind == "page":
        return (*PEOPLE, OWNER_WITH_RIVAL_IDS) if names_objects else PEOPLE
    return (*PEOPLE, *KEY_HOLDERS, KEY_WITH_RIVAL_IDS) if names_objects else (*PEOPLE, *KEY_HOLDERS)


def expected(entry: Entry, call: Call, principal: str) -> tuple[str, ...]:
    if entry.kind == "site":
        return (entry.outcomes[principal],) if principal in entry.outcomes else call.ok
    if principal in (OTHER_OWNER, OWNER_WITH_RIVAL_IDS, KEY_WITH_RIVAL_IDS):
        return ("404",)
    if entry.kind == "page":
        if principal == ANONYMOUS:
            return (LOGIN,)
        assert call.role is not None
        return call.ok if includes(MEMBERS[principal], call.role) else ("403",)
    if principal in (ANONYMOUS, REVOKED_KEY):
        return ("401",)
    if principal == OTHER_KEY:
        return (call.other_key,) if call.other_key else ("404",)
    if principal in KEYS:
        return call.ok if KEYS[principal] in call.scopes else ("403",)
    if call.role is not None:  # an operation that asks more of members than its scopes do
        return call.ok if includes(MEMBERS[principal], call.role) else ("403",)
    allowed = any(includes(MEMBERS[principal], SCOPE_ROLE[s]) for s in call.scopes)
    return call.ok if allowed else ("403",)


# --- running the cells --------------------------------------------------------------------------


def send(world: World, entry: Entry, call: Call, principal: str, path: str) -> tuple[str, bytes]:
    """(outcome, body) of one request, whose writes are rolled back. An exception is a 500."""
    client = Client()
    if principal in world.sessions:
        client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[principal]
    headers = {}
    if principal in world.keys:
        headers["Authorization"] = f"Bearer {world.keys[principal]}"
    if call.htmx:
        headers["HX-Request"] = "true"
    query = dict(call.query)
    if entry.kind == "api":
        query["project"] = "acme"  # how a signed-in person names the project; keys ignore it
    objects = world.objects_for(principal)
    cell = Cell(world, objects, principal)
    body = call.body(cell) if callable(call.body) else dict(call.body or {})
    url = f"{path}?{urlencode(query)}" if query else path
    # A cache of its own too (a key prefix of its own): what one cell counts there, such as
    # failed API-key attempts per address, must not throttle the cells that follow.
    caches = settings.CACHES
    own_cache = {**caches, "default": {**caches["default"], "KEY_PREFIX": uuid.uuid4().hex}}
    with override_settings(CACHES=own_cache), transaction.atomic():
        try:
            if call.method == "GET":
                response = client.get(url, headers=headers)
            elif entry.kind == "api":
                json = orjson.dumps(body)
                response = client.post(url, json, content_type="application/json", headers=headers)
            else:
                response = client.post(url, body, headers=headers)
            # Reading a streamed body to its end also closes the response, as a server does.
            if response.streaming:
                content = b"".join(response.streaming_content)  # type: ignore[attr-defined]
            else:
                content = response.content
            result = outcome_of(response)
        except Exception as error:  # the cell failed: report it with the others
            result, content = f"500 ({type(error).__name__}: {error})", b""
        transaction.set_rollback(True)
    return result, content


def check_route(world: World, key: str) -> list[str]:
    """Every cell of one route that is not as the table says, as readable lines."""
    entry, route = entry_for(key), URLCONF.get(key)
    if route is None:
        return [f"{key}: in ROUTES, but the URLconf has no such route any more: remove it"]
    if entry is None:
        return [f"{key}: not in ROUTES: add it, saying who may use it (see the rules above)"]
    samples = SAMPLE_KWARGS if route.namespace in NAMESPACES else {}
    for variant in entry.variants(world.acme):
        given = set(variant) | ({"slug", *samples} & route.parameters)
        if given != route.parameters:
            takes = ", ".join(sorted(route.parameters)) or "nothing"
            return [f"{key}: ROUTES gives {sorted(variant)}; the route takes {takes}"]
    # A route names objects when its URL differs between the projects.
    names_objects = entry.variants(world.acme) != entry.variants(world.rival)
    problems = []
    for principal in principals(entry, names_objects):
        objects = world.objects_for(principal)
        for variant in entry.variants(objects):
            path = route.path({**samples, **variant, "slug": "acme"})
            if resolve(path).func is not route.callback:
                return [f"{key}: {path} reaches another view; change its sample values"]
            for call in entry.calls:
                problems += check_cell(world, entry, call, principal, path, key)
    return problems


def check_cell(
    world: World, entry: Entry, call: Call, principal: str, path: str, key: str
) -> list[str]:
    want = expected(entry, call, principal)
    got, content = send(world, entry, call, principal, path)
    where = f"{key} {call.method} {path} as {principal}:"
    problems = []
    if got not in want:
        problems.append(f"{where} expected {' or '.join(want)}, got {got}")
    markers = {world.acme.marker, world.rival.marker}
    foreign = [m for m in markers - world.visible[principal] if m.encode() in content]
    if foreign:
        problems.append(f"{where} the {got} response shows data of a project they are not in")
    own = world.visible[principal]
    shows_own = any(m.encode() in content for m in own)
    if call.data and got == want[0] and got.startswith("2") and own and not shows_own:
        problems.append(f"{where} the {got} response shows none of their project's data")
    return problems


# --- the tests ----------------------------------------------------------------------------------


def test_every_route_has_an_entry_and_every_entry_a_route() -> None:
    missing = [key for key in URLCONF if entry_for(key) is None]
    stale = [key for key in ROUTES if key not in URLCONF]
    assert not missing, f"Routes with no entry in ROUTES: {missing}"
    assert not stale, f"Entries in ROUTES for routes that no longer exist: {stale}"


@pytest.mark.parametrize("key", sorted(set(URLCONF) | set(ROUTES)))
def test_access(key: str, world: World, db: None) -> None:
    problems = check_route(world, key)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
