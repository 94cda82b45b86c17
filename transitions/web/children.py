"""The child's record: list and search, profile, sections and their history, uploads, break-glass.

Views parse a form, call a service, render. Every access decision is the service's (one policy, R12).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from transitions.services import children, organisations, sections, transitions
from transitions.services.accounts import StaffView
from transitions.services.errors import (
    BreakGlassRequiredError,
    ChildInvalidError,
    EditConflictError,
    ForbiddenActionError,
    NotFoundError,
    SectionInvalidError,
)
from transitions.services.roles import Role
from transitions.web.children_forms import BreakGlassForm, ProfileForm, SearchForm, VersionForm
from transitions.web.context import actor, deps
from transitions.web.forms import base_version, choices, date_error, posted, uuid_or_none
from transitions.web.section_forms import (
    form_class,
    initial_data,
    keep_uploads,
    kept_uploads,
    read_inputs,
    show_errors,
)
from transitions.web.security import staff
from transitions.web.timefmt import clock_time

bp = Blueprint("children", __name__)
T = TypeVar("T")

#: Auditors see reports and the audit trail, never a child's record (issue 6 part 6).
RECORD_ROLES = (Role.SOCIAL_WORKER, Role.CLA_NURSE, Role.TEAM_MANAGER, Role.SENIOR_MANAGER)
CREATE_ROLES = (Role.SOCIAL_WORKER, Role.TEAM_MANAGER, Role.SENIOR_MANAGER)


def _user() -> StaffView:
    user: StaffView = g.staff
    return user


def not_allocated(exc: BreakGlassRequiredError) -> tuple[str, int]:
    children.record_denial(deps(), exc.child_id, actor(), request.endpoint or "")  # type: ignore[arg-type]
    return render_template("children/not_allocated.html", child_id=exc.child_id, allowed=exc.allowed), 403


def not_found(exc: NotFoundError) -> tuple[str, int]:
    return render_template("errors/404.html"), 404


def forbidden(exc: ForbiddenActionError) -> tuple[str, int]:
    """A refused change (the service's transaction, and its audit row, were rolled back): record the refusal."""
    child_id = (request.view_args or {}).get("child_id")
    children.record_denial(deps(), child_id, actor(), request.endpoint or "")
    return render_template("children/forbidden.html", message=exc.message), 403


def install_record_errors(blueprint: Blueprint) -> None:
    """Every blueprint that opens a child's record answers the access policy's errors the same way."""
    blueprint.register_error_handler(BreakGlassRequiredError, not_allocated)
    blueprint.register_error_handler(NotFoundError, not_found)
    blueprint.register_error_handler(ForbiddenActionError, forbidden)


install_record_errors(bp)


# ---- list, search, new ------------------------------------------------------------------------------------


@bp.get("/children")
@staff(*RECORD_ROLES)
def index() -> str:
    return render_template("children/index.html", children=children.my_children(deps(), _user(), actor()),
                           form=SearchForm(), can_create=_user().role in CREATE_ROLES)


@bp.post("/children/search")
@staff(*RECORD_ROLES)
def search() -> str:
    """POST, so nothing typed (a name, an NHS number) ends up in a URL, a log or the browser history."""
    form = SearchForm()
    result = None
    if posted(form):
        # The date of birth is optional: a browser posts its three parts empty, which WTForms calls invalid.
        errors = {}
        if not form.query.data:
            errors["query"] = "Enter a name, NHS number or local child ID"
        if message := date_error(form.date_of_birth, invalid="Date of birth must be a real date"):
            errors["date_of_birth"] = message
        show_errors(form, errors)
        if not errors:
            result = children.search(deps(), form.query.data or "", form.date_of_birth.data, _user(), actor())
    return render_template("children/search.html", form=form, result=result)


def _profile_choices(form: ProfileForm) -> None:
    codes = deps().definitions.code_lists
    form.sex.choices = choices(codes["SEX"].options)
    form.legal_status.choices = choices([("", "Select legal status")]
                                        + [(c, f"{c} – {label}") for c, label in codes["LS"].options])
    form.placement_type.choices = choices([("", "Select placement type")]
                                          + [(c, f"{c} – {label}") for c, label in codes["PLACE"].options])
    las = organisations.list_organisations(deps(), frozenset({"local_authority"}))
    form.responsible_la_id.choices = choices([("", "Select local authority")] + [(str(o.id), o.name) for o in las])
    places = organisations.list_organisations(deps(), frozenset(k.value for k in organisations.PLACEMENT_KINDS))
    form.current_placement_id.choices = choices([("", "Not recorded")] + [(str(o.id), o.choice_label)
                                                                          for o in places])
    teams, workers = children.allocation_choices(deps())
    form.team_id.choices = choices([("", "Select team")] + [(c.value, c.label) for c in teams])
    form.allocated_worker_id.choices = choices([("", "Not allocated")] + [(c.value, c.label) for c in workers])


def _profile_input(form: ProfileForm) -> children.ProfileInput:
    return children.ProfileInput(
        legal_name=form.legal_name.data or "", preferred_name=form.preferred_name.data or "",
        aliases=form.aliases.data or "", date_of_birth=form.date_of_birth.data, sex=form.sex.data or "",
        nhs_number=form.nhs_number.data or "", nhs_number_not_known=bool(form.nhs_number_not_known.data),
        la_child_id=form.la_child_id.data or "", legal_status=form.legal_status.data or "",
        placement_type=form.placement_type.data or "", placement_started_on=form.placement_started_on.data,
        responsible_la_id=uuid_or_none(form.responsible_la_id.data),
        current_placement_id=uuid_or_none(form.current_placement_id.data),
        allocated_worker_id=uuid_or_none(form.allocated_worker_id.data), team_id=uuid_or_none(form.team_id.data),
    )


def _date_errors(form: ProfileForm) -> dict[str, str]:
    errors = {"date_of_birth": date_error(form.date_of_birth, invalid="Date of birth must be a real date"),
              "placement_started_on": date_error(form.placement_started_on,
                                                 invalid="Date the placement started must be a real date")}
    return {name: message for name, message in errors.items() if message}


@bp.route("/children/new", methods=["GET", "POST"])
@staff(*CREATE_ROLES)
def new() -> str | BaseResponse:
    form = ProfileForm(data={"team_id": str(_user().team_id) if _user().team_id else ""})
    _profile_choices(form)
    saved = _save_profile(form, lambda data: children.create_child(deps(), data, _user(), actor()))
    if saved is not None:
        flash("Child added. Now complete each section of the record.", "success")
        return redirect(url_for("children.show", child_id=saved))
    return render_template("children/profile_form.html", form=form, profile=None, conflict=False)


def _save_profile(form: ProfileForm, save: Callable[[children.ProfileInput], T]) -> T | None:
    """Run the save on a valid POST; otherwise (or on refusal) put the errors on the form and return None."""
    if not posted(form):
        return None
    errors = _date_errors(form)
    if not errors:
        try:
            return save(_profile_input(form))
        except ChildInvalidError as exc:
            errors = exc.errors
        except EditConflictError as exc:
            form.base_version.data = str(exc.current_version)
            form.conflict = True
    show_errors(form, errors)
    return None


@bp.route("/children/<uuid:child_id>/profile", methods=["GET", "POST"])
@staff(*RECORD_ROLES)
def profile(child_id: UUID) -> str | BaseResponse:
    current = children.profile_for_edit(deps(), child_id, _user(), actor())
    form = ProfileForm(data={
        "legal_name": current.legal_name, "preferred_name": current.preferred_name,
        "aliases": "\n".join(current.aliases), "date_of_birth": current.date_of_birth, "sex": current.sex,
        "nhs_number": current.nhs_number_text, "nhs_number_not_known": not current.nhs_number,
        "la_child_id": current.la_child_id, "legal_status": current.legal_status,
        "placement_type": current.placement_type, "placement_started_on": current.placement_started_on,
        "responsible_la_id": str(current.responsible_la.id) if current.responsible_la else "",
        "current_placement_id": str(current.placement.id) if current.placement else "",
        "team_id": str(current.team.id) if current.team else "",
        "allocated_worker_id": str(current.worker.id) if current.worker else "",
        "base_version": str(current.version),
    })
    _profile_choices(form)

    def save(data: children.ProfileInput) -> list[str]:
        return children.update_profile(deps(), child_id, data, base_version(form), _user(), actor())

    if _save_profile(form, save) is not None:
        flash("Child's details saved.", "success")
        return redirect(url_for("children.show", child_id=child_id))
    return render_template("children/profile_form.html", form=form, profile=current,
                           conflict=getattr(form, "conflict", False))


# ---- the child's page -------------------------------------------------------------------------------------


@bp.get("/children/<uuid:child_id>")
@staff(*RECORD_ROLES)
def show(child_id: UUID) -> str:
    page = children.child_page(deps(), child_id, _user(), actor())
    return render_template("children/show.html", page=page, definitions=deps().definitions,
                           transitions=transitions.for_child(deps(), child_id, _user(), actor()))


@bp.route("/children/<uuid:child_id>/break-glass", methods=["GET", "POST"])
@staff(*RECORD_ROLES)
def break_glass(child_id: UUID) -> str | BaseResponse:
    form = BreakGlassForm()
    if form.validate_on_submit():
        try:
            until = children.break_glass(deps(), child_id, form.reason.data or "", _user(), actor())
        except ChildInvalidError as exc:
            form.reason.errors = [exc.errors["reason"]]
        else:
            flash(f"You can read this record until {clock_time(until)}. Your reason has been recorded.", "important")
            return redirect(url_for("children.show", child_id=child_id))
    return render_template("children/break_glass.html", form=form, child_id=child_id,
                           minutes=deps().settings.record.break_glass_minutes)


@bp.get("/break-glass")
@staff(Role.TEAM_MANAGER, Role.SENIOR_MANAGER, Role.AUDITOR)
def break_glass_log() -> str:
    return render_template("children/break_glass_log.html",
                           entries=children.break_glass_log(deps(), _user(), actor()))


# ---- sections ---------------------------------------------------------------------------------------------


@bp.get("/children/<uuid:child_id>/sections/<code>")
@staff(*RECORD_ROLES)
def section(child_id: UUID, code: str) -> str:
    state = sections.section_state(deps(), child_id, code, _user(), actor())
    heading, _access = children.child_heading(deps(), child_id, _user(), actor())
    return render_template("children/section.html", state=state, child=heading, review_form=VersionForm(
        data={"base_version": str(state.version or "")}))


@bp.route("/children/<uuid:child_id>/sections/<code>/edit", methods=["GET", "POST"])
@staff(*RECORD_ROLES)
def edit_section(child_id: UUID, code: str) -> str | BaseResponse:
    state = sections.section_state(deps(), child_id, code, _user(), actor(), for_edit=True)
    heading, _access = children.child_heading(deps(), child_id, _user(), actor())
    definition = state.section
    form = form_class(definition.fields)(data={**initial_data(definition.fields, state.content),
                                               "base_version": str(state.version or "")})
    conflict = False
    if posted(form):
        files = {f.id: sections.Upload(request.files[f.id].filename or "", request.files[f.id].read())
                 for f in definition.fields if f.is_upload and f.id in request.files}
        base = base_version(form)
        try:
            sections.save_section(deps(), child_id, code, read_inputs(form, definition.fields), files,
                                  kept_uploads(form, definition.fields), base, _user(), actor())
        except SectionInvalidError as exc:
            show_errors(form, exc.errors)
            keep_uploads(form, exc.kept)
        except EditConflictError as exc:
            show_errors(form, {})
            keep_uploads(form, exc.kept)
            form.base_version.data = str(exc.current_version)
            conflict = True
        else:
            flash(f"{definition.title} saved.", "success")
            return redirect(url_for("children.show", child_id=child_id, _anchor=f"section-{code}"))
    kept_names = {f.id: _kept_name(form, f.id, state) for f in definition.fields if f.is_upload}
    return render_template("children/section_form.html", state=state, child=heading, form=form,
                           conflict=conflict, kept_names=kept_names)


def _kept_name(form: object, field_id: str, state: sections.SectionState) -> str:
    kept = getattr(form, field_id + "__kept").data
    if kept:
        return "the file you chose (already checked and kept)"
    stored = state.content.get(field_id)
    return str(stored.get("name")) if isinstance(stored, dict) and "name" in stored else ""


@bp.post("/children/<uuid:child_id>/sections/<code>/review")
@staff(*RECORD_ROLES)
def review_section(child_id: UUID, code: str) -> BaseResponse:
    form = VersionForm()
    base = base_version(form) if form.validate_on_submit() else None
    if base is None:
        abort(400)
    try:
        sections.review_unchanged(deps(), child_id, code, base, _user(), actor())
    except EditConflictError:
        flash("Someone changed this section since you opened it. Check the latest version, then review again.",
              "important")
        return redirect(url_for("children.section", child_id=child_id, code=code))
    flash("Marked as reviewed with no change. The next review date has moved on.", "success")
    return redirect(url_for("children.show", child_id=child_id, _anchor=f"section-{code}"))


@bp.get("/children/<uuid:child_id>/sections/<code>/history")
@staff(*RECORD_ROLES)
def history(child_id: UUID, code: str) -> str:
    compare = None
    first, second = request.args.get("from", ""), request.args.get("to", "")
    if first.isdigit() and second.isdigit():
        compare = (int(first), int(second))
    found = sections.history(deps(), child_id, code, compare, _user(), actor())
    heading, _access = children.child_heading(deps(), child_id, _user(), actor())
    return render_template("children/history.html", history=found, child=heading)


@bp.route("/children/<uuid:child_id>/sections/<code>/entries/new", methods=["GET", "POST"])
@bp.route("/children/<uuid:child_id>/sections/<code>/entries/<entry_id>", methods=["GET", "POST"])
@staff(*RECORD_ROLES)
def entry(child_id: UUID, code: str, entry_id: str | None = None) -> str | BaseResponse:
    state = sections.section_state(deps(), child_id, code, _user(), actor(), for_edit=True)
    heading, _access = children.child_heading(deps(), child_id, _user(), actor())
    entry_def = state.section.entry
    if entry_def is None:
        abort(404)
    existing = state.entry(entry_id) if entry_id else {}
    if existing is None:
        abort(404)
    form = form_class(entry_def.fields, submit_label=f"Save {entry_def.name}")(
        data={**initial_data(entry_def.fields, existing), "base_version": str(state.version or "")})
    conflict = False
    if posted(form):
        base = base_version(form)
        try:
            sections.save_entry(deps(), child_id, code, entry_id, read_inputs(form, entry_def.fields), base,
                                _user(), actor())
        except SectionInvalidError as exc:
            show_errors(form, exc.errors)
        except EditConflictError as exc:
            show_errors(form, {})
            form.base_version.data = str(exc.current_version)
            conflict = True
        else:
            flash(f"{entry_def.name.capitalize()} saved.", "success")
            return redirect(url_for("children.section", child_id=child_id, code=code))
    return render_template("children/entry_form.html", state=state, child=heading, form=form, entry_id=entry_id,
                           conflict=conflict, remove_form=VersionForm(data={"base_version": str(state.version or "")}))


@bp.post("/children/<uuid:child_id>/sections/<code>/entries/<entry_id>/remove")
@staff(*RECORD_ROLES)
def remove_entry(child_id: UUID, code: str, entry_id: str) -> BaseResponse:
    form = VersionForm()
    base = base_version(form) if form.validate_on_submit() else None
    if base is None:
        abort(400)
    try:
        sections.remove_entry(deps(), child_id, code, entry_id, base, _user(), actor())
    except EditConflictError:
        flash("Someone changed this section since you opened it. Nothing was removed: check and try again.",
              "important")
    else:
        flash("Removed. The earlier version still holds it, in the section's history.", "success")
    return redirect(url_for("children.section", child_id=child_id, code=code))


# ---- files ------------------------------------------------------------------------------------------------


@bp.get("/children/<uuid:child_id>/files/<uuid:attachment_id>")
@staff(*RECORD_ROLES)
def attachment(child_id: UUID, attachment_id: UUID) -> Response:
    """Photos inline (for the child's page), PDFs as downloads; never cached, never sniffed, sandboxed (R61)."""
    found = sections.read_attachment(deps(), child_id, attachment_id, _user(), actor())
    response = Response(found.data, mimetype=found.media_type)
    disposition = "inline" if found.kind == "photo" and request.args.get("download") != "1" else "attachment"
    response.headers.set("Content-Disposition", disposition, filename=found.name)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


@bp.get("/children/<uuid:child_id>/profile/history")
@staff(*RECORD_ROLES)
def profile_history(child_id: UUID) -> str:
    profile, versions = children.profile_history(deps(), child_id, _user(), actor())
    return render_template("children/profile_history.html", child=profile, versions=versions)
