"""User and team administration (administrators only)."""

from __future__ import annotations

from uuid import UUID

from flask import Blueprint, abort, flash, g, redirect, render_template, url_for
from werkzeug.wrappers import Response as BaseResponse

from transitions.services import accounts, alerts
from transitions.services.errors import EmailInUseError, ForbiddenActionError, NotFoundError
from transitions.services.roles import Role
from transitions.web.context import actor, deps
from transitions.web.forms import ConfirmForm, EditUserForm, InviteForm, TeamForm
from transitions.web.security import staff

bp = Blueprint("admin", __name__, url_prefix="/admin")

NO_TEAM = "none"


def _team_choices() -> list[tuple[str, str]]:
    return [("", "Select a team"), (NO_TEAM, "No team (managers and administrators)")] + [
        (str(t.id), t.name) for t in accounts.list_teams(deps())
    ]


def _team_id(value: str | None) -> UUID | None:
    if not value or value == NO_TEAM:
        return None
    try:
        return UUID(value)
    except ValueError:
        abort(400)


def _user_or_404(user_id: UUID) -> accounts.StaffView:
    try:
        return accounts.get_user(deps(), user_id)
    except NotFoundError:
        abort(404)


@bp.get("/users")
@staff(Role.ADMIN)
def users() -> str:
    return render_template("admin/users.html", users=accounts.list_users(deps()),
                           ops_alerts=alerts.for_administrators(deps(), g.staff))


@bp.route("/users/invite", methods=["GET", "POST"])
@staff(Role.ADMIN)
def invite() -> str | BaseResponse:
    form = InviteForm()
    form.team.choices = _team_choices()
    if form.validate_on_submit():
        try:
            user = accounts.invite_user(deps(), email=form.email.data or "", name=form.name.data or "",
                                        role=Role(form.role.data), team_id=_team_id(form.team.data),
                                        actor=actor())
        except EmailInUseError:
            form.email.errors = ["There is already an account with this email address"]
        except NotFoundError:
            form.team.errors = ["Select a team"]
        else:
            flash(f"Invitation queued for {user.display_name}. It is sent within a minute.", "success")
            return redirect(url_for("admin.users"))
    return render_template("admin/invite.html", form=form)


@bp.route("/users/<uuid:user_id>", methods=["GET", "POST"])
@staff(Role.ADMIN)
def user(user_id: UUID) -> str | BaseResponse:
    person = _user_or_404(user_id)
    form = EditUserForm(data={"role": person.role.value,
                              "team": str(person.team_id) if person.team_id else NO_TEAM})
    form.team.choices = _team_choices()
    if form.validate_on_submit():
        try:
            accounts.update_user(deps(), user_id, role=Role(form.role.data), team_id=_team_id(form.team.data),
                                 actor=actor())
        except ForbiddenActionError as exc:
            form.role.errors = [exc.message]
        except NotFoundError:
            form.team.errors = ["Select a team"]
        else:
            flash(f"Changes to {person.display_name} saved.", "success")
            return redirect(url_for("admin.user", user_id=user_id))
    return render_template("admin/user.html", person=person, form=form, action_form=ConfirmForm())


def _post_action(user_id: UUID, action: str) -> BaseResponse:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    person = _user_or_404(user_id)
    try:
        if action == "disable":
            accounts.set_disabled(deps(), user_id, True, actor())
            flash(f"{person.display_name} can no longer sign in.", "success")
        elif action == "enable":
            accounts.set_disabled(deps(), user_id, False, actor())
            flash(f"{person.display_name} can sign in again.", "success")
        elif action == "sign-out":
            accounts.sign_out_everywhere(deps(), user_id, actor())
            flash(f"{person.display_name} has been signed out on every device.", "success")
        elif action == "resend":
            accounts.resend_invitation(deps(), user_id, actor())
            flash(f"A new set-up link is on its way to {person.display_name}.", "success")
    except ForbiddenActionError as exc:
        flash(exc.message, "important")
    return redirect(url_for("admin.user", user_id=user_id))


@bp.post("/users/<uuid:user_id>/disable")
@staff(Role.ADMIN)
def disable(user_id: UUID) -> BaseResponse:
    return _post_action(user_id, "disable")


@bp.post("/users/<uuid:user_id>/enable")
@staff(Role.ADMIN)
def enable(user_id: UUID) -> BaseResponse:
    return _post_action(user_id, "enable")


@bp.post("/users/<uuid:user_id>/sign-out-everywhere")
@staff(Role.ADMIN)
def sign_out_user(user_id: UUID) -> BaseResponse:
    return _post_action(user_id, "sign-out")


@bp.post("/users/<uuid:user_id>/resend-invitation")
@staff(Role.ADMIN)
def resend(user_id: UUID) -> BaseResponse:
    return _post_action(user_id, "resend")


@bp.route("/teams", methods=["GET", "POST"])
@staff(Role.ADMIN)
def teams() -> str | BaseResponse:
    form = TeamForm()
    if form.validate_on_submit():
        try:
            team = accounts.create_team(deps(), form.name.data or "", actor())
        except ForbiddenActionError as exc:
            form.name.errors = [exc.message]
        else:
            flash(f"Team {team.name} added.", "success")
            return redirect(url_for("admin.teams"))
    return render_template("admin/teams.html", form=form, teams=accounts.list_teams(deps()))
