from django.urls import path

from feedback.views import (
    answers,
    dashboard,
    debug,
    exports,
    members,
    proposals,
    queues,
    site,
    webhooks,
)

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
    path(
        "<slug:slug>/answers/<path:external_id>/-/debug/save/",
        debug.answer_debug_save,
        name="answer_debug_save",
    ),
    path(
        "<slug:slug>/answers/<path:external_id>/-/debug/diff/",
        debug.answer_debug_diff,
        name="answer_debug_diff",
    ),
    path(
        "<slug:slug>/answers/<path:external_id>/-/debug/rerun/",
        debug.answer_rerun,
        name="answer_rerun",
    ),
    path(
        "<slug:slug>/answers/<path:external_id>/-/proposals/<int:proposal_id>/accept/",
        proposals.proposal_accept,
        name="proposal_accept",
    ),
    path(
        "<slug:slug>/answers/<path:external_id>/-/proposals/<int:proposal_id>/reject/",
        proposals.proposal_reject,
        name="proposal_reject",
    ),
    # Debug mode's public address (links to it are shared), so it keeps this form. It must
    # precede the answer page, so the page of an answer whose external_id itself ends in
    # "/debug" is shadowed (its API and debug mode are not).
    path("<slug:slug>/answers/<path:external_id>/debug/", debug.answer_debug, name="answer_debug"),
    path("<slug:slug>/answers/<path:external_id>/", answers.answer_detail, name="answer_detail"),
    path("<slug:slug>/reruns/<int:rerun_id>/", debug.rerun_status, name="rerun_status"),
    path("<slug:slug>/ask/", debug.ask, name="ask"),
    path("<slug:slug>/queues/", queues.queue_list, name="queue_list"),
    path("<slug:slug>/queues/create/", queues.queue_create, name="queue_create"),
    path("<slug:slug>/queues/<int:queue_id>/", queues.queue_detail, name="queue_detail"),
    path("<slug:slug>/queues/<int:queue_id>/next/", queues.queue_next, name="queue_next"),
    path("<slug:slug>/settings/", site.project_settings, name="project_settings"),
    path("<slug:slug>/settings/connector/", site.connector_save, name="connector_save"),
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
    path("<slug:slug>/webhooks/", webhooks.webhook_list, name="webhook_list"),
    path("<slug:slug>/webhooks/create/", webhooks.webhook_create, name="webhook_create"),
    path("<slug:slug>/webhooks/<int:endpoint_id>/", webhooks.webhook_detail, name="webhook_detail"),
    path(
        "<slug:slug>/webhooks/<int:endpoint_id>/delete/",
        webhooks.webhook_delete,
        name="webhook_delete",
    ),
    path(
        "<slug:slug>/webhooks/<int:endpoint_id>/enable/",
        webhooks.webhook_enable,
        name="webhook_enable",
    ),
    path(
        "<slug:slug>/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/resend/",
        webhooks.webhook_delivery_resend,
        name="webhook_delivery_resend",
    ),
    path("<slug:slug>/dashboard/", dashboard.dashboard, name="dashboard"),
    path("<slug:slug>/members/", members.members, name="members"),
    path("<slug:slug>/members/add/", members.member_add, name="member_add"),
    path("<slug:slug>/members/create/", members.member_create, name="member_create"),
    path("<slug:slug>/members/<int:member_id>/role/", members.member_role, name="member_role"),
    path(
        "<slug:slug>/members/<int:member_id>/remove/", members.member_remove, name="member_remove"
    ),
]
