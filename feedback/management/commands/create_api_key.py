from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from feedback.core.errors import ServiceError
from feedback.models import Project
from feedback.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a project. The key is printed once, as the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True)
        parser.add_argument("--scopes", required=True, help="comma-separated: ingest,feedback,…")
        parser.add_argument("--name", default="command line")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project {options['project']!r}; run create_project first.")
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        try:
            key, raw_key = api_key_create(project=project, name=options["name"], scopes=scopes)
        except ServiceError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"API key {key.prefix}… for {project.slug} with {', '.join(key.scopes)}")
        self.stdout.write(raw_key)
