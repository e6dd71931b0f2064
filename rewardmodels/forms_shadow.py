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
