"""Forms of the pages: they turn the submitted fields into typed values and check what only
a page needs; services check the rules and write (see feedback.core.forms.ServiceForm)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Self

from django import forms
from django.core.validators import URLValidator

from feedback.core.forms import ServiceForm
from feedback.core.validators import bidi_problem, url_problem
from feedback.models import PipelineConnector, Project, Role, Scope, WebhookEventType
from feedback.pipelines.http import MAX_TIMEOUT_SECONDS
from feedback.selectors import QueueFilter
from feedback.services.annotation import OVERLAP_RULE
from feedback.services.tenancy import ProjectSettings

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


class ProjectSettingsForm(ServiceForm):
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
    allow_anonymous_viewers = forms.BooleanField(
        label="Widget: allow anonymous viewers",
        required=False,
        help_text=(
            "Off: the widget records only viewers the host app vouches for with a signed "
            "viewer token. On: a browser without a token gets a random id of its own."
        ),
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
                "allow_anonymous_viewers": project.allow_anonymous_viewers,
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

    def settings(self) -> ProjectSettings:
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
            "allow_anonymous_viewers": data["allow_anonymous_viewers"],
        }


class ConnectorForm(ServiceForm):
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

    url_fields = ("url",)

    @classmethod
    def for_connector(cls, connector: PipelineConnector | None) -> ConnectorForm:
        """The form filled in with the saved connector (but never its secret)."""
        if connector is None:
            return cls()
        return cls(initial={"url": connector.url, "timeout_seconds": connector.timeout_seconds})

    def noting_secret_of(self, connector: PipelineConnector | None) -> Self:
        """This form, its secret field saying when a secret is stored (left blank, it stays)."""
        if connector is not None and connector.secret:
            # On the bound field: a validated form has already made it from the field.
            self["secret"].help_text = "A secret is set; leave blank to keep it."
        return self

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


class ApiKeyForm(ServiceForm):
    name = forms.CharField(
        required=False, help_text="Say where the key is used, e.g. “chat backend”."
    )
    scopes = forms.MultipleChoiceField(
        choices=[(value, f"{label} ({value})") for value, label in Scope.choices],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="What the key may do; pick at least one.",
    )
    # The service checks each origin and names the bad ones.
    origins = forms.CharField(
        label="Allowed origins (widget keys only)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="The pages' origins, one per line or comma-separated: https://app.example.com",
    )

    def clean_origins(self) -> list[str]:
        text: str = self.cleaned_data["origins"]
        return [part.strip() for part in re.split(r"[,\s]+", text) if part.strip()]


class ExportForm(ServiceForm):
    """A snapshot request. The service checks the names and parses the times, as it does for
    the API; a filter left blank is no filter."""

    dataset = forms.CharField(required=False)
    format = forms.CharField(required=False)
    form = forms.CharField(required=False, empty_value=None)
    model = forms.CharField(required=False)
    model_version = forms.CharField(required=False)
    since = forms.CharField(required=False)
    until = forms.CharField(required=False)

    FILTERS = ("model", "model_version", "since", "until")

    def filters(self) -> dict[str, str]:
        return {name: self.cleaned_data[name] for name in self.FILTERS if self.cleaned_data[name]}


class QueueForm(ServiceForm):
    """A new annotation queue and the filter that picks its answers."""

    name = forms.CharField(required=False)
    guidelines = forms.CharField(required=False)
    # Blank means the default the page shows; the service checks the range.
    overlap = forms.IntegerField(required=False, error_messages={"invalid": OVERLAP_RULE})
    model = forms.CharField(required=False)
    model_version = forms.CharField(required=False)
    created_from = forms.DateField(
        required=False,
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": "Must be a date like 2026-01-31."},
    )
    created_to = forms.DateField(
        required=False,
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": "Must be a date like 2026-01-31."},
    )
    reaction_state = forms.CharField(required=False)
    has_trace = forms.BooleanField(required=False)

    def clean_overlap(self) -> int:
        overlap: int | None = self.cleaned_data["overlap"]
        return 1 if overlap is None else overlap

    def clean_reaction_state(self) -> str:
        return str(self.cleaned_data["reaction_state"]) or "any"

    def spec(self) -> QueueFilter:
        data = self.cleaned_data
        return QueueFilter(
            model=data["model"],
            model_version=data["model_version"],
            created_from=data["created_from"],
            created_to=data["created_to"],
            reaction_state=data["reaction_state"],
            has_trace=data["has_trace"],
        )


class AssignmentForm(forms.Form):
    """The queue item a page is worked on as: the id its form or link carries."""

    assignment = forms.IntegerField(min_value=1)


class StageForm(forms.Form):
    """A stage of the answer on the page, by position."""

    stage = forms.IntegerField(min_value=0)


class CorrectionsForm(ServiceForm):
    """The debug page's save. Its own fields are here; each stage's editor is read into changes
    by feedback.debug_mode. The service names a bad change by its index (`changes[3].after.text`);
    the page shows the message by the editor of that change's stage, labelled with its action."""

    version = forms.CharField(required=False, strip=False)
    rationale = forms.CharField(required=False)

    def __init__(
        self,
        data: Mapping[str, Any],
        *,
        changes: Sequence[Mapping[str, Any]],
        prefix_of: Callable[[int | None], str],
    ) -> None:
        super().__init__(data)
        self.changes = changes
        self.prefix_of = prefix_of
        self.editor_errors: dict[str, list[str]] = {}

    def add_service_errors(self, errors: Mapping[str, Sequence[str]]) -> None:
        """`changes[3].after.text` → the editor's prefix and the change's action, so the
        message sits by its editor: `s0-subquery_add: Subquery add: Must be …`."""
        for key, messages in errors.items():
            index = key.split("]")[0].removeprefix("changes[")
            change: Mapping[str, Any] = (
                self.changes[int(index)]
                if index.isdigit() and int(index) < len(self.changes)
                else {}
            )
            action = str(change.get("action", "change"))
            label = action.replace("_", " ").capitalize()
            editor = f"{self.prefix_of(change.get('stage'))}{action}"
            self.editor_errors.setdefault(editor, [])
            self.editor_errors[editor] += [f"{label}: {message}" for message in messages]

    def page_errors(self) -> dict[str, list[str]]:
        """What the page shows: the form's own errors by field, the service's by editor."""
        own = {field: [str(m) for m in messages] for field, messages in self.errors.items()}
        return {**own, **self.editor_errors}


