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
    path("verbal-feedback", apis.VerbalFeedbackCreateApi.as_view(), name="api-verbal-feedback"),
    path(
        "verbal-feedback/<int:feedback_id>/builds",
        apis.BuildCreateApi.as_view(),
        name="api-c3po-build-create",
    ),
    path("generators", apis.GeneratorSaveApi.as_view(), name="api-generators"),
    path("c3po-builds/<int:build_id>", apis.BuildDetailApi.as_view(), name="api-c3po-build"),
    path(
        "c3po-builds/<int:build_id>/resume",
        apis.BuildResumeApi.as_view(),
        name="api-c3po-build-resume",
    ),
    path(
        "c3po-builds/<int:build_id>/dataset.jsonl",
        apis.BuildDatasetApi.as_view(),
        name="api-c3po-dataset",
    ),
    path("shadow-runs", apis.ShadowRunCreateApi.as_view(), name="api-shadow-runs"),
    path("shadow-runs/<int:run_id>", apis.ShadowRunDetailApi.as_view(), name="api-shadow-run"),
    path("judges", apis.JudgeCreateApi.as_view(), name="api-judges"),
    path("judges/<int:judge_id>", apis.JudgeDetailApi.as_view(), name="api-judge"),
    path("judges/<int:judge_id>/runs", apis.JudgeRunCreateApi.as_view(), name="api-judge-runs"),
    path("judge-runs/<int:run_id>", apis.JudgeRunDetailApi.as_view(), name="api-judge-run"),
]
