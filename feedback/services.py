"""Writes and business rules of the feedback app. Views, APIs, commands and tasks call these."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from feedback.ingest import ValidAnswer, validate_answer
from feedback.models import ApiKey, Membership, Project, Role, Scope, WorkerHeartbeat

API_KEY_PREFIX = "fbk_"
# last_used_at is written at most this often per key, so authentication stays read-only.
API_KEY_TOUCH_INTERVAL = timedelta(seconds=60)


class ServiceError(Exception):
    """A rule was broken; `field` names the input at fault when there is one."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# --- projects and members --------------------------------------------------------------------


def project_create(*, slug: str, name: str = "") -> tuple[Project, bool]:
    """Create the project, or return the existing one with that slug (idempotent)."""
    return Project.objects.get_or_create(slug=slug, defaults={"name": name or slug})


def member_set(
    *, project: Project, username: str, password: str | None, role: str
) -> tuple[Any, Membership]:
    """Create the user if needed and give them `role` in the project (idempotent)."""
    if role not in Role.values:
        raise ServiceError(
            f"Unknown role {role!r}; use one of {', '.join(Role.values)}.", field="role"
        )
    user_model = get_user_model()
    with transaction.atomic():
        user, created = user_model.objects.get_or_create(username=username)
        if password:
            user.set_password(password)
            user.save(update_fields=["password"])
        elif created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        membership, _ = Membership.objects.update_or_create(
            user=user, project=project, defaults={"role": role}
        )
    return user, membership


# --- API keys --------------------------------------------------------------------------------


def api_key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_create(
    *,
    project: Project,
    name: str,
    scopes: Iterable[str],
    created_by: User | None = None,
) -> tuple[ApiKey, str]:
    """A new key for the project. Returns the row and the raw key, which is never stored."""
    scope_list = sorted(set(scopes))
    unknown = [s for s in scope_list if s not in Scope.values]
    if unknown or not scope_list:
        raise ServiceError(
            f"Scopes must be a non-empty subset of {', '.join(Scope.values)}.", field="scopes"
        )
    name = name.strip()
    if not name or len(name) > 100:
        raise ServiceError("A key needs a name of 1 to 100 characters.", field="name")
    raw_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        project=project,
        name=name,
        prefix=raw_key[: len(API_KEY_PREFIX) + 6],
        key_hash=api_key_hash(raw_key),
        scopes=scope_list,
        created_by=created_by,
    )
    return key, raw_key


