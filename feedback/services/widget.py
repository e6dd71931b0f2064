"""Writes of the embeddable widget: viewer tokens for host apps, the feedback the widget sends,
and the widget demo's key.

The widget's events go through the same service as every other feedback (validation, the
per-viewer limits under the viewer's lock, idempotency by event_id), as source `browser`, for
the viewer its token (or anonymous id) names; on top of that, each client address may send at
most `address_limit()` events a minute, counted in the cache that every web process shares.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from feedback.core.errors import ValidationFailed
from feedback.models import Answer, ApiKey, FeedbackEvent, Project, Scope, Source
from feedback.selectors.signals import followup_due
from feedback.services.signals import FeedbackResult, feedback_record
from feedback.services.tenancy import api_key_hash
from feedback.widget import (
    DEFAULT_TTL_SECONDS,
    MAX_EVENTS,
    MAX_TTL_SECONDS,
    MIN_TTL_SECONDS,
    AddressLimited,
    WidgetEvent,
    demo_widget_key,
    origins_normalize,
    token_expiry,
    user_ref_problem,
    viewer_token_sign,
    widget_event,
)

ADDRESS_WINDOW_SECONDS = 60


def address_limit() -> int:
    """Widget events one client address may send per minute, all its viewers together
    (WIDGET_EVENTS_PER_ADDRESS_PER_MINUTE; the default leaves room for an office behind one
    address)."""
    return int(settings.WIDGET_EVENTS_PER_ADDRESS_PER_MINUTE)


def viewer_token_issue(
    *, project: Project, user_ref: str, ttl_seconds: int | None = None, site_user: bool = False
) -> tuple[str, datetime]:
    """A signed token for the widget that vouches for `user_ref` in `project` for
    `ttl_seconds` (default an hour); returns the token and when it expires. `site_user`: the
    token is for a signed-in person of the site, named as their own feedback is (`user:<pk>`),
    a name no host app may vouch for."""
    errors: dict[str, list[str]] = {}
    if not site_user and (problem := user_ref_problem(user_ref)):
        errors["user_ref"] = [problem]
    ttl = DEFAULT_TTL_SECONDS if ttl_seconds is None else ttl_seconds
    if not MIN_TTL_SECONDS <= ttl <= MAX_TTL_SECONDS:
        errors["ttl_seconds"] = [f"Must be from {MIN_TTL_SECONDS} to {MAX_TTL_SECONDS} seconds."]
    if errors:
        raise ValidationFailed(errors)
    expires_at = token_expiry(timezone.now(), ttl)
    token = viewer_token_sign(project_id=project.pk, user_ref=user_ref, expires_at=expires_at)
    return token, expires_at


def _address_charge(project: Project, address: str | None, events: int) -> None:
    """Count `events` against the address's allowance for this minute; AddressLimited once it
    is over (the refused events count too: a flood stays refused until the minute ends)."""
    now = time.time()
    window = int(now // ADDRESS_WINDOW_SECONDS)
    key = f"widget-address:{project.pk}:{window}:{address or 'unknown'}"
    # add + incr: both atomic on a shared cache, so concurrent requests are all counted.
    cache.add(key, 0, timeout=2 * ADDRESS_WINDOW_SECONDS)
    try:
        count = cache.incr(key, events)
    except ValueError:  # evicted between the add and the incr
        cache.add(key, events, timeout=2 * ADDRESS_WINDOW_SECONDS)
        count = events
    if count > address_limit():
        wait = max(1, math.ceil((window + 1) * ADDRESS_WINDOW_SECONDS - now))
        raise AddressLimited(
            f"Too much feedback from this address: at most {address_limit()} events a minute.",
            wait=wait,
        )


def widget_events_record(
    *, project: Project, viewer: str, items: Sequence[Any], address: str | None
) -> list[FeedbackResult]:
    """Record what the widget sent for `viewer`: one result per item, in order, each naming
    the event by the id the widget gave it. A follow-up is taken only once it is due for the
    viewer (as on the answer page), unless it is a retry of one already recorded."""
    if not items or len(items) > MAX_EVENTS:
        raise ValidationFailed.of("events", f"Send 1 to {MAX_EVENTS} events.")
    _address_charge(project, address, len(items))
    results: list[FeedbackResult | None] = [None] * len(items)
    shaped: list[tuple[int, WidgetEvent]] = []
    for index, item in enumerate(items):
        checked = widget_event(item, viewer=viewer)
        if isinstance(checked, WidgetEvent):
            shaped.append((index, checked))
        else:
            client_id = item.get("event_id") if isinstance(item, dict) else None
            results[index] = FeedbackResult(
                index, "error", client_id if isinstance(client_id, str) else None, checked
            )
    shaped = _followups_due(project, viewer, shaped, results)
    recorded = feedback_record(
        project=project, items=[w.item for _, w in shaped], source=Source.BROWSER, viewer=viewer
    )
    for (index, event), result in zip(shaped, recorded, strict=True):
        results[index] = dataclasses.replace(result, index=index, event_id=event.client_id)
    return [r for r in results if r is not None]


def _followups_due(
    project: Project,
    viewer: str,
    events: list[tuple[int, WidgetEvent]],
    results: list[FeedbackResult | None],
) -> list[tuple[int, WidgetEvent]]:
    followups = [(i, e) for i, e in events if e.item.get("type") == "followup"]
    if not followups:
        return events
    known = set(
        FeedbackEvent.objects.filter(
            project=project, event_id__in=[e.item["event_id"] for _, e in followups]
        ).values_list("event_id", flat=True)
    )
    answers = {
        a.external_id: a
        for a in Answer.objects.filter(
            project=project, external_id__in=[str(e.item.get("answer")) for _, e in followups]
        ).only("id", "external_id")
    }
    now = timezone.now()
    refused: set[int] = set()
    for index, event in followups:
        answer = answers.get(str(event.item.get("answer")))
        if event.item["event_id"] in known or answer is None:
            continue  # a retry reports `duplicate`; an unknown answer is named by the service
        if not followup_due(answer=answer, viewer=viewer, delay=project.followup_delay, now=now):
            results[index] = FeedbackResult(
                index,
                "error",
                event.client_id,
                {"outcome": ["There is no follow-up to answer for this answer (yet)."]},
            )
            refused.add(index)
    return [(i, e) for i, e in events if i not in refused]


def widget_demo_key_ensure(*, project: Project, origins: Iterable[str]) -> ApiKey:
    """The project's widget demo key (`demo_widget_key`), made with `origins` when it does not
    exist yet; an existing one is left as it is, revoked or not."""
    origin_list, problems = origins_normalize(list(origins))
    if problems or not origin_list:
        raise ValidationFailed({"origins": problems or ["Give at least one origin."]})
    raw_key = demo_widget_key(project.slug)
    defaults = {
        "project": project,
        "name": "Widget demo",
        "prefix": raw_key[:10],
        "scopes": [Scope.WIDGET.value],
        "origins": origin_list,
    }
    # get_or_create reads the row again when a concurrent call inserted it first.
    key, _ = ApiKey.objects.get_or_create(key_hash=api_key_hash(raw_key), defaults=defaults)
    return key
