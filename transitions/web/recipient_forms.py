"""Forms for recipients (no account): the one-time code, confirmation of receipt, asking for missing information."""

from __future__ import annotations

from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import (
    GovCheckboxesInput,
    GovCheckboxInput,
    GovSubmitInput,
    GovTextArea,
    GovTextInput,
)
from wtforms import BooleanField, SelectMultipleField, StringField, SubmitField, TextAreaField

from transitions.web.forms import strip


class _NoTokenMeta:
    """Forms a link's visitor sees before any session exists: checked by Origin instead (see web.recipient)."""

    csrf = False


class SendCodeForm(FlaskForm):
    Meta = _NoTokenMeta
    submit = SubmitField("Send me a code", widget=GovSubmitInput())


class RecipientCodeForm(FlaskForm):
    Meta = _NoTokenMeta
    code = StringField("Code", widget=GovTextInput(), filters=[strip],
                       description="The 6-digit code in the email we have just sent. It works for 10 minutes.")
    submit = SubmitField("Continue", widget=GovSubmitInput())


class CloseForm(FlaskForm):
    """Only the form token: closing the verified session."""


class ReceiptForm(FlaskForm):
    name = StringField("Your full name", widget=GovTextInput(), filters=[strip])
    role = StringField("Your role", widget=GovTextInput(), filters=[strip],
                       description="For example, nurse in charge, registered manager or duty sergeant")
    attested = BooleanField("I have read this pack and it is available to the staff caring for the child",
                            widget=GovCheckboxInput())
    submit = SubmitField("Confirm receipt", widget=GovSubmitInput())


class InformationRequestForm(FlaskForm):
    sections = SelectMultipleField("What information is missing or out of date?", widget=GovCheckboxesInput(),
                                   description="Select all that apply.", validate_choice=False)
    reason = TextAreaField("What do you need, and why?", widget=GovTextArea(), filters=[strip],
                           description="For example, the health plan is from before the admission and does not "
                                       "list the new medication.")
    requested_by = StringField("Your name and role", widget=GovTextInput(), filters=[strip])
    submit = SubmitField("Send the request", widget=GovSubmitInput())
