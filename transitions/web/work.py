"""Follow-through pages: "my work", escalations (acknowledge / resolve), tasks and recipients' requests."""

from __future__ import annotations

from uuid import UUID

from flask import Blueprint, flash, g, redirect, render_template, url_for
from werkzeug.wrappers import Response as BaseResponse

from transitions.services import follow_up, tasks
from transitions.services.accounts import StaffView
from transitions.services.errors import ChildInvalidError, ForbiddenActionError, NotFoundError
from transitions.services.roles import Role
from transitions.services.tasks import AlreadyDoneError
from transitions.web.children import install_record_errors
from transitions.web.context import actor, deps
from transitions.web.security import staff
from transitions.web.work_forms import AnswerForm, EscalationForm, TaskForm

bp = Blueprint("work", __name__)
install_record_errors(bp)

WORKERS = (Role.SOCIAL_WORKER, Role.CLA_NURSE, Role.TEAM_MANAGER, Role.SENIOR_MANAGER)
ESCALATION_ROLES = (Role.SOCIAL_WORKER, Role.TEAM_MANAGER, Role.SENIOR_MANAGER)


def _user() -> StaffView:
    user: StaffView = g.staff
    return user


@bp.get("/my-work")
@staff(*WORKERS)
def my_work() -> str:
    return render_template("work/my_work.html", tasks=tasks.my_work(deps(), _user(), actor()))


def _find_escalation(escalation_id: UUID) -> follow_up.EscalationRow:
    open_rows, acknowledged = follow_up.dashboard(deps(), _user(), actor())
    for row in (*open_rows, *acknowledged):
        if row.id == escalation_id:
            return row
    raise NotFoundError("escalation")


@bp.get("/escalations/<uuid:escalation_id>")
@staff(*ESCALATION_ROLES)
def escalation(escalation_id: UUID) -> str:
    return render_template("work/escalation.html", row=_find_escalation(escalation_id), form=EscalationForm())


@bp.post("/escalations/<uuid:escalation_id>")
@staff(*ESCALATION_ROLES)
def act_on_escalation(escalation_id: UUID) -> str | BaseResponse:
    form = EscalationForm()
    row = _find_escalation(escalation_id)
    if form.validate_on_submit():
        call = follow_up.resolve if form.resolve.data else follow_up.acknowledge
        try:
            call(deps(), escalation_id, form.note.data or "", _user(), actor())
        except ChildInvalidError as exc:
            form.note.errors = [exc.errors["reason"]]
        except (AlreadyDoneError, ForbiddenActionError) as exc:  # the page says why; the note stays
            form.note.errors = [str(exc)]
            row = _find_escalation(escalation_id)
        else:
            flash("Escalation resolved: no more reminders or alerts for this pack." if form.resolve.data
                  else "Escalation acknowledged.", "success")
            return redirect(url_for("home.index"))
    return render_template("work/escalation.html", row=row, form=form)


@bp.route("/tasks/<uuid:task_id>/done", methods=["POST"])
@staff(*WORKERS)
def task_done(task_id: UUID) -> str | BaseResponse:
    form = TaskForm()
    if form.validate_on_submit():
        try:
            tasks.complete(deps(), task_id, form.note.data or "", _user(), actor())
        except ChildInvalidError as exc:
            form.note.errors = [exc.errors["reason"]]
        except (AlreadyDoneError, ForbiddenActionError) as exc:
            form.note.errors = [str(exc)]
        else:
            flash("Task done.", "success")
            return redirect(url_for("work.my_work"))
    rows = tasks.my_work(deps(), _user(), actor())
    listed = any(t.id == task_id for t in rows)
    return render_template("work/my_work.html", tasks=rows, failed=task_id, failed_listed=listed, form=form)


@bp.get("/requests/<uuid:request_id>")
@staff(*WORKERS)
def information_request(request_id: UUID) -> str:
    return render_template("work/request.html", request_view=tasks.information_request(
        deps(), request_id, _user(), actor()), form=AnswerForm())


@bp.post("/requests/<uuid:request_id>")
@staff(*WORKERS)
def answer_request(request_id: UUID) -> str | BaseResponse:
    form = AnswerForm()
    if form.validate_on_submit():
        try:
            tasks.answer_request(deps(), request_id, form.note.data or "", _user(), actor())
        except ChildInvalidError as exc:
            form.note.errors = [exc.errors["reason"]]
        except (AlreadyDoneError, ForbiddenActionError) as exc:
            form.note.errors = [str(exc)]
        else:
            flash("Answer recorded.", "success")
            return redirect(url_for("work.information_request", request_id=request_id))
    view = tasks.information_request(deps(), request_id, _user(), actor())
    return render_template("work/request.html", request_view=view, form=form)
