"""Fixed forms for missing from care: reporting an episode with Part 2, later Part 2 entries, the police details,
the return, and an "away" episode becoming "missing". Dates are GOV.UK date inputs; times are typed (UK time)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import GovRadioInput, GovSelect, GovSubmitInput, GovTextArea, GovTextInput
from wtforms import DateField, RadioField, SelectField, StringField, SubmitField, TextAreaField

from transitions.web.forms import DateInput, choices, date_error, strip
from transitions.web.transitions_forms import parse_time, uk_datetime

CODE_CHOICES = [("M", "Missing: nobody knows where the child is"),
                ("A", "Away without permission: we know where the child is, but it is not where they should be")]
TIME_HINT = "UK time, for example 23:30 or 11:30pm"


def _date(label: str, hint: str = "For example, 27 3 2026") -> Any:
    return DateField(label, widget=DateInput(), format="%d %m %Y", description=hint)


def _time(label: str) -> Any:
    return StringField(label, widget=GovTextInput(), filters=[strip], description=TIME_HINT)


def _area(label: str, hint: str = "") -> Any:
    return TextAreaField(label, widget=GovTextArea(), filters=[strip], description=hint)


def _last_seen_place() -> Any:
    return _area("Where was the child last seen?",
                 "The place, and what was happening: for example, leaving the bowling alley on Mill Road with another "
                 "young person at 7pm")


def _with_whom() -> Any:
    return _area("Who were they with? (optional)", "Names, nicknames, descriptions, vehicles")


def _clothing() -> Any:
    return _area("What were they wearing?", "Colours, brands, shoes, coat, bag. Write 'not known' if nobody knows")


def _items_taken() -> Any:
    return _area("What did they take with them? (optional)",
                 "For example phone, charger, money, bank card, medicines, a change of clothes")


def _state_of_mind() -> Any:
    return _area("How did they seem? (optional)",
                 "Their mood, anything that upset them, drugs or alcohol, anything they said")


def _other() -> Any:
    return _area("Anything else the police should know (optional)")


class ReportForm(FlaskForm):  # type: ignore[misc]  # FlaskForm has no type hints
    code = RadioField("Is the child missing or away without permission?", widget=GovRadioInput(),
                      choices=choices(CODE_CHOICES), validate_choice=False)
    started_on = _date("When did the child leave or was last seen?")
    started_time = _time("Time they left or were last seen")
    police_force_id = SelectField("Police force", widget=GovSelect(), choices=[], validate_choice=False,
                                  description="The force covering where the child went missing from. Report to 101, "
                                              "or 999 if the child is in immediate danger.")
    reported_on = _date("When was it reported to the police? (optional)",
                        "Leave blank if it has not been reported yet. For example, 27 3 2026")
    reported_time = _time("Time it was reported (optional)")
    police_reference = StringField("Police reference (optional)", widget=GovTextInput(), filters=[strip],
                                   description="The incident or log number the police give")
    # Part 2 (domain.md §4.7 part2_template), in page order (WTForms orders fields as they are made)
    last_seen_place = _last_seen_place()
    with_whom = _with_whom()
    clothing = _clothing()
    items_taken = _items_taken()
    state_of_mind = _state_of_mind()
    other = _other()
    submit = SubmitField("Record the missing episode", widget=GovSubmitInput())


class Part2Form(FlaskForm):  # type: ignore[misc]
    last_seen_place = _area("Where was the child seen? (optional)",
                            "A sighting, a place a friend mentioned, a message: whatever has been learned")
    last_seen_on = _date("When was the child seen there? (optional)", "For example, 27 3 2026")
    last_seen_time = _time("Time they were seen there (optional)")
    with_whom = _with_whom()
    clothing = _area("What were they wearing? (optional)", "If more is known now about their clothes")
    items_taken = _items_taken()
    state_of_mind = _state_of_mind()
    other = _other()
    submit = SubmitField("Add to Part 2", widget=GovSubmitInput())


class PoliceForm(FlaskForm):  # type: ignore[misc]
    police_force_id = SelectField("Police force", widget=GovSelect(), choices=[], validate_choice=False)
    reported_on = _date("When was it reported to the police?", "Leave blank if it has not been reported yet. For "
                                                               "example, 27 3 2026")
    reported_time = _time("Time it was reported")
    police_reference = StringField("Police reference", widget=GovTextInput(), filters=[strip],
                                   description="The incident or log number the police give")
    submit = SubmitField("Save the police details", widget=GovSubmitInput())


class ReturnForm(FlaskForm):  # type: ignore[misc]
    ended_on = _date("When did the child come back or was found?")
    ended_time = _time("Time they came back or were found")
    where_found = _area("Where was the child found, and how did they come back?",
                        "For example: found by police at a flat on Mill Road, brought back at 2am. This goes into "
                        "the child's missing history")
    submit = SubmitField("Record the return", widget=GovSubmitInput())


class NowMissingForm(FlaskForm):  # type: ignore[misc]
    at_on = _date("Since when has nobody known where the child is?")
    at_time = _time("Time since nobody has known")
    submit = SubmitField("Record as missing", widget=GovSubmitInput())


class RevokeForm(FlaskForm):  # type: ignore[misc]
    """Stop the police's link (R18). Its field has a name of its own: the episode page holds other forms."""

    revoke_reason = TextAreaField("Why are you stopping the police's access to this pack?", widget=GovTextArea(),
                                  filters=[strip],
                                  description="For example: sent to the wrong force. The link stops working at once "
                                              "and the reason is kept on the record")


def when(form: Any, day: str, clock: str, errors: dict[str, str], *, what: str, required: bool) -> datetime | None:
    """A GOV.UK date input and a time box as one UK time. Both empty: None (an error only if required). The
    error goes on the date field (`day`), which the error summary links to."""
    date_field, time_field = form[day], form[clock]
    typed_time = (time_field.data or "").strip()
    typed_date = any(part.strip() for part in date_field.raw_data or [])
    if not typed_date and not typed_time:
        if required:
            errors[day] = f"Enter the date and time {what}"
        return None
    message = date_error(date_field, missing=f"Enter the date {what}", invalid=f"The date {what} must be a real date")
    if message:
        errors[day] = message
        return None
    at = parse_time(typed_time)
    if at is None:
        errors[clock] = "Enter the time, like 23:30 or 11:30pm" if typed_time else f"Enter the time {what}"
        return None
    return uk_datetime(date_field.data, at)
