"""Missing from care: report a child missing (with Part 2), the episode, the police pack (printed or sent by
secure link), the return, and the child's missing history. Views parse a form, call services/missing.py, render.

A GET changes nothing: the print page keeps the PDF's password in the (encrypted, server-side) staff session
only so that the download it links to can be opened with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from flask import Blueprint, Response, flash, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from transitions.clock import UK
from transitions.services import children, organisations
from transitions.services import missing as service
from transitions.services.accounts import StaffView
from transitions.services.errors import ChildInvalidError, ForbiddenActionError, TransitionStepError
from transitions.services.roles import Role
from transitions.web.children import install_record_errors
from transitions.web.context import actor, deps
from transitions.web.forms import ConfirmForm, choices, posted, uuid_or_none
from transitions.web.missing_forms import (
    NowMissingForm,
    Part2Form,
    PoliceForm,
    ReportForm,
    ReturnForm,
    RevokeForm,
    when,
)
from transitions.web.section_forms import show_errors
from transitions.web.security import staff

bp = Blueprint("missing", __name__)
install_record_errors(bp)

#: Auditors see reports and the audit trail, not child records (issue 6): none of these pages is theirs.
READ_ROLES = (Role.SOCIAL_WORKER, Role.CLA_NURSE, Role.TEAM_MANAGER, Role.SENIOR_MANAGER)
WRITE_ROLES = (Role.SOCIAL_WORKER, Role.TEAM_MANAGER, Role.SENIOR_MANAGER)
PRINT_ROLES = READ_ROLES
#: The staff session key holding the printed PDFs' passwords (per episode, or "part1").
PRINT_PASSWORDS = "missing_print_passwords"


ALREADY_REPORTED = ("This child has just been reported missing by someone else. Open that episode and add what you "
                    "typed to its Part 2.")


def _user() -> StaffView:
    user: StaffView = g.staff
    return user


@bp.app_template_global("missing_panel")
def missing_panel(child_id: UUID) -> service.Panel:
    """The child's page's "Missing from care" panel (the page itself has already checked and recorded access)."""
    return service.panel(deps(), child_id, _user(), actor())


def _force_choices(field: Any) -> None:
    forces = organisations.list_organisations(deps(), frozenset({"police_force"}))
    field.choices = choices([("", "Select the police force")] + [(str(f.id), f.name) for f in forces])


def _part2(form: Any, last_seen: Any = None) -> service.Part2Input:
    return service.Part2Input(
        last_seen_place=form.last_seen_place.data or "", last_seen_at=last_seen, with_whom=form.with_whom.data or "",
        clothing=form.clothing.data or "", items_taken=form.items_taken.data or "",
        state_of_mind=form.state_of_mind.data or "", other=form.other.data or "")


Pairs = dict[str, tuple[str, str]]


def _on_fields(errors: dict[str, str], names: Pairs, typed: dict[str, str] | None = None) -> dict[str, str]:
    """The service names a time ("started_at"); the form shows its error on the date input of that time, unless
    the form already found that date or time unreadable (`typed`: its own errors, which are kept)."""
    typed = typed or {}
    merged = {}
    for key, message in errors.items():
        day, clock = names.get(key, (key, key))
        if day not in typed and clock not in typed:
            merged[day] = message
    return {**merged, **typed}


def _episode_url(child_id: UUID, episode_id: UUID) -> str:
    return url_for("missing.episode", child_id=child_id, episode_id=episode_id)


# ---- report ------------------------------------------------------------------------------------------------


@bp.route("/children/<uuid:child_id>/missing/new", methods=["GET", "POST"])
@staff(*WRITE_ROLES)
def report(child_id: UUID) -> str | BaseResponse:
    context = service.report_context(deps(), child_id, _user(), actor())
    if context.open_episode_id is not None and request.method != "POST":  # a POST keeps what was typed (below)
        flash("This child is already recorded as missing. Add what you know to Part 2 below.", "important")
        return redirect(_episode_url(child_id, context.open_episode_id))
    heading, _access = children.child_heading(deps(), child_id, _user(), actor())
    form = ReportForm(data={"police_force_id": str(context.default_force_id) if context.default_force_id else "",
                            "code": "M"})
    _force_choices(form.police_force_id)
    if posted(form):
        errors: dict[str, str] = {}
        started = when(form, "started_on", "started_time", errors, what="the child left or was last seen",
                       required=True)
        reported = when(form, "reported_on", "reported_time", errors, what="it was reported to the police",
                        required=False)
        data = service.ReportInput(code=form.code.data or "", started_at=started, reported_at=reported,
                                   police_reference=form.police_reference.data or "",
                                   police_force_id=uuid_or_none(form.police_force_id.data), part2=_part2(form))
        names = {"started_at": ("started_on", "started_time"), "reported_at": ("reported_on", "reported_time")}
        try:
            if errors:  # a date that is not a date: the service still checks the rest, so all are shown at once
                raise ChildInvalidError(_on_fields(service.report_errors(deps(), child_id, data, _user(), actor()),
                                                   names, errors))
            episode_id = service.report_missing(deps(), child_id, data, _user(), actor())
        except ChildInvalidError as exc:
            show_errors(form, _on_fields(exc.errors, names))
            if context.open_episode_id is not None:  # reported by someone else since this form was opened
                form.form_errors = [ALREADY_REPORTED]
        except TransitionStepError as exc:
            # Someone else has just reported the child missing: say so on the form, which keeps everything
            # typed (to add to that episode's Part 2), and link to the episode.
            form.form_errors = [exc.message]
            context = service.report_context(deps(), child_id, _user(), actor())
        else:
            flash("Missing episode recorded. Now give the police the pack: send it to the force's mailbox, or print "
                  "it and hand it over.", "success")
            return redirect(_episode_url(child_id, episode_id))
    return render_template("missing/report.html", form=form, child=heading, context=context)


# ---- the episode -------------------------------------------------------------------------------------------


def _police_form(page: service.EpisodePage) -> PoliceForm:
    e = page.episode
    local = e.reported_at
    form = PoliceForm(data={
        "police_force_id": str(e.police_force_id) if e.police_force_id else "",
        "reported_on": local.astimezone(UK).date() if local else None,
        "reported_time": local.astimezone(UK).strftime("%H:%M") if local else "",
        "police_reference": e.police_reference})
    _force_choices(form.police_force_id)
    return form


def _show_episode(child_id: UUID, episode_id: UUID, police_form: PoliceForm | None = None,
                  revoke_form: RevokeForm | None = None) -> str:
    page = service.episode_page(deps(), child_id, episode_id, _user(), actor())
    heading, _access = children.child_heading(deps(), child_id, _user(), actor())
    form = police_form or _police_form(page)
    return render_template("missing/episode.html", page=page, e=page.episode, child=heading, form=form,
                           send_form=ConfirmForm(), revoke_form=revoke_form or RevokeForm(formdata=None))


@bp.get("/children/<uuid:child_id>/missing/<uuid:episode_id>")
@staff(*READ_ROLES)
def episode(child_id: UUID, episode_id: UUID) -> str:
    return _show_episode(child_id, episode_id)


@bp.post("/children/<uuid:child_id>/missing/<uuid:episode_id>/police")
@staff(*WRITE_ROLES)
def police(child_id: UUID, episode_id: UUID) -> str | BaseResponse:
    form = PoliceForm()
    _force_choices(form.police_force_id)
    posted(form)
    errors: dict[str, str] = {}
    reported = when(form, "reported_on", "reported_time", errors, what="it was reported to the police",
                    required=False)
    if not errors:
        try:
            stopped = service.update_police(deps(), child_id, episode_id, service.PoliceInput(
                reported_at=reported, police_reference=form.police_reference.data or "",
                police_force_id=uuid_or_none(form.police_force_id.data)), _user(), actor())
        except ChildInvalidError as exc:
            errors = _on_fields(exc.errors, {"reported_at": ("reported_on", "reported_time")})
        else:
            flash("Police details saved." + (" The link sent to the previous force has stopped working: send the "
                                             "pack to the new force." if stopped else ""), "success")
            return redirect(_episode_url(child_id, episode_id))
    show_errors(form, errors)
    return _show_episode(child_id, episode_id, form)


@bp.post("/children/<uuid:child_id>/missing/<uuid:episode_id>/send")
@staff(*WRITE_ROLES)
def send(child_id: UUID, episode_id: UUID) -> BaseResponse:
    form = ConfirmForm()
    posted(form)
    try:
        force = service.send_police_pack(deps(), child_id, episode_id, _user(), actor())
    except TransitionStepError as exc:
        flash(exc.message, "important")
    else:
        flash(f"Police pack sent by secure link to {force}. They get a code by email to open it, and confirm "
              "receipt.", "success")
    return redirect(_episode_url(child_id, episode_id))


@bp.post("/children/<uuid:child_id>/missing/<uuid:episode_id>/packs/<uuid:pack_id>/revoke")
@staff(*WRITE_ROLES)
def revoke(child_id: UUID, episode_id: UUID, pack_id: UUID) -> str | BaseResponse:
    """Stop the police's link now (R18), with a reason; a reason too short comes back on the page, kept."""
    form = RevokeForm()
    posted(form)
    try:
        service.revoke_episode_pack(deps(), child_id, episode_id, pack_id, form.revoke_reason.data or "", _user(),
                                    actor())
    except ChildInvalidError as exc:
        show_errors(form, {"revoke_reason": exc.errors["reason"]})
        return _show_episode(child_id, episode_id, revoke_form=form)
    except TransitionStepError as exc:
        flash(exc.message, "important")
    else:
        flash("Access revoked. The police's link stops working at once; the reason is recorded.", "success")
    return redirect(_episode_url(child_id, episode_id))


