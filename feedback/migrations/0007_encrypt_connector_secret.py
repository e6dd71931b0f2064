"""Connector secrets are stored encrypted: the column becomes text (a token is longer than the
secret), the secrets already stored are encrypted, then the field encrypts what it writes."""

from django.db import migrations, models

import feedback.core.fields
from feedback.core.fields import decrypt_token_rows, encrypt_plaintext_rows


def encrypt_existing(apps, schema_editor):
    encrypt_plaintext_rows(apps.get_model("feedback", "PipelineConnector"), "secret")


def decrypt_existing(apps, schema_editor):
    decrypt_token_rows(apps.get_model("feedback", "PipelineConnector"), "secret")


class Migration(migrations.Migration):

    dependencies = [
        ('feedback', '0006_exposure_time_index'),
    ]

    operations = [
        migrations.AlterField(
            model_name='pipelineconnector',
            name='secret',
            field=models.TextField(blank=True, default=''),
        ),
        migrations.RunPython(encrypt_existing, decrypt_existing),
        migrations.AlterField(
            model_name='pipelineconnector',
            name='secret',
            field=feedback.core.fields.EncryptedTextField(blank=True, default=''),
        ),
    ]
