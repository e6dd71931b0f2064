"""The generator client against a fake OpenAI-compatible server, over real HTTP."""

from __future__ import annotations

import pickle
import socket
import threading
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

import pytest

from rewardmodels.generator import ChatClient, GeneratorError, GeneratorSettings
from tests.rewardmodels.chat_server import (
    ChatServer,
    answer_for,
    completion,
    error,
    sequence,
)

MESSAGES = [{"role": "user", "content": "How do I boil rice?"}]
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"prompts": {"type": "array", "items": {"type": "string"}}},
    "required": ["prompts"],
    "additionalProperties": False,
}


def prompts_of(parsed: Any) -> list[str]:
    if not isinstance(parsed, dict) or not isinstance(parsed.get("prompts"), list):
        raise ValueError("no prompts list")
    return [str(p) for p in parsed["prompts"]]


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with ChatServer() as running:
        yield running


@pytest.fixture
def waits() -> list[float]:
    """The pauses the client asked for, recorded instead of slept."""
    return []


@pytest.fixture
def make_client(server: ChatServer, waits: list[float]) -> Iterator[Callable[..., ChatClient]]:
    clients: list[ChatClient] = []

    def make(**overrides: Any) -> ChatClient:
        options: dict[str, Any] = {
            "base_url": server.url,
            "model": "fake-model",
            "backoff": 0.25,
            "max_attempts": 4,
            "timeout": 5.0,
        }
        options.update(overrides)
        client = ChatClient(GeneratorSettings(**options), sleep=waits.append)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def host_of(server: ChatServer) -> str:
    """How messages name the server: its host and port, never the path."""
    return server.url.removeprefix("http://").removesuffix("/v1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- requests ---------------------------------------------------------------------------------


def test_complete_text_posts_the_chat_request_and_returns_the_content(
    server: ChatServer, make_client: Callable[..., ChatClient]
) -> None:
    client = make_client(temperature=0.3)

    text = client.complete_text(MESSAGES)

    assert text == answer_for("How do I boil rice?")
    [request] = server.completions
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.body == {"model": "fake-model", "messages": MESSAGES, "temperature": 0.3}


def test_base_url_with_trailing_slash_reaches_the_same_endpoint(
    server: ChatServer, make_client: Callable[..., ChatClient]
) -> None:
    client = make_client(base_url=server.url + "/")

    client.complete_text(MESSAGES)

    assert [r.path for r in server.requests] == ["/v1/chat/completions"]


@pytest.mark.parametrize(("api_key", "expected"), [("", None), ("sk-test-1", "Bearer sk-test-1")])
def test_bearer_header_is_sent_only_when_a_key_is_set(
    server: ChatServer,
    make_client: Callable[..., ChatClient],
    api_key: str,
    expected: str | None,
) -> None:
    make_client(api_key=api_key).complete_text(MESSAGES)

    assert server.completions[0].headers.get("authorization") == expected


def test_complete_json_asks_for_strict_json_schema_and_returns_the_validated_value(
    server: ChatServer, make_client: Callable[..., ChatClient]
) -> None:
    server.responder = sequence((200, {}, completion('{"prompts": ["a", "b"]}')))

    result = make_client().complete_json(
        MESSAGES, name="prompts", schema=SCHEMA, validate=prompts_of
    )

    assert result == ["a", "b"]
    body = server.completions[0].body
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "prompts", "schema": SCHEMA, "strict": True},
    }
    assert body["model"] == "fake-model"
    assert body["messages"] == MESSAGES


def test_json_in_a_markdown_fence_is_accepted(
    server: ChatServer, make_client: Callable[..., ChatClient]
) -> None:
    server.responder = sequence((200, {}, completion('```json\n{"prompts": ["x"]}\n```')))

    result = make_client().complete_json(
        MESSAGES, name="prompts", schema=SCHEMA, validate=prompts_of
    )

    assert result == ["x"]
    assert len(server.completions) == 1


# -- malformed replies --------------------------------------------------------------------------


def test_invalid_json_is_resampled_without_waiting(
    server: ChatServer, make_client: Callable[..., ChatClient], waits: list[float]
) -> None:
    server.responder = sequence(
        (200, {}, completion("Sure! Here are your prompts:")),
        (200, {}, completion('{"prompts": ["ok"]}')),
    )

    result = make_client().complete_json(
        MESSAGES, name="prompts", schema=SCHEMA, validate=prompts_of
    )

    assert result == ["ok"]
    assert len(server.completions) == 2
    assert waits == []


