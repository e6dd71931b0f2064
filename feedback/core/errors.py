"""The errors services raise for the request layer to show.

A service that refuses its input raises `ValidationFailed` with a message per field, having
written nothing. The API answers it with a 400 naming the fields (`feedback.core.api`), a page
shows the messages on its form (`feedback.core.forms.ServiceForm`), a management command prints
them: each place translates it once, so no service defines an error class of its own for bad
input. A thing asked for that exists but can't give it yet is `NotReady`, answered the same way
everywhere too (the API's 409). Other refusals (a state that doesn't allow the request) are
`ServiceError`s with a name that says what happened, for the caller to handle where it can do
something better than show the message.

Plain Python, no Django, so pure modules may raise these too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# The key of messages about the input as a whole rather than one field (the API's name for it).
NON_FIELD = "non_field_errors"


class ServiceError(Exception):
    """A service refused the request; `message` says why, in words for the person who asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationFailed(ServiceError):
    """The input broke the service's rules and nothing was written. `errors` maps each field
    at fault (a dotted path such as "counts.categories" or "items[3].prompt", or `NON_FIELD`)
    to its messages; `message` sums them up."""

    def __init__(
        self,
        errors: Mapping[str, Sequence[str]],
        message: str = "The request has invalid fields.",
    ) -> None:
        if not errors:
            raise ValueError("ValidationFailed needs at least one field's message.")
        super().__init__(message)
        self.errors: dict[str, list[str]] = {field: list(texts) for field, texts in errors.items()}

    @classmethod
    def of(cls, field: str, message: str) -> ValidationFailed:
        """One field at fault, whose message is also the summary."""
        return cls({field: [message]}, message)


class NotReady(ServiceError):
    """What was asked for exists but is not in a state to give it (a model with no trained
    version to score with, an export or a build that has not succeeded yet, a build resumed
    that has not failed); `message` says what it is waiting for."""
