from django.urls import path

from feedback import apis, widget_apis

urlpatterns = [
    path("answers", apis.AnswerIngestApi.as_view(), name="api-answers"),
    path("feedback", apis.FeedbackApi.as_view(), name="api-feedback"),
    # OTLP/HTTP: the path exporters add to OTEL_EXPORTER_OTLP_ENDPOINT=<site>/api/v1/otel.
    path("otel/v1/traces", apis.OtelTraceIngestApi.as_view(), name="api-otel-traces"),
    path("datasets/qrels.txt", apis.DatasetQrelsApi.as_view(), name="api-qrels"),
    path("datasets/<str:name>.jsonl", apis.DatasetExportApi.as_view(), name="api-dataset"),
    path("exports", apis.ExportCreateApi.as_view(), name="api-exports"),
    path("exports/<int:export_id>", apis.ExportDetailApi.as_view(), name="api-export"),
    path(
        "exports/<int:export_id>/download",
        apis.ExportDownloadApi.as_view(),
        name="api-export-download",
    ),
    path("webhooks", apis.WebhookCollectionApi.as_view(), name="api-webhooks"),
    path("webhooks/<int:endpoint_id>", apis.WebhookDetailApi.as_view(), name="api-webhook"),
    path(
        "webhooks/<int:endpoint_id>/deliveries",
        apis.WebhookDeliveryListApi.as_view(),
        name="api-webhook-deliveries",
    ),
    path(
        "webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/resend",
        apis.WebhookDeliveryResendApi.as_view(),
        name="api-webhook-delivery-resend",
    ),
    path(
        "webhooks/<int:endpoint_id>/enable",
        apis.WebhookEnableApi.as_view(),
        name="api-webhook-enable",
    ),
    path("answers/<path:external_id>", apis.AnswerDetailApi.as_view(), name="api-answer-detail"),
    path("viewer-tokens", widget_apis.ViewerTokenCreateApi.as_view(), name="api-viewer-tokens"),
    path("widget/config", widget_apis.WidgetConfigRetrieveApi.as_view(), name="api-widget-config"),
    path("widget/events", widget_apis.WidgetEventsRecordApi.as_view(), name="api-widget-events"),
]
