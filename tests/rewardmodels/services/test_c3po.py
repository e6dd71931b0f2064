"""C3PO builds end to end: the API, every stage against a chat completions server over real
HTTP, failures that stop a stage and resume, a worker killed mid-build, and the human path."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from feedback.core.jobs import Swept, jobs_sweep
from feedback.models import Project
from feedback.services import answers_ingest
from rewardmodels import selectors
from rewardmodels.datasets import PARTS
from rewardmodels.models import BuildStatus, C3POBuild, C3POItem, Generator, VerbalFeedback
from rewardmodels.services import c3po as c3po_services
from rewardmodels.services import c3po_build
from tests.conftest import bearer_client, empty_test_broker, worker_process
from tests.factories import MembershipFactory, UserFactory, api_key_for
from tests.rewardmodels.builds import build_run
from tests.rewardmodels.chat_server import ChatServer, completion, error

ROOT = Path(__file__).resolve().parents[3]
SMALL = {
    "categories": 2,
    "in_scope_per_category": 3,
    "near_scope_per_category": 2,
    "out_of_scope": 4,
    "test_fraction": 0.25,
}
FEEDBACK = {"text": "Don't use emojis when I write to my boss.", "domain": "writing emails"}


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    with ChatServer() as server:
        yield server


def _collected_answers(project: Project, n: int = 2) -> None:
    answers_ingest(
        project=project,
        items=[
            {
                "external_id": f"c-{i}",
                "prompt": [{"role": "user", "content": f"How do I fix a bike tyre, step {i}?"}],
                "response": f"Patch it, part {i}.",
                "model": "m",
            }
            for i in range(n)
        ],
    )


def _generator(api: APIClient, chat: ChatServer, **extra: Any) -> int:
    response = api.post(
        "/api/v1/generators",
        {"name": "local", "base_url": chat.url, "model": "tiny", "api_key": "sk-secret", **extra},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert "sk-secret" not in response.content.decode()
    return int(response.json()["id"])


def _feedback(api: APIClient) -> int:
    response = api.post("/api/v1/verbal-feedback", FEEDBACK, format="json")
    assert response.status_code == 201
    return int(response.json()["id"])


def _wait(
    api: APIClient, build_id: int, until: tuple[str, ...], seconds: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = api.get(f"/api/v1/c3po-builds/{build_id}").json()
        if body["status"] in until:
            return body
        time.sleep(0.1)
    raise AssertionError(f"build {build_id}: {body}")


def _part(api: APIClient, build_id: int, part: str) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/c3po-builds/{build_id}/dataset.jsonl?part={part}")
    assert response.status_code == 200
    return [orjson.loads(line) for line in b"".join(response.streaming_content).splitlines()]  # type: ignore[attr-defined]


@pytest.mark.django_db(transaction=True)
def test_a_build_with_a_generator_makes_all_three_parts(
    project: Project, api: APIClient, chat: ChatServer, celery_worker: None
) -> None:
    # Given a project with two collected questions, a generator and one sentence of feedback
    _collected_answers(project)
    generator_id = _generator(api, chat)
    feedback_id = _feedback(api)

    # When a build is started with small counts
    started = api.post(
        f"/api/v1/verbal-feedback/{feedback_id}/builds",
        {"generator": generator_id, "counts": SMALL},
        format="json",
    )
    assert started.status_code == 202
    build = _wait(api, started.json()["id"], ("succeeded", "failed"))

    # Then every stage ran and the counts are the requested ones
    assert build["status"] == "succeeded", build["error"]
    assert build["stage"] == 7
    counts = build["counts"]
    assert (counts["categories"], counts["in_scope"], counts["near_scope"]) == (2, 6, 4)
    assert counts["out_of_scope"] == 4
    assert counts["baselines"] == 6 + 4 + 4
    assert counts["revised"] == 6

    # Structured steps asked for JSON with a json_schema response format, with the key
    structured = [r.body for r in chat.completions if r.body.get("response_format")]
    assert {b["response_format"]["json_schema"]["name"] for b in structured} >= {
        "categories",
        "prompts",
    }
    assert all(b["response_format"]["type"] == "json_schema" for b in structured)
    assert all(r.headers.get("authorization") == "Bearer sk-secret" for r in chat.completions)

    # And the parts have TRL's columns, lineage and a split
    dpo = _part(api, build["id"], "dpo")
    near = _part(api, build["id"], "sft_near")
    out = _part(api, build["id"], "sft_out")
    assert (len(dpo), len(near), len(out)) == (6, 4, 4)
    assert {"prompt", "chosen", "rejected", "feedback_id", "category", "split"} <= set(dpo[0])
    assert {"prompt", "completion", "feedback_id", "category", "split"} <= set(near[0])
    assert all(row["feedback_id"] == feedback_id for row in dpo + near + out)
    assert all(row["chosen"] != row["rejected"] for row in dpo)
    assert {row["split"] for row in dpo + near + out} <= {"train", "test"}
    # Out-of-scope prompts come from the project's own questions first
    collected = {f"How do I fix a bike tyre, step {i}?" for i in range(2)}
    assert collected <= {row["prompt"] for row in out}


@pytest.mark.django_db(transaction=True)
def test_a_failing_generator_stops_the_stage_and_the_build_resumes(
    project: Project, api: APIClient, chat: ChatServer, celery_worker: None
) -> None:
    generator_id = _generator(api, chat, concurrency=1)
    feedback_id = _feedback(api)

    # Given a generator that answers the categories, then fails every baseline request
    def flaky(body: Any) -> Any:
        if body.get("response_format") is None:
            return 503, {}, error("overloaded")
        return None

    chat.responder = flaky
    build_id = api.post(
        f"/api/v1/verbal-feedback/{feedback_id}/builds",
        {"generator": generator_id, "counts": {**SMALL, "out_of_scope": 0}},
        format="json",
    ).json()["id"]
    failed = _wait(api, build_id, ("succeeded", "failed"))

    # Then the build stops at stage 5 with the reason, and nothing is exported
    assert failed["status"] == "failed"
    assert "Stage 5 (baseline responses)" in failed["error"]
    assert "503" in failed["error"]
    assert failed["stage"] == 4
    unfinished = api.get(f"/api/v1/c3po-builds/{build_id}/dataset.jsonl?part=dpo")
    assert unfinished.status_code == 409
    prompts_before = set(
        C3POItem.objects.filter(build_id=build_id).values_list("prompt", flat=True)
    )

    # When the generator is fixed and the build resumed
    chat.responder = None
    assert api.post(f"/api/v1/c3po-builds/{build_id}/resume").status_code == 202
    done = _wait(api, build_id, ("succeeded", "failed"))

    # Then it continues from stage 5 with the prompts it already had
    assert done["status"] == "succeeded", done["error"]
    assert (
        set(C3POItem.objects.filter(build_id=build_id).values_list("prompt", flat=True))
        == prompts_before
    )
    assert len(_part(api, build_id, "dpo")) == 6


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ((200, {}, completion(None, refusal="I can't help with that.")), "can't help with that"),
        ((200, {}, completion("this is not json")), "not valid json"),
        ((401, {}, error("bad key")), "401"),
    ],
)
def test_generator_problems_are_reported_on_the_build(
    project: Project,
    api: APIClient,
    chat: ChatServer,
    celery_worker: None,
    reply: Any,
    reason: str,
) -> None:
    chat.responder = lambda body: reply
    generator_id = _generator(api, chat)
    build_id = api.post(
        f"/api/v1/verbal-feedback/{_feedback(api)}/builds",
        {"generator": generator_id, "counts": SMALL},
        format="json",
    ).json()["id"]
    build = _wait(api, build_id, ("succeeded", "failed"))
    assert build["status"] == "failed"
    assert "Stage 1 (categories)" in build["error"]
    assert reason in build["error"].lower() or reason in build["error"]
    assert "sk-secret" not in build["error"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "   "}, "text"),
        ({"text": 5}, "text"),
        ({"text": "ok", "domain": "x" * 300}, "domain"),
    ],
)
def test_bad_verbal_feedback_is_refused(api: APIClient, body: dict[str, Any], field: str) -> None:
    response = api.post("/api/v1/verbal-feedback", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "local\u202e"}, "name"),
        ({"model": "\u2066llama3\u2069"}, "model"),
    ],
)
def test_generator_names_with_a_bidi_control_are_refused(
    api: APIClient, body: dict[str, Any], field: str
) -> None:
    good = {"name": "local", "base_url": "http://localhost:8000/v1", "model": "llama3"}

    response = api.post("/api/v1/generators", {**good, **body}, format="json")

    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert list(fields) == [field]
    assert fields[field][0].startswith("Must not contain bidirectional control characters")
    assert not Generator.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("javascript:alert(1)", "Must be an http:// or https:// URL with a host."),
        ("http://", "Must be an http:// or https:// URL with a host."),
        ("https://user:hunter2@llm.example.org/v1", "Must not contain a user name or password."),
        ("https://llm.example.org:99999/v1", "Must be a valid http(s) URL."),
    ],
)
def test_a_generator_url_must_be_a_plain_http_url(
    api: APIClient, base_url: str, message: str
) -> None:
    body = {"name": "local", "base_url": base_url, "model": "llama3"}

    response = api.post("/api/v1/generators", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"base_url": [message]}
    assert "hunter2" not in response.content.decode()
    assert not Generator.objects.exists()


@pytest.mark.django_db
def test_a_generator_with_a_spoofed_name_is_refused_on_the_page(project: Project) -> None:
    user = UserFactory.create(username="rhea")
    MembershipFactory.create(user=user, project=project, role="researcher")
    client = Client()
    client.force_login(user)

    response = client.post(
        "/projects/acme/models/generators/",
        {"name": "local\u202e", "base_url": "http://localhost:8000/v1", "model": "llama3"},
    )

    assert response.status_code == 400
    assert "Must not contain bidirectional control characters" in response.content.decode()
    assert not Generator.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("counts", "field"),
    [
        ({"categories": 0}, "counts.categories"),
        ({"out_of_scope": -1}, "counts.out_of_scope"),
        ({"test_fraction": 0.9}, "counts.test_fraction"),
        ({"prompts": 3}, "counts.prompts"),
    ],
)
def test_counts_out_of_range_are_refused(
    api: APIClient, counts: dict[str, Any], field: str
) -> None:
    response = api.post(
        f"/api/v1/verbal-feedback/{_feedback(api)}/builds", {"counts": counts}, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not C3POBuild.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"categories": "0"}, "counts.categories: Must be between 1 and 100."),
        ({"categories": "many"}, "counts.categories: Must be an integer."),
        ({"test_fraction": "0.9"}, "counts.test_fraction: Must be between 0.0 and 0.5."),
    ],
)
def test_counts_refused_on_the_page_are_named_and_kept(
    project: Project, form: dict[str, str], message: str
) -> None:
    # given a researcher on the page of a feedback's builds
    feedback = VerbalFeedback.objects.create(project=project, text=FEEDBACK["text"])
    browser = Client()
    user = UserFactory.create()
    MembershipFactory.create(user=user, project=project, role="researcher")
    browser.force_login(user)

    # when they start a build with a count out of range or not a number
    response = browser.post(f"/projects/acme/models/feedback/{feedback.pk}/build/", form)

    # then the page names the count as the API does, keeps what was typed, and starts nothing
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    [(name, value)] = form.items()
    assert f'name="{name}" inputmode' in html
    assert f'value="{value}"' in html
    assert not C3POBuild.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("whose", ["another project's", "deleted"])
def test_a_generator_not_of_the_project_is_refused_on_the_page_as_by_the_api(
    project: Project, other_project: Project, whose: str
) -> None:
    # given verbal feedback, and a generator of another project or one since deleted
    feedback = VerbalFeedback.objects.create(project=project, text=FEEDBACK["text"])
    generator = Generator.objects.create(
        project=other_project, name="g", base_url="https://llm.example.org/v1", model="m"
    )
    generator_id = generator.pk
    if whose == "deleted":
        generator.delete()

    # when a researcher starts a build with it on the page
    response = _member(project).post(
        f"/projects/acme/models/feedback/{feedback.pk}/build/", {"generator": str(generator_id)}
    )

    # then the form says so by the field's name, as the API does, and no build starts (the
    # page used to start a build without a generator instead)
    assert response.status_code == 400
    assert "generator: No such generator in this project." in response.content.decode()
    assert not C3POBuild.objects.exists()


@pytest.mark.django_db
def test_another_projects_feedback_and_builds_are_invisible(
    project: Project, other_project: Project, api: APIClient
) -> None:
    theirs = bearer_client(api_key_for(other_project))
    feedback_id = _feedback(theirs)
    build_id = theirs.post(
        f"/api/v1/verbal-feedback/{feedback_id}/builds", {}, format="json"
    ).json()["id"]
    assert (
        api.post(f"/api/v1/verbal-feedback/{feedback_id}/builds", {}, format="json").status_code
        == 404
    )
    assert api.get(f"/api/v1/c3po-builds/{build_id}").status_code == 404
    assert api.get(f"/api/v1/c3po-builds/{build_id}/dataset.jsonl?part=dpo").status_code == 404
    assert api.post(f"/api/v1/c3po-builds/{build_id}/resume").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_human_path_uses_only_reviewed_rows(
    project: Project, api: APIClient, celery_worker: None
) -> None:
    # Given collected answers and no generator
    _collected_answers(project, n=5)
    feedback_id = _feedback(api)
    build_id = api.post(
        f"/api/v1/verbal-feedback/{feedback_id}/builds",
        {"counts": {**SMALL, "categories": 1, "in_scope_per_category": 3, "out_of_scope": 2}},
        format="json",
    ).json()["id"]

    # When the build has run, it waits for people
    build = _wait(api, build_id, ("review", "succeeded", "failed"))
    assert build["status"] == "review", build["error"]
    assert build["counts"]["review"]["pending"] == 3
    assert api.get(f"/api/v1/c3po-builds/{build_id}/dataset.jsonl?part=dpo").status_code == 409

    # And an annotator edits one revision, rejects one, and edits the last
    user = UserFactory.create(username="anna")
    MembershipFactory.create(user=user, project=project, role="annotator")
    browser = Client()
    browser.force_login(user)
    url = f"/projects/{project.slug}/models/builds/{build_id}/review/"
    for action, text in (
        ("edit", "Patched, politely."),
        ("reject", ""),
        ("approve", "Plain words only."),
    ):
        page = browser.get(url)
        assert page.status_code == 200
        item = (
            C3POItem.objects.filter(build_id=build_id, review_status="pending")
            .order_by("id")
            .first()
        )
        assert item is not None
        response = browser.post(f"{url}{item.pk}/", {"action": action, "revised": text})
        assert response.status_code == 302

    # Then the build succeeded and its dpo part holds only the two revised rows
    build = _wait(api, build_id, ("succeeded",))
    dpo = _part(api, build_id, "dpo")
    assert sorted(row["chosen"] for row in dpo) == ["Patched, politely.", "Plain words only."]
    assert all(row["rejected"].startswith("Patch it, part") for row in dpo)
    assert _part(api, build_id, "sft_near") == []
    out = _part(api, build_id, "sft_out")
    assert len(out) == 2
    assert all(row["completion"].startswith("Patch it, part") for row in out)


def _dataset(build_id: int) -> dict[str, list[tuple[str, ...]]]:
    build = C3POBuild.objects.get(pk=build_id)
    keep = ("prompt", "chosen", "rejected", "completion", "category", "split")
    return {
        part: sorted(
            tuple(str(row.get(k, "")) for k in keep)
            for row in selectors.build_dataset_rows(build=build, part=part)
        )
        for part in PARTS
    }


@pytest.mark.django_db(transaction=True)
def test_a_build_resumed_after_its_worker_was_killed_makes_the_same_dataset(
    project: Project,
    api: APIClient,
    chat: ChatServer,
    settings: Any,
    request: pytest.FixtureRequest,
) -> None:
    settings.TRAINING_STALE_SECONDS = 1.5
    _collected_answers(project)
    generator_id = _generator(api, chat, concurrency=1)
    feedback_id = _feedback(api)
    counts = {**SMALL, "in_scope_per_category": 4}
    empty_test_broker()

    # Given a build whose worker is killed while it writes baseline responses
    chat.delay = 0.15
    worker = worker_process("c3po")
    try:
        killed_id = api.post(
            f"/api/v1/verbal-feedback/{feedback_id}/builds",
            {"generator": generator_id, "counts": counts},
            format="json",
        ).json()["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            killed = C3POBuild.objects.get(pk=killed_id)
            if (
                killed.stage >= 4
                and C3POItem.objects.filter(build=killed).exclude(baseline="").exists()
            ):
                break
            time.sleep(0.05)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    chat.delay = 0.0
    assert C3POBuild.objects.get(pk=killed_id).status == BuildStatus.RUNNING

    # When the sweeper finds it and a worker resumes it
    time.sleep(settings.TRAINING_STALE_SECONDS + 0.5)
    request.getfixturevalue("celery_worker")
    assert jobs_sweep(kind=c3po_build.C3PO_BUILD_JOB) == Swept(requeued=1, failed=0, cancelled=0)
    resumed = _wait(api, killed_id, ("succeeded", "failed"))
    assert resumed["status"] == "succeeded", resumed["error"]

    # Then it holds the same dataset as a build of the same feedback that was never stopped
    seed = C3POBuild.objects.get(pk=killed_id).seed  # fixes the sample and the split
    fresh_id = api.post(
        f"/api/v1/verbal-feedback/{feedback_id}/builds",
        {"generator": generator_id, "counts": counts, "seed": seed},
        format="json",
    ).json()["id"]
    _wait(api, fresh_id, ("succeeded",))
    assert C3POBuild.objects.get(pk=killed_id).attempts == 2
    assert _dataset(killed_id) == _dataset(fresh_id)
    assert len(_dataset(killed_id)["dpo"]) == 8


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_build_whose_heartbeat_connection_dies_is_not_taken_for_dead(
    project: Project, api: APIClient, chat: ChatServer, settings: Any
) -> None:
    from django.db import connection

    settings.TRAINING_STALE_SECONDS = 1.5
    _collected_answers(project)
    generator_id = _generator(api, chat, concurrency=1)
    feedback_id = _feedback(api)
    empty_test_broker()

    # Given a build on a worker, waiting on a slow generator (its heartbeat is all that shows
    # the worker is alive)
    chat.delay = 4.0
    worker = worker_process("c3po")
    try:
        build_id = api.post(
            f"/api/v1/verbal-feedback/{feedback_id}/builds",
            {"generator": generator_id, "counts": SMALL},
            format="json",
        ).json()["id"]
        heartbeats = (
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND query NOT LIKE '%%progress%%' "
            'AND query LIKE \'UPDATE "rewardmodels_c3pobuild" SET "heartbeat_at" = %%\''
        )
        deadline = time.monotonic() + 30
        while True:
            with connection.cursor() as cursor:
                cursor.execute(heartbeats)
                pids = [pid for (pid,) in cursor.fetchall()]
            if pids and chat.completions:
                break
            assert time.monotonic() < deadline, "the build's heartbeat never showed"
            time.sleep(0.05)

        # When the database drops the heartbeat's connection (a restart, a proxy, an admin)
        with connection.cursor() as cursor:
            for pid in pids:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        time.sleep(settings.TRAINING_STALE_SECONDS + 0.5)

        # Then the sweeper sees a live worker, and the build finishes in its first attempt
        swept = jobs_sweep(kind=c3po_build.C3PO_BUILD_JOB)
        chat.delay = 0.0
        done = _wait(api, build_id, ("succeeded", "failed"))
    finally:
        worker.kill()
        worker.wait(timeout=10)
    assert swept == Swept(requeued=0, failed=0, cancelled=0)
    assert done["status"] == "succeeded", done["error"]
    assert C3POBuild.objects.get(pk=build_id).attempts == 1


@pytest.mark.django_db
def test_the_sweeper_fails_a_build_after_repeated_deaths(project: Project, api: APIClient) -> None:
    feedback = c3po_services.verbal_feedback_create(project=project, text="Be brief.")
    stale = timezone.now() - timedelta(hours=1)
    build = C3POBuild.objects.create(
        project=project,
        feedback=feedback,
        counts=SMALL,
        seed="ab",
        status="running",
        attempts=c3po_build.C3PO_BUILD_JOB.max_attempts,
        heartbeat_at=stale,
    )
    assert jobs_sweep(kind=c3po_build.C3PO_BUILD_JOB) == Swept(requeued=0, failed=1, cancelled=0)
    build.refresh_from_db()
    assert build.status == "failed"
    assert "resume it" in build.error


@pytest.mark.django_db(transaction=True)
def test_the_parts_export_as_parquet_snapshots_and_stream_as_datasets(
    project: Project, api: APIClient, chat: ChatServer, celery_worker: None, tmp_path: Path
) -> None:
    # Given a finished build
    _collected_answers(project)
    generator_id = _generator(api, chat)
    build_id = api.post(
        f"/api/v1/verbal-feedback/{_feedback(api)}/builds",
        {"generator": generator_id, "counts": SMALL},
        format="json",
    ).json()["id"]
    assert _wait(api, build_id, ("succeeded", "failed"))["status"] == "succeeded"

    # When its dpo part is snapshotted to Parquet through the export API
    export = api.post(
        "/api/v1/exports", {"dataset": "c3po_dpo", "format": "parquet"}, format="json"
    ).json()
    deadline = time.monotonic() + 30
    while api.get(f"/api/v1/exports/{export['id']}").json()["status"] not in (
        "succeeded",
        "failed",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    download = api.get(f"/api/v1/exports/{export['id']}/download")
    assert download.status_code == 200
    path = tmp_path / "dpo.parquet"
    path.write_bytes(b"".join(download.streaming_content))  # type: ignore[attr-defined]

    # Then the file holds the build's dpo rows with messages in the conversational form
    table = pq.read_table(path)
    assert table.num_rows == 6
    assert {"prompt", "chosen", "rejected", "feedback_id", "build_id", "category", "split"} <= set(
        table.column_names
    )
    first = table.to_pylist()[0]
    assert first["prompt"][0]["role"] == "user"
    assert first["chosen"][0]["role"] == "assistant"
    assert first["build_id"] == build_id

    # And the out-of-scope part streams as text through the datasets endpoint
    streamed = api.get("/api/v1/datasets/c3po_sft_out.jsonl?form=text")
    lines = b"".join(streamed.streaming_content).splitlines()  # type: ignore[attr-defined]
    rows = [orjson.loads(line) for line in lines]
    assert len(rows) == 4
    assert all(isinstance(row["prompt"], str) and row["completion"] for row in rows)


@pytest.mark.django_db
@pytest.mark.parametrize("seed", ["has space", "", "x" * 33, 7])
def test_a_bad_seed_is_refused(api: APIClient, seed: Any) -> None:
    response = api.post(
        f"/api/v1/verbal-feedback/{_feedback(api)}/builds", {"seed": seed}, format="json"
    )
    assert response.status_code == 400
    assert "seed" in response.json()["error"]["fields"]
    assert not C3POBuild.objects.exists()


# --- where the platform may send requests ----------------------------------------------------

# An error reply's body may be an internal service's page, or echo a credential back.
SECRET_BODY = {"error": {"message": "vault token hvs.CAESIJ9x-internal; db password hunter2-7c1e"}}
BODY_FRAGMENTS = ("hvs.CAESIJ9x", "hunter2-7c1e")


def _member(project: Project, role: str = "researcher", username: str = "rhea") -> Client:
    user = UserFactory.create(username=username)
    MembershipFactory.create(user=user, project=project, role=role)
    browser = Client()
    browser.force_login(user)
    return browser


def _run_build(project: Project, generator: Generator, counts: dict[str, Any] = SMALL) -> C3POBuild:
    """A build started and executed here, in the test's thread (the worker's code path)."""
    feedback = VerbalFeedback.objects.create(project=project, text=FEEDBACK["text"])
    return build_run(feedback, generator, counts)


@pytest.mark.django_db
def test_a_build_writes_its_progress_now_and_then_not_for_every_item(
    project: Project, api: APIClient, chat: ChatServer
) -> None:
    # Given a generator that answers at once, and counts that make some sixty items
    _collected_answers(project)
    generator = Generator.objects.get(pk=_generator(api, chat))
    counts = {**SMALL, "in_scope_per_category": 10, "near_scope_per_category": 5}

    # When a build runs
    started = time.monotonic()
    with CaptureQueriesContext(connection) as queries:
        build = _run_build(project, generator, counts)
    elapsed = time.monotonic() - started

    # Then it wrote its progress the first time, at most once per interval after that, and at
    # the end of each stage (its last count, then its number), not once per item
    assert build.status == BuildStatus.SUCCEEDED, build.error
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith('UPDATE "rewardmodels_c3pobuild"') and '"progress" =' in q["sql"]
    ]
    reports = len(chat.completions) - 1  # each generated item; the categories are not counted
    every = c3po_build.C3PO_BUILD_JOB.progress_every.total_seconds()
    stages = len(C3POBuild.STAGES)
    assert len(writes) <= 1 + 2 * stages + 1 + elapsed / every + 1  # first, stage ends, finish
    assert len(writes) < reports
    baselines = build.items.count()
    assert any(f"{C3POBuild.STAGES[4]}: {baselines} of {baselines}" in sql for sql in writes)


INTERNAL_BASE_URLS = [
    ("http://127.0.0.1:8000/v1", "Requests to 127.0.0.1 are not allowed: it is a loopback"),
    ("http://localhost:11434/v1", "Requests to localhost are not allowed: it resolves to a loop"),
    ("http://2130706433:8000/v1", "Requests to 2130706433 are not allowed: it resolves to a loop"),
    ("http://0177.0.0.1:8000/v1", "Requests to 0177.0.0.1 are not allowed: it resolves to a loop"),
    ("http://[::ffff:127.0.0.1]/v1", "Requests to ::ffff:127.0.0.1 are not allowed: it is a loop"),
    ("http://169.254.169.254/v1", "Requests to 169.254.169.254 are not allowed: it is a link-loc"),
    ("http://192.168.0.10:8000/v1", "Requests to 192.168.0.10 are not allowed: it is a private"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("base_url", "message"), INTERNAL_BASE_URLS)
def test_an_internal_generator_is_refused_when_saved_through_the_api(
    api: APIClient, settings: Any, base_url: str, message: str
) -> None:
    # given no internal host allowed (production's default)
    settings.OUTBOUND_ALLOWED_HOSTS = []

    # when a generator on an internal address is registered
    response = api.post(
        "/api/v1/generators",
        {"name": "local", "base_url": base_url, "model": "m", "api_key": "sk-x"},
        format="json",
    )

    # then 400 naming base_url and why; nothing is stored
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    [problem] = error["fields"]["base_url"]
    assert problem.startswith(message)
    assert not Generator.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("base_url", "message"), INTERNAL_BASE_URLS[:2])
def test_an_internal_generator_is_refused_when_saved_on_the_page(
    project: Project, settings: Any, base_url: str, message: str
) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = []
    browser = _member(project)

    response = browser.post(
        f"/projects/{project.slug}/models/generators/",
        {"name": "local", "base_url": base_url, "model": "m", "api_key": "sk-x"},
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert f"generator base_url: {message}" in html
    assert "sk-x" not in html
    assert not Generator.objects.exists()


@pytest.mark.django_db
def test_credentials_in_the_base_url_are_refused_and_never_echoed(project: Project) -> None:
    # given a base URL carrying a user name and password, sent through the API and the page
    base_url = "https://bot:pw-52e1a@llm.example.org/v1"
    api = bearer_client(api_key_for(project))
    from_api = api.post(
        "/api/v1/generators",
        {"name": "remote", "base_url": base_url, "model": "m"},
        format="json",
    )
    from_page = _member(project).post(
        f"/projects/{project.slug}/models/generators/",
        {"name": "remote", "base_url": base_url, "model": "m"},
    )

    # then both refuse it, naming the field, without the password anywhere in the answer
    assert from_api.status_code == 400
    assert from_api.json()["error"]["fields"]["base_url"] == [
        "Must not contain a user name or password."
    ]
    assert from_page.status_code == 400
    assert "generator base_url: Must not contain a user name or password." in (
        from_page.content.decode()
    )
    for response in (from_api, from_page):
        assert "pw-52e1a" not in response.content.decode()
    assert not Generator.objects.exists()


@pytest.mark.django_db
def test_a_generator_saved_earlier_is_refused_at_call_time_and_the_build_says_why(
    project: Project, chat: ChatServer, settings: Any
) -> None:
    # given a generator on the local host stored before the policy, and none allowed now
    generator = Generator.objects.create(
        project=project, name="local", base_url=chat.url, model="m", api_key="sk-local-77"
    )
    settings.OUTBOUND_ALLOWED_HOSTS = []

    # when a build runs with it
    build = _run_build(project, generator)

    # then it fails at the first stage with the reason; nothing (nor the key) was sent
    assert build.status == BuildStatus.FAILED
    assert build.error.startswith(
        "Stage 1 (categories) stopped: Requests to 127.0.0.1 are not allowed: it is a loopback "
        "address."
    )
    assert chat.requests == []


@pytest.mark.django_db
@pytest.mark.parametrize("status", [400, 401])  # 5xx: the client's tests (no retry waits here)
def test_a_generators_error_reply_never_reaches_the_build_the_api_or_the_page(
    project: Project, chat: ChatServer, status: int
) -> None:
    # given an (allowed) generator whose error replies carry secrets
    chat.responder = lambda body: (status, {}, SECRET_BODY)
    generator = Generator.objects.create(
        project=project, name="local", base_url=chat.url, model="m", api_key="sk-local-77"
    )

    # when a build runs with it, and its owner looks at it through the API and the page
    build = _run_build(project, generator)
    from_api = bearer_client(api_key_for(project)).get(f"/api/v1/c3po-builds/{build.pk}")
    page = _member(project).get(f"/projects/{project.slug}/models/builds/{build.pk}/")

    # then the build failed naming the status and the host; the body is nowhere
    host = chat.url.removeprefix("http://").removesuffix("/v1")
    assert build.status == BuildStatus.FAILED
    assert f"The generator at {host} answered HTTP {status}" in build.error
    assert from_api.status_code == 200
    assert page.status_code == 200
    assert f"answered HTTP {status}" in page.content.decode()
    for text in (build.error, from_api.content.decode(), page.content.decode()):
        assert not any(fragment in text for fragment in BODY_FRAGMENTS)


# --- the build's attempt fence and the review -------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_attempt_taken_over_while_asking_for_categories_stores_none(
    project: Project, api: APIClient, chat: ChatServer
) -> None:
    from django.db import connection
    from django.db.models import F

    # Given a build whose first attempt is taken over (its task delivered again to a worker
    # that found it silent) while the generator is writing the categories
    feedback = VerbalFeedback.objects.create(project=project, text=FEEDBACK["text"])
    generator = Generator.objects.get(pk=_generator(api, chat))
    build = c3po_services.build_start(feedback=feedback, generator_id=generator.pk, counts=SMALL)

    def taken_over_meanwhile(body: Any) -> Any:
        if (body.get("response_format") or {}).get("json_schema", {}).get("name") == "categories":
            try:
                C3POBuild.objects.filter(pk=build.pk).update(attempts=F("attempts") + 1)
            finally:
                connection.close()  # this handler thread's own connection
        return None

    chat.responder = taken_over_meanwhile

    # When the first attempt gets its answer
    c3po_build.build_execute(build_id=build.pk)

    # Then it writes nothing: the categories are the current attempt's to store
    build.refresh_from_db()
    assert (build.status, build.attempts, build.stage) == ("running", 2, 0)
    assert build.categories == []


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["queued", "running", "failed", "succeeded"])
def test_only_a_build_in_review_takes_reviews(project: Project, status: str) -> None:
    # Given a build that is not waiting for annotators, with an in-scope row not reviewed
    feedback = VerbalFeedback.objects.create(project=project, text=FEEDBACK["text"])
    build = C3POBuild.objects.create(
        project=project, feedback=feedback, review=True, counts=SMALL, seed="ab", status=status
    )
    item = C3POItem.objects.create(
        build=build,
        scope="in_scope",
        prompt="Write to my boss that I'm late.",
        prompt_hash="x" * 64,
        baseline="Running late 🙏",
    )
    browser = _member(project, "annotator", "anna")
    url = f"/projects/{project.slug}/models/builds/{build.pk}/review/"

    # When an annotator opens its review page and sends a review of the row
    page = browser.get(url)
    response = browser.post(f"{url}{item.pk}/", {"action": "edit", "revised": "I am late."})

    # Then the page offers nothing to review and the review is refused, the row unchanged
    assert page.status_code == 200
    assert "Write to my boss" not in page.content.decode()
    assert response.status_code == 400
    assert "not in review" in response.content.decode()
    item.refresh_from_db()
    assert (item.review_status, item.revised) == ("pending", "")
    build.refresh_from_db()
    assert build.status == status


@pytest.mark.django_db(transaction=True)
def test_the_last_review_completes_the_build_even_when_it_races_the_build(
    project: Project, api: APIClient
) -> None:
    import threading

    from django.contrib.auth.models import User
    from django.db import connection

    # Given a human-path build (annotators write the revisions) about to finish, and an
    # annotator who reviews every row at the moment the build counts the rows still pending
    _collected_answers(project, n=3)
    feedback = VerbalFeedback.objects.create(project=project, text=FEEDBACK["text"])
    counts = {**SMALL, "categories": 1, "in_scope_per_category": 2, "out_of_scope": 0}
    build = c3po_services.build_start(feedback=feedback, counts=counts)
    annotator = UserFactory.create(username="anna")
    MembershipFactory.create(user=annotator, project=project, role="annotator")

    def review_everything() -> None:
        try:
            reviewer = User.objects.get(pk=annotator.pk)
            for item in C3POItem.objects.filter(build=build, scope="in_scope"):
                c3po_services.item_review(
                    item=item, reviewer=reviewer, action="edit", revised=f"Fixed {item.pk}."
                )
        finally:
            connection.close()

    reviewing = threading.Thread(target=review_everything)

    def at_the_pending_count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        counting = sql.lstrip().startswith("SELECT") and "review_status" in sql
        if counting and not reviewing.is_alive() and reviewing.ident is None:
            reviewing.start()
            reviewing.join(timeout=1)  # the reviews land now, unless they have to wait
        return result

    # When the build finishes
    with connection.execute_wrapper(at_the_pending_count):
        c3po_build.build_execute(build_id=build.pk)
    reviewing.join(timeout=30)

    # Then the build is not left in review with nothing pending: the last review completed it
    build.refresh_from_db()
    reviews = list(
        C3POItem.objects.filter(build=build, scope="in_scope").values_list(
            "review_status", flat=True
        )
    )
    assert reviews == ["edited", "edited"]
    assert build.status == "succeeded"


def test_every_stage_has_one_step() -> None:
    assert len(c3po_build.STEPS) == len(C3POBuild.STAGES)
