"""Django's PostgreSQL backend, whose health check looks at the connection's socket before it
asks the server anything.

With CONN_HEALTH_CHECKS Django runs `SELECT 1` on a kept connection at the start of every
request that uses the database, so a connection the server dropped (a restart, a terminated
backend, an idle timeout, a proxy going away) is replaced instead of failing the request. That
round trip was an eighth of a reaction's time in the web worker. A server that drops a
connection sends its notice and closes the socket, which makes the socket readable; an idle
connection that is fine has nothing to read. So the check polls the socket without waiting,
and only when something arrived (or the connection is not idle) does it run Django's own
`SELECT 1` check, which replaces a dead connection as before.

What neither check catches is a host that vanishes without closing anything: the first query
then fails, the request answers 503 with Retry-After, and the API's outage handling drops the
connection so the retry gets a new one.
"""

from __future__ import annotations

import select
from typing import Any

import psycopg
from django.db.backends.postgresql import base

# Data to read, an error, or the other side hung up (POLLRDHUP is Linux's).
_EVENTS = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP
_EVENTS |= getattr(select, "POLLRDHUP", 0)


def connection_is_quiet(connection: psycopg.Connection[Any]) -> bool:
    """True when the connection is idle, outside a transaction, and the server sent it nothing
    since the last reply: nothing suggests that the server dropped it."""
    try:
        socket = connection.pgconn.socket
    except psycopg.Error:  # closed
        return False
    if connection.pgconn.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        return False
    poller = select.poll()
    poller.register(socket, _EVENTS)
    return not poller.poll(0)


class DatabaseWrapper(base.DatabaseWrapper):
    # Set by Django's BaseDatabaseWrapper (not in its stubs).
    health_check_enabled: bool
    health_check_done: bool

    def close_if_health_check_failed(self) -> None:
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and not self.pool
            and connection_is_quiet(self.connection)
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
