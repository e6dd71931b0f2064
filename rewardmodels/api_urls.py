from django.urls import path

from rewardmodels import apis

urlpatterns = [
    path("reward-models", apis.RewardModelCreateApi.as_view(), name="api-reward-models"),
    path(
        "reward-models/<int:model_id>",
        apis.RewardModelDetailApi.as_view(),
        name="api-reward-model",
    ),
    path(
        "reward-models/<int:model_id>/train",
        apis.RewardModelTrainApi.as_view(),
        name="api-reward-model-train",
    ),
    path(
        "reward-models/<int:model_id>/score",
        apis.RewardModelScoreApi.as_view(),
        name="api-reward-model-score",
    ),
    path(
        "training-runs/<int:run_id>", apis.TrainingRunDetailApi.as_view(), name="api-training-run"
    ),
]
