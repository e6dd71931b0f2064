from typing import Any

from django.core.management.base import BaseCommand

from feedback.demo_data import demo_answers
from feedback.models import Role
from feedback.services import answers_ingest, member_set, project_create

DEMO_PASSWORD = "demo-password"  # noqa: S105 (demo logins are printed on purpose)
DEMO_USERS = {
    "owner": Role.OWNER,
    "researcher": Role.RESEARCHER,
    "annotator": Role.ANNOTATOR,
    "rater": Role.RATER,
}


class Command(BaseCommand):
    help = "Create the demo project, a user for each role and three dozen traced answers."

    def handle(self, *args: Any, **options: Any) -> None:
        project, _ = project_create(slug="demo", name="Demo help desk")
        for username, role in DEMO_USERS.items():
            member_set(project=project, username=username, password=DEMO_PASSWORD, role=role)
        results = answers_ingest(project=project, items=demo_answers())
        created = sum(r.status == "created" for r in results)
        errors = [r for r in results if r.status == "error"]
        if errors:
            self.stderr.write(f"demo answers with errors: {[r.errors for r in errors]}")
        self.stdout.write(f"Demo project 'demo': {created} new answers, {len(results)} in all.")
        self.stdout.write("Demo logins (password for all: " + DEMO_PASSWORD + "):")
        for username, role in DEMO_USERS.items():
            self.stdout.write(f"  {username:<11} {role.label}")