def _episode_form(child_id: UUID, episode_id: UUID, template: str, form: Any,
                  save: Callable[[dict[str, str]], str], names: Pairs) -> str | BaseResponse:
    """A form about one episode: on a POST run `save` with a dict for the form's own errors (unreadable dates);
    it returns the success message. The service's refusals come back as errors on the form, with the form's."""
    page = service.episode_page(deps(), child_id, episode_id, _user(), actor())
    if not page.can_edit:
        raise ForbiddenActionError("Only the child's social worker, their team and managers record this")
    heading, _access = children.child_heading(deps(), child_id, _user(), actor())
    if posted(form):
        errors: dict[str, str] = {}
        try:
            done = save(errors)
        except ChildInvalidError as exc:
            errors = _on_fields(exc.errors, names, errors)
        except TransitionStepError as exc:
            # The episode changed under them (a colleague recorded the return first): say so here, keeping
            # everything typed.
            form.form_errors = [exc.message]
        else:
            flash(done, "success")
            return redirect(url_for("children.show", child_id=child_id) if template == "missing/return.html"
                            else _episode_url(child_id, episode_id))
        show_errors(form, errors)
    return render_template(template, form=form, child=heading, page=page, e=page.episode)


@bp.route("/children/<uuid:child_id>/missing/<uuid:episode_id>/part-2", methods=["GET", "POST"])
@staff(*WRITE_ROLES)
def part2(child_id: UUID, episode_id: UUID) -> str | BaseResponse:
    form = Part2Form()

    def save(errors: dict[str, str]) -> str:
        seen = when(form, "last_seen_on", "last_seen_time", errors, what="the child was seen", required=False)
        if errors:
            raise ChildInvalidError(errors)
        service.add_part2(deps(), child_id, episode_id, _part2(form, seen), _user(), actor())
        return "Added to Part 2, with the time you recorded it. Send the police the new version if they have the pack."

    return _episode_form(child_id, episode_id, "missing/part2.html", form, save,
                         {"last_seen_at": ("last_seen_on", "last_seen_time")})


