"""The API of the embeddable widget, and the viewer tokens host apps ask for.

A widget request names its publishable key in the query (`?key=fbk_…`), so that a CORS
preflight, which carries no credentials, can be answered for that key's origins; the viewer
comes in the `X-Feedback-Viewer` header: a signed viewer token, or `anon:<id>` where the
project allows anonymous viewers. A request whose `Origin` is not one of the key's allowed
origins gets 403 and no CORS headers, and nothing is written. A same-origin request, which
browsers send without `Origin` when it is a GET, is taken as coming from the platform's own
origin (`Sec-Fetch-Site: same-origin`), which the key must allow too.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.utils import timezone
from django.utils.cache import patch_vary_headers
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback import events, services
from feedback.apis import BatchOutputSerializer, FeedbackResultSerializer, batch_response
from feedback.core.access import found_or_404, viewer_of
from feedback.core.api import (
    ERRORS,
    ErrorSerializer,
    StrictCharField,
    StrictIntegerField,
    error_responses,
    validated_body,
)
from feedback.core.auth import project_for
from feedback.core.errors import ValidationFailed
from feedback.core.throttling import auth_failure_record, auth_failures_wait, client_address
from feedback.models import ApiKey, Scope
from feedback.selectors import widget as widget_selectors
from feedback.services import widget as widget_services
from feedback.widget import (
    ANONYMOUS_PREFIX,
    MAX_EVENTS,
    MAX_TTL_SECONDS,
    MIN_TTL_SECONDS,
    AddressLimited,
    BadViewer,
    anonymous_viewer,
    viewer_token_read,
)

VIEWER_HEADER = "X-Feedback-Viewer"
PREFLIGHT_MAX_AGE_SECONDS = 600


# --- viewer tokens ---------------------------------------------------------------------------


class ViewerTokenCreateApi(APIView):
    class InputSerializer(serializers.Serializer[Any]):
        user_ref = StrictCharField(
            required=False,
            help_text=(
                "The end user the token vouches for (required with an API key; a signed-in "
                "person always gets a token for themselves). Not starting with user: or anon:."
            ),
        )
        ttl_seconds = StrictIntegerField(
            required=False,
            help_text=f"{MIN_TTL_SECONDS} to {MAX_TTL_SECONDS}; default 3600.",
        )

    @extend_schema_serializer(component_name="ViewerToken")
    class OutputSerializer(serializers.Serializer[Any]):
        token = serializers.CharField()
        expires_at = serializers.DateTimeField()
        user_ref = serializers.CharField()

    @extend_schema(
        operation_id="viewer_tokens_create",
        summary="A signed viewer token for the embeddable widget",
        request=InputSerializer,
        responses={201: OutputSerializer, **ERRORS},
        description=(
            "The host app's backend asks for a token for the end user its page shows, and "
            "hands it to the widget (`data-token`). The widget's events are then recorded for "
            "that user_ref only, until the token expires; the token is bound to this project."
        ),
    )
    def post(self, request: Request) -> Response:
        project = project_for(request, Scope.FEEDBACK)
        data = validated_body(request, self.InputSerializer)
        if isinstance(request.auth, ApiKey):
            if "user_ref" not in data:
                raise ValidationFailed.of("user_ref", "This field is required.")
            user_ref, site_user = data["user_ref"], False
        else:
            # A signed-in person speaks for themselves only, whatever user_ref says.
            user_ref, site_user = viewer_of(request), True
        token, expires_at = widget_services.viewer_token_issue(
            project=project,
            user_ref=user_ref,
            ttl_seconds=data.get("ttl_seconds"),
            site_user=site_user,
        )
        body = {"token": token, "expires_at": expires_at, "user_ref": user_ref}
        return Response(body, status=status.HTTP_201_CREATED)


# --- the widget's own endpoints --------------------------------------------------------------

_KEY_PARAMETER = OpenApiParameter(
    "key", str, required=True, description="The publishable key (scope `widget`)."
)
_VIEWER_PARAMETER = OpenApiParameter(
    VIEWER_HEADER,
    str,
    OpenApiParameter.HEADER,
    required=True,
    description=(
        "A viewer token from `POST /api/v1/viewer-tokens`, or `anon:<32 lowercase hex "
        "digits>` where the project allows anonymous viewers."
    ),
)
_WIDGET_ERRORS = {
    401: OpenApiResponse(
        ErrorSerializer,
        description="Unknown or revoked key; missing, expired, tampered or other project's "
        "viewer token; anonymous viewer where the project doesn't allow them.",
    ),
    403: OpenApiResponse(
        ErrorSerializer, description="Not a widget key, or an Origin the key doesn't allow."
    ),
    429: OpenApiResponse(
        ErrorSerializer,
        description="Too many failed key authentications from this address, or (events) the "
        "address or the viewer over its limit: nothing written. Retry after Retry-After.",
    ),
    503: ERRORS[503],
}


class WidgetApi(APIView):
    """What the widget's endpoints share: the publishable key from the query, the Origin
    checked against it, CORS headers for that origin only (preflights included), and the
    viewer from the header. No session and no API-key header: a widget request speaks with
    its key and its viewer only, and so needs no CSRF token."""

    authentication_classes = []
    permission_classes = []
    cors_methods: ClassVar[tuple[str, ...]] = ()

    key: ApiKey
    cors_origin: str | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        method = request.method.lower() if request.method else ""
        if method not in self.http_method_names or not hasattr(self, method):
            raise exceptions.MethodNotAllowed(request.method or "")
        self.key = self._widget_key(request)
        origin = request.headers.get("Origin")
        if origin is None and request.headers.get("Sec-Fetch-Site") == "same-origin":
            origin = f"{request.scheme}://{request.get_host()}"
        if not origin or origin not in self.key.origins:
            raise exceptions.PermissionDenied(
                f"The origin {origin or '(none)'} is not allowed to use this widget key."
            )
        self.cors_origin = origin

    def _widget_key(self, request: Request) -> ApiKey:
        address = client_address(request._request)
        if wait := auth_failures_wait(address=address):
            raise exceptions.Throttled(wait=wait, detail="Too many failed key authentications.")
        raw_key = request.query_params.get("key", "")
        key = services.api_key_authenticate(raw_key=raw_key) if raw_key else None
        if key is None:
            auth_failure_record(address=address)
            raise exceptions.AuthenticationFailed("The widget key is unknown or revoked.")
        if key.scopes != [Scope.WIDGET]:
            raise exceptions.PermissionDenied(
                "Not a widget key: only a key with the widget scope alone may sit in web pages."
            )
        return key

    def viewer(self, request: Request) -> str:
        sent = request.headers.get(VIEWER_HEADER, "")
        try:
            if sent.startswith(ANONYMOUS_PREFIX):
                if not self.key.project.allow_anonymous_viewers:
                    raise BadViewer("This project records only viewers with a viewer token.")
                return anonymous_viewer(sent.removeprefix(ANONYMOUS_PREFIX))
            if not sent:
                raise BadViewer(f"Send the viewer token in the {VIEWER_HEADER} header.")
            return viewer_token_read(sent, project_id=self.key.project_id, now=timezone.now())
        except BadViewer as error:
            raise exceptions.AuthenticationFailed(str(error)) from error

    @extend_schema(exclude=True)
    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        """The CORS preflight, answered for the key's allowed origins only (checked in
        `initial`)."""
        asked = request.headers.get("Access-Control-Request-Method", "")
        if asked not in self.cors_methods:
            raise exceptions.MethodNotAllowed(asked or "OPTIONS")
        response = Response(status=status.HTTP_204_NO_CONTENT)
        response["Access-Control-Allow-Methods"] = ", ".join(self.cors_methods)
        response["Access-Control-Allow-Headers"] = f"Content-Type, {VIEWER_HEADER}"
        response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
        return response

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        patch_vary_headers(response, ["Origin"])
        if self.cors_origin is not None:
            response["Access-Control-Allow-Origin"] = self.cors_origin
            response["Access-Control-Expose-Headers"] = "Retry-After"
        return response


# What the widget's configuration is made of.
class WidgetReactionSerializer(serializers.Serializer[Any]):
    kind = serializers.CharField()
    label = serializers.CharField(help_text="The button's accessible name.")  # type: ignore[assignment]


class WidgetOutcomeSerializer(serializers.Serializer[Any]):
    value = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]


class WidgetFollowupSerializer(serializers.Serializer[Any]):
    question = serializers.CharField()
    outcomes = WidgetOutcomeSerializer(many=True)
    delay_seconds = serializers.IntegerField(help_text="The project's follow-up delay.")
    due_in_seconds = serializers.IntegerField(
        allow_null=True,
        help_text="0: ask now; more: ask then; null: the viewer has not seen the answer.",
    )
    answered = serializers.BooleanField()


class WidgetConfigRetrieveApi(WidgetApi):
    cors_methods = ("GET",)

    @extend_schema_serializer(component_name="WidgetConfig")
    class OutputSerializer(serializers.Serializer[Any]):
        answer = serializers.CharField()
        reactions = WidgetReactionSerializer(many=True, help_text="The project's, in order.")
        active = serializers.ListField(
            child=serializers.CharField(), help_text="The viewer's active reactions."
        )
        exposure_window_seconds = serializers.IntegerField(
            help_text="An exposure is recorded once per viewer, answer and window."
        )
        followup = WidgetFollowupSerializer()
        anonymous_allowed = serializers.BooleanField()

    @extend_schema(
        operation_id="widget_config",
        summary="What the widget shows for an answer and its viewer",
        auth=[],
        parameters=[
            _KEY_PARAMETER,
            _VIEWER_PARAMETER,
            OpenApiParameter("answer", str, required=True, description="The answer's external_id."),
        ],
        responses={
            200: OutputSerializer,
            400: ERRORS[400],
            404: OpenApiResponse(ErrorSerializer, description="No such answer in the project."),
            **_WIDGET_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        viewer = self.viewer(request)
        external_id = request.query_params.get("answer", "")
        if not external_id:
            raise ValidationFailed.of("answer", "Name the answer: ?answer=<external_id>.")
        state = found_or_404(
            widget_selectors.widget_state(
                project=self.key.project,
                external_id=external_id,
                viewer=viewer,
                now=timezone.now(),
            ),
            "No answer with that external_id in this project.",
        )
        response = Response(self.OutputSerializer(state).data)
        response["Cache-Control"] = "no-store"
        return response


# The events the widget sends: those of `POST /api/v1/feedback` of the types it records, with
# no `user_ref`, `at` or `surface` (refused: the viewer, the time and the surface are the
# platform's).
class WidgetEventSerializer(serializers.Serializer[Any]):
    event_id = serializers.RegexField(
        r"^[A-Za-z0-9_-]{8,64}$", help_text="Made by the widget; a retry sends it again."
    )
    # The feedback API's event types (one enum in the schema); the widget's refuse comparison.
    type = serializers.ChoiceField(
        choices=events.EVENT_TYPES,
        help_text="exposure, reaction, unreaction, critique or followup (not comparison).",
    )
    answer = serializers.CharField()
    reaction = serializers.CharField(required=False)
    text = serializers.CharField(required=False)
    quote = serializers.CharField(required=False)
    category = serializers.CharField(required=False)
    outcome = serializers.ChoiceField(choices=["solved", "partly", "not_solved"], required=False)


class WidgetEventsInputSerializer(serializers.Serializer[Any]):
    events = WidgetEventSerializer(many=True, help_text=f"1 to {MAX_EVENTS}.")


class WidgetEventsRecordApi(WidgetApi):
    cors_methods = ("POST",)

    @extend_schema_serializer(component_name="WidgetEventsResponse")
    class OutputSerializer(BatchOutputSerializer):
        results = FeedbackResultSerializer(many=True)

    @extend_schema(
        operation_id="widget_events_record",
        summary="Record the widget's feedback events for its viewer",
        auth=[],
        parameters=[_KEY_PARAMETER, _VIEWER_PARAMETER],
        request=WidgetEventsInputSerializer,
        responses={
            200: OutputSerializer,
            201: OutputSerializer,
            **error_responses(400, 413, 415),
            **_WIDGET_ERRORS,
        },
        description=(
            "Results per event as for `POST /api/v1/feedback`, each naming the widget's own "
            "event_id: a retry of a recorded event is `duplicate`. Events are recorded for "
            "the viewer of the header, as source `browser` (exposures on surface `widget`, "
            "once per viewer, answer and exposure window). A follow-up is taken once it is "
            "due: the project's delay has passed since the viewer first saw the answer."
        ),
    )
    def post(self, request: Request) -> Response:
        viewer = self.viewer(request)
        body: Any = request.data
        items = body.get("events") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise ValidationFailed.of("events", 'Send {"events": [...]}.')
        try:
            results = widget_services.widget_events_record(
                project=self.key.project,
                viewer=viewer,
                items=items,
                address=client_address(request._request),
            )
        except AddressLimited as limited:
            raise exceptions.Throttled(wait=limited.wait, detail=limited.message) from limited
        if all(r.limit == "rate_limited" for r in results):
            raise exceptions.Throttled(
                wait=services.signals.RATE_WINDOW.total_seconds(),
                detail="Too much feedback from this viewer; retry later.",
            )
        return batch_response(results)
