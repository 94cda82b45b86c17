"""Fixed forms for transitions: starting one, reasons, recipients, approvals and lifecycle steps."""

from __future__ import annotations

import re
from datetime import date, datetime, time

from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import GovRadioInput, GovSelect, GovSubmitInput, GovTextArea, GovTextInput
from wtforms import DateField, HiddenField, RadioField, SelectField, StringField, SubmitField, TextAreaField

from transitions.clock import UK
from transitions.web.forms import DateInput, choices, strip

_TIME = re.compile(r"^(\d{1,2})(?:[:.](\d{2}))?\s*(am|pm)?$", re.IGNORECASE)


def parse_time(text: str) -> time | None:
    """14:30, 2:30pm, 2pm, 9.15am, midday, midnight; None if it is not a time."""
    value = text.strip().lower()
    if value in ("midday", "noon"):
        return time(12, 0)
    if value == "midnight":
        return time(0, 0)
    match = _TIME.match(value)
    if not match:
        return None
    hour, minute, suffix = int(match.group(1)), int(match.group(2) or 0), match.group(3)
    if suffix:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if suffix == "pm" else 0)
    if hour > 23 or minute > 59 or (match.group(2) is None and not suffix):
        return None
    return time(hour, minute)


def uk_datetime(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=UK)


class TransitionForm(FlaskForm):
    kind = RadioField("What is happening?", widget=GovRadioInput(), choices=[], validate_choice=False)
    destination_id = SelectField("Where is the child going?", widget=GovSelect(), choices=[], validate_choice=False,
                                 description="A placement, children's home, hospital or ward from the organisations "
                                             "register. Its area decides the host local authority and police force.")
    origin_id = SelectField("Where is the child coming from? (optional)", widget=GovSelect(), choices=[],
                            validate_choice=False)
    starts_on = DateField("Date of the move or admission", widget=DateInput(), format="%d %m %Y",
                          description="For example, 27 3 2026")
    starts_at_time = StringField("Time", widget=GovTextInput(), filters=[strip],
                                 description="UK time, for example 14:30 or 2:30pm")
    urgency = RadioField("Is it planned or an emergency?", widget=GovRadioInput(),
                         choices=choices([("planned", "Planned"), ("emergency", "Emergency or unplanned")]),
                         validate_choice=False)
    emergency_reason = TextAreaField("Why can it not wait? (emergencies only)", widget=GovTextArea(),
                                     filters=[strip],
                                     description="For example: placement ended tonight after an allegation. "
                                                 "Approvals and notices are then due after the move.")
    at_a_distance = RadioField("If the child is moving out of area: is the new area next to the child's own "
                               "local authority?", widget=GovRadioInput(),
                               choices=choices([("no", "Yes, it is next to it (adjoining)"),
                                                ("yes", "No, it is further away (at a distance)")]),
                               validate_choice=False,
                               description="A placement at a distance needs the Director's approval and the host "
                                           "area consulted first (reg 11).")
    reason_code = SelectField("Reason for the placement change (optional)", widget=GovSelect(), choices=[],
                              validate_choice=False)
    distance_miles = StringField("Tier 4: miles from the unit to the placement (optional)", widget=GovTextInput(),
                                 filters=[strip], description="Lesson CH3.3: inpatient care should be as close to "
                                                              "the placement as possible.")
    submit = SubmitField("Start the transition", widget=GovSubmitInput())


class ReasonForm(FlaskForm):
    reason = TextAreaField("Reason", widget=GovTextArea(), filters=[strip])
    section = HiddenField()
    submit = SubmitField("Save", widget=GovSubmitInput())


class RecipientForm(FlaskForm):
    recipient_type = SelectField("Type of recipient", widget=GovSelect(), choices=[], validate_choice=False)
    organisation_id = SelectField("Organisation (optional)", widget=GovSelect(), choices=[], validate_choice=False)
    reason = TextAreaField("Why are you adding them?", widget=GovTextArea(), filters=[strip])
    submit = SubmitField("Add recipient", widget=GovSubmitInput())


class ApprovalForm(FlaskForm):
    outcome = RadioField("Outcome", widget=GovRadioInput(), choices=[], validate_choice=False)
    person = StringField("Who in the host local authority?", widget=GovTextInput(), filters=[strip])
    answer = TextAreaField("What did they say?", widget=GovTextArea(), filters=[strip])
    submit = SubmitField("Record", widget=GovSubmitInput())


class StepForm(FlaskForm):
    base_version = HiddenField()
    reason = TextAreaField("Why is it being cancelled?", widget=GovTextArea(), filters=[strip])
    submit = SubmitField("Confirm", widget=GovSubmitInput())
