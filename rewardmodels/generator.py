"""A client for any OpenAI-compatible chat completions server (vLLM, Ollama, llama.cpp, OpenAI).

C3PO builds its dataset by asking a generator model for categories, prompts, baseline answers and
revisions: thousands of calls to a server we don't run. This module is the one place that talks to
it, so the rest of the build can assume a call either returns usable data or raises a
`GeneratorError` whose `message` can be shown to the user as the reason a stage stopped.

No ORM: the service owns the database; `ChatClient.map` hands every result back in the calling
thread so the service can write it on its own connection. Requests go out through
`feedback.core.outbound`, so they reach only allowed destinations, never follow a redirect, and an
error reply is described by its status and host: its body is never put in a message.

Failure policy, per call (`GeneratorSettings.max_attempts` attempts across all of these):

* connection errors, timeouts, HTTP 429 and 5xx are transient: retried after a backoff that doubles
  from `backoff` (a `Retry-After` header in seconds is honoured instead, capped at 60 s);
* a reply that is not usable (empty content, invalid JSON, JSON of the wrong shape) is resampled at
  once: the server is fine, the model's sample was not;
* any other 4xx (bad request, wrong key, unknown model), a 3xx (redirects are not followed),
  refusals and a destination that is not allowed would fail the same way again, so they stop at
  once.

The API key is sent only as a Bearer header and is scrubbed from every error message.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import httpx
import orjson

from feedback.core import outbound
from feedback.core.crypto import UnreadableSecret

logger = logging.getLogger(__name__)

T = TypeVar("T")
X = TypeVar("X")
Y = TypeVar("Y")

GeneratorErrorKind = Literal["unreachable", "timeout", "http", "malformed", "refused", "invalid"]
_KINDS: frozenset[str] = frozenset(
    ("unreachable", "timeout", "http", "malformed", "refused", "invalid")
)

RETRY_AFTER_CAP = 60.0
"""Seconds: a server asking for a longer pause is treated as asking for this one, so a stage never
hangs for an hour on one header."""

_MAX_QUOTE = 500
"""Characters of a model's refusal quoted in a message."""


class GeneratorError(Exception):
    """Stops a build's stage; `message` is shown to the user as the reason.

    `kind` lets the caller react without parsing text: "unreachable", "timeout", "http",
    "malformed", "refused" or "invalid" (settings or input that can never work)."""

    def __init__(self, message: str, *, kind: GeneratorErrorKind) -> None:
        if kind not in _KINDS:
            raise ValueError(f"unknown GeneratorError kind {kind!r}")
        super().__init__(message)
        self.message = message
        self.kind: GeneratorErrorKind = kind

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        """`kind` is keyword-only, which the default pickling (cls(*args)) cannot pass; an error
        crossing a process boundary (a task result, a test worker) must survive the trip."""
        return (functools.partial(type(self), kind=self.kind), (self.message,))


@dataclass(frozen=True, slots=True)
class GeneratorSettings:
    """Where the generator is and how patiently to talk to it."""

    base_url: str
    """e.g. http://localhost:8000/v1 ; requests go to f"{base_url.rstrip('/')}/chat/completions"."""
    model: str
    api_key: str | UnreadableSecret = ""
    """Sent as `Authorization: Bearer` only when non-empty; never logged or put in messages. A
    stored key the current keys can't decrypt fails every call."""
    temperature: float = 0.7
    concurrency: int = 4
    timeout: float = 60.0
    """Seconds per request (connect, and each wait for the server's bytes)."""
    max_attempts: int = 4
    """Per call, across all retryable failures."""
    backoff: float = 1.0
    """First wait in seconds; doubles on each retry; Retry-After overrides it (capped at 60)."""

    def __post_init__(self) -> None:
        """Reject settings that can never work here, where the mistake is, rather than as an odd
        failure in the middle of a build."""
        problems = []
        if not self.base_url.startswith(("http://", "https://")):
            problems.append("base_url must start with http:// or https://")
        if not self.model.strip():
            problems.append("model must not be empty")
        if self.concurrency < 1:
            problems.append("concurrency must be at least 1")
        if self.max_attempts < 1:
            problems.append("max_attempts must be at least 1")
        if not self.timeout > 0:
            problems.append("timeout must be positive")
        if self.backoff < 0:
            problems.append("backoff must not be negative")
        if problems:
            raise GeneratorError(
                "Invalid generator settings: " + "; ".join(problems), kind="invalid"
            )

    def __repr__(self) -> str:
        """The default repr would print the key into logs and tracebacks."""
        key = "***" if self.api_key else ""
        return (
            f"GeneratorSettings(base_url={_display_url(self.base_url)!r}, model={self.model!r}, "
            f"api_key={key!r}, temperature={self.temperature!r}, "
            f"concurrency={self.concurrency!r}, timeout={self.timeout!r}, "
            f"max_attempts={self.max_attempts!r}, backoff={self.backoff!r})"
        )


