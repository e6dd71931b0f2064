"""Shadow runs on planted data: what they record, the agreement they report, and simulated
feedback kept apart from people's (counts, datasets, the event feed, the API)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from django.utils import timezone

from feedback import selectors as feedback_selectors
from feedback.core import jobs
from feedback.core.jobs import Attempt
from feedback.datasets import DATASETS, Filters, jsonl_chunks
from feedback.models import Answer, FeedbackEvent, Project, SimulatedFeedback
from feedback.services import answers_ingest, feedback_record
from rewardmodels import services
from rewardmodels.models import RewardModel, ShadowRun
from tests.conftest import bearer_client
from tests.factories import api_key_for

GOOD = "A wonderful, detailed sunflower answer with every step."
BAD = "plain"
TRAINERS = 8  # viewers whose reactions train the model: they love GOOD, not BAD


def plant_shadow_data(project: Project) -> None:
    """Forty labelled exposures, oldest first: eight trainers see two GOOD and two BAD answers
    and love the GOOD ones; then, newest (the held-out fifth), alice does the same and bob the
    opposite. Carol saw one of each an hour ago (too recent to be labelled) and reacted to
    neither."""
    answers_ingest(
        project=project,
        items=[
            {"external_id": f"{kind}-{i}", "prompt": "How?", "response": text, "model": "m"}
            for kind, text in (("good", GOOD), ("bad", BAD))
            for i in range(2)
        ],
    )
    start = timezone.now() - timedelta(days=10)
    events: list[dict[str, Any]] = []
    viewers = [*(f"t{v}" for v in range(TRAINERS)), "alice", "bob"]
    for v, viewer in enumerate(viewers):
        for a, answer in enumerate(("good-0", "bad-0", "good-1", "bad-1")):
            shown = start + timedelta(hours=v * 4 + a)
            seen = {"answer": answer, "user_ref": viewer}
            events.append(
                {
                    **seen,
                    "event_id": f"x-{viewer}-{answer}",
                    "type": "exposure",
                    "at": shown.isoformat(),
                }
            )
            if answer.startswith("bad" if viewer == "bob" else "good"):
                events.append(
                    {
                        **seen,
                        "event_id": f"l-{viewer}-{answer}",
                        "type": "reaction",
                        "reaction": "love",
                        "at": (shown + timedelta(minutes=1)).isoformat(),
                    }
                )
    recent = (timezone.now() - timedelta(hours=1)).isoformat()
    for answer in ("good-0", "bad-0"):
        events.append(
            {
                "event_id": f"x-carol-{answer}",
                "type": "exposure",
                "answer": answer,
                "user_ref": "carol",
                "at": recent,
            }
        )
    results = feedback_record(project=project, items=events, source="api")
    assert {r.status for r in results} == {"created"}


def _trained(project: Project) -> RewardModel:
    model = services.reward_model_create(
        project=project, name="love", objective="p_love", config={"epochs": 50}, created_by=None
    )
    run = services.training_run_start(reward_model=model, requested_by=None)
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.metrics["rows_train"] == 32
    model.refresh_from_db()
    return model


def _p(model: RewardModel, response: str) -> float:
    _, scores = services.reward_model_score(
        reward_model=model, items=[{"prompt": "How?", "response": response}]
    )
    return scores[0]["p_love"]


@pytest.fixture
def shadowed(project: Project) -> tuple[RewardModel, ShadowRun]:
    """A finished shadow run at the threshold halfway between the model's two predictions."""
    plant_shadow_data(project)
    model = _trained(project)
    high, low = _p(model, GOOD), _p(model, BAD)
    assert high > low
    run = services.shadow.shadow_run_start(reward_model=model, threshold=(high + low) / 2)
    services.shadow.shadow_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return model, run


def _rows(project: Project, name: str, **filters: Any) -> list[dict[str, Any]]:
    rows = DATASETS[name].rows(project, Filters(**filters), "text", timezone.now())
    return [orjson.loads(line) for line in b"".join(jsonl_chunks(rows)).splitlines()]


