"""Recording feedback: exposures, reactions, critiques, comparisons and follow-ups.

One path for the browser and the API. Each event is validated (`feedback.events`), checked
against the database (the answer exists in the project, compared answers share a prompt, the
viewer is within the project's limits, counted under a lock per viewer), and written with its
effect in one transaction. The event's `event_id` is the idempotency key: the unique constraint
on (project, event_id) decides what is new, so a replay, a double submit or a concurrent retry
reports `duplicate`. An exposure of a signed-in viewer is also a duplicate when the viewer was
already exposed to the answer in the window, by a page or by the API.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from feedback.core.bulk import (
    Statement,
    insert_ignoring_conflicts,
    lock_statement,
    run_in_order,
)
from feedback.events import ValidEvent, page_view_event_id, validate_event
from feedback.models import (
    Answer,
    Comparison,
    Critique,
    FollowUp,
    Project,
    Reaction,
    Source,
    WebhookEventType,
)
from feedback.services.webhooks import live_endpoints_statement, webhook_events_emit

RATE_WINDOW = timedelta(minutes=1)
REACTION_CAP_WINDOW = timedelta(days=1)

Status = Literal["created", "duplicate", "error"]


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    index: int
    status: Status
    event_id: str | None = None
    errors: dict[str, list[str]] | None = None
    # Why an item failed when it isn't its content: "rate_limited" or "reaction_cap".
    limit: str | None = None


def feedback_record(
    *,
    project: Project,
    items: Sequence[Any],
    source: str,
    viewer: str | None = None,
) -> list[FeedbackResult]:
    """Record a batch of events; one result per item, in order. `viewer` is given for browser
    events (the signed-in user); API events carry their own `user_ref`."""
    return _record(project, items, source=source, viewer=viewer, page_views=False)


def _record(
    project: Project,
    items: Sequence[Any],
    *,
    source: str,
    viewer: str | None,
    page_views: bool,
) -> list[FeedbackResult]:
    """`feedback_record`; `page_views` only for the exposures a page records itself, whose ids
    no client may send (`events.PAGE_VIEW_PREFIX`)."""
    now = timezone.now()
    results: list[FeedbackResult | None] = [None] * len(items)
    candidates: list[tuple[int, ValidEvent]] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        checked = validate_event(
            item, reactions=project.reaction_set, now=now, viewer=viewer, page_view=page_views
        )
        if isinstance(checked, dict):
            event_id = item.get("event_id") if isinstance(item, dict) else None
            results[index] = FeedbackResult(
                index, "error", event_id if isinstance(event_id, str) else None, checked
            )
        elif checked.event_id in seen:
            results[index] = FeedbackResult(index, "duplicate", checked.event_id)
        else:
            seen.add(checked.event_id)
            candidates.append((index, checked))

    # Counting a viewer's feedback and writing more of it happen in one transaction, under
    # one lock per viewer held until commit: two requests for one viewer can't both see room
    # for the last event under a limit. Exposures count towards no limit and take no lock, so
    # a page view (exposures only) opens no transaction unless it has something to write.
    limited = {e.viewer for _, e in candidates if e.type != "exposure"}
    if candidates:
        with transaction.atomic() if limited else nullcontext():
            _record_checked(project, candidates, results, limited, source=source, now=now)
    return [r for r in results if r is not None]


def _record_checked(
    project: Project,
    candidates: list[tuple[int, ValidEvent]],
    results: list[FeedbackResult | None],
    limited: set[str],
    *,
    source: str,
    now: datetime,
) -> None:
    """Check the valid events against the database and write the ones that pass; fills in
    `results`. The `limited` viewers' events count towards a limit: the caller has opened a
    transaction, and their locks are taken here before anything is counted."""
    known, answers, counts, endpoints = _look_up(project, candidates, limited, now=now)
    # Replays report `duplicate` before any limit is charged for them.
    for index, event in candidates:
        if event.event_id in known:
            results[index] = FeedbackResult(index, "duplicate", event.event_id)
    candidates = [(i, e) for i, e in candidates if e.event_id not in known]

    accepted: list[tuple[int, ValidEvent]] = []
    for index, event in candidates:
        errors = _answer_errors(event, answers)
        if errors:
            results[index] = FeedbackResult(index, "error", event.event_id, errors)
        else:
            accepted.append((index, event))

    accepted = _apply_limits(project, accepted, results, counts)
    created: set[str] = set()
    if accepted:
        # Joins the caller's transaction when there is one (no savepoint); its own otherwise.
        with transaction.atomic(savepoint=False):
            created = _write(project, accepted, answers, source=source, now=now)
            _tell_webhooks(project, accepted, created, endpoints, source=source, now=now)
    for index, event in accepted:
        status: Status = "created" if event.event_id in created else "duplicate"
        results[index] = FeedbackResult(index, status, event.event_id)


def _tell_webhooks(
    project: Project,
    events: list[tuple[int, ValidEvent]],
    created: set[str],
    endpoints: list[tuple[Any, ...]],
    *,
    source: str,
    now: datetime,
) -> None:
    """The new events for the project's webhooks (`endpoints`: the live ones, as read)."""
    webhook_events_emit(
        project=project,
        event_type=WebhookEventType.FEEDBACK_CREATED,
        live_endpoints=endpoints,
        payloads=[
            {
                "event_id": e.event_id,
                "type": e.type,
                "answer": e.answer,
                "user_ref": e.viewer,
                "source": source,
                "at": e.at or now,
                **e.data,
            }
            for _, e in events
            if e.event_id in created
        ],
    )


