"""A project's members, managed by its owners: add an existing account, create one (whose
owner chooses a password through a one-time link, shown once), change a role, remove."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from feedback.core.access import found_or_404, membership_or_404
from feedback.core.pages import submit_form
from feedback.forms import ROLE_HELP, MemberAddForm, MemberCreateForm, MemberRoleForm
from feedback.models import Membership, Role
from feedback.selectors.tenancy import member_get, members_for_project
from feedback.services import tenancy

MEMBERS_PAGE = "feedback/members.html"
# The session key under which a new account's one-time link waits for the page that shows it.
NEW_MEMBER_LINK = "new_member_link"


def _context(membership: Membership, **extra: Any) -> dict[str, Any]:
    return {
        "membership": membership,
        "project": membership.project,
        "members": members_for_project(project=membership.project),
        "roles": Role.choices,
        "role_help": ROLE_HELP,
        "add_form": MemberAddForm(),
        "create_form": MemberCreateForm(),
        **extra,
    }


@require_GET
@login_required
def members(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)
    # The link made for a new account is shown once: taken out of the session as it is shown.
    made = request.session.get(NEW_MEMBER_LINK)
    new_member = None
    if isinstance(made, dict) and made.get("project") == membership.project.pk:
        new_member = request.session.pop(NEW_MEMBER_LINK)
    response = render(request, MEMBERS_PAGE, _context(membership, new_member=new_member))
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@login_required
def member_add(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)
    form = MemberAddForm(request.POST)
    return submit_form(
        request,
        form,
        lambda data: tenancy.member_add(
            project=membership.project, identifier=data["user"], role=data["role"]
        ),
        template=MEMBERS_PAGE,
        context=lambda form: _context(membership, add_form=form),
        message=lambda added: f"{added.user.get_username()} added as {added.get_role_display()}.",
        done=lambda _: redirect("feedback:members", slug=slug),
    )


@require_POST
@login_required
def member_create(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)

    def show_link_once(created: Membership) -> HttpResponse:
        uidb64, token = tenancy.account_setup_link(user=created.user)
        link = request.build_absolute_uri(
            reverse("password_set", kwargs={"uidb64": uidb64, "token": token})
        )
        request.session[NEW_MEMBER_LINK] = {
            "project": membership.project.pk,
            "username": created.user.get_username(),
            "link": link,
        }
        return redirect("feedback:members", slug=slug)

    form = MemberCreateForm(request.POST)
    return submit_form(
        request,
        form,
        lambda data: tenancy.member_create(
            project=membership.project,
            username=data["username"],
            email=data["email"],
            role=data["role"],
        ),
        template=MEMBERS_PAGE,
        context=lambda form: _context(membership, create_form=form),
        message=lambda created: f"Account {created.user.get_username()} created.",
        done=show_link_once,
    )


@require_POST
@login_required
def member_role(request: HttpRequest, slug: str, member_id: int) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)
    _member_or_404(membership, member_id)
    form = MemberRoleForm(request.POST)
    try:
        return submit_form(
            request,
            form,
            lambda data: tenancy.member_role_change(
                project=membership.project, membership_id=member_id, role=data["role"]
            ),
            template=MEMBERS_PAGE,
            context=lambda form: _context(membership, row_form=form, row_id=member_id),
            message=lambda changed: (
                f"{changed.user.get_username()} is now {changed.get_role_display().lower()}."
            ),
            done=lambda changed: _after_change(request, slug, membership, changed),
        )
    except Membership.DoesNotExist as error:
        raise Http404("No such member.") from error


@require_POST
@login_required
def member_remove(request: HttpRequest, slug: str, member_id: int) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)
    _member_or_404(membership, member_id)
    form = MemberRoleForm({"role": Role.OWNER})  # nothing to fill in: it carries the refusal
    try:
        return submit_form(
            request,
            form,
            lambda _: tenancy.member_remove(project=membership.project, membership_id=member_id),
            template=MEMBERS_PAGE,
            context=lambda form: _context(membership, row_form=form, row_id=member_id),
            message=lambda removed: f"{removed.user.get_username()} removed from the project.",
            done=lambda removed: _after_change(request, slug, membership, removed),
        )
    except Membership.DoesNotExist as error:
        raise Http404("No such member.") from error


def _member_or_404(membership: Membership, member_id: int) -> Membership:
    """A member of the caller's project; another project's answers 404, whatever was sent."""
    return found_or_404(
        member_get(project=membership.project, membership_id=member_id), "No such member."
    )


def _after_change(
    request: HttpRequest, slug: str, own: Membership, changed: Membership
) -> HttpResponse:
    """Back to the members page, unless the owner just gave up owning (or left) the project:
    that page is no longer theirs to see."""
    if changed.user_id == own.user_id and (changed.pk is None or changed.role != Role.OWNER):
        return redirect("feedback:project_list")
    return redirect("feedback:members", slug=slug)
