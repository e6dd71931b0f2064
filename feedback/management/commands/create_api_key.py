from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from feedback.core.errors import ServiceError, ValidationFailed
from feedback.models import Project
from feedback.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a project. The key is printed once, as the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True)
        parser.add_argument("--scopes", required=True, help="comma-separated: ingest,feedback,…")
        parser.add_argument("--name", default="command line")
        parser.add_argument(
            "--origins",
            default="",
            help="widget keys: the pages' origins, comma-separated: https://app.example.com,…",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project {options['project']!r}; run create_project first.")
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        origins = [o.strip() for o in options["origins"].split(",") if o.strip()]
        try:
            key, raw_key = api_key_create(
                project=project, name=options["name"], scopes=scopes, origins=origins
            )
        except ValidationFailed as error:
            raise CommandError(
                "; ".join(f"{field}: {m}" for field, ms in error.errors.items() for m in ms)
            ) from error
        except ServiceError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"API key {key.prefix}… for {project.slug} with {', '.join(key.scopes)}")
        if key.origins:
            self.stdout.write(f"Allowed origins: {', '.join(key.origins)}")
        self.stdout.write(raw_key)
