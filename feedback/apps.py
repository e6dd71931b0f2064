from django.apps import AppConfig
from django.core import checks


class FeedbackConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "feedback"

    def ready(self) -> None:
        from feedback.checks import proxy_address_check

        checks.register(proxy_address_check, checks.Tags.security)
