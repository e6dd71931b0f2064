from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections

from tests.tcp_proxy import TcpProxy


@pytest.fixture
def proxied_database(transactional_db: Any) -> Iterator[TcpProxy]:
    """Django's connections (this thread's and every new one) reach PostgreSQL through a
    TcpProxy the test can stop and start."""
    connection = connections["default"]
    original = dict(connection.settings_dict)
    proxy = TcpProxy((original["HOST"] or "127.0.0.1", int(original["PORT"] or 5432)))
    proxy.start()
    connection.close()
    connection.settings_dict["HOST"], connection.settings_dict["PORT"] = "127.0.0.1", proxy.port
    try:
        yield proxy
    finally:
        proxy.stop()
        connection.close()
        connection.settings_dict.update(original)
