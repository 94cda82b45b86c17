"""Section definitions and code lists from ``forms/sections`` and ``forms/codes`` (TOML), validated.

The checklist is policy that a safeguarding partnership changes without a release, so it is data. One
definition drives the staff form, the child's page, the history, and later the pack PDF and the tracking.
Anything wrong in it (an unknown field type, a duplicate id, a mandatory field without its error text)
stops start-up with a message naming the file and the field: a half-valid checklist is worse than none.

No Flask, no SQLAlchemy: the web layer turns these into WTForms, services validate stored content with them.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "FIELD_TYPES",
    "ROLES_THAT_EDIT",
    "CodeList",
    "EntryDef",
    "FieldDef",
    "FormDefinitionError",
    "SectionDef",
    "load_sections",
]

#: Every field type a definition may use, and what the staff form shows for it.
FIELD_TYPES = frozenset({
    "text", "textarea", "date", "choice", "choices", "yesno", "phone", "email", "postcode", "number",
    "photo", "document",
})
UPLOAD_TYPES = frozenset({"photo", "document"})
_NEEDS_INVALID_TEXT = frozenset({"date", "phone", "email", "postcode", "number", "photo", "document"})
_CHOICE_TYPES = frozenset({"choice", "choices"})
REQUIREMENTS = ("mandatory", "conditional", "optional")
SENSITIVITIES = ("standard", "high", "identity_protected")
#: Roles that may be named in ``edited_by``; administrators and auditors never edit a child's record.
ROLES_THAT_EDIT = frozenset({"social_worker", "cla_nurse", "team_manager", "senior_manager"})
_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,19}$")
_DEFAULT_MAX = {"text": 200, "textarea": 5000, "phone": 40, "email": 254, "postcode": 10, "number": 20}

_SECTION_KEYS = {"code", "title", "summary", "order", "review_interval_days", "edited_by", "core", "why",
                 "why_source", "fields", "entry"}
_FIELD_KEYS = {"id", "label", "hint", "type", "codes", "requirement", "when", "not_known", "sensitivity",
               "max_length", "errors", "past", "required_if", "in_summary"}
_ENTRY_KEYS = {"name", "plural", "title_field", "fields"}
_CODELIST_KEYS = {"title", "source", "codes"}


class FormDefinitionError(ValueError):
    """A file under forms/ is not a valid definition; the message names the file and the field."""


@dataclass(frozen=True)
class CodeList:
    name: str
    title: str
    source: str
    options: tuple[tuple[str, str], ...]

    def label(self, code: str) -> str:
        return dict(self.options).get(code, code)

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(code for code, _ in self.options)


@dataclass(frozen=True)
class FieldDef:
    id: str
    label: str
    type: str
    requirement: str
    hint: str = ""
    codes: CodeList | None = None
    when: str = ""
    not_known: bool = False
    sensitivity: str = "standard"
    max_length: int | None = None
    #: Dates only: the date cannot be after today (a photo's date, a plan's date).
    past: bool = False
    #: A conditional field's machine-readable condition: it is required when the named field (in the same
    #: section or entry) has one of these values. Without one, "when" is guidance only.
    required_if: tuple[str, frozenset[str]] | None = None
    #: Part of the section's summary: what a recipient entitled to "summary" of this section receives.
    in_summary: bool = False
    errors: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def mandatory(self) -> bool:
        return self.requirement == "mandatory"

    @property
    def is_upload(self) -> bool:
        return self.type in UPLOAD_TYPES

    def error(self, kind: str) -> str:
        """The definition's GOV.UK error text, with a generic fallback built from the label."""
        if kind in self.errors:
            return self.errors[kind]
        if kind == "too_long":
            return f"{self.label} must be {self.max_length} characters or fewer"
        if kind == "future":
            return f"{self.label} must be today or in the past"
        if kind == "choice":
            return "Select " + self.label.lower() + " from the list"  # noqa: S608 - a message, not SQL
        return self.errors.get("invalid", f"Enter {self.label.lower()}")


