from django.apps import AppConfig


class RewardmodelsConfig(AppConfig):
    """Reward models, training runs, scoring, verbal feedback and C3PO builds (later issues)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "rewardmodels"
