"""Simulated feedback: what a shadow (a reward model speaking for a viewer) or a model judge
said, kept beside the people's feedback and never inside it.

These rows live in their own table, so no count, rate or selector over reactions, critiques
or interventions can take one for a person's: a shadow's Love is not a Reaction. Each row says
who produced it (`producer`, a run or judge; `model_version`) and how sure it was
(`probability`). Datasets leave them out unless asked, and then mark every row
(`simulated`, `weight`). A simulated Love also appears in the event log, with source
`simulated`, so the feed shows it for what it is.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from feedback.core.constraints import choices_check
from feedback.models.annotation import Intervention
from feedback.models.signals import Exposure, FeedbackEvent, Source
from feedback.models.tenancy import Project
from feedback.models.traces import Answer, Stage


class SimulatedKind(models.TextChoices):
    # A shadow's P[Love] for one exposure; `reaction` is "love" where it passed the threshold.
    PREDICTION = "prediction"
    # A judge's verdict on an answer: `reaction` (a kind of the project's set) and `text`.
    VERDICT = "verdict"
    # A judge's proposed correction of a stage: `action` and `after`, as an Intervention has.
    INTERVENTION = "intervention"


class ProposalStatus(models.TextChoices):
    """What an annotator did with a proposed correction."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class SimulatedFeedback(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="simulated")
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="simulated")
    # The viewer the shadow speaks for; "" when a judge speaks for nobody in particular.
    viewer = models.CharField(max_length=255, blank=True, default="")
    kind = models.CharField(max_length=16, choices=SimulatedKind.choices)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.SIMULATED)
    # The run that produced the row ("shadow_run:12", "judge_run:3"): one row per item and run.
    producer = models.CharField(max_length=64)
    # The model behind it: "<reward model name> v<version>", or the judge's generator model.
    model_version = models.CharField(max_length=300, blank=True, default="")
    probability = models.FloatField(null=True, blank=True)
    exposure = models.ForeignKey(
        Exposure, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    stage = models.ForeignKey(
        Stage, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    reaction = models.CharField(max_length=32, blank=True, default="")
    text = models.TextField(blank=True, default="")
    action = models.CharField(max_length=24, blank=True, default="")
    after = models.JSONField(default=dict, blank=True)
    # Which item of its stage it is about ("doc:<id>" for a document, "subqueries"): one
    # proposal per item and run.
    item = models.CharField(max_length=300, blank=True, default="")
    event = models.OneToOneField(
        FeedbackEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=ProposalStatus.choices, default=ProposalStatus.PENDING
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # The annotator's own intervention an accepted proposal became.
    intervention = models.ForeignKey(
        Intervention, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            choices_check("kind", SimulatedKind, "simulated_kind_valid"),
            choices_check("status", ProposalStatus, "simulated_status_valid"),
            # Nothing here is a person's feedback.
            models.CheckConstraint(
                condition=Q(source=Source.SIMULATED), name="simulated_source_is_simulated"
            ),
            models.CheckConstraint(
                condition=Q(probability__isnull=True)
                | Q(probability__gte=0.0, probability__lte=1.0),
                name="simulated_probability_range",
            ),
            # A run resumed after its worker died writes nothing twice.
            models.UniqueConstraint(
                fields=["producer", "exposure"],
                condition=Q(exposure__isnull=False),
                name="simulated_once_per_exposure",
            ),
            models.UniqueConstraint(
                fields=["producer", "answer", "kind", "item"],
                condition=Q(exposure__isnull=True),
                name="simulated_once_per_item",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "kind", "id"], name="simulated_kind"),
            models.Index(fields=["producer", "id"], name="simulated_producer"),
            models.Index(fields=["answer", "kind"], name="simulated_answer"),
            # p_love with simulated rows looks up each exposure's newest prediction.
            models.Index(
                fields=["exposure", "id"],
                condition=Q(exposure__isnull=False),
                name="simulated_exposure",
            ),
            # Debug mode lists a stage's proposals.
            models.Index(
                fields=["stage", "id"], condition=Q(stage__isnull=False), name="simulated_stage"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} by {self.producer} on {self.answer_id}"
