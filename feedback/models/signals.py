"""Signals: what viewers did with an answer (exposures, reactions, critiques, comparisons,
follow-ups) and the event log every signal is also written to.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from feedback.core.constraints import choices_check
from feedback.models.tenancy import Project
from feedback.models.traces import Answer


class Source(models.TextChoices):
    BROWSER = "browser"
    API = "api"
    SIMULATED = "simulated"


class EventType(models.TextChoices):
    EXPOSURE = "exposure"
    REACTION = "reaction"
    UNREACTION = "unreaction"
    CRITIQUE = "critique"
    COMPARISON = "comparison"
    FOLLOWUP = "followup"


class FeedbackEvent(models.Model):
    """The log of every feedback event, from the browser and the API alike.

    `event_id` is the idempotency key (unique per project): a replay finds its row and writes
    nothing. `GET /api/v1/feedback` pages through this table in id order. The domain rows
    (Exposure, Reaction, ...) point back to the event that made them.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="events")
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=16, choices=EventType.choices)
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="events")
    viewer = models.CharField(max_length=255)
    source = models.CharField(max_length=16, choices=Source.choices)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    data = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "event_id"], name="event_id_unique"),
            choices_check("type", EventType, "event_type_valid"),
            choices_check("source", Source, "event_source_valid"),
        ]
        indexes = [
            models.Index(fields=["project", "viewer", "received_at"], name="event_viewer_recent"),
            models.Index(fields=["project", "type", "id"], name="event_type_page"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class Exposure(models.Model):
    """An answer was shown to a viewer: the denominator of every rate and the negative class of
    P[Love]. A signed-in viewer (source `browser`: the pages and the session API alike) has at
    most one per answer and window (`window_start`); an API key's client records each sighting."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exposures")
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="exposures")
    viewer = models.CharField(max_length=255)
    surface = models.CharField(max_length=32, default="answer")
    source = models.CharField(max_length=16, choices=Source.choices)
    event = models.OneToOneField(
        FeedbackEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="exposure"
    )
    shown_at = models.DateTimeField()
    window_start = models.DateTimeField()

    class Meta:
        constraints = [
            choices_check("source", Source, "exposure_source_valid"),
            models.UniqueConstraint(
                fields=["answer", "viewer", "window_start"],
                condition=Q(source="browser"),
                name="exposure_once_per_window",
            ),
        ]
        indexes = [
            models.Index(fields=["answer", "viewer", "shown_at"], name="exposure_viewer"),
            # P[Love] reads a project's exposures oldest first (temporal split).
            models.Index(fields=["project", "shown_at", "id"], name="exposure_project_time"),
        ]

    def __str__(self) -> str:
        return f"{self.viewer} saw {self.answer_id}"


class Reaction(models.Model):
    """A viewer's reaction of one kind to an answer. Removing sets `removed_at`: the history
    stays, and at most one reaction of a kind per viewer and answer is active."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reactions")
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="reactions")
    viewer = models.CharField(max_length=255)
    kind = models.CharField(max_length=32)
    source = models.CharField(max_length=16, choices=Source.choices)
    event = models.ForeignKey(FeedbackEvent, on_delete=models.CASCADE, related_name="+")
    removed_by = models.ForeignKey(
        FeedbackEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["answer", "viewer", "kind"],
                condition=Q(removed_at__isnull=True),
                name="reaction_one_active_per_kind",
            ),
            choices_check("source", Source, "reaction_source_valid"),
        ]
        indexes = [
            models.Index(
                fields=["answer", "kind"],
                condition=Q(removed_at__isnull=True),
                name="reaction_active_by_answer",
            ),
            models.Index(fields=["project", "viewer", "created_at"], name="reaction_viewer_day"),
        ]

    def __str__(self) -> str:
        return f"{self.viewer} {self.kind} {self.answer_id}"


class Critique(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="critiques")
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="critiques")
    viewer = models.CharField(max_length=255)
    source = models.CharField(max_length=16, choices=Source.choices)
    event = models.OneToOneField(FeedbackEvent, on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    quote = models.TextField(blank=True, default="")
    category = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [choices_check("source", Source, "critique_source_valid")]

    def __str__(self) -> str:
        return self.text[:40]


class Winner(models.TextChoices):
    A = "a", "A is better"
    B = "b", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


class Comparison(models.Model):
    """A viewer compared two answers to the same prompt."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="comparisons")
    answer_a = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="+")
    answer_b = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="+")
    viewer = models.CharField(max_length=255)
    winner = models.CharField(max_length=16, choices=Winner.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    event = models.OneToOneField(FeedbackEvent, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            choices_check("winner", Winner, "comparison_winner_valid"),
            choices_check("source", Source, "comparison_source_valid"),
            models.CheckConstraint(
                condition=~Q(answer_a=models.F("answer_b")), name="comparison_two_answers"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.answer_a_id} vs {self.answer_b_id}: {self.winner}"


class Outcome(models.TextChoices):
    SOLVED = "solved", "Solved"
    PARTLY = "partly", "Partly"
    NOT_SOLVED = "not_solved", "Not solved"


class FollowUp(models.Model):
    """Hindsight feedback: asked some time after the viewer saw the answer."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="followups")
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="followups")
    viewer = models.CharField(max_length=255)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    text = models.TextField(blank=True, default="")
    source = models.CharField(max_length=16, choices=Source.choices)
    event = models.OneToOneField(FeedbackEvent, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            choices_check("outcome", Outcome, "followup_outcome_valid"),
            choices_check("source", Source, "followup_source_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.viewer} {self.outcome} {self.answer_id}"
