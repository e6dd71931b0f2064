"""GET /api/v1/datasets/{name}.jsonl: each dataset from hand-built records, exact rows."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from feedback.datasets.sql import hashed_ref
from feedback.models import Answer, Exposure, FeedbackEvent, Project, Reaction
from feedback.services import feedback_record
from tests.conftest import bearer_client
from tests.factories import AnswerFactory, api_key_for

MULTI_TURN = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Oil?"},
    {"role": "assistant", "content": "Which kind?"},
    {"role": "user", "content": "Chain oil."},
]
ONE_TURN = [{"role": "user", "content": "Oil?"}]


def rows(client: APIClient, name: str, **params: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/datasets/{name}.jsonl", params)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-ndjson"
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    data = [orjson.loads(line) for line in body.splitlines()]
    for row in data:  # PostgreSQL trims trailing zeros of fractions: compare instants
        for key in ("created_at", "shown_at"):
            if key in row:
                row[key] = datetime.fromisoformat(row[key])
    return data


def record(project: Project, *events: dict[str, Any]) -> None:
    results = feedback_record(project=project, items=list(events), source="api")
    assert all(r.status == "created" for r in results), results


@pytest.fixture
def answers(project: Project) -> dict[str, Answer]:
    return {
        "multi": AnswerFactory.create(
            project=project, external_id="multi", prompt=MULTI_TURN, response="Use chain oil."
        ),
        "one": AnswerFactory.create(
            project=project, external_id="one", prompt=ONE_TURN, response="Any oil.", model="m2"
        ),
        "other": AnswerFactory.create(
            project=project, external_id="other", prompt=ONE_TURN, response="Olive oil!"
        ),
    }


def event(
    event_id: str, type_: str, answer: str, user: str = "u-1", **fields: Any
) -> dict[str, Any]:
    return {"event_id": event_id, "type": type_, "answer": answer, "user_ref": user, **fields}


def test_kto_maps_reactions_by_polarity_and_skips_removed_and_neutral(
    api: APIClient, project: Project, answers: dict[str, Answer]
) -> None:
    record(
        project,
        event("e1", "reaction", "multi", reaction="love"),
        event("e2", "reaction", "one", reaction="dislike"),
        event("e3", "reaction", "one", reaction="laugh"),  # neither positive nor negative
        event("e4", "reaction", "other", reaction="like"),
        event("e5", "unreaction", "other", reaction="like"),  # taken back
    )
    love = Reaction.objects.get(kind="love")
    dislike = Reaction.objects.get(kind="dislike")

    data = rows(api, "kto")

    assert data == [
        {
            "prompt": MULTI_TURN,
            "completion": [{"role": "assistant", "content": "Use chain oil."}],
            "label": True,
            "answer_id": "multi",
            "reaction_id": love.pk,
            "reaction": "love",
            "user_ref": hashed_ref(project.export_salt, "u-1"),
            "model": "demo-small",
            "model_version": "1",
            "created_at": love.created_at,
        },
        {
            "prompt": ONE_TURN,
            "completion": [{"role": "assistant", "content": "Any oil."}],
            "label": False,
            "answer_id": "one",
            "reaction_id": dislike.pk,
            "reaction": "dislike",
            "user_ref": hashed_ref(project.export_salt, "u-1"),
            "model": "m2",
            "model_version": "1",
            "created_at": dislike.created_at,
        },
    ]


def test_text_form_flattens_prompts_and_completions(
    api: APIClient, project: Project, answers: dict[str, Answer]
) -> None:
    record(
        project,
        event("e1", "reaction", "multi", reaction="love"),
        event("e2", "reaction", "one", reaction="love"),
    )

    data = rows(api, "kto", form="text")

    assert [(r["prompt"], r["completion"]) for r in data] == [
        (
            "system: Be brief.\n\nuser: Oil?\n\nassistant: Which kind?\n\nuser: Chain oil.",
            "Use chain oil.",
        ),
        ("Oil?", "Any oil."),
    ]


def test_dpo_orders_by_winner_and_leaves_out_ties_and_both_bad(
    api: APIClient, project: Project, answers: dict[str, Answer]
) -> None:
    record(
        project,
        event("c1", "comparison", "one", other_answer="other", winner="b"),
        event("c2", "comparison", "one", other_answer="other", winner="a"),
        event("c3", "comparison", "one", other_answer="other", winner="tie"),
        event("c4", "comparison", "one", other_answer="other", winner="both_bad"),
    )

    data = rows(api, "dpo", form="text")

    assert [(r["prompt"], r["chosen"], r["rejected"]) for r in data] == [
        ("Oil?", "Olive oil!", "Any oil."),
        ("Oil?", "Any oil.", "Olive oil!"),
    ]
    assert [(r["chosen_answer_id"], r["rejected_answer_id"]) for r in data] == [
        ("other", "one"),
        ("one", "other"),
    ]


def test_critiques_carry_the_newest_revision(
    api: APIClient, project: Project, answers: dict[str, Answer]
) -> None:
    record(
        project,
        event("k1", "critique", "one", text="Which oil?", quote="Any", category="incomplete"),
        event("k2", "critique", "other", text="Never olive oil."),
    )
    AnswerFactory.create(
        project=project, external_id="one-rev", response="Chain oil.", revision_of=answers["one"]
    )

    data = rows(api, "critiques")

    assert [
        (r["answer_id"], r["critique"], r["quote"], r["revision"], r["revision_answer_id"])
        for r in data
    ] == [
        ("one", "Which oil?", "Any", [{"role": "assistant", "content": "Chain oil."}], "one-rev"),
        ("other", "Never olive oil.", "", None, None),
    ]


def test_p_love_labels_exposures_by_love_within_the_window(
    api: APIClient, project: Project, answers: dict[str, Answer]
) -> None:
    now = timezone.now()
    day = timedelta(hours=24)

    def at(delta: timedelta) -> str:
        return (now - delta).isoformat()

    record(
        project,
        # loved an hour after seeing it: positive
        event("x1", "exposure", "one", "u-1", at=at(3 * day)),
        event("r1", "reaction", "one", "u-1", reaction="love", at=at(3 * day - timedelta(hours=1))),
        # loved two days after seeing it: outside the window, negative
        event("x2", "exposure", "other", "u-1", at=at(5 * day)),
        event("r2", "reaction", "other", "u-1", reaction="love", at=at(3 * day)),
        # someone else's love doesn't count; a like isn't love
        event("x3", "exposure", "multi", "u-2", at=at(2 * day)),
        event("r3", "reaction", "multi", "u-3", reaction="love", at=at(2 * day)),
        event("r4", "reaction", "multi", "u-2", reaction="like", at=at(2 * day)),
        # loved, then taken back: negative
        event("x4", "exposure", "multi", "u-4", at=at(2 * day)),
        event("r5", "reaction", "multi", "u-4", reaction="love", at=at(2 * day)),
        event("r6", "unreaction", "multi", "u-4", reaction="love", at=at(day + timedelta(hours=1))),
        # too recent to be labelled: left out
        event("x5", "exposure", "one", "u-5", at=at(timedelta(hours=2))),
    )
    positive = Reaction.objects.get(viewer="u-1", answer__external_id="one")

    data = rows(api, "p_love", form="text")

    assert [(r["answer_id"], r["label"], r["reaction_id"]) for r in data] == [
        ("one", True, positive.pk),
        ("other", False, None),
        ("multi", False, None),
        ("multi", False, None),
    ]
    first = data[0]
    assert first["exposure_id"] == Exposure.objects.get(event__event_id="x1").pk
    assert first["label_window"] == 86400
    assert first["user_ref"] == hashed_ref(project.export_salt, "u-1")
    assert first["prompt"] == "Oil?"
    assert first["response"] == "Any oil."
    assert "u-1" not in orjson.dumps(data).decode()


def test_filters_select_by_model_and_time(
    api: APIClient, project: Project, answers: dict[str, Answer]
) -> None:
    record(
        project,
        event("e1", "reaction", "multi", reaction="love", at="2026-01-01T00:00:00Z"),
        event("e2", "reaction", "one", reaction="love", at="2026-02-01T00:00:00Z"),
    )

    assert [r["answer_id"] for r in rows(api, "kto", model="m2")] == ["one"]
    assert [r["answer_id"] for r in rows(api, "kto", until="2026-01-15T00:00:00Z")] == ["multi"]
    assert [r["answer_id"] for r in rows(api, "kto", since="2026-01-15T00:00:00+00:00")] == ["one"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"form": "yaml"}, "form"), ({"since": "soon"}, "since"), ({"until": "2026-01-01"}, "until")],
)
def test_bad_filters_are_400(api: APIClient, params: dict[str, str], field: str) -> None:
    response = api.get("/api/v1/datasets/kto.jsonl", params)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_unknown_dataset_is_404(api: APIClient) -> None:
    response = api.get("/api/v1/datasets/everything.jsonl")

    assert response.status_code == 404
    assert "kto" in response.json()["error"]["message"]


def test_export_needs_its_scope(project: Project) -> None:
    response = bearer_client(api_key_for(project, "ingest")).get("/api/v1/datasets/kto.jsonl")

    assert response.status_code == 403


def test_another_projects_rows_never_appear(
    api: APIClient, project: Project, other_project: Project
) -> None:
    AnswerFactory.create(project=other_project, external_id="theirs")
    record(other_project, event("e1", "reaction", "theirs", reaction="love"))

    assert rows(api, "kto") == []


def test_a_client_accepting_only_json_lines_is_served(api: APIClient) -> None:
    response = api.get("/api/v1/datasets/kto.jsonl", HTTP_ACCEPT="application/x-ndjson")

    assert response.status_code == 200


def _fill_loved_exposures(project: Project, answer: Answer, count: int) -> None:
    """`count` old exposures written in bulk."""
    shown = timezone.now() - timedelta(days=3)
    events = FeedbackEvent.objects.bulk_create(
        FeedbackEvent(
            project=project,
            event_id=f"bulk-{i}",
            type="exposure",
            answer=answer,
            viewer=f"v{i}",
            source="api",
            occurred_at=shown,
            received_at=shown,
        )
        for i in range(count)
    )
    Exposure.objects.bulk_create(
        Exposure(
            project=project,
            answer=answer,
            viewer=e.viewer,
            source="api",
            event=e,
            shown_at=shown,
            window_start=shown,
        )
        for e in events
    )


def _peak_bytes_streaming(project: Project) -> tuple[int, int]:
    import tracemalloc

    from feedback.datasets import DATASETS, Filters, jsonl_chunks

    rows = DATASETS["p_love"].rows(project, Filters(), "conversational", timezone.now())
    tracemalloc.start()
    lines = sum(chunk.count(b"\n") for chunk in jsonl_chunks(rows))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return lines, peak


def test_streaming_memory_does_not_grow_with_the_row_count(project: Project) -> None:
    answer = AnswerFactory.create(project=project, external_id="a", response="x" * 2000)
    _fill_loved_exposures(project, answer, 2_000)
    small_lines, small_peak = _peak_bytes_streaming(project)
    FeedbackEvent.objects.filter(project=project).delete()
    _fill_loved_exposures(project, answer, 20_000)
    large_lines, large_peak = _peak_bytes_streaming(project)

    # Ten times the rows (about 40 MB of JSON) in about the same memory: nothing is held.
    assert (small_lines, large_lines) == (2_000, 20_000)
    assert large_peak < 2 * small_peak + 256 * 1024


@pytest.fixture
def corrected(project: Project, answers: dict[str, Answer]) -> Any:
    from feedback.services.annotation import interventions_save
    from tests.factories import StageFactory, UserFactory

    answer = answers["one"]
    StageFactory.create(
        answer=answer,
        position=0,
        kind="retrieval",
        input={"queries": ["oil"]},
        output={"documents": [{"id": "d1", "text": "Chain oil."}, {"id": "d 2", "text": "Olive."}]},
    )
    StageFactory.create(answer=answer, position=1, kind="generation", output={"text": "Any oil."})
    annotator = UserFactory.create()
    saved = interventions_save(
        answer=answer,
        annotator=annotator,
        rationale="Olive oil gums up chains.",
        changes=[
            {
                "stage": 0,
                "action": "doc_relevance",
                "after": {"doc_id": "d 2", "relevance": "relevant"},
            },
            {
                "stage": 0,
                "action": "doc_relevance",
                "after": {"doc_id": "d1", "relevance": "relevant"},
            },
            {"stage": 1, "action": "answer_edit", "after": {"text": "Chain oil, never olive oil."}},
        ],
    )
    # A later, second opinion on d 2 wins in the qrels.
    interventions_save(
        answer=answer,
        annotator=annotator,
        changes=[
            {
                "stage": 0,
                "action": "doc_relevance",
                "after": {"doc_id": "d 2", "relevance": "irrelevant"},
            }
        ],
    )
    return annotator, saved


def test_sft_takes_corrected_answers(api: APIClient, project: Project, corrected: Any) -> None:
    annotator, saved = corrected

    data = rows(api, "sft", form="text")

    assert [(r["prompt"], r["completion"], r["intervention_id"]) for r in data] == [
        ("Oil?", "Chain oil, never olive oil.", saved[2].pk)
    ]
    assert data[0]["annotator"] == hashed_ref(project.export_salt, f"user:{annotator.pk}")


def test_dpo_adds_corrections_over_originals_after_comparisons(
    api: APIClient, project: Project, answers: dict[str, Answer], corrected: Any
) -> None:
    record(project, event("c1", "comparison", "one", other_answer="other", winner="a"))

    data = rows(api, "dpo")

    assert [(r["source"], r["chosen"], r["rejected"]) for r in data] == [
        (
            "comparison",
            [{"role": "assistant", "content": "Any oil."}],
            [{"role": "assistant", "content": "Olive oil!"}],
        ),
        (
            "edit",
            [{"role": "assistant", "content": "Chain oil, never olive oil."}],
            [{"role": "assistant", "content": "Any oil."}],
        ),
    ]
    assert data[1]["intervention_id"] == corrected[1][2].pk
    assert data[1]["comparison_id"] is None


def test_stages_pair_the_system_output_with_the_correction(api: APIClient, corrected: Any) -> None:
    data = rows(api, "stages")

    edit = next(r for r in data if r["action"] == "answer_edit")
    assert len(data) == 4
    assert (edit["stage_kind"], edit["stage_position"]) == ("generation", 1)
    assert edit["system_output"] == {"text": "Any oil."}
    assert edit["corrected_output"] == {"text": "Chain oil, never olive oil."}
    assert edit["rationale"] == "Olive oil gums up chains."


def test_qrels_are_trec_lines_from_the_newest_judgment(api: APIClient, corrected: Any) -> None:
    response = api.get("/api/v1/datasets/qrels.txt")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert sorted(b"".join(response.streaming_content).decode().splitlines()) == [  # type: ignore[attr-defined]
        "one 0 d%202 0",
        "one 0 d1 2",
    ]


def test_parquet_of_a_chained_dataset_holds_both_parts(
    api: APIClient,
    project: Project,
    answers: dict[str, Answer],
    corrected: Any,
    settings: Any,
    tmp_path: Any,
) -> None:
    import io

    import pyarrow.parquet as pq

    from feedback.services import datasets as exports

    settings.MEDIA_ROOT = tmp_path
    record(project, event("c1", "comparison", "one", other_answer="other", winner="b"))
    export_id = api.post(
        "/api/v1/exports",
        data=orjson.dumps({"dataset": "dpo", "format": "parquet"}),
        content_type="application/json",
    ).json()["id"]
    exports.export_build(export_id=export_id)

    download = api.get(f"/api/v1/exports/{export_id}/download")
    table = pq.read_table(io.BytesIO(b"".join(download.streaming_content)))  # type: ignore[attr-defined]

    assert table.column("source").to_pylist() == ["comparison", "edit"]
