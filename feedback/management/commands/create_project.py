from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from feedback.services import project_create


class Command(BaseCommand):
    help = "Create a project (idempotent: an existing slug is left as it is)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", default="")

    def handle(self, *args: Any, slug: str, name: str, **options: Any) -> None:
        project, created = project_create(slug=slug, name=name)
        self.stdout.write(f"{'Created' if created else 'Exists'}: project {project.slug}")