def api_key_revoke(*, project: Project, key_id: int) -> ApiKey:
    key = ApiKey.objects.get(project=project, pk=key_id)
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    key.refresh_from_db()
    return key


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key for `raw_key`, recording its use; None for an unknown or revoked key."""
    if not raw_key.startswith(API_KEY_PREFIX):
        return None
    key = (
        ApiKey.objects.select_related("project")
        .filter(key_hash=api_key_hash(raw_key), revoked_at__isnull=True)
        .first()
    )
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or key.last_used_at < now - API_KEY_TOUCH_INTERVAL:
        ApiKey.objects.filter(pk=key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - API_KEY_TOUCH_INTERVAL)
        ).update(last_used_at=now)
        key.last_used_at = now
    return key


# --- answers ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IngestResult:
    index: int
    status: Literal["created", "duplicate", "error"]
    external_id: str | None = None
    id: int | None = None
    errors: dict[str, list[str]] | None = None

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"index": self.index, "status": self.status}
        if self.external_id is not None:
            result["external_id"] = self.external_id
        if self.id is not None:
            result["id"] = self.id
        if self.errors is not None:
            result["errors"] = self.errors
        return result


def answers_ingest(*, project: Project, items: Sequence[Any]) -> list[IngestResult]:
    """Validate every item, then write all valid ones together in one transaction.

    Idempotent on (project, external_id): a replay, a repeat within the batch, or a concurrent
    request that committed the same external_id first reports `duplicate` and writes nothing.
    The database's unique constraint decides (INSERT … ON CONFLICT DO NOTHING), not a prior read.
    """
    now = timezone.now()
    results: list[IngestResult | None] = [None] * len(items)
    valid: list[tuple[int, ValidAnswer]] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        checked = validate_answer(item, now=now)
        if isinstance(checked, dict):
            external_id = item.get("external_id") if isinstance(item, dict) else None
            results[index] = IngestResult(
                index,
                "error",
                external_id=external_id if isinstance(external_id, str) else None,
                errors=checked,
            )
        elif checked.external_id in seen:
            results[index] = IngestResult(index, "duplicate", external_id=checked.external_id)
        else:
            seen.add(checked.external_id)
            valid.append((index, checked))

    if valid:
        with transaction.atomic():
            created_ids = _insert_answers(project=project, answers=[a for _, a in valid], now=now)
            _insert_stages(
                [(created_ids[a.external_id], a) for _, a in valid if a.external_id in created_ids]
            )
        for index, answer in valid:
            answer_id = created_ids.get(answer.external_id)
            status: Literal["created", "duplicate"] = "created" if answer_id else "duplicate"
            results[index] = IngestResult(
                index, status, external_id=answer.external_id, id=answer_id
            )
    return [r for r in results if r is not None]


_ANSWER_COLUMNS = (
    "project_id, external_id, conversation, user_ref, prompt, response, model, model_version, "
    "metadata, created_at"
)


def _insert_answers(
    *, project: Project, answers: list[ValidAnswer], now: datetime
) -> dict[str, int]:
    """Insert the answers that don't exist yet; returns {external_id: id} of those inserted."""
    rows = [
        (
            a.external_id,
            a.conversation,
            a.user_ref,
            a.prompt_json,
            a.response,
            a.model,
            a.model_version,
            a.metadata_json,
            a.created_at or now,
        )
        for a in answers
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement for the whole batch: arrays in, the inserted rows' ids out.
            cursor.execute(
                f"INSERT INTO feedback_answer ({_ANSWER_COLUMNS}) "  # noqa: S608 (constant)
                "SELECT %s, * FROM unnest(%s::text[], %s::text[], %s::text[], %s::jsonb[], "
                "%s::text[], %s::text[], %s::text[], %s::jsonb[], %s::timestamptz[]) "
                "ON CONFLICT (project_id, external_id) DO NOTHING RETURNING id, external_id",
                [project.pk, *(list(column) for column in zip(*rows, strict=True))],
            )
            return {external_id: answer_id for answer_id, external_id in cursor.fetchall()}
        # Portable path (the embedded SQLite default): a statement per answer.
        inserted: dict[str, int] = {}
        for row in rows:
            cursor.execute(
                f"INSERT INTO feedback_answer ({_ANSWER_COLUMNS}) "  # noqa: S608 (constant)
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (project_id, external_id) DO NOTHING RETURNING id",
                [project.pk, *row[:-1], row[-1].isoformat()],
            )
            fetched = cursor.fetchone()
            if fetched is not None:
                inserted[row[0]] = fetched[0]
        return inserted


_STAGE_COLUMNS = "answer_id, position, kind, name, parent_position, input, output"


def _insert_stages(answers: list[tuple[int, ValidAnswer]]) -> None:
    rows = [
        (
            answer_id,
            s.position,
            s.kind,
            s.name,
            s.parent_position,
            s.input_json,
            s.output_json,
        )
        for answer_id, answer in answers
        for s in answer.stages
    ]
    if not rows:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            raw_cursor = cursor.cursor  # psycopg's own cursor, for COPY
            with raw_cursor.copy(f"COPY feedback_stage ({_STAGE_COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.executemany(
                f"INSERT INTO feedback_stage ({_STAGE_COLUMNS}) "  # noqa: S608 (constant)
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                rows,
            )


# --- workers ---------------------------------------------------------------------------------


def worker_heartbeat_record(*, hostname: str) -> WorkerHeartbeat:
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"seen_at": timezone.now()}
    )
    return heartbeat