class WebhookEndpointForm(ServiceForm):
    """A webhook endpoint: where to send and which events. The service checks the URL (https,
    a public destination) and the event names."""

    url = forms.CharField(label="Endpoint URL", max_length=500, strip=True)
    events = forms.MultipleChoiceField(
        label="Events",
        choices=WebhookEventType.choices,
        widget=forms.CheckboxSelectMultiple,
    )
    description = forms.CharField(label="Description", max_length=200, required=False)

    url_fields = ("url",)


class DashboardForm(forms.Form):
    """The dashboard's range: whole days in UTC, both included, by day or by week."""

    MAX_DAYS = 366

    since = forms.DateField(label="From", required=False, widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(label="To", required=False, widget=forms.DateInput({"type": "date"}))
    period = forms.ChoiceField(
        label="Group by", choices=[("day", "Day"), ("week", "Week")], required=False
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until:
            if since > until:
                self.add_error("until", "Must not be before the start.")
            elif (until - since).days >= self.MAX_DAYS:
                self.add_error("until", f"The range may span at most {self.MAX_DAYS} days.")
        return data


class AnswerFilterForm(forms.Form):
    """The answers list's search and filters. Dates are whole days in UTC, both included."""

    q = forms.CharField(label="Search", required=False, max_length=200)
    model = forms.CharField(label="Model", required=False, max_length=200)
    version = forms.CharField(label="Version", required=False, max_length=200)
    reaction = forms.ChoiceField(label="Reactions", required=False)
    critique = forms.ChoiceField(
        label="Critiques",
        required=False,
        choices=[("", "With or without"), ("yes", "With a critique"), ("no", "Without")],
    )
    since = forms.DateField(label="From", required=False, widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(label="To", required=False, widget=forms.DateInput({"type": "date"}))

    def __init__(self, *args: Any, reactions: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reaction"].choices = [  # type: ignore[attr-defined]
            ("", "All answers"),
            ("any", "With reactions"),
            ("none", "Without reactions"),
            *((kind, f"With {kind}") for kind in reactions),
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "Must not be before the start.")
        return data


class ProjectCreateForm(ServiceForm):
    """A new project; the one who creates it becomes its owner."""

    name = forms.CharField(required=False, max_length=200)
    slug = forms.CharField(
        required=False,
        label="Address",
        max_length=64,
        help_text="Part of the project's web address; made from the name when left blank.",
    )


ROLE_HELP = (
    "Raters rate and compare answers; annotators also correct them in debug mode and work "
    "queues; researchers also export data and train models; owners also manage settings, "
    "members and API keys."
)


class MemberAddForm(ServiceForm):
    """An existing account made a member."""

    user = forms.CharField(required=False, label="Username or email address", max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.RATER)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Its own ids: it shares the members page with the form that creates an account.
        kwargs.setdefault("auto_id", "add_member_%s")
        super().__init__(*args, **kwargs)


class MemberCreateForm(ServiceForm):
    """A new account made a member, who chooses a password through a one-time link."""

    username = forms.CharField(required=False, max_length=150)
    email = forms.CharField(required=False, label="Email address (optional)", max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.RATER)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "new_member_%s")
        super().__init__(*args, **kwargs)


class MemberRoleForm(ServiceForm):
    role = forms.ChoiceField(choices=Role.choices)
