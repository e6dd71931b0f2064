"""`{% stage_proposals project answer stage %}`: a stage's proposals in debug mode, each with
Accept and Reject buttons while it is pending (templates/feedback/_stage_proposals.html)."""

from __future__ import annotations

from typing import Any

from django import template

from feedback.models import Answer, Project, Stage
from feedback.selectors.proposals import proposals_for_stage

register = template.Library()


@register.inclusion_tag("feedback/_stage_proposals.html", takes_context=True)
def stage_proposals(
    context: template.Context, project: Project, answer: Answer, stage: Stage
) -> dict[str, Any]:
    return {
        "project": project,
        "answer": answer,
        "stage": stage,
        "proposals": list(proposals_for_stage(stage=stage)),
        "csrf_token": context.get("csrf_token"),
    }
