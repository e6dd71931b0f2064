"""The C3PO pages: an annotator's refused review is shown with what they wrote."""

from __future__ import annotations

import pytest

from feedback.models import Project, Role
from rewardmodels.models import BuildStatus, C3POBuild, C3POItem, ReviewStatus, VerbalFeedback
from tests.factories import member


@pytest.mark.django_db
def test_a_refused_review_is_shown_again_with_the_reason_and_the_edited_text(
    project: Project,
) -> None:
    # given a build waiting for review, with one revised response
    feedback = VerbalFeedback.objects.create(project=project, text="Be brief.")
    build = C3POBuild.objects.create(
        project=project, feedback=feedback, seed="ab", status=BuildStatus.REVIEW, review=True
    )
    item = C3POItem.objects.create(
        build=build,
        scope="in_scope",
        prompt="Write to my boss.",
        prompt_hash="h",
        baseline="Dear boss, a long letter.",
        revised="Dear boss.",
    )
    annotator = member(project, Role.ANNOTATOR, "anna")

    # when the annotator edits the text and sends an action that does not exist
    url = f"/projects/acme/models/builds/{build.pk}/review/"
    response = annotator.post(f"{url}{item.pk}/", {"action": "maybe", "revised": "Boss: hi."})

    # then the same item is shown again with the reason and their text; nothing was reviewed
    html = response.content.decode()
    assert response.status_code == 400
    assert "Must be approve, edit or reject." in html
    assert ">Boss: hi.</textarea>" in html
    item.refresh_from_db()
    assert (item.review_status, item.revised) == (ReviewStatus.PENDING, "Dear boss.")
