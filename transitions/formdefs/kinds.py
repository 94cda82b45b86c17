"""Recipient types (need-to-know) and transition kinds from ``forms/recipients.toml`` and ``forms/transitions/``.

A transition kind says which sections must be complete and fresh (blocking or warning), which recipient types
must receive a pack and when (always, or on a derived fact such as "out of area"), and which approvals the
move needs. A recipient type says which sections, in full or as a summary, and which fields never, it gets
(domain.md §3.5; Caldicott 3 and 4). All of it is policy a safeguarding partnership changes without a release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transitions.formdefs.sections import (
    FormDefinitionError,
    SectionDef,
    _fail,
    _read,
    _text,
    _unknown_keys,
)

#: Facts derived for every transition; a recipient or approval may depend on one of them.
CONDITIONS = frozenset({
    "always", "out_of_area", "at_a_distance", "exploitation_risk", "open_to_camhs", "childrens_home", "school_age",
    "emergency", "changes_placement",
})
#: How the organisation of a recipient is found: from the transition, or chosen by the worker.
SOURCES = frozenset({"destination", "origin", "host_la", "host_police", "responsible_la", "chosen"})
SHARE_LEVELS = ("full", "summary", "none")
APPROVAL_KINDS = {
    "nominated_officer": "Nominated officer's approval (reg 11)",
    "dcs": "Director of Children's Services' approval (placement at a distance, reg 11)",
    "host_la_notified": "Host local authority notified before approval (reg 11)",
    "host_la_consulted": "Host local authority consulted, with its answer recorded (reg 11)",
    "host_consulted_on_appropriateness": "Host area consulted on whether the placement is appropriate (Lesson CH4.1)",
}
#: Approvals that are decisions (made by a senior manager) rather than records of a consultation or notice.
DECISIONS = frozenset({"nominated_officer", "dcs"})
#: The child's details (kept on the profile, not in a section) as a pack's ID section shows them:
#: id -> (label, sensitivity). exclude_fields may name them as "ID.<id>" (schools get no NHS number).
PROFILE_FIELDS: dict[str, tuple[str, str]] = {
    "legal_name": ("Legal name", "standard"),
    "preferred_name": ("Preferred name", "standard"),
    "aliases": ("Other names used", "standard"),
    "date_of_birth": ("Date of birth", "standard"),
    "sex": ("Sex", "standard"),
    "nhs_number": ("NHS number", "high"),
    "la_child_id": ("Local child ID", "standard"),
    "legal_status": ("Legal status", "standard"),
    "placement_type": ("Placement type", "standard"),
    "responsible_la": ("Responsible local authority", "standard"),
    "placement": ("Where the child lives now", "identity_protected"),
    "destination": ("Moving to or admitted to", "identity_protected"),
}
_DUE = re.compile(r"^(before_move|on_arrival|hours:(\d{1,3})|working_days:(\d{1,2}))$")
_CODE = re.compile(r"^[a-z][a-z0-9_]{1,40}$")

_RECIPIENT_KEYS = {"code", "title", "description", "organisation_kinds", "source", "sections", "exclude_fields",
                   "never_identity_protected"}
_KIND_KEYS = {"code", "title", "description", "order", "urgency", "destination_kinds", "counts_for_crisis",
              "admission", "why", "why_source", "sections", "recipients", "approvals", "min_age"}
_KIND_SECTION_KEYS = {"code", "mode", "fresh"}
_KIND_RECIPIENT_KEYS = {"type", "when", "due", "required", "basis"}
_KIND_APPROVAL_KEYS = {"kind", "when", "retrospective_due"}


@dataclass(frozen=True)
class RecipientType:
    code: str
    title: str
    description: str
    organisation_kinds: frozenset[str]
    source: str
    #: section code -> "full" or "summary" (sections not listed are not shared)
    sections: dict[str, str]
    #: "SECTION.field" ids never sent to this recipient type, whatever the level
    exclude_fields: frozenset[str]
    #: identity-protected fields (where the child lives or can be found) are never sent (parents, associates)
    never_identity_protected: bool

    def level(self, section_code: str) -> str:
        return self.sections.get(section_code, "none")


@dataclass(frozen=True)
class KindSection:
    code: str
    blocking: bool
    fresh: bool


@dataclass(frozen=True)
class KindRecipient:
    type: str
    when: str
    due: str
    required: bool
    basis: str


@dataclass(frozen=True)
class KindApproval:
    kind: str
    when: str
    #: For an emergency the move may go ahead first; the approval is then due this long after the move.
    retrospective_due: str

    @property
    def label(self) -> str:
        return APPROVAL_KINDS[self.kind]


@dataclass(frozen=True)
class TransitionKind:
    code: str
    title: str
    description: str
    order: int
    urgency: str
    destination_kinds: frozenset[str]
    counts_for_crisis: bool
    admission: bool
    min_age: int | None
    why: str
    why_source: str
    sections: tuple[KindSection, ...]
    recipients: tuple[KindRecipient, ...]
    approvals: tuple[KindApproval, ...]
    source_file: str


def _due(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _DUE.match(value):
        raise _fail(where, "due must be before_move, on_arrival, hours:N or working_days:N")
    return value


def _condition(value: Any, where: str) -> str:
    if value not in CONDITIONS:
        raise _fail(where, f"unknown condition '{value}' (known: {', '.join(sorted(CONDITIONS))})")
    return str(value)


def _recipient_type(raw: Any, path: Path, sections: dict[str, SectionDef],
                    organisation_kinds: frozenset[str]) -> RecipientType:
    if not isinstance(raw, dict):
        raise _fail(path.name, "each [[recipient]] must be a table")
    code = _text(raw, "code", path.name)
    where = f"{path.name} recipient '{code}'"
    _unknown_keys(raw, _RECIPIENT_KEYS, where)
    if not _CODE.match(code):
        raise _fail(where, "a code is lower case letters, digits and underscores")
    kinds = raw.get("organisation_kinds", [])
    if not isinstance(kinds, list) or not set(kinds) <= organisation_kinds:
        raise _fail(where, f"organisation_kinds must be some of {', '.join(sorted(organisation_kinds))}")
    source = _text(raw, "source", where)
    if source not in SOURCES:
        raise _fail(where, f"source must be one of {', '.join(sorted(SOURCES))}")
    levels = raw.get("sections", {})
    if not isinstance(levels, dict):
        raise _fail(where, "sections is a table of SECTION = \"full\" | \"summary\" | \"none\"")
    for section_code, level in levels.items():
        if section_code not in sections:
            raise _fail(where, f"unknown section {section_code}")
        if level not in SHARE_LEVELS:
            raise _fail(where, f"section {section_code}: level must be full, summary or none")
        if level == "summary" and not any(f.in_summary for f in sections[section_code].all_fields):
            raise _fail(where, f"section {section_code} is shared as a summary but none of its fields is in_summary")
    excluded = raw.get("exclude_fields", [])
    if not isinstance(excluded, list):
        raise _fail(where, "exclude_fields is a list of \"SECTION.field\"")
    for item in excluded:
        section_code, _, field_id = str(item).partition(".")
        profile = section_code == "ID" and field_id in PROFILE_FIELDS
        if not profile and (section_code not in sections
                            or field_id not in {f.id for f in sections[section_code].all_fields}):
            raise _fail(where, f"exclude_fields: unknown field {item}")
    never = raw.get("never_identity_protected", False)
    if not isinstance(never, bool):
        raise _fail(where, "never_identity_protected is true or false")
    return RecipientType(code=code, title=_text(raw, "title", where),
                         description=_text(raw, "description", where, required=False),
                         organisation_kinds=frozenset(kinds), source=source,
                         sections={k: v for k, v in levels.items() if v != "none"},
                         exclude_fields=frozenset(str(i) for i in excluded), never_identity_protected=never)


def _kind(path: Path, raw: dict[str, Any], sections: dict[str, SectionDef], recipient_types: dict[str, RecipientType],
          organisation_kinds: frozenset[str]) -> TransitionKind:
    code = _text(raw, "code", path.name)
    where = f"{path.name} ({code})"
    _unknown_keys(raw, _KIND_KEYS, where)
    if not _CODE.match(code):
        raise _fail(where, "a code is lower case letters, digits and underscores")
    urgency = _text(raw, "urgency", where)
    if urgency not in ("planned", "emergency"):
        raise _fail(where, "urgency must be planned or emergency")
    destinations = raw.get("destination_kinds", [])
    if not isinstance(destinations, list) or not destinations or not set(destinations) <= organisation_kinds:
        raise _fail(where, f"destination_kinds must list some of {', '.join(sorted(organisation_kinds))}")
    order = raw.get("order")
    if not isinstance(order, int) or isinstance(order, bool):
        raise _fail(where, "order must be a whole number")
    min_age = raw.get("min_age")
    if min_age is not None and (not isinstance(min_age, int) or not 0 <= min_age <= 18):
        raise _fail(where, "min_age must be a whole number of years")
    kind_sections = []
    for item in raw.get("sections", []):
        sub_where = f"{where} section"
        if not isinstance(item, dict):
            raise _fail(sub_where, "each [[sections]] must be a table")
        _unknown_keys(item, _KIND_SECTION_KEYS, sub_where)
        section_code = _text(item, "code", sub_where)
        if section_code not in sections:
            raise _fail(sub_where, f"unknown section {section_code}")
        mode = _text(item, "mode", sub_where)
        if mode not in ("blocking", "warning"):
            raise _fail(sub_where, f"{section_code}: mode must be blocking or warning")
        fresh = item.get("fresh", True)
        if not isinstance(fresh, bool):
            raise _fail(sub_where, f"{section_code}: fresh is true or false")
        kind_sections.append(KindSection(section_code, mode == "blocking", fresh))
    if len({s.code for s in kind_sections}) != len(kind_sections):
        raise _fail(where, "a section is listed twice")
    kind_recipients = []
    for item in raw.get("recipients", []):
        sub_where = f"{where} recipient"
        if not isinstance(item, dict):
            raise _fail(sub_where, "each [[recipients]] must be a table")
        _unknown_keys(item, _KIND_RECIPIENT_KEYS, sub_where)
        type_code = _text(item, "type", sub_where)
        if type_code not in recipient_types:
            raise _fail(sub_where, f"unknown recipient type '{type_code}'")
        required = item.get("required", True)
        if not isinstance(required, bool):
            raise _fail(sub_where, f"{type_code}: required is true or false")
        kind_recipients.append(KindRecipient(
            type=type_code, when=_condition(item.get("when", "always"), f"{sub_where} {type_code}"),
            due=_due(item.get("due"), f"{sub_where} {type_code}"), required=required,
            basis=_text(item, "basis", sub_where, required=False)))
    if not kind_recipients:
        raise _fail(where, "a transition kind needs at least one recipient")
    kind_approvals = []
    for item in raw.get("approvals", []):
        sub_where = f"{where} approval"
        if not isinstance(item, dict):
            raise _fail(sub_where, "each [[approvals]] must be a table")
        _unknown_keys(item, _KIND_APPROVAL_KEYS, sub_where)
        approval = _text(item, "kind", sub_where)
        if approval not in APPROVAL_KINDS:
            raise _fail(sub_where, f"unknown approval '{approval}' (known: {', '.join(APPROVAL_KINDS)})")
        kind_approvals.append(KindApproval(
            kind=approval, when=_condition(item.get("when", "always"), f"{sub_where} {approval}"),
            retrospective_due=_due(item.get("retrospective_due", "working_days:5"), f"{sub_where} {approval}")))
    for flag in ("counts_for_crisis", "admission"):
        if not isinstance(raw.get(flag, False), bool):
            raise _fail(where, f"{flag} is true or false")
    return TransitionKind(
        code=code, title=_text(raw, "title", where), description=_text(raw, "description", where), order=order,
        urgency=urgency, destination_kinds=frozenset(destinations),
        counts_for_crisis=bool(raw.get("counts_for_crisis", False)), admission=bool(raw.get("admission", False)),
        min_age=min_age, why=_text(raw, "why", where), why_source=_text(raw, "why_source", where),
        sections=tuple(kind_sections), recipients=tuple(kind_recipients), approvals=tuple(kind_approvals),
        source_file=path.name)


#: Kinds the product must always offer (issue 4; domain.md §3.3).
REQUIRED_KINDS = (
    "planned_move_same_la", "planned_move_adjoining", "planned_move_at_distance", "emergency_move",
    "entry_to_care", "hospital_admission", "tier4_admission", "hospital_discharge", "temporary_move",
    "supported_accommodation",
)


def load_kinds(forms_dir: Path, hasher: Any, sections: dict[str, SectionDef], organisation_kinds: frozenset[str]
               ) -> tuple[dict[str, RecipientType], dict[str, TransitionKind]]:
    path = forms_dir / "recipients.toml"
    if not path.exists():
        raise FormDefinitionError("forms/recipients.toml is missing")
    raw = _read(path, hasher)
    _unknown_keys(raw, {"recipient"}, path.name)
    recipient_types: dict[str, RecipientType] = {}
    for item in raw.get("recipient", []):
        recipient = _recipient_type(item, path, sections, organisation_kinds)
        if recipient.code in recipient_types:
            raise _fail(path.name, f"recipient type '{recipient.code}' is defined twice")
        recipient_types[recipient.code] = recipient
    kinds: dict[str, TransitionKind] = {}
    for kind_path in sorted((forms_dir / "transitions").glob("*.toml")):
        kind = _kind(kind_path, _read(kind_path, hasher), sections, recipient_types, organisation_kinds)
        if kind.code in kinds:
            other = kinds[kind.code].source_file
            raise _fail(kind_path.name, f"transition kind {kind.code} is also defined in {other}")
        kinds[kind.code] = kind
    missing = [code for code in REQUIRED_KINDS if code not in kinds]
    if missing:
        raise FormDefinitionError(f"forms/transitions: missing transition kind(s) {', '.join(missing)}")
    return recipient_types, kinds
