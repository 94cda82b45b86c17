"""Staff forms generated from the section definitions in forms/ (one definition: page, PDF, tracking).

The generated form parses and re-displays what was typed; the rules (mandatory, formats, code lists) are
checked by the service against the same definition, and its errors are put back on these fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from govuk_frontend_wtf.wtforms_widgets import (
    GovCheckboxesInput,
    GovCheckboxInput,
    GovFileInput,
    GovRadioInput,
    GovSubmitInput,
    GovTextArea,
    GovTextInput,
)
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    RadioField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.core import Field

from transitions.formdefs import FieldDef
from transitions.services.values import NOT_KNOWN_TEXT, FieldInput, is_not_known
from transitions.web.forms import DateInput, choices

NOT_KNOWN_SUFFIX = "__not_known"
KEPT_SUFFIX = "__kept"
YES_NO = [("yes", "Yes"), ("no", "No")]


def _description(f: FieldDef) -> str:
    parts = [f.hint] if f.hint else []
    if f.requirement == "conditional" and f.when:
        parts.append(f"Needed: {f.when[0].lower() + f.when[1:]}")
    if f.sensitivity == "identity_protected":
        parts.append("Identity-protected: never shared with parents or associates")
    elif f.sensitivity == "high":
        parts.append("Sensitive: shared only with those who need it")
    return " ".join(p.rstrip(".") + "." if not p.endswith((".", "?", ")")) else p for p in parts)


def _label(f: FieldDef) -> str:
    return f.label if f.requirement != "optional" else f"{f.label} (optional)"


def _field(f: FieldDef) -> Field:
    label, description = _label(f), _description(f)
    common: dict[str, Any] = {"label": label, "description": description}
    if f.type == "textarea":
        return TextAreaField(widget=GovTextArea(), **common)
    if f.type == "date":
        return DateField(widget=DateInput(), format="%d %m %Y", **common)
    if f.type == "choice":
        assert f.codes is not None
        return RadioField(widget=GovRadioInput(), choices=choices(f.codes.options),
                          validate_choice=False, **common)
    if f.type == "choices":
        assert f.codes is not None
        return SelectMultipleField(widget=GovCheckboxesInput(),
                                   choices=choices(f.codes.options), validate_choice=False, **common)
    if f.type == "yesno":
        return RadioField(widget=GovRadioInput(), choices=choices(YES_NO), validate_choice=False,
                          **common)
    if f.is_upload:
        return FileField(widget=GovFileInput(), **common)
    return StringField(widget=GovTextInput(), **common)


def form_class(fields: Sequence[FieldDef], submit_label: str = "Save") -> type[FlaskForm]:
    """A FlaskForm class with one field per definition (plus 'not known' boxes and kept-upload references)."""
    attrs: dict[str, Any] = {"base_version": HiddenField()}
    for f in fields:
        attrs[f.id] = _field(f)
        if f.not_known:
            attrs[f.id + NOT_KNOWN_SUFFIX] = BooleanField(NOT_KNOWN_TEXT, widget=GovCheckboxInput())
        if f.is_upload:
            attrs[f.id + KEPT_SUFFIX] = HiddenField()
    attrs["submit"] = SubmitField(submit_label, widget=GovSubmitInput())
    return type("SectionForm", (FlaskForm,), attrs)


def initial_data(fields: Sequence[FieldDef], content: Mapping[str, Any]) -> dict[str, Any]:
    """Stored content as form data, for the edit page."""
    data: dict[str, Any] = {}
    for f in fields:
        value = content.get(f.id)
        if is_not_known(value):
            data[f.id + NOT_KNOWN_SUFFIX] = True
            continue
        if value is None or f.is_upload:
            continue
        data[f.id] = date.fromisoformat(value) if f.type == "date" and isinstance(value, str) else value
    return data


def _date_input(field: Field) -> FieldInput:
    raw = [part.strip() for part in (field.raw_data or [])]
    if not any(raw):
        return FieldInput()
    if field.data is None:
        return FieldInput(date_invalid=True)
    return FieldInput(value=field.data)


def read_inputs(form: FlaskForm, fields: Iterable[FieldDef]) -> dict[str, FieldInput]:
    """What was typed, field by field, for the service to check."""
    given: dict[str, FieldInput] = {}
    for f in fields:
        not_known = bool(form[f.id + NOT_KNOWN_SUFFIX].data) if f.not_known else False
        if f.is_upload:  # the file itself comes from request.files; only its "not known" box is read here
            if not_known:
                given[f.id] = FieldInput(not_known=True)
            continue
        field = form[f.id]
        if f.type == "date":
            parsed = _date_input(field)
            given[f.id] = FieldInput(parsed.value, not_known, parsed.date_invalid)
        elif f.type == "choices":
            given[f.id] = FieldInput(list(field.data or []), not_known)
        else:
            given[f.id] = FieldInput(field.data if isinstance(field.data, str) else None, not_known)
    return given


def kept_uploads(form: FlaskForm, fields: Iterable[FieldDef]) -> dict[str, str]:
    return {f.id: str(form[f.id + KEPT_SUFFIX].data) for f in fields
            if f.is_upload and form[f.id + KEPT_SUFFIX].data}


def show_errors(form: FlaskForm, errors: Mapping[str, str]) -> None:
    """Put the service's messages on the fields (and nowhere else), in page order for the error summary."""
    for field in form:
        field.errors = [errors[field.name]] if field.name in errors else []


def keep_uploads(form: FlaskForm, kept: Mapping[str, Mapping[str, str]]) -> None:
    for field_id, ref in kept.items():
        form[field_id + KEPT_SUFFIX].data = ref["attachment"]
