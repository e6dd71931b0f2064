"""The outbound HTTP policy, against real local servers over real sockets: which destinations
are refused (every spelling of an internal address, before and after DNS), that the connection
goes to the address that was checked, and that redirects, proxies from the environment and
credentials in URLs lead nowhere.

Names that must resolve in a particular way are answered by the `dns` fixture (tests/conftest.py).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from feedback.core import outbound
from tests.conftest import Dns
from tests.rewardmodels.chat_server import ChatServer

NOTHING_ALLOWED: frozenset[str] = frozenset()


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with ChatServer() as running:
        yield running


def port_of(server: ChatServer) -> int:
    port = urlsplit(server.url).port
    assert port is not None
    return port


# --- which destinations are refused ----------------------------------------------------------

# 127.0.0.1 as the resolver reads it: each one reaches the test server on a machine where
# nothing is checked.
LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "127.1",  # a short form: the last number fills the remaining bytes
    "2130706433",  # one decimal number
    "0x7f000001",  # one hexadecimal number
    "017700000001",  # one octal number
    "0x7f.1",
    "localhost",  # a name that resolves to it
    "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
    "[::ffff:7f00:1]",
    "0",  # 0.0.0.0, which Linux connects to the local host
]


@pytest.mark.usefixtures("nothing_allowed")
@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_every_spelling_of_the_local_host_is_refused_before_anything_is_sent(
    server: ChatServer, host: str
) -> None:
    # given a server on 127.0.0.1 and an outbound client that allows no internal host
    url = f"http://{host}:{port_of(server)}/v1/models"

    # when it is asked to call the server under another spelling
    with outbound.client(timeout=5) as client, pytest.raises(outbound.DestinationRefused) as raised:
        client.get(url)

    # then the call is refused, naming the host, and the server received nothing
    assert f"Requests to {host.strip('[]')} are not allowed" in raised.value.message
    assert "address" in raised.value.message
    assert server.requests == []


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1:8000/v1", "loopback"),
        ("http://0177.0.0.1/", "loopback"),  # octal dotted
        ("http://127.000.000.001/", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://localhost:11434/v1", "loopback"),
        ("http://[::1]:8000/", "loopback"),
        ("http://[0:0:0:0:0:0:0:1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 around 127.0.0.1
        ("http://10.0.0.5/", "private"),
        ("http://10.1/", "private"),
        ("http://172.16.3.4/", "private"),
        ("http://192.168.1.1/admin", "private"),
        ("http://[fc00::1]/", "private"),
        ("http://[64:ff9b::a00:5]/", "private"),  # NAT64 around 10.0.0.5
        ("http://169.254.169.254/latest/meta-data/", "link-local"),  # cloud metadata
        ("http://[fe80::1]/", "link-local"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://255.255.255.255/", "reserved"),
        ("http://0.0.0.0:8000/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://100.64.0.1/", "non-public"),  # shared address space (carrier NAT)
    ],
)
def test_internal_addresses_are_refused_when_a_url_is_checked(url: str, kind: str) -> None:
    # when a URL pointing into an internal range is checked with nothing allowed
    problem = outbound.destination_problem(url, allowed=NOTHING_ALLOWED)

    # then it is refused, naming the kind of range
    assert problem is not None
    assert f" {kind} address" in problem
    assert "OUTBOUND_ALLOWED_HOSTS" in problem


@pytest.mark.parametrize(
    "url",
    [
        "https://api.openai.com/v1",  # does not resolve here: checked again at every call
        "http://8.8.8.8/",
        "https://[2606:4700:4700::1111]/dns-query",
        "http://[::ffff:8.8.8.8]/",
    ],
)
def test_public_and_unresolvable_destinations_pass_the_check(url: str) -> None:
    assert outbound.destination_problem(url, allowed=NOTHING_ALLOWED) is None


def test_a_name_that_resolves_to_an_internal_address_is_refused_without_telling_the_address(
    dns: Dns,
) -> None:
    # given a name that resolves to a private address
    dns("billing.corp.example", [["10.20.30.40"]])

    # when a URL with that name is checked
    problem = outbound.destination_problem(
        "https://billing.corp.example/api", allowed=NOTHING_ALLOWED
    )

    # then it is refused as resolving into a private range, without saying where it resolved to
    assert problem is not None
    assert "billing.corp.example" in problem
    assert "resolves to a private address" in problem
    assert "10.20.30.40" not in problem


def test_one_internal_address_among_public_ones_is_enough_to_refuse(
    dns: Dns,
) -> None:
    dns("mixed.example", [["93.184.215.14", "127.0.0.1"]])

    assert outbound.destination_problem("http://mixed.example/", allowed=NOTHING_ALLOWED)


@pytest.mark.parametrize(
    "url",
    ["https://user:pw@pipeline.example.org/", "https://:token@pipeline.example.org/"],
)
def test_credentials_in_a_url_are_refused(url: str) -> None:
    assert outbound.destination_problem(url) == "Must not contain a user name or password."


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.0.0.1", "::1", "::ffff:10.0.0.1", "fe80::1", "2001:db8::1", "::"],
)
def test_refused_range_names_internal_addresses(address: str) -> None:
    assert outbound.refused_range(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_refused_range_passes_public_addresses(address: str) -> None:
    assert outbound.refused_range(ipaddress.ip_address(address)) is None


# --- the allowlist ---------------------------------------------------------------------------


def test_a_listed_host_may_be_internal(server: ChatServer, settings: Any) -> None:
    # given the local host listed by name
    settings.OUTBOUND_ALLOWED_HOSTS = ["LocalHost"]

    # when the server is called by that name
    with outbound.client(timeout=5) as client:
        reply = client.get(f"http://localhost:{port_of(server)}/v1/models")

    # then the call goes through
    assert reply.status_code == 200
    assert [r.path for r in server.requests] == ["/v1/models"]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "2130706433"])
def test_the_allowlist_matches_the_host_as_written_not_what_it_resolves_to(
    server: ChatServer, settings: Any, host: str
) -> None:
    # given only the name "localhost" listed
    settings.OUTBOUND_ALLOWED_HOSTS = ["localhost"]

    # when the same server is called by an address
    with outbound.client(timeout=5) as client, pytest.raises(outbound.DestinationRefused):
        client.get(f"http://{host}:{port_of(server)}/v1/models")

    # then it is refused: listing a name allows that name, not everything internal
    assert server.requests == []


def test_the_test_settings_allow_the_local_test_servers(settings: Any) -> None:
    # The tests' environment lists the local host (pyproject.toml); production lists nothing.
    assert outbound.allowed_hosts() >= {"localhost", "127.0.0.1"}
    assert outbound.destination_problem("http://127.0.0.1:8000/v1") is None


# --- the connection goes to the checked address ----------------------------------------------


@pytest.mark.usefixtures("nothing_allowed")
def test_a_name_that_rebinds_to_the_local_host_after_the_check_is_refused_at_the_call(
    server: ChatServer, dns: Dns
) -> None:
    # given a name that resolves to a public address when the URL is saved, then to 127.0.0.1
    dns("rebind.example", [["93.184.215.14"], ["127.0.0.1"]])
    url = f"http://rebind.example:{port_of(server)}/v1/models"
    assert outbound.destination_problem(url) is None

    # when it is called
    with outbound.client(timeout=5) as client, pytest.raises(outbound.DestinationRefused) as raised:
        client.get(url)

    # then the call resolves the name again, sees the local host, and sends nothing
    assert "rebind.example" in raised.value.message
    assert server.requests == []


def test_the_connection_goes_to_the_address_that_was_checked(
    server: ChatServer, settings: Any, dns: Dns
) -> None:
    # given an allowed name that resolves to the server's address once, and elsewhere after
    settings.OUTBOUND_ALLOWED_HOSTS = ["pipeline.internal.example"]
    looked_up = dns("pipeline.internal.example", [["127.0.0.1"], ["192.0.2.1"]])

    # when it is called
    with outbound.client(timeout=5) as client:
        reply = client.get(f"http://pipeline.internal.example:{port_of(server)}/v1/models")

    # then the name was resolved once, the server got the request under that name, and no
    # second lookup could send the connection anywhere else
    assert reply.status_code == 200
    assert looked_up == ["pipeline.internal.example"]
    [request] = server.requests
    assert request.headers["host"] == f"pipeline.internal.example:{port_of(server)}"


def test_the_backend_connects_to_the_checked_ip_literal(server: ChatServer, dns: Dns) -> None:
    # given a name resolving to the server's address
    dns("checked.example", [["127.0.0.1"], ["192.0.2.1"]])
    backend = outbound.CheckedBackend(allowed=frozenset({"checked.example"}))

    # when the network backend opens a connection to the name
    stream = backend.connect_tcp("checked.example", port_of(server), timeout=5)

    # then the socket is connected to the address that was checked
    try:
        sock = stream.get_extra_info("socket")
        assert sock.getpeername() == ("127.0.0.1", port_of(server))
    finally:
        stream.close()


# --- redirects, proxies, credentials ---------------------------------------------------------


def test_a_redirect_is_not_followed(server: ChatServer, settings: Any) -> None:
    # given an allowed server that redirects to another local server
    settings.OUTBOUND_ALLOWED_HOSTS = ["localhost"]
    with ChatServer() as internal:
        server.responder = lambda body: (302, {"Location": f"{internal.url}/chat/completions"}, b"")

        # when the first one is called
        with outbound.client(timeout=5) as client:
            reply = client.post(
                f"http://localhost:{port_of(server)}/v1/chat/completions", json={"x": 1}
            )

        # then the redirect comes back as it is, and the other server received nothing
        assert reply.status_code == 302
        assert internal.requests == []


def test_proxies_from_the_environment_are_not_used(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a proxy named by the environment
    with ChatServer() as proxy:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{port_of(proxy)}")
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)

        # when a destination is called
        with outbound.client(timeout=5) as client:
            reply = client.get(f"{server.url}/models")

        # then the request went straight to it
        assert reply.status_code == 200
        assert proxy.requests == []
        assert len(server.requests) == 1


def test_credentials_in_the_url_are_refused_at_the_call(server: ChatServer) -> None:
    url = f"http://user:pw@127.0.0.1:{port_of(server)}/v1/models"

    with outbound.client(timeout=5) as client, pytest.raises(outbound.DestinationRefused):
        client.get(url)

    assert server.requests == []


# --- describing an error reply ---------------------------------------------------------------


def test_an_error_reply_is_described_by_status_and_host_and_its_body_is_only_logged(
    server: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    # given a server whose error reply carries something secret
    leaked = "internal-admin-token=ZX81-secret " * 100
    server.responder = lambda body: (500, {}, leaked.encode())

    # when the reply is described
    with outbound.client(timeout=5) as client, caplog.at_level(logging.DEBUG, "feedback.core"):
        reply = client.post(f"{server.url}/chat/completions", json={})
        message = outbound.status_message(reply, service="The generator")

    # then the message names the status and the host only; the body is in the DEBUG log, cut
    assert message == (
        f"The generator at 127.0.0.1:{port_of(server)} answered HTTP 500 (Internal Server Error)"
    )
    [record] = [r for r in caplog.records if r.name == "feedback.core.outbound"]
    assert record.levelno == logging.DEBUG
    assert "ZX81-secret" in record.getMessage()
    assert len(record.getMessage()) < len(leaked)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:pw@llm.example.org/v1?key=1", "https://llm.example.org/v1?key=1"),
        ("https://llm.example.org/v1", "https://llm.example.org/v1"),
        ("http://[::1", ""),
    ],
)
def test_redact_url_drops_the_user_info(url: str, expected: str) -> None:
    assert outbound.redact_url(url) == expected


def test_host_of_names_host_and_port_only() -> None:
    assert outbound.host_of("https://u:p@llm.example.org:8443/v1?key=s") == "llm.example.org:8443"
    assert outbound.host_of(httpx.URL("http://[::1]:8000/v1")) == "[::1]:8000"