class _AnswerRow(NamedTuple):
    pk: int
    prompt_hash: str


class _Counts(NamedTuple):
    """A viewer's events received in the last RATE_WINDOW (exposures aside), and reactions
    received in the last REACTION_CAP_WINDOW."""

    recent: int
    reactions: int


def _look_up(
    project: Project,
    events: list[tuple[int, ValidEvent]],
    limited: set[str],
    *,
    now: datetime,
) -> tuple[set[str], dict[str, _AnswerRow], dict[str, _Counts], list[tuple[Any, ...]]]:
    """What checking the events needs from the database: the event_ids already recorded, the
    answers they name (by external_id), the project's live webhook endpoints (for what is
    written), and the `limited` viewers' counts, which are read
    under those viewers' locks (taken first, held until commit), so two requests for one
    viewer can't both see room for the last event under a limit.

    All of it in one round trip on PostgreSQL: with a viewer's lock, one reaction used to
    wait on six (lock, replays, answers, endpoints, counts, each a query of its own)."""
    event_ids = [e.event_id for _, e in events]
    wanted = list(
        {e.answer for _, e in events}
        | {e.data["other_answer"] for _, e in events if e.type == "comparison"}
    )
    viewers = sorted(limited)
    statements: list[Statement] = []
    lock = lock_statement(f"feedback-limits:{project.pk}:{viewer}" for viewer in viewers)
    if lock is not None:
        statements.append(lock)
    statements.append(
        (
            "SELECT event_id FROM feedback_feedbackevent "  # noqa: S608 (placeholders only)
            f"WHERE project_id = %s AND event_id IN ({_placeholders(event_ids)})",
            [project.pk, *event_ids],
        )
    )
    statements.append(
        (
            "SELECT external_id, id, prompt_hash FROM feedback_answer "  # noqa: S608 (placeholders)
            f"WHERE project_id = %s AND external_id IN ({_placeholders(wanted)})",
            [project.pk, *wanted],
        )
    )
    statements.append(live_endpoints_statement(project.pk))
    if viewers:
        # One pass over the viewers' last day of events counts both: feedback in the last
        # minute (exposures aside) and reactions received in the day. Receipt time, not the
        # client's `at`, so backdating can't dodge either limit. Simulated events (a shadow's
        # Loves) are not the viewer's doing: they use up no limit.
        statements.append(
            (
                "SELECT viewer, "  # noqa: S608 (placeholders only)
                "COUNT(*) FILTER (WHERE received_at >= %s AND type <> 'exposure'), "
                "COUNT(*) FILTER (WHERE type = 'reaction') "
                "FROM feedback_feedbackevent WHERE project_id = %s "
                f"AND viewer IN ({_placeholders(viewers)}) AND received_at >= %s "
                "AND source <> 'simulated' GROUP BY viewer",
                [
                    _adapt(now - RATE_WINDOW),
                    project.pk,
                    *viewers,
                    _adapt(now - REACTION_CAP_WINDOW),
                ],
            )
        )
    if viewers and settings.FEEDBACK_ASYNC_COMMIT and connection.vendor == "postgresql":
        # Last, so the rows above keep their places. This transaction's commit returns before
        # its WAL reaches the disk: no fsync wait in the request (the tail latency of a
        # reaction is the disk's), at the price of the last moment's feedback if PostgreSQL
        # itself crashes (never a half-written row).
        statements.append(("SELECT set_config('synchronous_commit', 'off', true)", []))
    rows = run_in_order(statements)[1 if lock is not None else 0 :]
    known = {event_id for (event_id,) in rows[0]}
    answers = {external_id: _AnswerRow(pk, digest) for external_id, pk, digest in rows[1]}
    endpoints = rows[2]
    counts = {viewer: _Counts(recent, cap) for viewer, recent, cap in rows[3]} if viewers else {}
    return known, answers, counts, endpoints


def _placeholders(values: Sequence[object]) -> str:
    return ", ".join(["%s"] * len(values))