@bp.route("/children/<uuid:child_id>/missing/<uuid:episode_id>/return", methods=["GET", "POST"])
@staff(*WRITE_ROLES)
def record_return(child_id: UUID, episode_id: UUID) -> str | BaseResponse:
    form = ReturnForm()

    def save(errors: dict[str, str]) -> str:
        # An unreadable date goes to the service as no date: it refuses (and names what else is wrong).
        ended = when(form, "ended_on", "ended_time", errors, what="the child came back or was found", required=True)
        service.record_return(deps(), child_id, episode_id, ended, form.where_found.data or "", _user(), actor())
        return ("Return recorded. A return home interview is due within 72 hours: it is in the social worker's "
                "work. Then update friends, associates and places, and share the pack again.")

    return _episode_form(child_id, episode_id, "missing/return.html", form, save,
                         {"ended_at": ("ended_on", "ended_time")})


@bp.route("/children/<uuid:child_id>/missing/<uuid:episode_id>/now-missing", methods=["GET", "POST"])
@staff(*WRITE_ROLES)
def now_missing(child_id: UUID, episode_id: UUID) -> str | BaseResponse:
    form = NowMissingForm()
    created: list[UUID] = []

    def save(errors: dict[str, str]) -> str:
        at = when(form, "at_on", "at_time", errors, what="nobody has known where the child is", required=True)
        created.append(service.now_missing(deps(), child_id, episode_id, at, _user(), actor()))
        return ("Recorded as missing: a new episode, starting when the 'away' one ended. Tell the police, and "
                "send or print the pack.")

    response = _episode_form(child_id, episode_id, "missing/now_missing.html", form, save, {"at": ("at_on", "at_time")})
    if created:
        return redirect(_episode_url(child_id, created[0]))
    return response


