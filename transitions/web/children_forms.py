"""Fixed forms for the child's record: the profile, search, break-glass, and small confirm forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import (
    GovCheckboxInput,
    GovRadioInput,
    GovSelect,
    GovSubmitInput,
    GovTextArea,
    GovTextInput,
)
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)

from transitions.web.forms import DateInput, strip


class ProfileForm(FlaskForm):
    legal_name = StringField("Legal name", widget=GovTextInput(), filters=[strip],
                             description="Full name as on the birth certificate or court order.")
    preferred_name = StringField("Name the child likes to be called", widget=GovTextInput(), filters=[strip])
    aliases = TextAreaField("Other names (optional)", widget=GovTextArea(),
                            description="Previous names, nicknames and names the child uses online, one per line. "
                                        "Police use them when a child goes missing.")
    date_of_birth = DateField("Date of birth", widget=DateInput(), format="%d %m %Y",
                              description="For example, 27 3 2011")
    sex = RadioField("Sex", widget=GovRadioInput(), choices=[], validate_choice=False)
    nhs_number = StringField("NHS number", widget=GovTextInput(), filters=[strip],
                             description="10 digits, for example 943 476 5919. Hospitals and CP-IS use it to find "
                                         "the child.")
    nhs_number_not_known = BooleanField("Not known – to be obtained", widget=GovCheckboxInput())
    la_child_id = StringField("Local child ID", widget=GovTextInput(), filters=[strip],
                              description="The child's ID in the case management system (for example LCS or Mosaic).")
    legal_status = SelectField("Legal status", widget=GovSelect(), choices=[], validate_choice=False)
    placement_type = SelectField("Placement type", widget=GovSelect(), choices=[], validate_choice=False)
    placement_started_on = DateField("Date the current placement started (optional)", widget=DateInput(),
                                     format="%d %m %Y")
    responsible_la_id = SelectField("Responsible local authority", widget=GovSelect(), choices=[],
                                    validate_choice=False)
    current_placement_id = SelectField("Current placement (optional)", widget=GovSelect(), choices=[],
                                       validate_choice=False,
                                       description="Placements, children's homes, hospitals and wards from the "
                                                   "organisations register.")
    team_id = SelectField("Team", widget=GovSelect(), choices=[], validate_choice=False)
    allocated_worker_id = SelectField("Allocated social worker (optional)", widget=GovSelect(), choices=[],
                                      validate_choice=False)
    #: The version of the child's details the form was opened on (edits only).
    base_version = HiddenField()
    submit = SubmitField("Save", widget=GovSubmitInput())


class SearchForm(FlaskForm):
    query = StringField("Name, NHS number or local child ID", widget=GovTextInput(), filters=[strip],
                        description="Type the whole name, for example Jade Smith. Names are matched exactly "
                                    "(ignoring capitals and spaces), because they are stored encrypted.")
    date_of_birth = DateField("Date of birth (optional)", widget=DateInput(), format="%d %m %Y",
                              description="Add it to find a child by surname and date of birth.")
    submit = SubmitField("Search", widget=GovSubmitInput())


class BreakGlassForm(FlaskForm):
    reason = TextAreaField("Why do you need to see this record now?", widget=GovTextArea(), filters=[strip],
                           description="For example: the child has been reported missing and the duty team needs "
                                       "the photo and Philomena details. Your reason is recorded and sent to the "
                                       "child's team manager.")
    submit = SubmitField("Open the record", widget=GovSubmitInput(), render_kw={"data-module": "govuk-button"})


class VersionForm(FlaskForm):
    """A POST that acts on the version the person saw (review, remove an entry)."""

    base_version = HiddenField()
    submit = SubmitField("Confirm", widget=GovSubmitInput())
