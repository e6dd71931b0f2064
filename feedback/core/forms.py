"""What the pages' forms of both apps share: a form that turns the submitted fields into the
typed arguments of one service call, and shows what the service refused on itself."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Self, TypeVar

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS

from feedback.core.errors import NON_FIELD, NotReady, ValidationFailed
from feedback.core.outbound import redact_url

T = TypeVar("T")


class ServiceForm(forms.Form):
    """A page's form in front of a service.

    The form parses (text, numbers, dates, booleans) and the service decides (ranges, names
    taken, what exists), so a rule is written once for the page and the API. `submit` calls the
    service with the cleaned data once the form is valid and puts what the service refused
    (ValidationFailed) on the form: each message on the field it names, the rest as errors of
    the whole form that still name their input; a NotReady (say, no trained version to score
    with yet) is an error of the whole form. Pages list them with `error_lines`, each under the
    name the service gives the input, which is also how the API names it.
    """

    # A field whose value the service knows by another name (a reward model's settings arrive
    # in its `config`): field name -> the service's name.
    service_names: ClassVar[dict[str, str]] = {}
    # Fields holding a URL that may carry a user name or password, never shown back with them.
    url_fields: ClassVar[tuple[str, ...]] = ()

    def submit(self, call: Callable[[dict[str, Any]], T]) -> T | None:
        """`call(cleaned_data)` once the form is valid, for a call that returns what it made;
        None when the form or the service refused the input, the reasons then on the form."""
        if not self.is_valid():
            return None
        try:
            return call(self.cleaned_data)
        except ValidationFailed as failed:
            self.add_service_errors(failed.errors)
            return None
        except NotReady as not_ready:
            self.add_error(None, not_ready.message)
            return None

    def add_service_errors(self, errors: Mapping[str, Sequence[str]]) -> None:
        fields = {self.service_names.get(name, name): name for name in self.fields}
        for key, messages in errors.items():
            field = fields.get(key)
            for message in messages:
                if field is not None:
                    self.add_error(field, message)
                elif key == NON_FIELD:
                    self.add_error(None, message)
                else:
                    self.add_error(None, f"{key}: {message}")

    def error_lines(self) -> list[str]:
        """Every message as a page lists it: "name: message", or the message alone when it is
        about the whole form."""
        lines: list[str] = []
        for field, messages in self.errors.items():
            if field == NON_FIELD_ERRORS:
                lines += [str(message) for message in messages]
            else:
                name = self.service_names.get(field, field)
                lines += [f"{name}: {message}" for message in messages]
        return lines

    def error_texts(self) -> list[str]:
        """Every message alone, for a page that shows them without the input's name."""
        return [str(message) for messages in self.errors.values() for message in messages]

    def redact(self) -> Self:
        """This form, showing the submitted `url_fields` without a user name or password when
        it is rendered again (the errors found already are kept)."""
        if self.is_bound and any(name in self.data for name in self.url_fields):
            self.data = {
                **self.data,
                **{
                    name: redact_url(str(self.data[name]))
                    for name in self.url_fields
                    if name in self.data
                },
            }
        return self
