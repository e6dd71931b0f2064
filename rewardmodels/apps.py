from django.apps import AppConfig


class RewardmodelsConfig(AppConfig):
    """Reward models, training runs and scoring; verbal feedback and C3PO builds."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "rewardmodels"

    def ready(self) -> None:
        from rewardmodels import datasets

        datasets.register()  # the C3PO parts join the feedback app's dataset registry
