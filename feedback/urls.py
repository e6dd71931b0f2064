from django.urls import path

from feedback import views

app_name = "feedback"

urlpatterns = [
    path("", views.project_list, name="project_list"),
    path("<slug:slug>/", views.project_detail, name="project_detail"),
    path("<slug:slug>/api-keys/", views.api_keys, name="api_keys"),
    path("<slug:slug>/api-keys/create/", views.api_key_create, name="api_key_create"),
    path("<slug:slug>/api-keys/<int:key_id>/revoke/", views.api_key_revoke, name="api_key_revoke"),
]
