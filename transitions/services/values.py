"""Checking and showing section values against their definitions (forms/). Pure functions: no database.

A section's content is a JSON object of field id -> value:
  text-like fields  -> str               date  -> "YYYY-MM-DD"          yesno -> "yes" | "no"
  choice            -> code              choices -> [code, ...]
  photo / document  -> {"attachment": "<uuid>", "name": "<display name>"}
  any mandatory field the definition allows -> {"not_known": true}  (a gap, never a blank)
Repeatable entries (CONTACTS) live under "entries": [{"id": "<hex>", field -> value, ...}].
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from transitions.formdefs import FieldDef, SectionDef
from transitions.services.errors import ChildInvalidError

NOT_KNOWN = {"not_known": True}
NOT_KNOWN_TEXT = "Not known – to be obtained"
ENTRIES = "entries"

_PHONE = re.compile(r"^\+?[0-9 ()\-]{6,30}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")
_POSTCODE = re.compile(r"^(GIR ?0AA|[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2})$")
_NUMBER = re.compile(r"^-?[0-9]{1,9}(\.[0-9]{1,3})?$")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def is_not_known(value: object) -> bool:
    return isinstance(value, dict) and value.get("not_known") is True


def is_empty(value: object) -> bool:
    return value is None or value == "" or value == [] or value == {}


def format_date(value: date | str | None) -> str:
    """GOV.UK style: 3 March 2026."""
    if value is None or value == "":
        return ""
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def normalise_phone(value: str) -> str:
    return " ".join(value.split())


def normalise_postcode(value: str) -> str:
    compact = "".join(value.split()).upper()
    return f"{compact[:-3]} {compact[-3:]}" if len(compact) > 3 else compact


@dataclass(frozen=True)
class FieldInput:
    """What a form gave for one field: text, a list of codes, a date or nothing, plus the 'not known' box.

    ``upload`` is an already-checked attachment reference ({"attachment", "name"}) when a file was chosen
    now or earlier in this edit; ``None`` keeps what the previous version held.
    """

    value: str | list[str] | date | None = None
    not_known: bool = False
    date_invalid: bool = False
    upload: dict[str, str] | None = None


def check_field(f: FieldDef, given: FieldInput, previous: object = None, today: date | None = None
                ) -> tuple[object, str | None]:
    """The value to store for one field and the error text (None when valid)."""
    if f.is_upload:
        if given.upload is None and given.not_known and f.not_known and f.mandatory:
            return dict(NOT_KNOWN), None  # a file chosen now wins over the box, as typed text does
        value: object = given.upload or (previous if isinstance(previous, dict) and "attachment" in previous
                                         else None)
        if value is None and f.mandatory:
            return None, f.error("required")
        return value, None
    raw = given.value
    if given.date_invalid:
        return None, f.error("invalid")
    if isinstance(raw, str):
        raw = raw.replace("\x00", "").strip()
        if f.type != "textarea":
            raw = " ".join(raw.split())
    if is_empty(raw):
        if f.mandatory and given.not_known and f.not_known:
            return dict(NOT_KNOWN), None
        if f.mandatory:
            return None, f.error("required")
        return None, None
    if f.type == "date":
        if not isinstance(raw, date):
            return None, f.error("invalid")
        if f.past and today is not None and raw > today:
            return None, f.error("future")
        return raw.isoformat(), None
    if f.type == "choices":
        codes = [raw] if isinstance(raw, str) else list(raw) if isinstance(raw, list) else []
        allowed = f.codes.codes if f.codes else frozenset()
        if any(code not in allowed for code in codes):
            return None, f.error("choice")
        return [code for code, _ in (f.codes.options if f.codes else ()) if code in codes], None
    if not isinstance(raw, str):
        return None, f.error("invalid")
    if f.type == "choice":
        if f.codes is None or raw not in f.codes.codes:
            return None, f.error("choice")
        return raw, None
    if f.type == "yesno":
        if raw not in ("yes", "no"):
            return None, f.error("choice")
        return raw, None
    if f.max_length is not None and len(raw) > f.max_length:
        return None, f.error("too_long")
    if f.type == "phone":
        digits = sum(ch.isdigit() for ch in raw)
        if not _PHONE.match(raw) or not 6 <= digits <= 15:
            return None, f.error("invalid")
        return normalise_phone(raw), None
    if f.type == "email":
        if not valid_email(raw):
            return None, f.error("invalid")
        return raw, None
    if f.type == "postcode":
        code = normalise_postcode(raw)
        if not _POSTCODE.match(code):
            return None, f.error("invalid")
        return code, None
    if f.type == "number":
        if not _NUMBER.match(raw.replace(",", "")):
            return None, f.error("invalid")
        return raw.replace(",", ""), None
    return raw, None


def check_fields(fields: Sequence[FieldDef], given: Mapping[str, FieldInput], previous: Mapping[str, Any],
                 today: date | None = None) -> tuple[dict[str, object], dict[str, str]]:
    content: dict[str, object] = {}
    errors: dict[str, str] = {}
    for f in fields:
        value, error = check_field(f, given.get(f.id, FieldInput()), previous.get(f.id), today)
        if error:
            errors[f.id] = error
        elif value is not None:
            content[f.id] = value
    for f in fields:
        if f.id not in errors and condition_met(f, content) and is_empty(content.get(f.id)):
            errors[f.id] = f.error("required")
    return content, errors


def condition_met(f: FieldDef, content: Mapping[str, Any]) -> bool:
    """True when a conditional field's rule says it is needed, given the other answers."""
    if f.required_if is None:
        return False
    other, values = f.required_if
    answer = content.get(other)
    answers = answer if isinstance(answer, list) else [answer]
    return any(isinstance(a, str) and a in values for a in answers)


