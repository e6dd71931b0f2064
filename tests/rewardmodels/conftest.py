"""Feedback data with a planted signal, written through the platform's own services."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from feedback.models import Project
from feedback.services import answers_ingest, feedback_record

MARKER = "sunflower"


def plant_exposures(
    project: Project, *, answers: int = 40, viewers: int = 30, seed: int = 7
) -> dict[str, Any]:
    """Answers half of which mention MARKER; every viewer sees every answer once, three days
    ago or more (so the label is known), and loves a MARKER answer with p=0.8, another with
    p=0.1. Returns counts for the assertions."""
    rng = random.Random(seed)
    start = timezone.now() - timedelta(days=5)
    payloads = []
    for a in range(answers):
        marked = a % 2 == 0
        words = " ".join(rng.choice(["rice", "water", "pot", "boil", "salt"]) for _ in range(12))
        response = f"{words} {MARKER} garden" if marked else f"{words} plain answer"
        payloads.append(
            {
                "external_id": f"planted-{a}",
                "prompt": [{"role": "user", "content": f"question {a % 5}"}],
                "response": response,
                "model": "m",
                "model_version": "2" if a % 4 < 2 else "1",
            }
        )
    answers_ingest(project=project, items=payloads)
    events: list[dict[str, Any]] = []
    loves = 0
    for v in range(viewers):
        for a in range(answers):
            shown = start + timedelta(minutes=v * answers + a)
            base = {"answer": f"planted-{a}", "user_ref": f"viewer-{v}"}
            events.append(
                {**base, "event_id": f"x-{v}-{a}", "type": "exposure", "at": shown.isoformat()}
            )
            if rng.random() < (0.8 if a % 2 == 0 else 0.1):
                loves += 1
                events.append(
                    {
                        **base,
                        "event_id": f"l-{v}-{a}",
                        "type": "reaction",
                        "reaction": "love",
                        "at": (shown + timedelta(minutes=1)).isoformat(),
                    }
                )
    for i in range(0, len(events), 1000):
        feedback_record(project=project, items=events[i : i + 1000], source="api")
    return {"exposures": answers * viewers, "loves": loves}


def plant_comparisons(project: Project, *, pairs: int = 40, seed: int = 3) -> None:
    """Pairs of answers to one prompt where the MARKER answer wins 90% of the time."""
    rng = random.Random(seed)
    payloads, events = [], []
    for p in range(pairs):
        prompt = [{"role": "user", "content": f"compare {p}"}]
        for side, text in (("good", f"{MARKER} detailed steps {p}"), ("bad", f"plain reply {p}")):
            payloads.append(
                {
                    "external_id": f"pair-{p}-{side}",
                    "prompt": prompt,
                    "response": text,
                    "model": "m",
                }
            )
        good_wins = rng.random() < 0.9
        events.append(
            {
                "event_id": f"cmp-{p}",
                "type": "comparison",
                "answer": f"pair-{p}-good",
                "other_answer": f"pair-{p}-bad",
                "winner": "a" if good_wins else "b",
                "user_ref": f"judge-{p % 4}",
                "at": (timezone.now() - timedelta(hours=pairs - p)).isoformat(),
            }
        )
    answers_ingest(project=project, items=payloads)
    feedback_record(project=project, items=events, source="api")


@pytest.fixture
def planted(project: Project) -> Callable[..., dict[str, Any]]:
    return lambda **kwargs: plant_exposures(project, **kwargs)