@dataclass(frozen=True)
class EntryDef:
    """A repeatable entry within a section (a contact in CONTACTS)."""

    name: str
    plural: str
    title_field: str
    fields: tuple[FieldDef, ...]

    def field(self, field_id: str) -> FieldDef:
        return next(f for f in self.fields if f.id == field_id)


@dataclass(frozen=True)
class SectionDef:
    code: str
    title: str
    summary: str
    order: int
    review_interval_days: int
    edited_by: frozenset[str]
    core: bool
    why: str
    why_source: str
    fields: tuple[FieldDef, ...]
    entry: EntryDef | None
    source_file: str

    def field(self, field_id: str) -> FieldDef:
        return next(f for f in self.fields if f.id == field_id)

    @property
    def all_fields(self) -> tuple[FieldDef, ...]:
        return self.fields + (self.entry.fields if self.entry else ())


def _fail(where: str, message: str) -> FormDefinitionError:
    return FormDefinitionError(f"{where}: {message}")


def _text(raw: dict[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str):
        raise _fail(where, f"'{key}' must be text")
    value = value.strip()
    if required and not value:
        raise _fail(where, f"'{key}' is missing")
    return value


def _unknown_keys(raw: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise _fail(where, f"unknown key(s) {', '.join(unknown)}")


def _load_code_lists(folder: Path, hasher: Any) -> dict[str, CodeList]:
    lists: dict[str, CodeList] = {}
    for path in sorted(folder.glob("*.toml")):
        raw = _read(path, hasher)
        for name, body in raw.items():
            where = f"{path.name} [{name}]"
            if not _CODE.match(name):
                raise _fail(where, "a code list name is upper case letters, digits and underscores")
            if name in lists:
                raise _fail(where, "this code list is defined twice")
            if not isinstance(body, dict):
                raise _fail(where, "must be a table")
            _unknown_keys(body, _CODELIST_KEYS, where)
            options: list[tuple[str, str]] = []
            for item in body.get("codes", []):
                if not isinstance(item, dict) or set(item) != {"code", "label"}:
                    raise _fail(where, "each code is { code = \"…\", label = \"…\" }")
                code, label = str(item["code"]).strip(), str(item["label"]).strip()
                if not code or not label:
                    raise _fail(where, "a code or label is empty")
                if code in dict(options):
                    raise _fail(where, f"code {code} appears twice")
                options.append((code, label))
            if not options:
                raise _fail(where, "has no codes")
            lists[name] = CodeList(name=name, title=_text(body, "title", where),
                                   source=_text(body, "source", where, required=False), options=tuple(options))
    return lists


def _field(raw: Any, where: str, code_lists: dict[str, CodeList]) -> FieldDef:
    if not isinstance(raw, dict):
        raise _fail(where, "a field must be a table")
    field_id = _text(raw, "id", where)
    where = f"{where} field '{field_id}'"
    _unknown_keys(raw, _FIELD_KEYS, where)
    if not _ID.match(field_id):
        raise _fail(where, "an id is lower case letters, digits and underscores")
    kind = _text(raw, "type", where)
    if kind not in FIELD_TYPES:
        raise _fail(where, f"unknown field type '{kind}' (known: {', '.join(sorted(FIELD_TYPES))})")
    requirement = _text(raw, "requirement", where)
    if requirement not in REQUIREMENTS:
        raise _fail(where, f"requirement must be one of {', '.join(REQUIREMENTS)}")
    sensitivity = _text(raw, "sensitivity", where, required=False) or "standard"
    if sensitivity not in SENSITIVITIES:
        raise _fail(where, f"sensitivity must be one of {', '.join(SENSITIVITIES)}")
    errors = raw.get("errors", {})
    if not isinstance(errors, dict) or not all(isinstance(v, str) and v.strip() for v in errors.values()):
        raise _fail(where, "errors must be a table of non-empty texts")
    unknown_errors = set(errors) - {"required", "invalid", "too_long", "choice", "future"}
    if unknown_errors:
        raise _fail(where, f"unknown error kind(s) {', '.join(sorted(unknown_errors))}")
    if requirement == "mandatory" and "required" not in errors:
        raise _fail(where, "a mandatory field needs errors.required (the GOV.UK error text)")
    if kind in _NEEDS_INVALID_TEXT and "invalid" not in errors:
        raise _fail(where, f"a {kind} field needs errors.invalid (the GOV.UK error text)")
    when = _text(raw, "when", where, required=requirement == "conditional")
    codes: CodeList | None = None
    if kind in _CHOICE_TYPES:
        list_name = _text(raw, "codes", where)
        if list_name not in code_lists:
            raise _fail(where, f"unknown code list '{list_name}'")
        codes = code_lists[list_name]
    elif "codes" in raw:
        raise _fail(where, f"a {kind} field takes no code list")
    not_known = raw.get("not_known", False)
    if not isinstance(not_known, bool):
        raise _fail(where, "not_known is true or false")
    if not_known and requirement != "mandatory":
        raise _fail(where, "only a mandatory field may be recorded as not known")
    required_if: tuple[str, frozenset[str]] | None = None
    if "required_if" in raw:
        rule = raw["required_if"]
        if requirement != "conditional":
            raise _fail(where, "only a conditional field takes required_if")
        if (not isinstance(rule, dict) or set(rule) != {"field", "in"} or not isinstance(rule["field"], str)
                or not isinstance(rule["in"], list) or not rule["in"]
                or not all(isinstance(v, str) for v in rule["in"])):
            raise _fail(where, 'required_if is { field = "other_field", in = ["value", …] }')
        if "required" not in errors:
            raise _fail(where, "a field with required_if needs errors.required (the GOV.UK error text)")
        required_if = (rule["field"], frozenset(rule["in"]))
    in_summary = raw.get("in_summary", False)
    if not isinstance(in_summary, bool):
        raise _fail(where, "in_summary is true or false")
    past = raw.get("past", False)
    if not isinstance(past, bool) or (past and kind != "date"):
        raise _fail(where, "past is true or false, and only for date fields")
    max_length = raw.get("max_length", _DEFAULT_MAX.get(kind))
    if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
        raise _fail(where, "max_length must be a positive whole number")
    return FieldDef(id=field_id, label=_text(raw, "label", where), type=kind, requirement=requirement,
                    hint=_text(raw, "hint", where, required=False), codes=codes, when=when,
                    not_known=not_known, sensitivity=sensitivity, max_length=max_length, past=past,
                    required_if=required_if, in_summary=in_summary,
                    errors={k: v.strip() for k, v in errors.items()})


def _fields(raw: Any, where: str, code_lists: dict[str, CodeList]) -> tuple[FieldDef, ...]:
    if not isinstance(raw, list):
        raise _fail(where, "fields must be an array of tables ([[fields]])")
    fields = tuple(_field(item, where, code_lists) for item in raw)
    seen: set[str] = set()
    for f in fields:
        if f.id in seen:
            raise _fail(where, f"field id '{f.id}' is used twice")
        seen.add(f.id)
    by_id = {f.id: f for f in fields}
    for f in fields:
        if f.required_if is None:
            continue
        target = by_id.get(f.required_if[0])
        if target is None or target is f:
            raise _fail(where, f"field '{f.id}': required_if names '{f.required_if[0]}', not another field here")
        allowed = {"yes", "no"} if target.type == "yesno" else target.codes.codes if target.codes else None
        if allowed is None or not f.required_if[1] <= allowed:
            raise _fail(where, f"field '{f.id}': required_if values must be codes of '{target.id}'")
    return fields


def _section(path: Path, raw: dict[str, Any], code_lists: dict[str, CodeList]) -> SectionDef:
    where = path.name
    _unknown_keys(raw, _SECTION_KEYS, where)
    code = _text(raw, "code", where)
    if not _CODE.match(code):
        raise _fail(where, "code is upper case letters, digits and underscores")
    where = f"{path.name} ({code})"
    fields = _fields(raw.get("fields", []), where, code_lists)
    entry: EntryDef | None = None
    if "entry" in raw:
        entry_raw = raw["entry"]
        if not isinstance(entry_raw, dict):
            raise _fail(where, "entry must be a table")
        _unknown_keys(entry_raw, _ENTRY_KEYS, f"{where} entry")
        entry_fields = _fields(entry_raw.get("fields", []), f"{where} entry", code_lists)
        if not entry_fields:
            raise _fail(where, "an entry needs fields")
        title_field = _text(entry_raw, "title_field", f"{where} entry")
        if title_field not in {f.id for f in entry_fields}:
            raise _fail(where, f"entry title_field '{title_field}' is not one of its fields")
        if any(f.is_upload for f in entry_fields):
            raise _fail(where, "entries cannot hold uploads")
        clash = {f.id for f in entry_fields} & {f.id for f in fields}
        if clash:
            raise _fail(where, f"entry field(s) {', '.join(sorted(clash))} clash with section fields")
        entry = EntryDef(name=_text(entry_raw, "name", f"{where} entry"),
                         plural=_text(entry_raw, "plural", f"{where} entry"),
                         title_field=title_field, fields=entry_fields)
    if not fields and entry is None:
        raise _fail(where, "a section needs fields")
    edited_by = raw.get("edited_by")
    if not isinstance(edited_by, list) or not edited_by or not all(isinstance(r, str) for r in edited_by):
        raise _fail(where, "edited_by must list at least one role")
    unknown_roles = set(edited_by) - ROLES_THAT_EDIT
    if unknown_roles:
        raise _fail(where, f"edited_by names unknown role(s) {', '.join(sorted(unknown_roles))}")
    interval = raw.get("review_interval_days")
    if not isinstance(interval, int) or isinstance(interval, bool) or not 1 <= interval <= 730:
        raise _fail(where, "review_interval_days must be a whole number of days from 1 to 730")
    order = raw.get("order")
    if not isinstance(order, int) or isinstance(order, bool):
        raise _fail(where, "order must be a whole number")
    core = raw.get("core", False)
    if not isinstance(core, bool):
        raise _fail(where, "core is true or false")
    return SectionDef(code=code, title=_text(raw, "title", where), summary=_text(raw, "summary", where),
                      order=order, review_interval_days=interval, edited_by=frozenset(edited_by), core=core,
                      why=_text(raw, "why", where), why_source=_text(raw, "why_source", where),
                      fields=fields, entry=entry, source_file=path.name)


def _read(path: Path, hasher: Any) -> dict[str, Any]:
    data = path.read_bytes()
    hasher.update(path.name.encode() + b"\0" + data + b"\0")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _fail(path.name, f"not valid TOML: {exc}") from exc


#: Sections the product cannot work without (Recommendation 7 and the issue that built the record).
REQUIRED_SECTIONS = ("ID", "PHOTO", "VOICE", "RISK", "SELFHARM", "EXPL", "MISSING", "CONTACTS", "HEALTH", "MH",
                     "EDU", "PLAN", "LEGAL", "NETWORK")


def load_sections(forms_dir: Path, hasher: Any) -> tuple[dict[str, SectionDef], dict[str, CodeList]]:
    """Read and check every code list and section under ``forms_dir``; raise FormDefinitionError if wrong."""
    code_lists = _load_code_lists(forms_dir / "codes", hasher)
    sections: dict[str, SectionDef] = {}
    for path in sorted((forms_dir / "sections").glob("*.toml")):
        section = _section(path, _read(path, hasher), code_lists)
        if section.code in sections:
            raise _fail(path.name, f"section {section.code} is also defined in {sections[section.code].source_file}")
        sections[section.code] = section
    missing = [code for code in REQUIRED_SECTIONS if code not in sections]
    if missing:
        raise FormDefinitionError(f"forms/sections: missing section(s) {', '.join(missing)}")
    photo = sections["PHOTO"]
    if not any(f.type == "photo" for f in photo.fields) or not any(f.id == "taken_on" for f in photo.fields):
        raise FormDefinitionError("forms/sections: PHOTO needs a photo field and a taken_on date")
    return sections, code_lists
