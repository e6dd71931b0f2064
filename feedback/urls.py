from django.urls import path

from feedback.views import answers, exports, site

app_name = "feedback"

# An external_id may contain slashes: actions on an answer sit behind "/-/", which no page
# of an answer ends with, and come before the page itself.
urlpatterns = [
    path("", site.project_list, name="project_list"),
    path("<slug:slug>/", answers.answer_list, name="project_detail"),
    path("<slug:slug>/compare/", answers.compare, name="compare"),
    path("<slug:slug>/compare/submit/", answers.compare_submit, name="compare_submit"),
    path(
        "<slug:slug>/answers/<path:external_id>/-/react/", answers.answer_react, name="answer_react"
    ),
    path(
        "<slug:slug>/answers/<path:external_id>/-/critique/",
        answers.answer_critique,
        name="answer_critique",
    ),
    path(
        "<slug:slug>/answers/<path:external_id>/-/followup/",
        answers.answer_followup,
        name="answer_followup",
    ),
    path("<slug:slug>/answers/<path:external_id>/", answers.answer_detail, name="answer_detail"),
    path("<slug:slug>/settings/", site.project_settings, name="project_settings"),
    path("<slug:slug>/exports/", exports.export_list, name="export_list"),
    path("<slug:slug>/exports/create/", exports.export_create, name="export_create"),
    path(
        "<slug:slug>/exports/<int:export_id>/download/",
        exports.export_download,
        name="export_download",
    ),
    path("<slug:slug>/api-keys/", site.api_keys, name="api_keys"),
    path("<slug:slug>/api-keys/create/", site.api_key_create, name="api_key_create"),
    path("<slug:slug>/api-keys/<int:key_id>/revoke/", site.api_key_revoke, name="api_key_revoke"),
]
