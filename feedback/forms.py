"""Forms of the pages: they parse and check input; services write."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django import forms
from django.core.validators import URLValidator

from feedback.core.outbound import redact_url
from feedback.core.validators import bidi_problem, url_problem
from feedback.models import Project
from feedback.pipelines.http import MAX_TIMEOUT_SECONDS

_REACTION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class ReactionListField(forms.CharField):
    """Comma-separated reaction names: lowercase letters, digits and underscores."""

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        names = [part.strip().lower() for part in text.split(",") if part.strip()]
        for name in names:
            if problem := bidi_problem(name):
                raise forms.ValidationError(problem)
        bad = [name for name in names if not _REACTION_NAME.match(name)]
        if bad:
            raise forms.ValidationError(
                f"Not a reaction name: {', '.join(bad)} (use a-z, 0-9 and _, up to 32)."
            )
        if len(set(names)) != len(names):
            raise forms.ValidationError("Each reaction may appear once.")
        return names


class ProjectSettingsForm(forms.Form):
    name = forms.CharField(max_length=200)
    reaction_set = ReactionListField(
        label="Reactions", help_text="Shown in this order, e.g. love, like, dislike."
    )
    positive_reactions = ReactionListField(label="Positive reactions (exports)", required=False)
    negative_reactions = ReactionListField(label="Negative reactions (exports)", required=False)
    allow_images = forms.BooleanField(label="Show images in answers", required=False)
    followup_hours = forms.IntegerField(
        label="Ask the follow-up after (hours)", min_value=0, max_value=24 * 365
    )
    exposure_minutes = forms.IntegerField(
        label="Exposure window (minutes)", min_value=1, max_value=24 * 60
    )
    feedback_rate_per_minute = forms.IntegerField(
        label="Feedback events per viewer per minute", min_value=1, max_value=10_000
    )
    reactions_per_day = forms.IntegerField(
        label="Reactions per viewer per day", min_value=1, max_value=100_000
    )

    @classmethod
    def for_project(cls, project: Project) -> ProjectSettingsForm:
        return cls(
            initial={
                "name": project.name,
                "reaction_set": ", ".join(project.reaction_set),
                "positive_reactions": ", ".join(project.positive_reactions),
                "negative_reactions": ", ".join(project.negative_reactions),
                "allow_images": project.allow_images,
                "followup_hours": int(project.followup_delay.total_seconds() // 3600),
                "exposure_minutes": int(project.exposure_window.total_seconds() // 60),
                "feedback_rate_per_minute": project.feedback_rate_per_minute,
                "reactions_per_day": project.reactions_per_day,
            }
        )

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        if problem := bidi_problem(name):
            raise forms.ValidationError(problem)
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        reactions = set(data.get("reaction_set") or [])
        for field in ("positive_reactions", "negative_reactions"):
            unknown = set(data.get(field) or []) - reactions
            if unknown:
                self.add_error(field, f"Not in the reaction set: {', '.join(sorted(unknown))}.")
        overlap = set(data.get("positive_reactions") or []) & set(
            data.get("negative_reactions") or []
        )
        if overlap:
            self.add_error(
                "negative_reactions", f"Both positive and negative: {', '.join(sorted(overlap))}."
            )
        return data

    def settings(self) -> dict[str, Any]:
        """The cleaned values as Project fields."""
        data = self.cleaned_data
        return {
            "name": data["name"],
            "reaction_set": data["reaction_set"],
            "positive_reactions": data["positive_reactions"],
            "negative_reactions": data["negative_reactions"],
            "allow_images": data["allow_images"],
            "followup_delay": timedelta(hours=data["followup_hours"]),
            "exposure_window": timedelta(minutes=data["exposure_minutes"]),
            "feedback_rate_per_minute": data["feedback_rate_per_minute"],
            "reactions_per_day": data["reactions_per_day"],
        }


class ConnectorForm(forms.Form):
    """The project's own pipeline. The secret is never shown again: left blank, the stored
    one is kept; "remove" takes the connector away (the demo pipeline answers again)."""

    url = forms.URLField(
        label="Pipeline URL",
        max_length=500,
        required=False,
        assume_scheme="https",
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="Base URL; the platform POSTs to <url>/ask and <url>/rerun.",
    )
    secret = forms.CharField(
        label="Secret (sent as a Bearer token)",
        max_length=500,
        required=False,
        widget=forms.PasswordInput(render_value=False),
        strip=True,
    )
    timeout_seconds = forms.IntegerField(
        label="Timeout per attempt (seconds)",
        min_value=1,
        max_value=MAX_TIMEOUT_SECONDS,
        initial=10,
    )
    remove = forms.BooleanField(label="Remove the connector", required=False)

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        if url and (problem := url_problem(url)):
            raise forms.ValidationError(problem)
        return url

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("remove") and not data.get("url"):
            self.add_error("url", "Give the pipeline's URL, or tick “Remove the connector”.")
        return data

    def redact(self) -> ConnectorForm:
        """This form, showing a submitted URL without its user name or password when it is
        rendered again (the errors found already are kept)."""
        if self.is_bound and "url" in self.data:
            self.data = {**self.data, "url": redact_url(str(self.data["url"]))}
        return self
