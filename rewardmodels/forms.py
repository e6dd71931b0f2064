"""Forms of the reward-model and C3PO pages: they turn the submitted fields into typed values;
the services check the rules (the same ones the API's input meets) and write."""

from __future__ import annotations

from typing import Any

from django import forms

from feedback.core.forms import ServiceForm
from rewardmodels.c3po import DEFAULT_COUNTS
from rewardmodels.models import C3POItem, Objective
from rewardmodels.services.c3po import (
    CONCURRENCY_RULE,
    GENERATOR_CONCURRENCY,
    GENERATOR_TEMPERATURE,
    TEMPERATURE_RULE,
)
from rewardmodels.services.reward_models import P_LOVE_CONFIG

# --- reward models ------------------------------------------------------------------------------


def _config_rule(key: str) -> dict[str, str]:
    """The message of a setting the form could not read as a number: the service's own."""
    return {"invalid": f"Must be {P_LOVE_CONFIG[key][2]}."}


class RewardModelForm(ServiceForm):
    """A new reward model with the settings people change most (the API takes all of them); a
    setting left blank keeps its default."""

    name = forms.CharField(required=False, strip=False)
    objective = forms.CharField(required=False)
    test_fraction = forms.FloatField(required=False, error_messages=_config_rule("test_fraction"))
    epochs = forms.IntegerField(required=False, error_messages=_config_rule("epochs"))
    model = forms.CharField(required=False)
    model_version = forms.CharField(required=False)
    # P[Love] only: the service checks the value and names the setting.
    personalization = forms.CharField(required=False)
    include_simulated = forms.BooleanField(required=False)

    SETTINGS = ("test_fraction", "epochs", "model", "model_version", "personalization")
    P_LOVE_ONLY = ("epochs", "personalization", "include_simulated")
    service_names = {name: f"config.{name}" for name in (*SETTINGS, "include_simulated")}

    def config(self) -> dict[str, Any]:
        data = self.cleaned_data
        config = {key: data[key] for key in self.SETTINGS if data[key] not in (None, "")}
        if data["include_simulated"]:
            config["include_simulated"] = True
        if data["objective"] == Objective.PREFERENCE:
            for key in self.P_LOVE_ONLY:  # preference models: one pass, no viewers
                config.pop(key, None)
        return config


class ActivateForm(ServiceForm):
    version = forms.IntegerField()


class ScoreForm(ServiceForm):
    """One response to try the active version on."""

    prompt = forms.CharField(required=False, strip=False)
    response = forms.CharField(required=False, strip=False)


# --- C3PO ---------------------------------------------------------------------------------------


class VerbalFeedbackForm(ServiceForm):
    text = forms.CharField(required=False, strip=False)
    domain = forms.CharField(required=False, strip=False)
    effect = forms.CharField(required=False, strip=False)


class GeneratorForm(ServiceForm):
    """A generator, saved by name. Its key is never shown again: left blank, the stored one is
    kept."""

    name = forms.CharField(required=False, strip=False)
    base_url = forms.CharField(required=False, strip=False)
    model = forms.CharField(required=False, strip=False)
    api_key = forms.CharField(required=False, strip=False, empty_value=None)
    temperature = forms.FloatField(required=False, error_messages={"invalid": TEMPERATURE_RULE})
    concurrency = forms.IntegerField(required=False, error_messages={"invalid": CONCURRENCY_RULE})

    url_fields = ("base_url",)

    def clean_temperature(self) -> float:
        value: float | None = self.cleaned_data["temperature"]
        return GENERATOR_TEMPERATURE if value is None else value

    def clean_concurrency(self) -> int:
        value: int | None = self.cleaned_data["concurrency"]
        return GENERATOR_CONCURRENCY if value is None else value


class BuildForm(ServiceForm):
    """A build of a feedback's dataset: the generator (none: annotators write the revisions)
    and the counts, each left blank for the paper's proportion."""

    generator = forms.IntegerField(required=False, min_value=1)
    review = forms.BooleanField(required=False)
    categories = forms.IntegerField(
        required=False, error_messages={"invalid": "Must be an integer."}
    )
    in_scope_per_category = forms.IntegerField(
        required=False, error_messages={"invalid": "Must be an integer."}
    )
    near_scope_per_category = forms.IntegerField(
        required=False, error_messages={"invalid": "Must be an integer."}
    )
    out_of_scope = forms.IntegerField(
        required=False, error_messages={"invalid": "Must be an integer."}
    )
    test_fraction = forms.FloatField(
        required=False, error_messages={"invalid": "Must be a number."}
    )

    service_names = {key: f"counts.{key}" for key in DEFAULT_COUNTS}

    def counts(self) -> dict[str, float]:
        data = self.cleaned_data
        return {key: data[key] for key in DEFAULT_COUNTS if data[key] is not None}


class ReviewForm(ServiceForm):
    """An annotator's verdict on one revised response."""

    action = forms.CharField(required=False)
    revised = forms.CharField(required=False, strip=False)

    def __init__(self, data: Any, *, item: C3POItem) -> None:
        super().__init__(data)
        self.item = item

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        changed = "revised" in self.data and (
            str(data.get("revised", "")).strip() != self.item.revised.strip()
        )
        if data.get("action") == "approve" and changed:
            data["action"] = "edit"  # the annotator changed the text before approving
        return data
