"""The PostgreSQL backend's health check asks the server nothing while a kept connection is
quiet, and still replaces a connection the server dropped before a request uses it."""

from __future__ import annotations

import select
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from feedback.core.postgresql.base import connection_is_quiet

pytestmark = pytest.mark.django_db(transaction=True)


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid: int = cursor.fetchone()[0]
        return pid


def next_request_starts() -> None:
    """What Django does between two requests on a kept connection."""
    connection.close_if_unusable_or_obsolete()


def wait_until_readable(raw: psycopg.Connection[Any]) -> None:
    select.select([raw.pgconn.socket], [], [], 10)


def test_the_engine_is_this_backend() -> None:
    assert settings.DATABASES["default"]["ENGINE"] == "feedback.core.postgresql"
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


def test_a_quiet_connection_is_kept_without_a_query(monkeypatch: pytest.MonkeyPatch) -> None:
    pid = backend_pid()
    asked: list[bool] = []

    def is_usable() -> bool:
        asked.append(True)
        return True

    monkeypatch.setattr(connection, "is_usable", is_usable)

    next_request_starts()
    again = backend_pid()

    assert again == pid
    assert asked == []


def test_a_connection_the_server_dropped_is_replaced_before_the_next_request() -> None:
    pid = backend_pid()
    with psycopg.connect(
        **{k: v for k, v in connection.get_connection_params().items() if k != "cursor_factory"},
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    assert connection.connection is not None
    wait_until_readable(connection.connection)
    assert not connection_is_quiet(connection.connection)

    next_request_starts()
    again = backend_pid()  # would raise OperationalError on the dropped connection

    assert again != pid


def test_a_connection_inside_a_transaction_is_not_quiet() -> None:
    backend_pid()
    assert connection.connection is not None
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        try:
            assert not connection_is_quiet(connection.connection)
        finally:
            cursor.execute("ROLLBACK")
    assert connection_is_quiet(connection.connection)