# ---- history -----------------------------------------------------------------------------------------------


@bp.get("/children/<uuid:child_id>/missing")
@staff(*READ_ROLES)
def history(child_id: UUID) -> str:
    found = service.history(deps(), child_id, _user(), actor())
    heading, _access = children.child_heading(deps(), child_id, _user(), actor())
    return render_template("missing/history.html", history=found, child=heading)


# ---- the printed police pack -------------------------------------------------------------------------------


def _password_for(key: str, *, new: bool) -> str | None:
    passwords: dict[str, str] = dict(session.get(PRINT_PASSWORDS) or {})
    if new and key not in passwords:
        from transitions.pdf import new_pdf_password

        passwords = {**dict(list(passwords.items())[-4:]), key: new_pdf_password()}  # a few at most
        session[PRINT_PASSWORDS] = passwords
    return passwords.get(key)


@bp.get("/children/<uuid:child_id>/missing/police-pack")
@bp.get("/children/<uuid:child_id>/missing/<uuid:episode_id>/police-pack")
@staff(*PRINT_ROLES)
def print_page(child_id: UUID, episode_id: UUID | None = None) -> str:
    heading, access = children.child_heading(deps(), child_id, _user(), actor())
    page = service.episode_page(deps(), child_id, episode_id, _user(), actor()) if episode_id else None
    if not service.may_print(access):
        raise ForbiddenActionError("Auditors do not print police packs")
    password = _password_for(str(episode_id or "part1"), new=True)
    pdf_url = url_for("missing.print_pdf", child_id=child_id, episode_id=episode_id) if episode_id else \
        url_for("missing.print_part1_pdf", child_id=child_id)
    return render_template("missing/print.html", child=heading, page=page, password=password, pdf_url=pdf_url)


@bp.get("/children/<uuid:child_id>/missing/police-pack.pdf", endpoint="print_part1_pdf")
@bp.get("/children/<uuid:child_id>/missing/<uuid:episode_id>/police-pack.pdf")
@staff(*PRINT_ROLES)
def print_pdf(child_id: UUID, episode_id: UUID | None = None) -> BaseResponse:
    password = _password_for(str(episode_id or "part1"), new=False)
    if password is None:  # opened without the page that shows the password
        return redirect(url_for("missing.print_page", child_id=child_id, episode_id=episode_id) if episode_id
                        else url_for("missing.print_page", child_id=child_id))
    try:
        printed = service.print_police_pack(deps(), child_id, episode_id, password, _user(), actor())
    except TransitionStepError as exc:
        flash(exc.message, "important")
        return redirect(url_for("children.show", child_id=child_id))
    response = Response(printed.data, mimetype="application/pdf")
    response.headers.set("Content-Disposition", "attachment", filename=printed.name)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response

