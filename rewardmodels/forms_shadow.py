"""The shadow-run page's form: typed values for `services.shadow.shadow_run_start`, which
checks the rules (the same the API's input meets)."""

from __future__ import annotations

from django import forms

from feedback.core.forms import ServiceForm


class ShadowRunForm(ServiceForm):
    reward_model = forms.IntegerField(error_messages={"required": "Pick a P[Love] model."})
    since = forms.DateTimeField(required=False)
    until = forms.DateTimeField(required=False)
    threshold = forms.FloatField(
        required=False, error_messages={"invalid": "Must be between 0 and 1."}
    )


class JudgeForm(ServiceForm):
    service_names = {"generator": "generator"}

    name = forms.CharField(required=False, strip=False)
    generator = forms.IntegerField(error_messages={"required": "Pick a generator."})
    rubric = forms.CharField(required=False, strip=False)
    target = forms.CharField(required=False)
    viewer = forms.CharField(required=False)


class JudgeRunForm(ServiceForm):
    model = forms.CharField(required=False)
    model_version = forms.CharField(required=False)
    limit = forms.IntegerField(required=False, error_messages={"invalid": "Must be a number."})

    def filters(self) -> dict[str, object]:
        data = self.cleaned_data
        chosen: dict[str, object] = {k: data[k] for k in ("model", "model_version") if data[k]}
        if data["limit"] is not None:
            chosen["limit"] = data["limit"]
        return chosen
