"""Running a C3PO build inside a test: started through the service, executed in the test's own
thread (the worker's code path), read back."""

from __future__ import annotations

from typing import Any

from rewardmodels.models import C3POBuild, Generator, VerbalFeedback
from rewardmodels.services import c3po as c3po_services
from rewardmodels.services import c3po_build


def build_run(feedback: VerbalFeedback, generator: Generator, counts: dict[str, Any]) -> C3POBuild:
    build = c3po_services.build_start(feedback=feedback, generator_id=generator.pk, counts=counts)
    c3po_build.build_execute(build_id=build.pk)
    build.refresh_from_db()
    return build
