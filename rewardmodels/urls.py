from django.urls import path

from rewardmodels import views

app_name = "rewardmodels"

urlpatterns = [
    path("<slug:slug>/models/", views.model_list, name="model_list"),
    path("<slug:slug>/models/create/", views.model_create, name="model_create"),
    path("<slug:slug>/models/<int:model_id>/", views.model_detail, name="model_detail"),
    path("<slug:slug>/models/<int:model_id>/train/", views.model_train, name="model_train"),
    path(
        "<slug:slug>/models/<int:model_id>/activate/",
        views.model_activate,
        name="model_activate",
    ),
    path("<slug:slug>/models/<int:model_id>/score/", views.model_score, name="model_score"),
    path("<slug:slug>/models/runs/<int:run_id>/", views.run_detail, name="run_detail"),
    path("<slug:slug>/models/runs/<int:run_id>/cancel/", views.run_cancel, name="run_cancel"),
    path(
        "<slug:slug>/models/runs/<int:run_id>/<str:name>.png",
        views.run_plot,
        name="run_plot",
    ),
]
