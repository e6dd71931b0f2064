"""A scripted pipeline for tests: a real HTTP server on 127.0.0.1, in a thread, speaking the
documented protocol (feedback/pipelines/protocol.py). Each test scripts its replies and reads
what it received. With it, the replies a pipeline gives and the connector a project points at
it: what the tests of the HTTP client, the ask page, the connector settings and re-runs share."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import orjson

from feedback.models import PipelineConnector, Project

QUESTION = "How often should I oil my bike chain?"
SECRET = "s3cret-token-7f1c9a"
DOCUMENTS = [
    {"id": "doc-7", "title": "Chain care", "text": "Oil the chain every 300 km.", "score": 0.82},
    {"id": "doc-9", "title": "Tyre pressure", "text": "Pump tyres to 4 bar.", "score": 0.31},
]


# --- the scripted pipeline server -----------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any


@dataclass(frozen=True)
class Reply:
    """One scripted reply: `body` is bytes as they are, a callable of the request body, or any
    other value sent as JSON; `delay` seconds pass before the reply is written."""

    status: int = 200
    body: Any = b""
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ScriptedPipeline:
    url: str = ""
    replies: list[Reply] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, *replies: Reply) -> None:
        """Reply with these in order; the last one repeats."""
        with self.lock:
            self.replies = list(replies)

    def take(self, received: Received) -> Reply:
        with self.lock:
            self.requests.append(received)
            if len(self.replies) > 1:
                return self.replies.pop(0)
            return self.replies[0] if self.replies else Reply(status=500, body=b"unscripted")

    def paths(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.requests]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    scripted: ScriptedPipeline


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        scripted = cast(_Server, self.server).scripted
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        received = Received(
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=orjson.loads(raw) if raw else None,
        )
        reply = scripted.take(received)
        if reply.delay:
            scripted.stopping.wait(reply.delay)
        if isinstance(reply.body, bytes):
            content = reply.body
        elif callable(reply.body):
            content = orjson.dumps(reply.body(received.body))
        else:
            content = orjson.dumps(reply.body)
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(content)
        except OSError:  # the client gave up waiting (a timeout test)
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        pass


@contextmanager
def scripted_pipeline() -> Iterator[ScriptedPipeline]:
    """A scripted pipeline listening on 127.0.0.1 until the block ends (the `pipeline_server`
    fixture)."""
    scripted = ScriptedPipeline()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.scripted = scripted
    scripted.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield scripted
    scripted.stopping.set()  # wakes handlers still sleeping in a timeout test
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def host_of(server: ScriptedPipeline) -> str:
    """How messages name the pipeline's host."""
    return server.url.removeprefix("http://")


def closed_port_url() -> str:
    """A URL on which nothing listens."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}"


# --- protocol replies -----------------------------------------------------------------------


def answer_reply(question: str = QUESTION, **overrides: Any) -> dict[str, Any]:
    """A valid traced answer in the ingestion shape, as a pipeline's /ask returns it."""
    reply: dict[str, Any] = {
        "prompt": [{"role": "user", "content": question}],
        "response": "About every 300 km [doc-7].",
        "model": "acme-rag",
        "model_version": "7",
        "metadata": {"pipeline": "acme-rag"},
        "trace": [
            {"kind": "decomposition", "position": 0, "output": {"subqueries": ["chain oil"]}},
            {
                "kind": "retrieval",
                "position": 1,
                "parent": 0,
                "name": "bm25",
                "input": {"queries": ["chain oil"]},
                "output": {"documents": DOCUMENTS},
            },
            {
                "kind": "generation",
                "position": 2,
                "parent": 1,
                "output": {"text": "About every 300 km [doc-7]."},
            },
        ],
    }
    reply.update(overrides)
    return reply


def without(reply: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in reply.items() if k != key}


def with_document_url(url: str) -> dict[str, Any]:
    """A valid reply except that its retrieval stage links a document to `url`."""
    reply = answer_reply()
    reply["trace"][1]["output"] = {"documents": [{**DOCUMENTS[0], "url": url}]}
    return reply


def rerun_reply(body: dict[str, Any]) -> dict[str, Any]:
    """What a pipeline's /rerun answers: the stages up to `from_position` as given, then a
    generation from the documents it was handed."""
    kept = [s for s in body["trace"] if s["position"] <= body["from_position"]]
    retrieval = next(s for s in reversed(kept) if s["kind"] == "retrieval")
    text = "Revised from " + ", ".join(d["id"] for d in retrieval["output"]["documents"]) + "."
    generation = {
        "kind": "generation",
        "position": kept[-1]["position"] + 1,
        "parent": kept[-1]["position"],
        "output": {"text": text},
    }
    return {
        "prompt": [{"role": "user", "content": body["question"]}],
        "response": text,
        "model": "acme-rag",
        "model_version": "8",
        "trace": [*kept, generation],
    }


# --- the project's connector ----------------------------------------------------------------


def connector_for(project: Project, url: str, *, secret: str = "", timeout: int = 5) -> None:
    PipelineConnector.objects.create(
        project=project, url=url, secret=secret, timeout_seconds=timeout
    )


def connector_url(project: Project) -> str:
    return f"/projects/{project.slug}/settings/connector/"