@pytest.mark.parametrize(
    "reply",
    [
        completion(""),
        completion(None),
        {"choices": []},
        {"object": "chat.completion"},
    ],
    ids=["empty-content", "null-content", "no-choices", "no-choices-key"],
)
def test_a_reply_without_content_is_resampled(
    server: ChatServer, make_client: Callable[..., ChatClient], reply: dict[str, Any]
) -> None:
    server.responder = sequence((200, {}, reply))

    text = make_client().complete_text(MESSAGES)

    assert text == answer_for("How do I boil rice?")
    assert len(server.completions) == 2


def test_a_response_body_that_is_not_json_is_resampled(
    server: ChatServer, make_client: Callable[..., ChatClient]
) -> None:
    server.responder = sequence((200, {"Content-Type": "text/html"}, b"<html>proxy</html>"))

    make_client().complete_text(MESSAGES)

    assert len(server.completions) == 2


def test_a_shape_the_validator_rejects_is_malformed_after_max_attempts(
    server: ChatServer, make_client: Callable[..., ChatClient]
) -> None:
    server.responder = lambda body: (200, {}, completion('{"items": ["wrong key"]}'))

    with pytest.raises(GeneratorError) as caught:
        make_client(max_attempts=3).complete_json(
            MESSAGES, name="prompts", schema=SCHEMA, validate=prompts_of
        )

    assert caught.value.kind == "malformed"
    assert "no prompts list" in caught.value.message
    assert "3 attempts" in caught.value.message
    assert len(server.completions) == 3


# -- transient HTTP failures --------------------------------------------------------------------


def test_429_retry_after_is_honoured(
    server: ChatServer, make_client: Callable[..., ChatClient], waits: list[float]
) -> None:
    server.responder = sequence((429, {"Retry-After": "1"}, error("Rate limit reached")))

    text = make_client(backoff=5.0).complete_text(MESSAGES)

    assert text == answer_for("How do I boil rice?")
    assert waits == [1.0]
    assert len(server.completions) == 2


def test_a_long_retry_after_is_capped_at_60_seconds(
    server: ChatServer, make_client: Callable[..., ChatClient], waits: list[float]
) -> None:
    server.responder = sequence((503, {"Retry-After": "3600"}, error("Overloaded")))

    make_client().complete_text(MESSAGES)

    assert waits == [60.0]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried_then_succeed(
    server: ChatServer,
    make_client: Callable[..., ChatClient],
    waits: list[float],
    status: int,
) -> None:
    server.responder = sequence((status, {}, error("try again")))

    text = make_client().complete_text(MESSAGES)

    assert text == answer_for("How do I boil rice?")
    assert waits == [0.25]
    assert len(server.completions) == 2


def test_backoff_doubles_between_retries(
    server: ChatServer, make_client: Callable[..., ChatClient], waits: list[float]
) -> None:
    server.responder = sequence(*[(500, {}, error("boom"))] * 3)

    make_client().complete_text(MESSAGES)

    assert waits == [0.25, 0.5, 1.0]


def test_a_server_that_always_fails_is_an_http_error_naming_the_status(
    server: ChatServer, make_client: Callable[..., ChatClient], waits: list[float]
) -> None:
    server.responder = lambda body: (500, {}, error("CUDA out of memory"))

    with pytest.raises(GeneratorError) as caught:
        make_client(max_attempts=3).complete_text(MESSAGES)

    assert caught.value.kind == "http"
    assert caught.value.message.startswith(
        f"The generator at {host_of(server)} answered HTTP 500 (Internal Server Error)"
    )
    assert "CUDA out of memory" not in caught.value.message  # the body is never quoted
    assert len(server.completions) == 3
    assert len(waits) == 2


# -- failures that stop at once -----------------------------------------------------------------


def test_401_stops_at_once_without_revealing_the_key(
    server: ChatServer, make_client: Callable[..., ChatClient], waits: list[float]
) -> None:
    key = "sk-very-secret-key-123"
    server.responder = lambda body: (
        401,
        {},
        error(f"Incorrect API key provided: {key}.", kind="invalid_api_key"),
    )

    with pytest.raises(GeneratorError) as caught:
        make_client(api_key=key).complete_text(MESSAGES)

    assert caught.value.kind == "http"
    assert "401" in caught.value.message
    assert "Incorrect API key provided" not in caught.value.message
    assert key not in caught.value.message
    assert key not in str(caught.value)
    assert len(server.completions) == 1
    assert waits == []


