from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from feedback.demo_data import demo_answers, demo_questions
from feedback.models import AnnotationQueue, Role
from feedback.pipelines import demo
from feedback.services import answers_ingest, feedback_record, member_set, project_create
from feedback.services.annotation import QueueFilter, queue_create
from feedback.services.widget import widget_demo_key_ensure

DEMO_PASSWORD = "demo-password"  # noqa: S105 (demo logins are printed on purpose)
DEMO_USERS = {
    "owner": Role.OWNER,
    "researcher": Role.RESEARCHER,
    "annotator": Role.ANNOTATOR,
    "rater": Role.RATER,
}

WIDGET_DEMO_ORIGINS = ["http://127.0.0.1:8000", "http://localhost:8000"]

VIEWERS = 12


def demo_feedback() -> list[dict[str, Any]]:
    """Made-up end users, recorded as an app's backend records its users (source "api"), who
    saw a third of the answers each and reacted to some: better answers (larger model, newer
    version) get more love. Not "simulated": that source is for what shadows and judges say
    in people's place, which no count, dataset or training run takes unless asked to."""
    events: list[dict[str, Any]] = []
    answers = demo_answers()
    # Three days ago, so every exposure is older than the Love window and labelled: the demo
    # project can train a P[Love] model straight away.
    seen_at = (timezone.now() - timedelta(days=3)).isoformat()
    loved_at = (timezone.now() - timedelta(days=3) + timedelta(minutes=2)).isoformat()
    for v in range(VIEWERS):
        viewer = f"demo-viewer-{v + 1}"
        for i, answer in enumerate(answers):
            if (i + v) % 3:
                continue  # each viewer sees a third of the answers
            external_id = answer["external_id"]
            base = {"answer": external_id, "user_ref": viewer}
            events.append(
                {
                    **base,
                    "event_id": f"demo:{viewer}:{external_id}:seen",
                    "type": "exposure",
                    "at": seen_at,
                }
            )
            score = (i * 7 + v * 5) % 10 + (3 if answer["model_version"] == "2" else 0)
            if score >= 9:
                events.append(
                    {
                        **base,
                        "event_id": f"demo:{viewer}:{external_id}:love",
                        "type": "reaction",
                        "at": loved_at,
                        "reaction": "love",
                    }
                )
            elif score <= 1:
                events.append(
                    {
                        **base,
                        "event_id": f"demo:{viewer}:{external_id}:dislike",
                        "type": "reaction",
                        "at": loved_at,
                        "reaction": "dislike",
                    }
                )
    # Each question's two larger answers compared by one viewer, and a critique of the
    # small model's answer to every third question.
    for q in range(1, 13):
        viewer = f"demo-viewer-{q % VIEWERS + 1}"
        newer, older = f"demo-{q:02d}-demo-large-v2", f"demo-{q:02d}-demo-large"
        # The newest large model is also compared with the small one (and preferred): enough
        # pairs for a preference model on the demo project.
        events.append(
            {
                "event_id": f"demo:{viewer}:compare-small:{q}",
                "type": "comparison",
                "answer": newer,
                "other_answer": f"demo-{q:02d}-demo-small",
                "user_ref": viewer,
                "winner": "a" if q % 5 else "b",
            }
        )
        events.append(
            {
                "event_id": f"demo:{viewer}:compare:{q}",
                "type": "comparison",
                "answer": newer,
                "other_answer": older,
                "user_ref": viewer,
                "winner": ("a", "a", "b", "tie")[q % 4],
            }
        )
        if q % 3 == 0:
            events.append(
                {
                    "event_id": f"demo:{viewer}:critique:{q}",
                    "type": "critique",
                    "answer": f"demo-{q:02d}-demo-small",
                    "user_ref": viewer,
                    "text": "Too vague: name the exact steps and cite the guide.",
                    "category": "incomplete",
                }
            )
    return events


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
        # The demo questions asked through the built-in pipeline too: these answers can be
        # re-run from a corrected stage in debug mode.
        asked = [
            {**demo.ask(item["question"]), "external_id": f"demo-ask-{i:02d}"}
            for i, item in enumerate(demo_questions(), start=1)
        ]
        asked_results = answers_ingest(project=project, items=asked)
        self.stdout.write(
            f"Asked the demo pipeline: {sum(r.status == 'created' for r in asked_results)} new."
        )
        if not AnnotationQueue.objects.filter(project=project, name="Relevance pass").exists():
            researcher = project.memberships.get(user__username="researcher").user
            queue = queue_create(
                project=project,
                created_by=researcher,
                name="Relevance pass",
                guidelines=(
                    "Judge every retrieved document, fix the sub-queries, and correct the "
                    "answer where it says something the documents don't support."
                ),
                overlap=2,
                spec=QueueFilter(model=demo.MODEL, has_trace=True),
            )
            self.stdout.write(f"Annotation queue 'Relevance pass': {queue.items.count()} answers.")
        recorded = feedback_record(project=project, items=demo_feedback(), source="api")
        new_events = sum(r.status == "created" for r in recorded)
        self.stdout.write(
            f"Demo viewers' feedback: {new_events} new events, {len(recorded)} in all."
        )
        # The widget demo page (/widget/demo/demo/) embeds the widget with this key, from the
        # addresses `make run` serves on by default.
        widget_demo_key_ensure(project=project, origins=WIDGET_DEMO_ORIGINS)
        self.stdout.write(
            f"Widget demo: {WIDGET_DEMO_ORIGINS[0]}/widget/demo/{project.slug}/ "
            f"(key allowed from {', '.join(WIDGET_DEMO_ORIGINS)})"
        )
        self.stdout.write("Demo logins (password for all: " + DEMO_PASSWORD + "):")
        for username, role in DEMO_USERS.items():
            self.stdout.write(f"  {username:<11} {role.label}")
