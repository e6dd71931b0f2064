"""Which pipeline answers a project's questions and re-runs its answers."""

from __future__ import annotations

from typing import Any

from feedback.models import Answer, PipelineConnector, Project
from feedback.pipelines import demo
from feedback.pipelines.http import UNDECRYPTABLE, HttpPipeline
from feedback.pipelines.protocol import Pipeline, PipelineError


class DemoPipeline:
    """The built-in pipeline (feedback/pipelines/demo.py) behind the same interface as a
    project's HTTP connector, so the ask page and re-runs work offline."""

    name = "demo"

    def ask(self, question: str) -> Any:
        return demo.ask(question)

    def rerun(self, question: str, trace: list[dict[str, Any]], *, from_position: int) -> Any:
        try:
            return demo.rerun(question, trace, from_position=from_position)
        except ValueError as error:
            raise PipelineError(str(error)) from None


def pipeline_for(project: Project) -> Pipeline:
    try:
        connector = project.connector
    except PipelineConnector.DoesNotExist:
        return DemoPipeline()
    return HttpPipeline(connector.url, secret=connector.secret, timeout=connector.timeout_seconds)


def rerun_unavailable_reason(answer: Answer, pipeline: Pipeline) -> str:
    """Why this answer can't be re-run, or "" when it can. The project's own connector can
    re-run any of its answers (once its secret can be sent); the demo pipeline only the answers
    it produced."""
    if isinstance(pipeline, HttpPipeline) and pipeline.secret_unreadable:
        return UNDECRYPTABLE
    if pipeline.name == "demo" and answer.metadata.get("pipeline") != "demo":
        return (
            "Re-run is unavailable: this answer was ingested through the API, and the project "
            "has no pipeline connector that could re-run it. An owner can register one in the "
            "project settings. Corrections are still saved."
        )
    return ""
