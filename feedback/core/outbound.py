"""Every HTTP request the platform sends to an address that a user typed in goes through here:
pipeline connectors, C3PO generators, and whatever calls out later (webhooks).

Such an address may point inside the network the platform runs in (a cloud metadata service,
a database's admin port, a neighbour's internal API). So:

* the destination is checked after DNS resolution: every address the host name resolves to must
  be public, not loopback, private, link-local, multicast, reserved, unspecified or otherwise
  non-global, IPv4 or IPv6, including IPv4 addresses embedded in IPv6 ones (`::ffff:127.0.0.1`,
  6to4, Teredo, NAT64). The resolver reads every spelling (`2130706433`, `0177.0.0.1`, `127.1`,
  `0x7f.1`) and answers the address it means, so the check sees what the socket would connect to;
* the connection goes to the address that was checked: the host name is resolved once, inside
  the connection pool's network backend, and the socket connects to the checked IP, while TLS
  (SNI, certificate check) and the Host header keep the name. A DNS answer that changes between
  the check and the connection (rebinding) has nothing to change;
* those ranges are allowed only for hosts listed in `OUTBOUND_ALLOWED_HOSTS` (a local vLLM or
  Ollama in development), matched as written in the URL;
* redirects are not followed, proxies from the environment are not used, and a URL carrying a
  user name or password is refused (httpx would send them, and they would show in messages);
* a reply with an error status is described by its status and host only: its body can be
  anything the destination chose to say (an internal service's page, an echoed secret), so it is
  logged at DEBUG level, truncated, and never put into a message that is stored or shown.

`destination_problem` gives the same verdict for a URL being saved, so a form or API can refuse
it at once (400), and every call checks again, since DNS answers change.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpcore
import httpx
from django.conf import settings

from feedback.core.validators import url_problem

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

LOGGED_BODY_CHARS = 1000
"""How much of an error reply's body goes to the DEBUG log."""

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class DestinationRefused(Exception):
    """The destination may not be called. `message` names the host and why; it never holds an
    address the host resolved to, so it can be shown to whoever typed the URL."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- the policy ------------------------------------------------------------------------------


def normalise_host(host: str) -> str:
    """A host as the allowlist compares it: lower case, no brackets or trailing dot, and an IP
    address in its canonical form (`[0:0::1]` is `::1`)."""
    host = host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host


def allowed_hosts() -> frozenset[str]:
    """The hosts that may be in the refused ranges (setting `OUTBOUND_ALLOWED_HOSTS`)."""
    configured: Iterable[str] = getattr(settings, "OUTBOUND_ALLOWED_HOSTS", ())
    return frozenset(normalise_host(h) for h in configured if h.strip())


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries, which some networks route to: IPv4-mapped
    (`::ffff:a.b.c.d`), 6to4 (`2002::/16`), Teredo (`2001::/32`) and NAT64 (`64:ff9b::/96`)."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if any(address in network for network in _NAT64):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def refused_range(address: IPAddress) -> str | None:
    """The kind of non-public range `address` is in ("loopback", "private", ...), or None for
    a public address."""
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        # An IPv4-mapped address is the IPv4 address (the socket connects to it over IPv4);
        # the other forms are judged both as IPv6 and by the IPv4 address inside.
        candidates = [*embedded] if address.ipv4_mapped is not None else [*embedded, address]
    for candidate in candidates:
        # Most specific first: 127.0.0.1 is also "private" to the ipaddress module.
        if candidate.is_unspecified:
            return "unspecified"
        if candidate.is_loopback:
            return "loopback"
        if candidate.is_link_local:
            return "link-local"
        if candidate.is_multicast:
            return "multicast"
        if candidate.is_reserved:
            return "reserved"
        if candidate.is_private:
            return "private"
        if not candidate.is_global:  # shared address space 100.64/10 and the like
            return "non-public"
    return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to for a TCP connection, in the resolver's order.
    OSError (socket.gaierror) when it does not resolve."""
    found: list[IPAddress] = []
    for family, _, _, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(str(sockaddr[0]))
        if address not in found:
            found.append(address)
    if not found:
        raise socket.gaierror(f"{host} has no IPv4 or IPv6 address")
    return found


