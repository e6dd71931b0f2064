"""The C3PO parts as datasets: one queryset per part, used by the build's own dataset endpoint
and registered (in `RewardmodelsConfig.ready`) with the feedback app's dataset registry, so
`/api/v1/datasets/c3po_dpo.jsonl` and Parquet/CSV export snapshots read them too. The feedback
app never imports this one; this app adds its datasets to the registry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import F, QuerySet

from feedback.datasets.definitions import DATASETS, Dataset, Filters, Rows, time_filters
from feedback.datasets.sql import AssistantMessage, UserMessage
from feedback.models import Project
from rewardmodels.models import BuildStatus, C3POBuild, C3POItem, PromptScope, ReviewStatus

PART_SCOPES = {
    "dpo": PromptScope.IN_SCOPE,
    "sft_near": PromptScope.NEAR_SCOPE,
    "sft_out": PromptScope.OUT_OF_SCOPE,
}
PARTS = tuple(PART_SCOPES)


def part_items(items: QuerySet[C3POItem], part: str) -> QuerySet[C3POItem]:
    """The rows of one part. dpo: in-scope rows with both responses that differ, approved or
    edited (generated revisions are approved at once unless the build asked for review);
    sft_near / sft_out: rows with a baseline response."""
    items = items.filter(scope=PART_SCOPES[part]).exclude(baseline="")
    if part == "dpo":
        items = (
            items.filter(review_status__in=[ReviewStatus.APPROVED, ReviewStatus.EDITED])
            .exclude(revised="")
            .exclude(revised=F("baseline"))
        )
    return items.order_by("build_id", "id")


def part_columns(part: str, form: str) -> dict[str, Any]:
    def reply(field: str) -> Any:
        return F(field) if form == "text" else AssistantMessage(F(field))

    columns: dict[str, Any] = {
        "prompt": F("prompt") if form == "text" else UserMessage(F("prompt"))
    }
    if part == "dpo":
        columns |= {"chosen": reply("revised"), "rejected": reply("baseline")}
    else:
        columns["completion"] = reply("baseline")
    return columns | {
        "feedback_id": F("build__feedback_id"),
        "build_id": F("build_id"),
        "category": F("category"),
        "split": F("split"),
        "item_id": F("id"),
    }


def _rows_of(part: str) -> Any:
    def rows(project: Project, filters: Filters, form: str, now: datetime) -> Rows:
        items = C3POItem.objects.filter(
            time_filters(filters, "build__finished_at"),
            build__project=project,
            build__status=BuildStatus.SUCCEEDED,
        )
        return Rows(part_items(items, part), part_columns(part, form))

    return rows


def build_rows(build: C3POBuild, part: str, form: str = "text") -> Rows:
    """One build's part (the build's own dataset endpoint)."""
    return Rows(part_items(build.items.all(), part), part_columns(part, form))


DESCRIPTIONS = {
    "dpo": "prompt, chosen, rejected: C3PO in-scope prompts, revised over baseline",
    "sft_near": "prompt, completion: C3PO near-scope prompts with their baseline responses",
    "sft_out": "prompt, completion: C3PO out-of-scope prompts with their baseline responses",
}


def register() -> None:
    for part, description in DESCRIPTIONS.items():
        name = f"c3po_{part}"
        DATASETS[name] = Dataset(name, f"{description} (every succeeded build)", _rows_of(part))
