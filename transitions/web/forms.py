"""Fixed forms (sign-in, set-up, administration) with GOV.UK widgets and GOV.UK error texts."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from flask import abort, request
from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import (
    GovDateInput,
    GovPasswordInput,
    GovRadioInput,
    GovSelect,
    GovSubmitInput,
    GovTextInput,
)
from wtforms import PasswordField, RadioField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Regexp, ValidationError

from transitions.services.accounts import MAX_EMAIL_LENGTH
from transitions.services.roles import ROLE_CHOICES

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email_format(form: Any, field: Any) -> None:
    if field.data and not EMAIL_PATTERN.match(field.data.strip()):
        raise ValidationError("Enter an email address in the correct format, like name@example.gov.uk")


def strip(value: str | None) -> str | None:
    """Trim, and drop NUL characters (no browser sends them; they would break blind indexes and PostgreSQL)."""
    return value.replace("\x00", "").strip() if isinstance(value, str) else value


class SignInForm(FlaskForm):
    email = StringField(
        "Email address", widget=GovTextInput(), filters=[strip],
        validators=[DataRequired(message="Enter your email address"),
                    Length(max=MAX_EMAIL_LENGTH, message="Email address must be 254 characters or fewer"),
                    _email_format],
    )
    password = PasswordField(
        "Password", widget=GovPasswordInput(),
        validators=[DataRequired(message="Enter your password"),
                    Length(max=256, message="Password must be 256 characters or fewer")],
    )
    submit = SubmitField("Continue", widget=GovSubmitInput())


CODE_VALIDATORS = [
    DataRequired(message="Enter the 6-digit code from your authenticator app"),
    Length(max=20, message="The code must be 6 digits"),
    Regexp(r"^[\d\s-]*$", message="The code must only include numbers 0 to 9"),
]


class CodeForm(FlaskForm):
    code = StringField("Code from your authenticator app", widget=GovTextInput(), filters=[strip],
                       description="The 6-digit code changes every 30 seconds.",
                       validators=CODE_VALIDATORS)
    submit = SubmitField("Sign in", widget=GovSubmitInput())


class NewPasswordForm(FlaskForm):
    password = PasswordField(
        "Create a password", widget=GovPasswordInput(),
        description="Use 15 characters or more. A few unrelated words are easy to remember and hard to guess.",
        validators=[DataRequired(message="Enter a password"),
                    Length(min=15, message="Password must be 15 characters or more"),
                    Length(max=256, message="Password must be 256 characters or fewer")],
    )
    confirm = PasswordField(
        "Confirm password", widget=GovPasswordInput(),
        validators=[DataRequired(message="Enter the password again")],
    )
    submit = SubmitField("Continue", widget=GovSubmitInput())

    def validate_confirm(self, field: Any) -> None:
        if self.password.data and field.data != self.password.data:
            raise ValidationError("The passwords do not match")


class EnrolCodeForm(FlaskForm):
    code = StringField("Enter the 6-digit code your app shows", widget=GovTextInput(), filters=[strip],
                       validators=CODE_VALIDATORS)
    submit = SubmitField("Finish setting up", widget=GovSubmitInput())


class ChangePasswordForm(NewPasswordForm):
    current = PasswordField("Current password", widget=GovPasswordInput(),
                            validators=[DataRequired(message="Enter your current password")])
    submit = SubmitField("Change password", widget=GovSubmitInput())


class InviteForm(FlaskForm):
    name = StringField("Full name", widget=GovTextInput(), filters=[strip],
                       validators=[DataRequired(message="Enter the person's full name"),
                                   Length(max=120, message="Full name must be 120 characters or fewer")])
    email = StringField("Work email address", widget=GovTextInput(), filters=[strip],
                        validators=[DataRequired(message="Enter the person's work email address"),
                                    Length(max=MAX_EMAIL_LENGTH,
                                           message="Email address must be 254 characters or fewer"),
                                    _email_format])
    role = RadioField("Role", widget=GovRadioInput(), choices=[SelectChoice(v, t) for v, t in ROLE_CHOICES],
                      validators=[InputRequired(message="Select the person's role")])
    team = SelectField("Team", widget=GovSelect(), validators=[InputRequired(message="Select a team")])
    submit = SubmitField("Send invitation", widget=GovSubmitInput())


class EditUserForm(FlaskForm):
    role = RadioField("Role", widget=GovRadioInput(), choices=[SelectChoice(v, t) for v, t in ROLE_CHOICES],
                      validators=[InputRequired(message="Select the person's role")])
    team = SelectField("Team", widget=GovSelect(), validators=[InputRequired(message="Select a team")])
    submit = SubmitField("Save changes", widget=GovSubmitInput())


class TeamForm(FlaskForm):
    name = StringField("Team name", widget=GovTextInput(), filters=[strip],
                       validators=[DataRequired(message="Enter a team name"),
                                   Length(max=120, message="Team name must be 120 characters or fewer")])
    submit = SubmitField("Add team", widget=GovSubmitInput())


class ConfirmForm(FlaskForm):
    """A form with only the CSRF token: for POST-only buttons such as sign out or disable."""




def choices(pairs: Any) -> list[SelectChoice]:
    """WTForms choices from (value, label) pairs (plain tuples are deprecated in WTForms 3.3)."""
    return [SelectChoice(value, label) for value, label in pairs]


class DateInput(GovDateInput):
    """GOV.UK date input that copes with a form posted without the date at all (WTForms gives raw_data [])."""

    def map_gov_params(self, field: Any, **kwargs: Any) -> Any:
        if field.raw_data is not None and len(field.raw_data) != 3:
            field.raw_data = None
        return super().map_gov_params(field, **kwargs)


def uuid_or_none(value: str | None) -> UUID | None:
    """An id chosen in a select; anything that is not a UUID counts as no choice (the service then says so)."""
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


def posted(form: Any) -> bool:
    """True for a POST with a valid form token (400 otherwise). Field rules are the services'; this only parses."""
    if request.method != "POST":
        return False
    form.validate()
    if form.csrf_token.errors:
        abort(400)
    return True


def base_version(form: Any) -> int | None:
    """The version of a record the form was opened on (a hidden field), or None for a new record."""
    value = str(form.base_version.data or "")
    return int(value) if value.isdigit() else None


def date_error(field: Any, *, invalid: str, missing: str | None = None) -> str | None:
    """The GOV.UK message for a date input: `missing` when nothing was typed (if it is required), `invalid` when
    the three boxes do not make a real date."""
    typed = any(part.strip() for part in field.raw_data or [])
    if not typed:
        return missing
    return invalid if field.data is None else None