@pytest.mark.django_db
def test_a_shadow_records_the_unrated_exposures_and_agrees_as_worked_out_by_hand(
    project: Project, shadowed: tuple[RewardModel, ShadowRun]
) -> None:
    _, run = shadowed

    # then every exposure nobody reacted to got a prediction: the trainers' and alice's BAD
    # answers (18), bob's GOOD ones (2) and carol's two
    records = SimulatedFeedback.objects.filter(producer=run.producer)
    assert records.count() == 22
    assert all(r.source == "simulated" and r.model_version == "love v1" for r in records)
    assert all(0.0 <= (r.probability or -1) <= 1.0 for r in records)
    # and a simulated Love where the shadow crossed the threshold: the GOOD answers among them
    loves = records.filter(reaction="love")
    assert sorted(loves.values_list("viewer", "answer__external_id")) == [
        ("bob", "good-0"),
        ("bob", "good-1"),
        ("carol", "good-0"),
    ]
    assert run.counts | {"labelled_scored": 40} == {
        "exposures": 22,
        "simulated_loves": 3,
        "viewers": TRAINERS + 3,
        "threshold": run.counts["threshold"],
        "own_thresholds": 0,
        "labelled_scored": 40,
    }

    # and on the held-out part (alice and bob), by hand: alice is predicted perfectly (AUC 1,
    # accuracy 1, kappa 1); bob exactly wrongly (AUC 0, accuracy 0, kappa -1); together the
    # Loves are half GOOD, half BAD, so AUC 1/2, accuracy 1/2 and kappa 0
    viewers = {v["viewer"]: v for v in run.agreement["viewers"]}
    assert set(viewers) == {"alice", "bob"}
    assert [viewers["alice"][k] for k in ("rows", "loved", "roc_auc", "accuracy", "kappa")] == [
        4,
        2,
        1.0,
        1.0,
        1.0,
    ]
    assert [viewers["bob"][k] for k in ("rows", "loved", "roc_auc", "accuracy", "kappa")] == [
        4,
        2,
        0.0,
        0.0,
        -1.0,
    ]
    overall = run.agreement["overall"]
    assert (overall["rows"], overall["roc_auc"], overall["accuracy"], overall["kappa"]) == (
        8,
        0.5,
        0.5,
        0.0,
    )


@pytest.mark.django_db
def test_a_second_delivery_writes_nothing_twice(
    project: Project, shadowed: tuple[RewardModel, ShadowRun]
) -> None:
    _, run = shadowed
    before = SimulatedFeedback.objects.count(), FeedbackEvent.objects.count()

    services.shadow.shadow_run_execute(run_id=run.pk)

    assert (SimulatedFeedback.objects.count(), FeedbackEvent.objects.count()) == before


@pytest.mark.django_db
def test_simulated_feedback_changes_no_count_people_see(project: Project) -> None:
    # given the counts before any shadow ran
    plant_shadow_data(project)
    model = _trained(project)
    answers = list(Answer.objects.filter(project=project).order_by("id"))

    def counts() -> Any:
        return (
            feedback_selectors.reaction_counts(answers=answers),
            [feedback_selectors.answer_feedback_counts(answer=a) for a in answers],
            [
                list(feedback_selectors.answers_filtered(project=project, reaction=r))
                for r in ("any", "none", "love")
            ],
            feedback_selectors.reactions_of_viewer(answers=answers, viewer="bob"),
        )

    before = counts()

    # when a shadow loves every unrated exposure (threshold 0)
    run = services.shadow.shadow_run_start(reward_model=model, threshold=0.0)
    services.shadow.shadow_run_execute(run_id=run.pk)
    assert SimulatedFeedback.objects.filter(reaction="love").count() == 22

    # then what people see is the same
    assert counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["kto", "dpo", "critiques", "p_love", "sft", "stages"])
def test_simulated_rows_are_in_no_dataset_by_default(
    project: Project, shadowed: tuple[RewardModel, ShadowRun], name: str
) -> None:
    rows = _rows(project, name)
    assert all("simulated" not in row and "weight" not in row for row in rows)
    if name == "kto":
        assert len(rows) == 2 * (TRAINERS + 2)  # the real Loves only
    if name == "p_love":
        assert sum(row["label"] for row in rows) == 2 * (TRAINERS + 2)


@pytest.mark.django_db
def test_included_simulated_rows_are_marked_and_weighted(
    project: Project, shadowed: tuple[RewardModel, ShadowRun]
) -> None:
    _, run = shadowed
    probability: dict[int, float] = {
        pk: p or 0.0
        for pk, p in SimulatedFeedback.objects.filter(producer=run.producer).values_list(
            "id", "probability"
        )
    }

    # kto: the real Loves, then the three simulated ones, weighted by their probability
    kto = _rows(project, "kto", include_simulated=True)
    real = [r for r in kto if not r["simulated"]]
    simulated = [r for r in kto if r["simulated"]]
    assert len(real) == 2 * (TRAINERS + 2)
    assert {r["weight"] for r in real} == {1.0}
    assert len(simulated) == 3
    for row in simulated:
        assert row["label"] is True
        assert row["reaction_id"] is None
        assert row["weight"] == pytest.approx(probability[row["simulated_id"]])

    # p_love: every labelled exposure once; those a shadow spoke for carry its label, weighted
    # by how sure it was of that label
    p_love = _rows(project, "p_love", include_simulated=True)
    assert len(p_love) == 40
    marked = [r for r in p_love if r["simulated"]]
    assert len(marked) == 20  # carol's are too recent to be labelled
    for row in marked:
        p = probability[row["simulated_id"]]
        assert row["weight"] == pytest.approx(p if row["label"] else 1 - p)
    assert sorted(r["answer_id"] for r in marked if r["label"]) == ["good-0", "good-1"]  # bob's
    assert all(
        r["weight"] == 1.0 and r["simulated_id"] is None for r in p_love if not r["simulated"]
    )

    # the other datasets have no simulated source: their rows say so
    for name in ("dpo", "critiques", "sft", "stages"):
        assert all(r["simulated"] is False for r in _rows(project, name, include_simulated=True))


