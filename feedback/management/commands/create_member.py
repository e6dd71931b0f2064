from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from feedback.core.errors import ServiceError
from feedback.models import Project, Role
from feedback.services import member_set


class Command(BaseCommand):
    help = "Create a user if needed and give them a role in a project (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True)
        parser.add_argument("--username", required=True)
        parser.add_argument("--password", default=None)
        parser.add_argument("--role", required=True, choices=Role.values)

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project {options['project']!r}; run create_project first.")
        try:
            user, membership = member_set(
                project=project,
                username=options["username"],
                password=options["password"],
                role=options["role"],
            )
        except ServiceError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"{user.get_username()} is {membership.role} of {project.slug}")