def _adapt(at: datetime) -> Any:
    """A date-time as the database compares it (SQLite keeps them as text)."""
    return connection.ops.adapt_datetimefield_value(at)


def _answer_errors(event: ValidEvent, answers: dict[str, _AnswerRow]) -> dict[str, list[str]]:
    missing = "No answer with this external_id in the project."
    if event.answer not in answers:
        return {"answer": [missing]}
    if event.type == "comparison":
        other = answers.get(event.data["other_answer"])
        if other is None:
            return {"other_answer": [missing]}
        if other.prompt_hash != answers[event.answer].prompt_hash:
            return {"other_answer": ["Must be an answer to the same prompt as `answer`."]}
    return {}


def _apply_limits(
    project: Project,
    events: list[tuple[int, ValidEvent]],
    results: list[FeedbackResult | None],
    counts: dict[str, _Counts],
) -> list[tuple[int, ValidEvent]]:
    """Per-viewer rate limit on feedback (exposures are not feedback) and the daily cap on
    reactions. Counts come from the rows already written (`counts`, read under the viewers'
    locks, which the caller holds until it commits), plus this batch in order."""
    recent: Counter[str] = Counter({viewer: c.recent for viewer, c in counts.items()})
    reactions_today: Counter[str] = Counter({viewer: c.reactions for viewer, c in counts.items()})
    # Each limit: the count per viewer so far, the most allowed, and the refusal (the field it
    # names, its message, its `limit`). Feedback counts towards the rate; a reaction also
    # towards the daily cap; an exposure towards neither.
    rate = (
        recent,
        project.feedback_rate_per_minute,
        "user_ref",
        f"Too much feedback: at most {project.feedback_rate_per_minute} events a minute per "
        "viewer. Retry later.",
        "rate_limited",
    )
    cap = (
        reactions_today,
        project.reactions_per_day,
        "reaction",
        f"Daily cap reached: at most {project.reactions_per_day} reactions a day per viewer.",
        "reaction_cap",
    )
    limits_by_type = {"exposure": [], "reaction": [rate, cap]}
    kept: list[tuple[int, ValidEvent]] = []
    for index, event in events:
        for counted, most, field, message, limit in limits_by_type.get(event.type, [rate]):
            if counted[event.viewer] >= most:
                results[index] = FeedbackResult(
                    index, "error", event.event_id, {field: [message]}, limit=limit
                )
                break
            counted[event.viewer] += 1
        else:
            kept.append((index, event))
    return kept


# The record a critique, a comparison or a follow-up adds besides its event, and the fields it
# takes from the event's data.
_RECORDS: dict[str, tuple[type[Model], tuple[str, ...]]] = {
    "critique": (Critique, ("text", "quote", "category")),
    "comparison": (Comparison, ("winner",)),
    "followup": (FollowUp, ("outcome", "text")),
}

_EVENT_COLUMNS = (
    "project_id, event_id, type, answer_id, viewer, source, occurred_at, received_at, data"
)


def _write(
    project: Project,
    events: list[tuple[int, ValidEvent]],
    answers: dict[str, _AnswerRow],
    *,
    source: str,
    now: datetime,
) -> set[str]:
    """Insert the events and apply their effects; returns the event_ids that were new."""
    # Sorted by event_id, so two batches sharing events lock them in the same order.
    inserted = dict(
        insert_ignoring_conflicts(
            "feedback_feedbackevent",
            _EVENT_COLUMNS,
            sorted(
                (
                    project.pk,
                    e.event_id,
                    e.type,
                    answers[e.answer].pk,
                    e.viewer,
                    source,
                    e.at or now,
                    now,
                    orjson.dumps(e.data).decode(),
                )
                for _, e in events
            ),
            conflict="project_id, event_id",
            returning="event_id, id",
        )
    )
    exposures: list[tuple[Any, ...]] = []
    reactions: list[tuple[Any, ...]] = []
    records: defaultdict[type[Model], list[Model]] = defaultdict(list)
    for _, e in events:
        event_pk = inserted.get(e.event_id)
        if event_pk is None:
            continue  # a concurrent request recorded it first
        answer = answers[e.answer]
        at = e.at or now
        if e.type == "exposure":
            exposures.append(
                (
                    answer.pk,
                    e.viewer,
                    window_start(at, project.exposure_window) if source == Source.BROWSER else at,
                    project.pk,
                    e.data["surface"],
                    source,
                    event_pk,
                    at,
                )
            )
        elif e.type == "reaction":
            reactions.append(
                (project.pk, answer.pk, e.viewer, e.data["reaction"], source, event_pk, at)
            )
        elif e.type == "unreaction":
            _reactions_insert(reactions)  # the reactions before it in the batch come first
            reactions = []
            Reaction.objects.filter(
                answer_id=answer.pk,
                viewer=e.viewer,
                kind=e.data["reaction"],
                removed_at__isnull=True,
            ).update(removed_at=at, removed_by_id=event_pk)
        else:
            model, fields = _RECORDS[e.type]
            about = (
                {"answer_a_id": answer.pk, "answer_b_id": answers[e.data["other_answer"]].pk}
                if e.type == "comparison"
                else {"answer_id": answer.pk}
            )
            records[model].append(
                model(
                    project=project,
                    viewer=e.viewer,
                    source=source,
                    event_id=event_pk,
                    created_at=at,
                    **about,
                    **{name: e.data[name] for name in fields},
                )
            )
    # One INSERT per kind of record, whatever the batch size (reactions: per run of them
    # between unreactions).
    _reactions_insert(reactions)
    seen_before = _exposures_insert(exposures, source=source)
    for model, rows in records.items():
        model._default_manager.bulk_create(rows)
    return {event_id for event_id, pk in inserted.items() if pk not in seen_before}


