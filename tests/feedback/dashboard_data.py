"""Feedback spread over several days and three model versions, recorded through the service as
a client's API would send it: what the dashboard tests read."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from feedback.models import Project
from feedback.services import feedback_record
from tests.factories import AnswerFactory

VERSIONS = [("demo-small", "1"), ("demo-small", "2"), ("demo-large", "")]


def seed_feedback(
    project: Project, *, now: datetime, answers_per_version: int = 3, seed: int = 7
) -> list[Any]:
    """Answers of each version, and per day over the last ten days exposures, reactions (some
    taken back, Loves inside and outside the Love window), critiques, comparisons and
    follow-ups, plus the same again from simulated viewers. Returns the answers."""
    rng = random.Random(seed)
    answers = [
        AnswerFactory.create(
            project=project,
            external_id=f"{model}-{version or 'x'}-{i}-s{seed}",
            model=model,
            model_version=version,
            created_at=now - timedelta(days=12),
        )
        for model, version in VERSIONS
        for i in range(answers_per_version)
    ]
    events: list[dict[str, Any]] = []
    simulated: list[dict[str, Any]] = []

    def add(kind: str, answer: Any, viewer: str, at: datetime, **data: Any) -> None:
        target = simulated if viewer.startswith("sim") else events
        target.append(
            {
                "event_id": f"{viewer}-{len(target)}-s{seed}",
                "type": kind,
                "answer": answer.external_id,
                "user_ref": viewer,
                "at": at.isoformat(),
                **data,
            }
        )

    for day in range(10, -1, -1):
        for n in range(14):
            viewer = f"{'sim' if n % 5 == 4 else 'u'}-{day}-{n}"
            answer = rng.choice(answers)
            # The last day's exposures are younger than the Love window: not labelled yet.
            shown = now - timedelta(days=day, hours=rng.randint(1, 20) if day else 0, minutes=30)
            add("exposure", answer, viewer, shown)
            roll = rng.random()
            if roll < 0.35:
                # Within the window, or (sometimes) two days later: not a P[Love] positive.
                late = rng.random() < 0.2
                add(
                    "reaction",
                    answer,
                    viewer,
                    shown + timedelta(hours=50 if late else 1),
                    reaction="love",
                )
                if not late and rng.random() < 0.15:
                    add("unreaction", answer, viewer, shown + timedelta(hours=2), reaction="love")
            elif roll < 0.6:
                kind = rng.choice(["like", "dislike", "laugh", "angry"])
                add("reaction", answer, viewer, shown + timedelta(minutes=5), reaction=kind)
            if rng.random() < 0.3:
                add("critique", answer, viewer, shown + timedelta(minutes=9), text="Too vague.")
            if rng.random() < 0.4:
                other = rng.choice([a for a in answers if a.pk != answer.pk])
                winner = rng.choice(["a", "a", "b", "tie", "both_bad"])
                add(
                    "comparison",
                    answer,
                    viewer,
                    shown + timedelta(minutes=11),
                    other_answer=other.external_id,
                    winner=winner,
                )
            if rng.random() < 0.4:
                outcome = rng.choice(["solved", "solved", "partly", "not_solved"])
                add("followup", answer, viewer, shown + timedelta(minutes=20), outcome=outcome)
    future = now + timedelta(seconds=1)
    for batch, source in ((events, "api"), (simulated, "simulated")):
        batch = [e for e in batch if datetime.fromisoformat(e["at"]) < future]
        results = feedback_record(project=project, items=batch, source=source)
        assert all(r.status == "created" for r in results), [r for r in results if r.errors]
    return answers
