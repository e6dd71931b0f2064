from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from feedback.models import Project
from feedback.services import answers_ingest

BATCH_SIZE = 500


def _batches(path: Path) -> Iterator[tuple[list[int], list[Any], int]]:
    """(line numbers, parsed answers, bytes read) per batch; a line that isn't JSON is kept as
    its error message so it is reported like any invalid answer."""
    numbers: list[int] = []
    batch: list[Any] = []
    size = 0
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            size += len(line)
            if not line.strip():
                continue
            try:
                batch.append(orjson.loads(line))
            except orjson.JSONDecodeError as error:
                batch.append(f"malformed JSON: {error}")
            numbers.append(number)
            if len(batch) == BATCH_SIZE:
                yield numbers, batch, size
                numbers, batch, size = [], [], 0
    if batch or size:
        yield numbers, batch, size


class Command(BaseCommand):
    help = (
        "Import answers from a JSON Lines file, one answer per line in the API's schema. "
        "Idempotent: answers whose external_id exists are skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--project", default=None, help="the project's slug; optional when there is one"
        )

    def handle(self, *args: Any, file: Path, project: str | None, **options: Any) -> None:
        if project is None:
            slugs = list(Project.objects.order_by("slug").values_list("slug", flat=True)[:2])
            if len(slugs) != 1:
                raise CommandError("Name the project with --project SLUG.")
            project = slugs[0]
        target = Project.objects.filter(slug=project).first()
        if target is None:
            raise CommandError(f"No project {project!r}; run create_project first.")
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        counts = {"created": 0, "duplicate": 0, "error": 0}
        with tqdm(total=file.stat().st_size, unit="B", unit_scale=True, desc="import") as bar:
            for numbers, batch, size in _batches(file):
                valid = [
                    (n, item)
                    for n, item in zip(numbers, batch, strict=True)
                    if not isinstance(item, str)
                ]
                for n, item in zip(numbers, batch, strict=True):
                    if isinstance(item, str):
                        counts["error"] += 1
                        self.stderr.write(f"line {n}: {item}")
                results = answers_ingest(project=target, items=[item for _, item in valid])
                for result in results:
                    counts[result.status] += 1
                    if result.status == "error":
                        self.stderr.write(f"line {valid[result.index][0]}: {result.errors}")
                bar.update(size)
        self.stdout.write(
            f"created {counts['created']}, duplicates {counts['duplicate']}, "
            f"errors {counts['error']}"
        )