def _reactions_insert(rows: list[tuple[Any, ...]]) -> None:
    """Insert reactions given as (project, answer, viewer, kind, source, event, created at),
    in their order: of two alike (one viewer, answer and kind) the first is the active one."""
    insert_ignoring_conflicts(
        "feedback_reaction",
        "project_id, answer_id, viewer, kind, source, event_id, created_at",
        rows,
        conflict="answer_id, viewer, kind",
        conflict_where="removed_at IS NULL",
        returning="id",
    )


def _exposures_insert(rows: list[tuple[Any, ...]], *, source: str) -> set[int]:
    """Insert exposures given as (answer, viewer, window start, project, surface, source, event,
    shown at). The one place exposures are written, for pages and API alike.

    A signed-in viewer is exposed to an answer once per window, however the sighting arrives
    (a page, the session API, both at once): the unique constraint on (answer, viewer,
    window_start) decides, and a sighting already recorded is skipped. Its event, inserted a
    moment ago in this transaction, is removed again, so the event reports `duplicate` and
    nothing of it is written. Returns the pks of those removed events."""
    if source == Source.BROWSER:
        # In key order, so two requests exposing one viewer to the same answers wait for each
        # other's rows in one order, never in a cycle. Other sources meet no constraint and
        # keep the order of their events.
        rows = sorted(rows)
    recorded = {
        event_pk
        for (event_pk,) in insert_ignoring_conflicts(
            "feedback_exposure",
            "answer_id, viewer, window_start, project_id, surface, source, event_id, shown_at",
            rows,
            conflict="answer_id, viewer, window_start",
            conflict_where="source = 'browser'",
            returning="event_id",
        )
    }
    skipped = [row[6] for row in rows if row[6] not in recorded]
    if skipped:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM feedback_feedbackevent WHERE id IN ("  # noqa: S608 (placeholders)
                + ", ".join(["%s"] * len(skipped))
                + ")",
                skipped,
            )
    return set(skipped)


def window_start(at: datetime, window: timedelta) -> datetime:
    """The start of the fixed exposure window that `at` falls in."""
    seconds = max(1, int(window.total_seconds()))
    return datetime.fromtimestamp(int(at.timestamp()) // seconds * seconds, tz=at.tzinfo)


def exposures_record_views(
    *, project: Project, viewer: str, answers: Sequence[Answer], surface: str
) -> None:
    """The browser showed `answers` to `viewer`: one exposure per answer and exposure window.
    The event_id names the window, so a reload inside it is a duplicate and writes nothing; an
    exposure the session API recorded in the window makes it a duplicate too."""
    now = timezone.now()
    start = int(window_start(now, project.exposure_window).timestamp())
    _record(
        project,
        [
            {
                "event_id": page_view_event_id(
                    viewer=viewer, answer_id=answer.pk, window_start=start
                ),
                "type": "exposure",
                "answer": answer.external_id,
                "surface": surface,
            }
            for answer in answers
        ],
        source="browser",
        viewer=viewer,
        page_views=True,
    )


def reaction_toggle(
    *, project: Project, answer: Answer, viewer: str, kind: str, event_id: str
) -> FeedbackResult:
    """A click on a reaction button: removes the viewer's active reaction of that kind, or adds
    one. Two clicks racing each other leave at most one active reaction (the constraint)."""
    active = Reaction.objects.filter(
        answer=answer, viewer=viewer, kind=kind, removed_at__isnull=True
    ).exists()
    event = {
        "event_id": event_id,
        "type": "unreaction" if active else "reaction",
        "answer": answer.external_id,
        "reaction": kind,
    }
    return feedback_record(project=project, items=[event], source="browser", viewer=viewer)[0]