def _refusal(host: str, addresses: list[IPAddress]) -> str | None:
    """Why a connection to `host`, resolved to `addresses`, is refused, or None. The message
    names the host and the kind of range, not the address a name resolved to: a refused save
    must not turn the form into a lookup service for internal DNS names."""
    for address in addresses:
        kind = refused_range(address)
        if kind is None:
            continue
        article = "an" if kind[0] in "aeiou" else "a"
        is_literal = normalise_host(host) == address.compressed
        where = "is" if is_literal else "resolves to"
        return (
            f"Requests to {host} are not allowed: it {where} {article} {kind} address. Only "
            "public addresses can be called, unless an administrator lists the host in "
            "OUTBOUND_ALLOWED_HOSTS."
        )
    return None


def destination_problem(url: str, *, allowed: frozenset[str] | None = None) -> str | None:
    """Why `url` can't be saved as a destination of outbound requests, or None.

    A host name that does not resolve now is accepted (the service may not be up yet); every
    call resolves and checks it again."""
    problem = url_problem(url)
    if problem:
        return problem
    parts = urlsplit(url)
    host = parts.hostname or ""
    if normalise_host(host) not in (allowed_hosts() if allowed is None else allowed):
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError):
            addresses = []
        refusal = _refusal(host, addresses)
        if refusal:
            return refusal
    try:
        httpx.URL(url)
    except httpx.InvalidURL:
        return "Must be a valid http(s) URL."
    return None


# --- the client ------------------------------------------------------------------------------


class CheckedBackend(httpcore.SyncBackend):
    """httpcore's network backend, except that it resolves the host itself, refuses the
    connection when an address is not allowed, and connects to the address it checked."""

    def __init__(self, *, allowed: frozenset[str] | None = None) -> None:
        self._allowed = allowed

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError) as error:
            raise httpcore.ConnectError(f"{host} does not resolve ({error})") from None
        allowed = allowed_hosts() if self._allowed is None else self._allowed
        if normalise_host(host) not in allowed:
            refusal = _refusal(host, addresses)
            if refusal:
                raise DestinationRefused(refusal)
        last: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:  # as socket.create_connection does, one after another
            try:
                return super().connect_tcp(
                    address.compressed,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last = error
        assert last is not None
        raise last


class CheckedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose network backend is `CheckedBackend`."""

    def __init__(self, *, limits: httpx.Limits, allowed: frozenset[str] | None = None) -> None:
        super().__init__(limits=limits, trust_env=False)
        # HTTPTransport takes no network backend, so the pool it made is replaced by one with
        # the same limits and ours; its request handling and error mapping stay httpx's own.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=CheckedBackend(allowed=allowed),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.userinfo:
            raise DestinationRefused(
                f"Requests to {request.url.host} are not allowed with a user name or password "
                "in the URL."
            )
        return super().handle_request(request)


def client(
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    limits: httpx.Limits | None = None,
    allowed: frozenset[str] | None = None,
) -> httpx.Client:
    """An httpx client that only reaches allowed destinations (see the module docstring).
    `allowed` replaces the `OUTBOUND_ALLOWED_HOSTS` setting, which is read at each connection
    when it is None. Requests to a refused destination raise `DestinationRefused`."""
    return httpx.Client(
        transport=CheckedTransport(limits=limits or httpx.Limits(), allowed=allowed),
        timeout=timeout,
        headers=dict(headers or {}),
        follow_redirects=False,
        trust_env=False,
    )


# --- describing what happened ----------------------------------------------------------------


def redact_url(url: str) -> str:
    """`url` without its user name and password, for echoing a URL back to a page or client;
    "" when it can't even be parsed."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def host_of(url: str | httpx.URL) -> str:
    """The host (and port, when given) of `url`, the part of a URL that messages may name: the
    path and query can hold tokens, the user info a password."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except httpx.InvalidURL:
        return urlsplit(str(url)).hostname or "an invalid URL"
    host = parsed.host
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parsed.port}" if parsed.port is not None else host


def status_message(response: httpx.Response, *, service: str) -> str:
    """What may be said about a reply with an error status: "<service> at <host> answered HTTP
    <status> (<standard phrase>)". The body is logged at DEBUG level, truncated, and nowhere
    else; the reason phrase is the standard one, not the server's own."""
    host = host_of(response.request.url)
    try:
        body: Any = response.content[:LOGGED_BODY_CHARS]
    except httpx.ResponseNotRead:  # a streamed reply: nothing of it was read
        body = None
    logger.debug("%s at %s answered HTTP %s: %r", service, host, response.status_code, body)
    try:
        phrase = f" ({HTTPStatus(response.status_code).phrase})"
    except ValueError:
        phrase = ""
    return f"{service} at {host} answered HTTP {response.status_code}{phrase}"
