"""The pipeline protocol: how the platform asks a project's pipeline for answers and re-runs.

A pipeline is an HTTP endpoint the project registers (its base URL and an optional secret).
The platform sends JSON and expects JSON back:

    POST <url>/ask      {"question": "..."}
    POST <url>/rerun    {"question": "...", "from_position": 1, "trace": [stage, ...]}
    Authorization: Bearer <secret>          (only when the project set a secret)

`trace` in a re-run request is the answer's trace with the corrected stage's output replaced by
the annotator's correction; the pipeline keeps the stages up to `from_position` and recomputes
every later one. Both calls answer 200 with one answer in the ingestion shape (the body of
`POST /api/v1/answers` without `external_id`, which the platform assigns):

    {"prompt": [{"role": "user", "content": "..."}], "response": "...", "model": "...",
     "model_version": "...", "metadata": {...}, "trace": [stage, ...]}

A stage is {"kind", "position", "parent"?, "name"?, "input", "output"} with outputs
`{"subqueries": [...]}` (decomposition), `{"documents": [{"id", "title", "text", "url",
"score"}]}` (retrieval, rerank) and `{"text": ...}` (generation). The platform waits
`timeout_seconds` per attempt and retries twice on timeouts, connection errors and 5xx replies;
a 4xx reply, malformed JSON or an answer that fails validation stops at once. Nothing is stored
unless the reply is valid.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from feedback.ingest import ValidAnswer, validate_answer


class PipelineError(Exception):
    """The pipeline could not give a usable answer; the message is shown to the user."""


class Pipeline(Protocol):
    name: str

    def ask(self, question: str) -> Any: ...

    def rerun(self, question: str, trace: list[dict[str, Any]], *, from_position: int) -> Any: ...


def checked_reply(
    reply: Any, *, external_id: str, now: datetime
) -> tuple[dict[str, Any], ValidAnswer]:
    """A pipeline's reply as an answer payload ready for ingestion, or PipelineError saying
    what is wrong with it."""
    if not isinstance(reply, dict):
        raise PipelineError("The pipeline's reply is not a JSON object.")
    payload = {**reply, "external_id": external_id}
    payload.pop("created_at", None)  # the platform stamps when it received the answer
    checked = validate_answer(payload, now=now)
    if isinstance(checked, dict):
        first = ", ".join(f"{field}: {' '.join(msgs)}" for field, msgs in list(checked.items())[:3])
        raise PipelineError(f"The pipeline's answer is invalid ({first}).")
    return payload, checked