def display(f: FieldDef, value: object) -> str:
    """A value as a person reads it (codes as labels, dates in words, gaps named as gaps)."""
    if is_not_known(value):
        return NOT_KNOWN_TEXT
    if is_empty(value):
        return ""
    if f.type == "date" and isinstance(value, str):
        return format_date(value)
    if f.type == "yesno":
        return "Yes" if value == "yes" else "No"
    if f.type == "choice" and isinstance(value, str) and f.codes:
        return f.codes.label(value)
    if f.type == "choices" and isinstance(value, list) and f.codes:
        return ", ".join(f.codes.label(str(code)) for code in value)
    if f.is_upload and isinstance(value, dict):
        return str(value.get("name", "Uploaded file"))
    return str(value)


def gaps(section: SectionDef, content: Mapping[str, Any]) -> list[str]:
    """Labels of mandatory fields recorded as not known or missing: shown as gaps on the child's page."""
    def needed(f: FieldDef, answers: Mapping[str, Any]) -> bool:
        return (f.mandatory or condition_met(f, answers)) and (is_not_known(answers.get(f.id))
                                                                or is_empty(answers.get(f.id)))

    labels = [f.label for f in section.fields if needed(f, content)]
    if section.entry:
        for entry in content.get(ENTRIES, []) or []:
            title = str(entry.get(section.entry.title_field) or section.entry.name)
            labels += [f"{f.label} ({title})" for f in section.entry.fields if needed(f, entry)]
    return labels


@dataclass(frozen=True)
class Change:
    label: str
    before: str
    after: str


def differences(section: SectionDef, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """What changed between two versions, field by field and entry by entry."""
    changes = [Change(f.label, display(f, old.get(f.id)), display(f, new.get(f.id)))
               for f in section.fields if display(f, old.get(f.id)) != display(f, new.get(f.id))]
    if section.entry:
        entry_def = section.entry
        old_entries = {str(e.get("id")): e for e in old.get(ENTRIES, []) or []}
        new_entries = {str(e.get("id")): e for e in new.get(ENTRIES, []) or []}
        for entry_id in list(old_entries) + [k for k in new_entries if k not in old_entries]:
            before, after = old_entries.get(entry_id, {}), new_entries.get(entry_id, {})
            title = str((after or before).get(entry_def.title_field) or entry_def.name)
            if not before:
                changes.append(Change(f"{entry_def.name.capitalize()} added: {title}", "", title))
            elif not after:
                changes.append(Change(f"{entry_def.name.capitalize()} removed: {title}", title, ""))
            for f in entry_def.fields if before and after else ():
                b, a = display(f, before.get(f.id)), display(f, after.get(f.id))
                if a != b:
                    changes.append(Change(f"{f.label} ({title})", b, a))
    return changes


def changed_field_ids(section: SectionDef, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    ids = [f.id for f in section.fields if old.get(f.id) != new.get(f.id)]
    if section.entry and old.get(ENTRIES) != new.get(ENTRIES):
        ids.append(ENTRIES)
    return ids


def valid_nhs_number(value: str) -> bool:
    """Ten digits whose modulus-11 check digit is right (NHS Data Dictionary)."""
    digits = "".join(value.split())
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * (10 - i) for i, d in enumerate(digits[:9]))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def format_nhs_number(value: str) -> str:
    digits = "".join(value.split())
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}" if len(digits) == 10 else value


def valid_phone_or_empty(value: str) -> bool:
    raw = value.strip()
    if not raw:
        return True
    digits = sum(ch.isdigit() for ch in raw)
    return bool(_PHONE.match(raw)) and 6 <= digits <= 15


def typed_reason(text: str, *, asking: str, max_length: int = 1000) -> str:
    """A reason a person must type (break-glass, an override, a removal): whitespace collapsed, at least 10
    characters so "ok" or "x" cannot pass as a recorded decision. `asking` completes "Enter …"."""
    reason = " ".join(text.split())
    if len(reason) < 10:
        raise ChildInvalidError({"reason": f"Enter {asking} (at least 10 characters)"})
    if len(reason) > max_length:
        raise ChildInvalidError({"reason": f"Reason must be {max_length} characters or fewer"})
    return reason


def valid_email(value: str) -> bool:
    return bool(_EMAIL.match(value))
