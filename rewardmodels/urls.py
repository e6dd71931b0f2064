from django.urls import path

from rewardmodels.views import c3po, judges, reward_models, shadow

app_name = "rewardmodels"

urlpatterns = [
    path("<slug:slug>/models/", reward_models.model_list, name="model_list"),
    path("<slug:slug>/models/create/", reward_models.model_create, name="model_create"),
    path("<slug:slug>/models/<int:model_id>/", reward_models.model_detail, name="model_detail"),
    path("<slug:slug>/models/<int:model_id>/train/", reward_models.model_train, name="model_train"),
    path(
        "<slug:slug>/models/<int:model_id>/activate/",
        reward_models.model_activate,
        name="model_activate",
    ),
    path("<slug:slug>/models/<int:model_id>/score/", reward_models.model_score, name="model_score"),
    path("<slug:slug>/models/runs/<int:run_id>/", reward_models.run_detail, name="run_detail"),
    path(
        "<slug:slug>/models/runs/<int:run_id>/cancel/", reward_models.run_cancel, name="run_cancel"
    ),
    path(
        "<slug:slug>/models/runs/<int:run_id>/<str:name>.png",
        reward_models.run_plot,
        name="run_plot",
    ),
    path("<slug:slug>/models/feedback/", c3po.feedback_list, name="feedback_list"),
    path("<slug:slug>/models/feedback/create/", c3po.feedback_create, name="feedback_create"),
    path(
        "<slug:slug>/models/feedback/<int:feedback_id>/",
        c3po.feedback_detail,
        name="feedback_detail",
    ),
    path(
        "<slug:slug>/models/feedback/<int:feedback_id>/build/",
        c3po.build_create,
        name="build_create",
    ),
    path(
        "<slug:slug>/models/critiques/<int:critique_id>/promote/",
        c3po.critique_promote,
        name="critique_promote",
    ),
    path("<slug:slug>/models/generators/", c3po.generator_save, name="generator_save"),
    path("<slug:slug>/models/builds/<int:build_id>/", c3po.build_detail, name="build_detail"),
    path(
        "<slug:slug>/models/builds/<int:build_id>/resume/",
        c3po.build_resume,
        name="build_resume",
    ),
    path(
        "<slug:slug>/models/builds/<int:build_id>/dataset.jsonl",
        c3po.build_dataset,
        name="build_dataset",
    ),
    path("<slug:slug>/models/reviews/", c3po.review_list, name="review_list"),
    path("<slug:slug>/models/builds/<int:build_id>/review/", c3po.review, name="review"),
    path(
        "<slug:slug>/models/builds/<int:build_id>/review/<int:item_id>/",
        c3po.review_submit,
        name="review_submit",
    ),
    path("<slug:slug>/models/shadow/", shadow.shadow_list, name="shadow_list"),
    path("<slug:slug>/models/shadow/create/", shadow.shadow_create, name="shadow_create"),
    path("<slug:slug>/models/shadow/<int:run_id>/", shadow.shadow_detail, name="shadow_detail"),
    path(
        "<slug:slug>/models/shadow/<int:run_id>/cancel/",
        shadow.shadow_cancel,
        name="shadow_cancel",
    ),
    path("<slug:slug>/models/judges/", judges.judge_list, name="judge_list"),
    path("<slug:slug>/models/judges/create/", judges.judge_create, name="judge_create"),
    path("<slug:slug>/models/judges/<int:judge_id>/", judges.judge_detail, name="judge_detail"),
    path(
        "<slug:slug>/models/judges/<int:judge_id>/run/",
        judges.judge_run_create,
        name="judge_run_create",
    ),
    path(
        "<slug:slug>/models/judges/runs/<int:run_id>/",
        judges.judge_run_detail,
        name="judge_run_detail",
    ),
]