@pytest.mark.django_db
def test_the_api_streams_simulated_rows_only_when_asked_and_the_feed_shows_their_source(
    project: Project, shadowed: tuple[RewardModel, ShadowRun]
) -> None:
    api = bearer_client(api_key_for(project))

    plain = api.get("/api/v1/datasets/kto.jsonl")
    included = api.get("/api/v1/datasets/kto.jsonl?include_simulated=true")
    wrong = api.get("/api/v1/datasets/kto.jsonl?include_simulated=yes")
    qrels = api.get("/api/v1/datasets/qrels.txt?include_simulated=true")
    feed = api.get("/api/v1/feedback?type=reaction&limit=1000")

    plain_lines = b"".join(plain.streaming_content).splitlines()  # type: ignore[attr-defined]
    assert len(plain_lines) == 2 * (TRAINERS + 2)
    lines = b"".join(included.streaming_content).splitlines()  # type: ignore[attr-defined]
    rows = [orjson.loads(line) for line in lines]
    assert sum(r["simulated"] for r in rows) == 3
    assert wrong.status_code == 400
    assert "include_simulated" in wrong.json()["error"]["fields"]
    assert qrels.status_code == 400
    assert "include_simulated" in qrels.json()["error"]["fields"]
    simulated = [e for e in feed.json()["results"] if e["source"] == "simulated"]
    assert sorted(e["user_ref"] for e in simulated) == ["bob", "bob", "carol"]
    assert all(e["reaction"] == "love" and e["simulated"] is True for e in simulated)
    assert all(0 < e["probability"] <= 1 and e["model_version"] == "love v1" for e in simulated)


@pytest.mark.django_db
def test_training_learns_from_simulated_rows_only_when_its_config_says_so(
    project: Project, shadowed: tuple[RewardModel, ShadowRun]
) -> None:
    # given the shadow run of the planted data: it labelled every exposure nobody reacted to
    # (the trainers' and alice's BAD answers, bob's GOOD ones)

    def trained(**config: Any) -> dict[str, Any]:
        other = services.reward_model_create(
            project=project,
            name=f"again {config}",
            objective="p_love",
            config={"epochs": 5, **config},
            created_by=None,
        )
        again = services.training_run_start(reward_model=other, requested_by=None)
        services.training_run_execute(run_id=again.pk)
        again.refresh_from_db()
        assert again.status == "succeeded", again.error
        return dict(again.metrics)

    # when a model is trained with and without the flag
    without, with_simulated = trained(), trained(include_simulated=True)

    # then only with it do the trainers' 16 unreacted exposures train with the shadow's label;
    # held out, the model is measured on people's own labels only: without the flag all eight
    # newest rows (half loved), with it the four that someone reacted to (all loved), the
    # shadow's four left out
    assert "simulated" not in without
    assert with_simulated["simulated"] == {"rows_train": 16, "rows_held_out_left_out": 4}
    assert (without["rows_test"], without["base_rate"]) == (8, 0.5)
    assert (with_simulated["rows_test"], with_simulated["base_rate"]) == (4, 1.0)


@pytest.mark.django_db
def test_a_run_in_small_pages_records_the_same_and_reports_each_page(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given pages of five exposures, and every progress report written
    plant_shadow_data(project)
    model = _trained(project)
    monkeypatch.setattr(services.shadow, "CHUNK", 5)
    ticks = iter(range(0, 10**6, 10))  # a clock that moves on 10 s per look: none is skipped
    monkeypatch.setattr(jobs, "clock", lambda: next(ticks))
    messages: list[str] = []
    real_progress = Attempt.progress

    def spy(self: Attempt[Any], fraction: Any = None, message: Any = None, **kw: Any) -> None:
        messages.append(str(message))
        real_progress(self, fraction, message, **kw)

    monkeypatch.setattr(Attempt, "progress", spy)

    # when a shadow runs
    run = services.shadow.shadow_run_start(reward_model=model, threshold=0.0)
    services.shadow.shadow_run_execute(run_id=run.pk)

    # then all 22 unrated exposures are recorded, page by page (5, 10, ... 22)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert SimulatedFeedback.objects.filter(producer=run.producer).count() == 22
    pages = [m for m in messages if m.startswith("Simulated ")]
    assert pages == [f"Simulated {n} of 22 exposures…" for n in (5, 10, 15, 20, 22)]
