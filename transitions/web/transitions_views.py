"""Transitions: start one, its checklist, overrides, recipients, approvals, lifecycle; crisis flags."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from flask import Blueprint, abort, flash, g, redirect, render_template, url_for
from werkzeug.wrappers import Response as BaseResponse

from transitions.services import children, follow_up, organisations, packs
from transitions.services import transitions as service
from transitions.services.accounts import StaffView
from transitions.services.errors import (
    ChildInvalidError,
    ForbiddenActionError,
    TransitionStepError,
)
from transitions.services.roles import Role
from transitions.web.children import install_record_errors
from transitions.web.context import actor, deps
from transitions.web.forms import base_version, choices, date_error, posted, uuid_or_none
from transitions.web.section_forms import show_errors
from transitions.web.security import staff
from transitions.web.transitions_forms import (
    ApprovalForm,
    ReasonForm,
    RecipientForm,
    StepForm,
    TransitionForm,
    parse_time,
    uk_datetime,
)

bp = Blueprint("transitions", __name__)

READ_ROLES = (Role.SOCIAL_WORKER, Role.CLA_NURSE, Role.TEAM_MANAGER, Role.SENIOR_MANAGER)  # never auditors
WRITE_ROLES = (Role.SOCIAL_WORKER, Role.TEAM_MANAGER, Role.SENIOR_MANAGER)
DESTINATION_KINDS = frozenset({"placement", "childrens_home", "hospital", "ward"})


def _user() -> StaffView:
    user: StaffView = g.staff
    return user


install_record_errors(bp)


def _transition_choices(form: TransitionForm) -> None:
    definitions = deps().definitions
    form.kind.choices = choices((k.code, k.title) for k in definitions.ordered_kinds())
    places = organisations.list_organisations(deps(), DESTINATION_KINDS)
    options = [(str(o.id), o.choice_label) for o in places]
    form.destination_id.choices = choices([("", "Select where the child is going"), *options])
    form.origin_id.choices = choices([("", "Not recorded"), *options])
    form.reason_code.choices = choices([("", "Not a placement change, or not known yet")] + [
        (c, f"{c} – {label}") for c, label in definitions.code_lists["REASON_PLACE_CHANGE"].options])


@bp.route("/children/<uuid:child_id>/transitions/new", methods=["GET", "POST"])
@staff(*WRITE_ROLES)
def new(child_id: UUID) -> str | BaseResponse:
    heading, access = children.child_heading(deps(), child_id, _user(), actor())
    if not access.can_edit_profile:
        raise ForbiddenActionError("Only the child's social worker, their team and managers start a transition")
    form = TransitionForm(data={"origin_id": str(heading.placement.id) if heading.placement else "",
                                "urgency": "planned"})
    _transition_choices(form)
    if posted(form):
        errors: dict[str, str] = {}
        at = parse_time(form.starts_at_time.data or "")
        if message := date_error(form.starts_on, missing="Enter the date of the move or admission",
                                 invalid="Date of the move or admission must be a real date"):
            errors["starts_on"] = message
        if at is None:
            errors["starts_at_time"] = "Enter the time, like 14:30 or 2:30pm"
        if not errors and form.starts_on.data is not None and at is not None:
            data = service.TransitionInput(
                kind=form.kind.data or "", destination_id=uuid_or_none(form.destination_id.data),
                origin_id=uuid_or_none(form.origin_id.data), starts_at=uk_datetime(form.starts_on.data, at),
                urgency=form.urgency.data or "", reason_code=form.reason_code.data or "",
                at_a_distance=form.at_a_distance.data or "", emergency_reason=form.emergency_reason.data or "",
                distance_miles=form.distance_miles.data or "")
            try:
                transition_id = service.create_transition(deps(), child_id, data, _user(), actor())
            except ChildInvalidError as exc:
                errors = exc.errors
            else:
                flash("Transition started. Check the list below: what is missing, who must receive what and when.",
                      "success")
                return redirect(url_for("transitions.show", transition_id=transition_id))
        show_errors(form, {("starts_on" if k == "starts_at" else k): v for k, v in errors.items()})
    return render_template("transitions/new.html", form=form, child=heading,
                           kinds=deps().definitions.ordered_kinds())


@bp.get("/transitions/<uuid:transition_id>")
@staff(*READ_ROLES)
def show(transition_id: UUID) -> str:
    check = service.checklist(deps(), transition_id, _user(), actor())
    heading, _access = children.child_heading(deps(), check.child_id, _user(), actor())
    recipient_form = RecipientForm()
    recipient_form.recipient_type.choices = choices([("", "Select a type")] + [
        (r.code, r.title) for r in deps().definitions.recipient_types.values()
        if r.code not in service.MISSING_ONLY_TYPES])
    orgs = organisations.list_organisations(deps())
    recipient_form.organisation_id.choices = choices([("", "Choose later")] + [
        (str(o.id), f"{o.name} ({o.kind_label.lower()})") for o in orgs])
    return render_template("transitions/show.html", check=check, child=heading, reason_form=ReasonForm(),
                           recipient_form=recipient_form,
                           step_form=StepForm(data={"base_version": str(check.version)}),
                           approval_forms={a.kind: _approval_form(a.decision) for a in check.approvals},
                           definitions=deps().definitions,
                           board=packs.transition_board(deps(), transition_id, _user(), actor()),
                           follow=follow_up.transition_follow_up(deps(), transition_id))


def _approval_form(decision: bool) -> ApprovalForm:
    form = ApprovalForm()
    form.outcome.choices = choices([("approved", "Approved"), ("refused", "Not approved")] if decision else
                                   [("notified", "Notified"), ("consulted", "Consulted, answer recorded")])
    return form


def _back(transition_id: UUID) -> BaseResponse:
    return redirect(url_for("transitions.show", transition_id=transition_id))


def _act(transition_id: UUID, call: Callable[[], object], done: str | Callable[[object], str]) -> BaseResponse:
    """Run one change; a refusal comes back as a message on the checklist page, which keeps everything shown."""
    try:
        result = call()
    except ChildInvalidError as exc:
        flash(next(iter(exc.errors.values())), "important")
    except TransitionStepError as exc:
        flash(exc.message, "important")
    else:
        flash(done(result) if callable(done) else done, "success")
    return _back(transition_id)


@bp.post("/transitions/<uuid:transition_id>/overrides")
@staff(Role.TEAM_MANAGER, Role.SENIOR_MANAGER)
def override(transition_id: UUID) -> BaseResponse:
    form = ReasonForm()
    if not form.validate_on_submit():
        abort(400)
    return _act(transition_id, lambda: service.override_section(
        deps(), transition_id, form.section.data or "", form.reason.data or "", _user(), actor()),
        "Override recorded with your reason. It will appear in reports.")


@bp.post("/transitions/<uuid:transition_id>/recipients")
@staff(*WRITE_ROLES)
def add_recipient(transition_id: UUID) -> BaseResponse:
    form = RecipientForm()
    if not form.validate_on_submit():
        abort(400)
    return _act(transition_id, lambda: service.add_recipient(
        deps(), transition_id, form.recipient_type.data or "", uuid_or_none(form.organisation_id.data),
        form.reason.data or "", _user(), actor()), "Recipient added.")


@bp.post("/transitions/<uuid:transition_id>/recipients/<uuid:recipient_id>/remove")
@staff(*WRITE_ROLES)
def remove_recipient(transition_id: UUID, recipient_id: UUID) -> BaseResponse:
    form = ReasonForm()
    if not form.validate_on_submit():
        abort(400)
    return _act(transition_id, lambda: service.remove_recipient(
        deps(), transition_id, recipient_id, form.reason.data or "", _user(), actor()),
        "Recipient removed. The reason is recorded.")


@bp.post("/transitions/<uuid:transition_id>/approvals/<kind>")
@staff(*WRITE_ROLES)
def approval(transition_id: UUID, kind: str) -> BaseResponse:
    form = ApprovalForm()
    form.outcome.choices = choices([("approved", "Approved"), ("refused", "Not approved"), ("notified", "Notified"),
                                    ("consulted", "Consulted")])
    if not form.validate_on_submit():
        abort(400)
    return _act(transition_id, lambda: service.record_approval(
        deps(), transition_id, kind, form.outcome.data or "", form.person.data or "", form.answer.data or "",
        _user(), actor()), "Recorded.")


@bp.post("/transitions/<uuid:transition_id>/<any(ready, sent, cancel):action>")
@staff(*WRITE_ROLES)
def step(transition_id: UUID, action: str) -> BaseResponse:
    form = StepForm()
    if not form.validate_on_submit():
        abort(400)
    return _act(transition_id, lambda: service.change_status(
        deps(), transition_id, action, form.reason.data or "", base_version(form), _user(), actor()),
        lambda status: f"The transition is now {service.STATUS_LABELS[str(status)].lower()}.")


def _sent_message(report: object) -> str:
    assert isinstance(report, packs.SendReport)
    text = f"{report.sent} pack{'s' if report.sent != 1 else ''} sent."
    if report.not_sent:
        text += " Not sent (the organisation has no mailbox or is not chosen): " + ", ".join(report.not_sent) + "."
    return text


@bp.post("/transitions/<uuid:transition_id>/packs/<any(remaining, new_versions):which>")
@staff(*WRITE_ROLES)
def send_packs(transition_id: UUID, which: str) -> BaseResponse:
    """Send the new version to every recipient entitled to what changed, or to those without a working link."""
    form = StepForm()
    if not form.validate_on_submit():
        abort(400)
    return _act(transition_id, lambda: packs.send_remaining(deps(), transition_id, _user(), actor(),
                                                            only_stale=which == "new_versions"), _sent_message)


@bp.post("/transitions/<uuid:transition_id>/packs/<uuid:pack_id>/revoke")
@staff(*WRITE_ROLES)
def revoke_pack(transition_id: UUID, pack_id: UUID) -> BaseResponse:
    form = ReasonForm()
    if not form.validate_on_submit():
        abort(400)
    return _act(transition_id, lambda: packs.revoke(deps(), transition_id, pack_id, form.reason.data or "", _user(),
                                                    actor()), "Access revoked. The link stops working at once.")


@bp.get("/transitions/<uuid:transition_id>/recipients/<uuid:recipient_id>/access-log")
@staff(*READ_ROLES)
def access_log(transition_id: UUID, recipient_id: UUID) -> str:
    log = packs.access_log(deps(), transition_id, recipient_id, _user(), actor())
    heading, _access = children.child_heading(deps(), log.child_id, _user(), actor())
    return render_template("transitions/access_log.html", log=log, child=heading, transition_id=transition_id)


@bp.get("/crisis")
@staff(Role.TEAM_MANAGER, Role.SENIOR_MANAGER, Role.AUDITOR)
def crisis() -> str:
    return render_template("transitions/crisis.html", flags=service.open_crisis_flags(deps(), _user(), actor()),
                           form=ReasonForm())


@bp.post("/crisis/<uuid:flag_id>/acknowledge")
@staff(Role.SENIOR_MANAGER)
def acknowledge(flag_id: UUID) -> str | BaseResponse:
    form = ReasonForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        service.acknowledge_flag(deps(), flag_id, form.reason.data or "", _user(), actor())
    except ChildInvalidError as exc:  # the page again, with the error and what was typed
        return render_template("transitions/crisis.html", flags=service.open_crisis_flags(deps(), _user(), actor()),
                               form=form, failed=flag_id, failed_error=exc.errors["reason"],
                               typed=form.reason.data or "")
    flash("Crisis flag acknowledged; the planning task is closed.", "success")
    return redirect(url_for("transitions.crisis"))
