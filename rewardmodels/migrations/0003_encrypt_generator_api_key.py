"""Generator API keys are stored encrypted: the column becomes text (a token is longer than the
key), the keys already stored are encrypted, then the field encrypts what it writes."""

from django.db import migrations, models

import feedback.core.fields
from feedback.core.fields import decrypt_token_rows, encrypt_plaintext_rows


def encrypt_existing(apps, schema_editor):
    encrypt_plaintext_rows(apps.get_model("rewardmodels", "Generator"), "api_key")


def decrypt_existing(apps, schema_editor):
    decrypt_token_rows(apps.get_model("rewardmodels", "Generator"), "api_key")


class Migration(migrations.Migration):

    dependencies = [
        ('rewardmodels', '0002_c3po'),
    ]

    operations = [
        migrations.AlterField(
            model_name='generator',
            name='api_key',
            field=models.TextField(blank=True, default=''),
        ),
        migrations.RunPython(encrypt_existing, decrypt_existing),
        migrations.AlterField(
            model_name='generator',
            name='api_key',
            field=feedback.core.fields.EncryptedTextField(blank=True, default=''),
        ),
    ]