class _Retry(Exception):
    """One failed attempt that another attempt may fix. `wait` is the pause before the next
    one (None: the usual exponential backoff); `error` is what the caller sees if none is left."""

    def __init__(self, error: GeneratorError, *, wait: float | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.wait = wait


class ChatClient:
    """Calls `POST {base_url}/chat/completions`, retrying what is transient (see the module
    docstring). Thread-safe: one `httpx.Client` (itself thread-safe) is shared by `map`'s
    workers, so connections are reused across calls."""

    def __init__(
        self, settings: GeneratorSettings, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._settings = settings
        self._sleep = sleep
        self._url = f"{settings.base_url.rstrip('/')}/chat/completions"
        self._host = outbound.host_of(self._url)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if settings.api_key:
            headers["Authorization"] = f"Bearer {settings.api_key}"
        self._http = outbound.client(
            timeout=settings.timeout,
            headers=headers,
            limits=httpx.Limits(
                max_connections=max(100, settings.concurrency),
                max_keepalive_connections=max(20, settings.concurrency),
            ),
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- calls -------------------------------------------------------------------------------

    def complete_text(self, messages: list[dict[str, str]]) -> str:
        """The model's reply to `messages` as plain text."""
        body = self._body(messages)
        return self._call(body, lambda content: content)

    def complete_json(
        self,
        messages: list[dict[str, str]],
        *,
        name: str,
        schema: dict[str, Any],
        validate: Callable[[Any], T],
    ) -> T:
        """The model's reply constrained to `schema` (structured output), parsed and passed
        through `validate`, which raises ValueError when the shape is wrong. Servers and models
        don't always honour the schema exactly, so invalid JSON or a rejected shape is resampled
        (each try counts as an attempt) and reported as kind "malformed" once attempts run out."""
        body = self._body(messages)
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True},
        }

        def interpret(content: str) -> T:
            try:
                parsed = orjson.loads(_strip_code_fence(content))
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"the reply is not valid JSON ({exc})") from exc
            try:
                return validate(parsed)
            except ValueError as exc:
                raise ValueError(f"the JSON does not have the expected shape: {exc}") from exc

        return self._call(body, interpret)

    def map(
        self,
        fn: Callable[[X], Y],
        items: Sequence[X],
        *,
        on_result: Callable[[int, Y], None],
    ) -> None:
        """Run `fn` over `items` on `concurrency` threads; `on_result(index, result)` is called in
        the calling thread as results arrive, in completion order, so the caller can store each
        one on its own database connection (and a resumed build loses nothing finished).

        At most `concurrency` items are in flight. The first exception (from `fn` or from
        `on_result`) stops submitting new items; the running ones are waited for (their results
        are still delivered unless `on_result` itself failed), then the exception is re-raised."""
        limit = self._settings.concurrency
        queue: Iterator[tuple[int, X]] = iter(enumerate(items))
        pending: dict[Future[Y], int] = {}
        error: BaseException | None = None
        deliver = True
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="generator") as pool:

            def fill() -> None:
                while error is None and len(pending) < limit:
                    nxt = next(queue, None)
                    if nxt is None:
                        return
                    pending[pool.submit(fn, nxt[1])] = nxt[0]

            fill()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=pending.__getitem__):
                    index = pending.pop(future)
                    failure = future.exception()
                    if failure is not None:
                        error = error or failure
                        continue
                    if not deliver:
                        continue
                    try:
                        on_result(index, future.result())
                    except BaseException as exc:
                        error = error or exc
                        deliver = False
                fill()
        if error is not None:
            raise error

    # -- internals ---------------------------------------------------------------------------

    def _body(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "model": self._settings.model,
            "messages": messages,
            "temperature": self._settings.temperature,
        }

    def _call(self, body: dict[str, Any], interpret: Callable[[str], T]) -> T:
        """POST `body` until `interpret(content)` returns, a non-retryable error is raised, or
        attempts run out (then the last attempt's error is raised)."""
        if isinstance(self._settings.api_key, UnreadableSecret):
            raise GeneratorError(
                "The generator's API key can't be decrypted with the current keys (the "
                "encryption key changed): save the generator again with its key.",
                kind="invalid",
            )
        payload = orjson.dumps(body)
        attempts = self._settings.max_attempts
        last: _Retry | None = None
        transient = 0
        for attempt in range(1, attempts + 1):
            if last is not None and last.wait != 0:
                pause = last.wait
                if pause is None:
                    pause = self._settings.backoff * 2 ** (transient - 1)
                self._sleep(min(pause, RETRY_AFTER_CAP))
            try:
                return self._attempt(payload, interpret)
            except _Retry as retry:
                last = retry
                if retry.wait != 0:
                    transient += 1
                logger.warning(
                    "generator attempt %d/%d failed (%s): %s",
                    attempt,
                    attempts,
                    retry.error.kind,
                    retry.error.message,
                )
        assert last is not None
        raise GeneratorError(
            f"{last.error.message} (gave up after {attempts} attempt"
            f"{'s' if attempts != 1 else ''})",
            kind=last.error.kind,
        )

    def _attempt(self, payload: bytes, interpret: Callable[[str], T]) -> T:
        """One request. Raises `_Retry` for what another attempt may fix, `GeneratorError` for
        what it cannot."""
        try:
            response = self._http.post(self._url, content=payload)
        except outbound.DestinationRefused as refused:
            raise self._error(refused.message, kind="invalid") from None
        except httpx.InvalidURL:
            raise self._error(
                "The generator's base_url is not a valid http(s) URL.", kind="invalid"
            ) from None
        except httpx.TimeoutException:
            raise _Retry(
                self._error(
                    f"The generator at {self._host} did not answer within "
                    f"{self._settings.timeout:g} s",
                    kind="timeout",
                ),
                wait=None,
            ) from None
        except httpx.TransportError as exc:
            raise _Retry(
                self._error(
                    f"Cannot reach the generator at {self._host}: {exc or type(exc).__name__}",
                    kind="unreachable",
                ),
                wait=None,
            ) from None

        status = response.status_code
        if status == 429 or status >= 500:
            raise _Retry(
                self._error(self._status_message(response), kind="http"),
                wait=_retry_after(response.headers.get("retry-after")),
            )
        if not 200 <= status < 300:  # 3xx included: a redirect could lead anywhere
            raise self._error(self._status_message(response), kind="http")

        try:
            content = self._content(orjson.loads(response.content))
        except (orjson.JSONDecodeError, ValueError) as exc:
            raise _Retry(
                self._error(f"The generator's reply was not usable: {exc}", kind="malformed"),
                wait=0,
            ) from None
        try:
            return interpret(content)
        except ValueError as exc:
            raise _Retry(
                self._error(f"The generator's reply was not usable: {exc}", kind="malformed"),
                wait=0,
            ) from None

    def _content(self, reply: Any) -> str:
        """`choices[0].message.content`, after checking for refusals; ValueError for a reply of
        the wrong shape or with no text (the caller resamples those)."""
        choices = reply.get("choices") if isinstance(reply, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ValueError("the response has no choices")
        choice = choices[0]
        message = choice.get("message")
        if not isinstance(message, dict):
            raise ValueError("the first choice has no message")
        content = message.get("content")
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal.strip():
            raise self._error(f"The generator refused: {_shorten(refusal.strip())}", kind="refused")
        if choice.get("finish_reason") == "content_filter":
            detail = f": {_shorten(content.strip())}" if isinstance(content, str) else ""
            raise self._error(
                f"The generator's content filter stopped the reply{detail}", kind="refused"
            )
        if not isinstance(content, str) or not content.strip():
            raise ValueError("the reply has no content")
        return content

    def _status_message(self, response: httpx.Response) -> str:
        """The status and the host; the body (which may be anything the server chose to send
        back) goes to the DEBUG log only."""
        return outbound.status_message(response, service="The generator")

    def _error(self, message: str, *, kind: GeneratorErrorKind) -> GeneratorError:
        """Every message passes through here, so none can carry the key (a server may echo it
        back, an exception may quote a URL that embeds it)."""
        key = self._settings.api_key
        if key:
            message = message.replace(key, "***")
        return GeneratorError(message, kind=kind)


def _display_url(url: str) -> str:
    """`url` without user:password, which may hold a credential."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "<invalid URL>"
    return str(parsed.copy_with(userinfo=b"")) if parsed.userinfo else url


def _retry_after(value: str | None) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or an HTTP date), capped; None when
    absent or unreadable, meaning "use the usual backoff"."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def _shorten(text: str, limit: int = _MAX_QUOTE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _strip_code_fence(content: str) -> str:
    """Some servers ignore `response_format` and wrap the JSON in a markdown fence; accepting that
    saves an attempt."""
    text = content.strip()
    if text.startswith("```") and text.endswith("```") and len(text) >= 6:
        text = text[3:-3]
        first_line, _, rest = text.partition("\n")
        if first_line.strip().isalpha() or not first_line.strip():
            text = rest
        text = text.strip()
    return text