@pytest.mark.parametrize(
    ("status", "payload", "detail"),
    [
        (400, error("The model `m` does not support json_schema"), "does not support json_schema"),
        (404, {"error": "model 'fake-model' not found"}, "model 'fake-model' not found"),
        (422, {"detail": "messages: field required"}, "messages: field required"),
        (403, b"Forbidden by proxy", "Forbidden by proxy"),
    ],
    ids=["openai-shape", "ollama-shape", "detail-shape", "plain-text"],
)
def test_other_4xx_stop_at_once_naming_the_status_and_host_but_not_the_reply(
    server: ChatServer,
    make_client: Callable[..., ChatClient],
    status: int,
    payload: Any,
    detail: str,
) -> None:
    # The reply's body is whatever the destination chose to send: it may be an internal
    # service's page or echo a secret, so messages (which builds store and pages show) never
    # quote it.
    server.responder = lambda body: (status, {}, payload)

    with pytest.raises(GeneratorError) as caught:
        make_client().complete_text(MESSAGES)

    assert caught.value.kind == "http"
    assert caught.value.message == (
        f"The generator at {host_of(server)} answered HTTP {status} ({HTTPStatus(status).phrase})"
    )
    assert detail not in caught.value.message
    assert len(server.completions) == 1


def test_a_refusal_stops_at_once_quoting_it(
    server: ChatServer, make_client: Callable[..., ChatClient]
) -> None:
    server.responder = lambda body: (
        200,
        {},
        completion(None, refusal="I can't help with that request."),
    )

    with pytest.raises(GeneratorError) as caught:
        make_client().complete_json(MESSAGES, name="prompts", schema=SCHEMA, validate=prompts_of)

    assert caught.value.kind == "refused"
    assert "I can't help with that request." in caught.value.message
    assert len(server.completions) == 1


def test_the_content_filter_counts_as_a_refusal(
    server: ChatServer, make_client: Callable[..., ChatClient]
) -> None:
    server.responder = lambda body: (200, {}, completion("", finish_reason="content_filter"))

    with pytest.raises(GeneratorError) as caught:
        make_client().complete_text(MESSAGES)

    assert caught.value.kind == "refused"
    assert "content filter" in caught.value.message
    assert len(server.completions) == 1


# -- transport failures -------------------------------------------------------------------------


def test_a_slow_server_is_a_timeout_after_max_attempts(
    server: ChatServer, make_client: Callable[..., ChatClient], waits: list[float]
) -> None:
    server.delay = 2.0

    with pytest.raises(GeneratorError) as caught:
        make_client(timeout=0.5, max_attempts=2).complete_text(MESSAGES)

    assert caught.value.kind == "timeout"
    assert "0.5 s" in caught.value.message
    assert len(server.completions) == 2
    assert waits == [0.25]


def test_a_closed_port_is_unreachable_after_max_attempts(waits: list[float]) -> None:
    settings = GeneratorSettings(
        base_url=f"http://127.0.0.1:{free_port()}/v1",
        model="m",
        api_key="sk-hidden",
        backoff=0.1,
        max_attempts=3,
    )

    with (
        ChatClient(settings, sleep=waits.append) as client,
        pytest.raises(GeneratorError) as caught,
    ):
        client.complete_text(MESSAGES)

    assert caught.value.kind == "unreachable"
    assert "127.0.0.1" in caught.value.message
    assert "sk-hidden" not in caught.value.message
    assert waits == pytest.approx([0.1, 0.2])


# -- map ----------------------------------------------------------------------------------------


def test_map_runs_concurrently_and_delivers_results_in_the_calling_thread(
    server: ChatServer, make_client: Callable[..., ChatClient]
) -> None:
    server.delay = 0.2
    client = make_client(concurrency=4)
    prompts = [f"prompt number {i}" for i in range(8)]
    worker_threads: set[int] = set()
    delivered: dict[int, str] = {}
    delivering_threads: set[int] = set()

    def answer(prompt: str) -> str:
        worker_threads.add(threading.get_ident())
        return client.complete_text([{"role": "user", "content": prompt}])

    def on_result(index: int, text: str) -> None:
        delivering_threads.add(threading.get_ident())
        delivered[index] = text

    client.map(answer, prompts, on_result=on_result)

    assert delivered == {i: answer_for(p) for i, p in enumerate(prompts)}
    assert delivering_threads == {threading.get_ident()}
    assert threading.get_ident() not in worker_threads
    assert server.max_in_flight >= 2
    assert server.max_in_flight <= 4


