"""A fake OpenAI-compatible chat completions server for tests, over real HTTP.

The generator is a service the project does not own, so tests mock it, and only over real HTTP:
the real `httpx` client, real sockets, real status codes and headers.

API
---
``ChatServer(*, responder=None, delay=0.0, default_count=5)``
    A `ThreadingHTTPServer` on 127.0.0.1 with a free port, served from a daemon thread. Use it as a
    context manager (``with ChatServer() as server:``) or call ``start()`` / ``stop()``; a pytest
    fixture is just ``with ChatServer() as server: yield server``.

``server.url``
    The base URL, ending in ``/v1`` (give it to ``GeneratorSettings(base_url=...)``). It answers
    ``POST /v1/chat/completions`` and ``GET /v1/models``; anything else is a 404.

``server.requests``
    Every request received, in arrival order, as `Received(path, headers, body)`: headers with
    lower-case names, body the parsed JSON (None when absent or not JSON). ``server.completions``
    is the same list restricted to chat completion requests, ``server.max_in_flight`` the largest
    number of requests being handled at once (to prove concurrency).

``server.responder``
    A callable ``(body) -> (status, headers, payload) | None`` deciding each chat completion's
    answer; `payload` is bytes (sent as is) or a dict (sent as JSON). Returning None, or leaving
    it unset, gives the default answer. Assignable at any time. `sequence(...)` scripts a list of
    answers that are given one per request, then falls back to the default.

``server.delay``
    Seconds to wait before answering each request (timeouts, concurrency). ``stop()`` cuts the
    wait short.

Default answers (`default_response(body)`)
    * structured output (``response_format.json_schema.name``): ``"categories"`` gives
      ``{"categories": ["Category 1", ...]}``, ``"prompts"`` gives ``{"prompts": ["Prompt 1
      [<digest>]", ...]}`` where <digest> comes from the last user message, so prompts differ
      between requests but are the same for the same request; any other schema gets each required
      property filled (arrays of strings, strings, numbers, booleans). The number of items is the
      N of "exactly N" in the last user message, else `default_count`.
    * plain requests: `answer_for(last user message)`, i.e. ``"Answer to: <first 60 chars>
      #<8 hex of its sha256>"``, so tests can tell which prompt an answer belongs to.

Helpers to build payloads: `completion(content, *, refusal=None, finish_reason="stop")` and
`error(message)` (the OpenAI error shape).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import orjson

Payload = bytes | dict[str, Any]
Response = tuple[int, dict[str, str], Payload]
Responder = Callable[[Any], Response | None]

_EXACTLY = re.compile(r"\bexactly (\d+)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


def completion(
    content: str | None, *, refusal: str | None = None, finish_reason: str = "stop"
) -> dict[str, Any]:
    """A chat completion object as OpenAI returns it, with one choice."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if refusal is not None:
        message["refusal"] = refusal
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": "fake-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def error(message: str, *, kind: str = "invalid_request_error") -> dict[str, Any]:
    """An error body in OpenAI's shape."""
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def last_user_message(body: Any) -> str:
    """The content of the last user message of a chat request ("" if none)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else ""
    return ""


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def answer_for(user_message: str) -> str:
    """The default plain-text answer to a request whose last user message is `user_message`."""
    return f"Answer to: {user_message[:60]} #{digest(user_message)}"


def requested_count(body: Any, default: int) -> int:
    """The N of "exactly N" in the last user message, else `default`."""
    match = _EXACTLY.search(last_user_message(body))
    return int(match.group(1)) if match else default


def default_response(body: Any, *, default_count: int = 5) -> Response:
    """A sensible answer to any chat completion request; see the module docstring."""
    if not isinstance(body, dict):
        return 400, {}, error("The body must be a JSON object.")
    user = last_user_message(body)
    response_format = body.get("response_format")
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return 200, {}, completion(answer_for(user))
    json_schema = response_format.get("json_schema") or {}
    name = json_schema.get("name")
    n = requested_count(body, default_count)
    content: dict[str, Any]
    if name == "categories":
        content = {"categories": [f"Category {i + 1}" for i in range(n)]}
    elif name == "prompts":
        content = {"prompts": [f"Prompt {i + 1} [{digest(user)}]" for i in range(n)]}
    else:
        content = _fill(json_schema.get("schema") or {}, n)
    return 200, {}, completion(orjson.dumps(content).decode())


def _fill(schema: dict[str, Any], n: int) -> dict[str, Any]:
    filled: dict[str, Any] = {}
    properties = schema.get("properties") or {}
    for key in schema.get("required") or list(properties):
        kind = (properties.get(key) or {}).get("type")
        if kind == "array":
            filled[key] = [f"{key} {i + 1}" for i in range(n)]
        elif kind in ("integer", "number"):
            filled[key] = 1
        elif kind == "boolean":
            filled[key] = True
        elif kind == "object":
            filled[key] = {}
        else:
            filled[key] = key
    return filled


def sequence(*responses: Response | None) -> Responder:
    """A responder giving `responses` one per request, in order (None: the default answer for
    that request), then the default answer. Thread-safe."""
    remaining = list(responses)
    lock = threading.Lock()

    def respond(body: Any) -> Response | None:
        with lock:
            return remaining.pop(0) if remaining else None

    return respond


class ChatServer:
    """See the module docstring."""

    def __init__(
        self,
        *,
        responder: Responder | None = None,
        delay: float = 0.0,
        default_count: int = 5,
    ) -> None:
        self.responder = responder
        self.delay = delay
        self.default_count = default_count
        self.requests: list[Received] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> Self:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- inspection --------------------------------------------------------------------------

    @property
    def completions(self) -> list[Received]:
        """The chat completion requests received so far."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def reset(self) -> None:
        """Forget the requests received so far (the responder stays)."""
        with self._lock:
            self.requests.clear()
            self.max_in_flight = 0

    # -- handling (called on the server's threads) -------------------------------------------

    def _record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _done(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _respond(self, received: Received) -> Response:
        if self.delay > 0:
            self._stopping.wait(self.delay)
        if received.method == "GET" and received.path == "/v1/models":
            models = {"object": "list", "data": [{"id": "fake-model", "object": "model"}]}
            return 200, {}, models
        if received.method != "POST" or received.path != "/v1/chat/completions":
            return 404, {}, error(f"No route for {received.method} {received.path}.")
        responder = self.responder
        answer = responder(received.body) if responder is not None else None
        if answer is None:
            answer = default_response(received.body, default_count=self.default_count)
        return answer


def _handler_for(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                body = None
            received = Received(
                method=method,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            server._record(received)
            try:
                status, headers, payload = server._respond(received)
                data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
                self.send_response(status)
                names = {k.lower() for k in headers}
                if "content-type" not in names:
                    self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test); nothing to tell it
            finally:
                server._done()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Quiet: pytest shows the test's own output, not an access log."""

    return Handler


__all__ = [
    "ChatServer",
    "Received",
    "Responder",
    "Response",
    "answer_for",
    "completion",
    "default_response",
    "error",
    "last_user_message",
    "requested_count",
    "sequence",
]
