from django.db import migrations, models

from feedback.core.migrations import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    # The index is built concurrently on PostgreSQL, which can't happen inside a transaction.
    atomic = False

    dependencies = [
        ("feedback", "0009_otel_trace_spans"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="tracespan",
            index=models.Index(fields=["received_at"], name="trace_span_received"),
        ),
    ]