def test_map_reraises_the_first_error_and_stops_submitting(
    make_client: Callable[..., ChatClient],
) -> None:
    client = make_client(concurrency=1)
    called: list[int] = []
    delivered: list[int] = []

    def work(item: int) -> int:
        called.append(item)
        if item == 2:
            raise GeneratorError("the generator refused item 2", kind="refused")
        return item * 10

    with pytest.raises(GeneratorError, match="item 2"):
        client.map(work, list(range(10)), on_result=lambda i, r: delivered.append(r))

    assert called == [0, 1, 2]
    assert delivered == [0, 10]


def test_map_delivers_results_of_items_already_running_when_one_fails(
    make_client: Callable[..., ChatClient],
) -> None:
    client = make_client(concurrency=2)
    release = threading.Event()
    delivered: list[int] = []

    def work(item: int) -> int:
        if item == 0:
            release.wait(5)
            return 0
        release.set()
        raise RuntimeError("item 1 failed")

    with pytest.raises(RuntimeError, match="item 1 failed"):
        client.map(work, [0, 1, 2, 3], on_result=lambda i, r: delivered.append(i))

    assert delivered == [0]


def test_map_stops_when_on_result_fails(make_client: Callable[..., ChatClient]) -> None:
    client = make_client(concurrency=1)
    called: list[int] = []

    def work(item: int) -> int:
        called.append(item)
        return item

    def on_result(index: int, result: int) -> None:
        raise OSError("database is gone")

    with pytest.raises(OSError, match="database is gone"):
        client.map(work, list(range(5)), on_result=on_result)

    assert called == [0]


def test_map_over_nothing_does_nothing(make_client: Callable[..., ChatClient]) -> None:
    delivered: list[int] = []

    make_client().map(lambda item: item, [], on_result=lambda i, r: delivered.append(r))

    assert delivered == []


# -- settings and errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"base_url": "localhost:8000/v1"}, "base_url"),
        ({"model": " "}, "model"),
        ({"concurrency": 0}, "concurrency"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"timeout": 0}, "timeout"),
        ({"backoff": -1}, "backoff"),
    ],
)
def test_settings_that_cannot_work_are_invalid(overrides: dict[str, Any], problem: str) -> None:
    options: dict[str, Any] = {"base_url": "http://localhost:8000/v1", "model": "m"}
    options.update(overrides)

    with pytest.raises(GeneratorError) as caught:
        GeneratorSettings(**options)

    assert caught.value.kind == "invalid"
    assert problem in caught.value.message


def test_settings_repr_hides_the_key() -> None:
    settings = GeneratorSettings(
        base_url="http://user:pw@localhost/v1", model="m", api_key="sk-secret"
    )

    assert "sk-secret" not in repr(settings)
    assert "pw" not in repr(settings)


def test_generator_error_survives_pickling() -> None:
    original = GeneratorError("the server said no", kind="http")

    restored = pickle.loads(pickle.dumps(original))  # noqa: S301 - our own bytes

    assert (type(restored), restored.message, restored.kind) == (
        GeneratorError,
        "the server said no",
        "http",
    )


def test_generator_error_rejects_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        GeneratorError("x", kind="weird")  # type: ignore[arg-type]


# -- where requests may go ----------------------------------------------------------------------


def test_an_internal_generator_is_refused_at_once_without_sending_the_key(
    server: ChatServer, make_client: Callable[..., ChatClient], settings: Any, waits: list[float]
) -> None:
    # given no internal host allowed (production's default)
    settings.OUTBOUND_ALLOWED_HOSTS = []

    # when a generator on the local host is called
    with pytest.raises(GeneratorError) as caught:
        make_client(api_key="sk-local-1").complete_text(MESSAGES)

    # then it is refused at once, as settings that can't work, and nothing was sent
    assert caught.value.kind == "invalid"
    assert caught.value.message.startswith(
        "Requests to 127.0.0.1 are not allowed: it is a loopback address."
    )
    assert server.requests == []
    assert waits == []


def test_a_redirect_is_an_error_and_is_not_followed(
    server: ChatServer, make_client: Callable[..., ChatClient]
) -> None:
    with ChatServer() as internal:
        server.responder = lambda body: (
            308,
            {"Location": f"{internal.url}/chat/completions"},
            b"",
        )

        with pytest.raises(GeneratorError) as caught:
            make_client().complete_text(MESSAGES)

        assert caught.value.kind == "http"
        assert caught.value.message == (
            f"The generator at {host_of(server)} answered HTTP 308 (Permanent Redirect)"
        )
        assert internal.requests == []
