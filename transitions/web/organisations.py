"""The organisations register (administrators): placements, homes, hospitals and wards, CAMHS, schools,
GP practices, local authorities and police forces."""

from __future__ import annotations

from uuid import UUID

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import GovRadioInput, GovSelect, GovSubmitInput, GovTextArea, GovTextInput
from werkzeug.wrappers import Response as BaseResponse
from wtforms import RadioField, SelectField, StringField, SubmitField, TextAreaField

from transitions.services import organisations
from transitions.services.errors import ChildInvalidError, NotFoundError
from transitions.services.roles import Role
from transitions.web.context import actor, deps
from transitions.web.forms import choices, strip, uuid_or_none
from transitions.web.section_forms import show_errors
from transitions.web.security import staff

bp = Blueprint("organisations", __name__, url_prefix="/admin/organisations")


class OrganisationForm(FlaskForm):
    kind = RadioField("Type of organisation", widget=GovRadioInput(), choices=choices(organisations.KIND_CHOICES),
                      validate_choice=False)
    name = StringField("Name", widget=GovTextInput(), filters=[strip],
                       description="For a foster placement use a reference, not the carers' names, "
                                   "for example Fostering household FH-0123.")
    code = StringField("Code (optional for some types)", widget=GovTextInput(), filters=[strip],
                       description="Ofsted URN for a children's home (SC123456 or 7 digits), ODS code for a "
                                   "hospital, ward or GP practice, ONS code for a local authority.")
    parent_id = SelectField("Hospital (wards only)", widget=GovSelect(), choices=[], validate_choice=False)
    local_authority_id = SelectField("Local authority area", widget=GovSelect(), choices=[], validate_choice=False,
                                     description="Where the organisation is. For a placement this is the host "
                                                 "authority, and its police force is the one to call if the "
                                                 "child goes missing.")
    police_force_id = SelectField("Police force (local authorities only)", widget=GovSelect(), choices=[],
                                  validate_choice=False)
    area = StringField("Area (optional)", widget=GovTextInput(), filters=[strip])
    address = TextAreaField("Address (optional)", widget=GovTextArea(), filters=[strip],
                            description="Stored encrypted. Never shown to anyone who must not know where a child "
                                        "lives.")
    phone = StringField("Phone (optional)", widget=GovTextInput(), filters=[strip])
    mailbox = StringField("Role mailbox (optional)", widget=GovTextInput(), filters=[strip],
                          description="A shared team or ward address, not a person's, for example ward7@nhs.net.")
    submit = SubmitField("Save", widget=GovSubmitInput())


def _choices(form: OrganisationForm) -> None:
    orgs = organisations.list_organisations(deps(), frozenset({"local_authority", "police_force", "hospital"}))
    form.local_authority_id.choices = choices([("", "Not recorded")] + [(str(o.id), o.name) for o in orgs
                                                                         if o.kind == "local_authority"])
    form.police_force_id.choices = choices([("", "Not applicable")] + [(str(o.id), o.name) for o in orgs
                                                                        if o.kind == "police_force"])
    form.parent_id.choices = choices([("", "Not applicable")] + [(str(o.id), o.name) for o in orgs
                                                                  if o.kind == "hospital"])


@bp.get("")
@staff(Role.ADMIN)
def index() -> str:
    kind = request.args.get("kind", "")
    kinds = frozenset({kind}) if kind in dict(organisations.KIND_CHOICES) else None
    return render_template("admin/organisations.html", organisations=organisations.list_organisations(deps(), kinds),
                           kinds=organisations.KIND_CHOICES, selected=kind)


@bp.route("/new", methods=["GET", "POST"])
@bp.route("/<uuid:org_id>", methods=["GET", "POST"])
@staff(Role.ADMIN)
def edit(org_id: UUID | None = None) -> str | BaseResponse:
    data = {}
    if org_id is not None:
        try:
            org = organisations.get_organisation(deps(), org_id)
        except NotFoundError:
            abort(404)
        data = {"kind": org.kind, "name": org.name, "code": org.code or "", "area": org.area or "",
                "address": org.address or "", "phone": org.phone or "", "mailbox": org.mailbox or "",
                "local_authority_id": str(org.local_authority_id or ""), "parent_id": str(org.parent_id or ""),
                "police_force_id": str(org.police_force_id or "")}
    form = OrganisationForm(data=data)
    _choices(form)
    if form.validate_on_submit():
        entry = organisations.OrganisationInput(
            kind=form.kind.data or "", name=form.name.data or "", code=form.code.data or "",
            area=form.area.data or "", phone=form.phone.data or "", mailbox=form.mailbox.data or "",
            address=form.address.data or "", local_authority_id=uuid_or_none(form.local_authority_id.data),
            police_force_id=uuid_or_none(form.police_force_id.data), parent_id=uuid_or_none(form.parent_id.data))
        try:
            organisations.save_organisation(deps(), org_id, entry, actor())
        except ChildInvalidError as exc:
            show_errors(form, exc.errors)
        except NotFoundError:
            abort(404)
        else:
            flash(f"{entry.name} saved.", "success")
            return redirect(url_for("organisations.index"))
    return render_template("admin/organisation_form.html", form=form, org_id=org_id)
