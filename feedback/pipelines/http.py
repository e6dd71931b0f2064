"""A project's own pipeline over HTTP (the protocol is in feedback/pipelines/protocol.py).

Requests go out through `feedback.core.outbound`: only to allowed destinations, no redirects, and
an error reply is reported by its status and host, never by its body."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson

from feedback.core import outbound
from feedback.core.crypto import UnreadableSecret
from feedback.pipelines.protocol import PipelineError

RETRIES = 2  # after the first attempt, on timeouts, connection errors and 5xx
BACKOFF_SECONDS = 0.5  # doubled after each retry
MAX_TIMEOUT_SECONDS = 120  # the most a project may set per attempt (PipelineConnector)
UNDECRYPTABLE = (
    "The connector's stored secret can't be decrypted with the current keys (the encryption "
    "key changed): an owner must enter it again in the project settings."
)


def worst_case_seconds(timeout: float) -> float:
    """How long one call may legitimately take: every attempt timing out, plus the backoffs.
    The re-run task's time limits and the sweeper's patience are derived from it."""
    return timeout * (RETRIES + 1) + BACKOFF_SECONDS * (2**RETRIES - 1)


class HttpPipeline:
    name = "connector"

    def __init__(
        self, url: str, *, secret: str | UnreadableSecret = "", timeout: float = 10.0
    ) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        # A secret the current keys can't decrypt fails each call, rather than going out unsent.
        self.secret_unreadable = isinstance(secret, UnreadableSecret)
        if secret:
            self.headers["Authorization"] = f"Bearer {secret}"
        self.timeout = timeout

    def ask(self, question: str) -> Any:
        return self._post("ask", {"question": question})

    def rerun(self, question: str, trace: list[dict[str, Any]], *, from_position: int) -> Any:
        return self._post(
            "rerun", {"question": question, "trace": trace, "from_position": from_position}
        )

    def _post(self, operation: str, body: dict[str, Any]) -> Any:
        if self.secret_unreadable:
            raise PipelineError(UNDECRYPTABLE)
        delay = BACKOFF_SECONDS
        problem = ""
        with outbound.client(timeout=self.timeout, headers=self.headers) as client:
            for attempt in range(RETRIES + 1):
                if attempt:
                    time.sleep(delay)
                    delay *= 2
                try:
                    reply = client.post(f"{self.url}/{operation}", content=orjson.dumps(body))
                except outbound.DestinationRefused as refused:
                    raise PipelineError(refused.message) from None
                except httpx.InvalidURL:
                    raise PipelineError("The pipeline's URL is not a valid http(s) URL.") from None
                except httpx.TimeoutException:
                    problem = f"The pipeline did not answer within {self.timeout:g} s"
                    continue
                except httpx.TransportError as error:
                    problem = f"The pipeline could not be reached ({type(error).__name__})"
                    continue
                if reply.status_code >= 500:
                    problem = outbound.status_message(reply, service="The pipeline")
                    continue
                if reply.status_code != 200:
                    raise PipelineError(
                        f"{outbound.status_message(reply, service='The pipeline')} "
                        f"to the {operation} request."
                    )
                try:
                    return orjson.loads(reply.content)
                except orjson.JSONDecodeError:
                    raise PipelineError("The pipeline returned malformed JSON.") from None
        raise PipelineError(f"{problem} ({RETRIES + 1} attempts).")
