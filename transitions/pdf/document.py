"""What a pack says, already filtered for one recipient: plain strings and bytes, nothing to look up.

The services layer builds a :class:`PackDocument` from the child's current section versions through the
recipient type's need-to-know profile (forms/recipients.toml); the same document drives the recipient's HTML
page and the PDF, so the two can never disagree about what was shared. No Flask, no SQLAlchemy.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

MARKING = "OFFICIAL-SENSITIVE"


@dataclass(frozen=True)
class PackItem:
    """One field as a person reads it (codes as labels, dates in words). ``value`` may hold newlines."""

    label: str
    value: str
    field_id: str = ""


@dataclass(frozen=True)
class PackEntry:
    """One repeatable entry (a person in CONTACTS). ``restricted`` marks someone the child must be kept from."""

    title: str
    items: tuple[PackItem, ...]
    restricted: bool = False


@dataclass(frozen=True)
class PackSection:
    code: str
    title: str
    #: "full" or "summary" (summary: headline facts only, as forms/recipients.toml says)
    level: str
    #: The section version this was built from (None: nothing recorded yet).
    version: int | None
    #: "Last reviewed 3 March 2026", or "Not recorded yet".
    reviewed: str
    items: tuple[PackItem, ...] = ()
    entries: tuple[PackEntry, ...] = ()
    entry_plural: str = ""
    #: Names of attached documents (their pages follow the pack in the PDF).
    documents: tuple[str, ...] = ()


@dataclass(frozen=True)
class RestrictedPersonLine:
    name: str
    relationship: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class FirstPage:
    """What someone needs in the first minute (a ward at 2 a.m., a carer when the child arrives)."""

    preferred_name: str
    legal_name: str = ""
    date_of_birth: str = ""
    #: JPEG bytes of the child's photo (already re-encoded without metadata), if the recipient gets PHOTO.
    photo: bytes | None = None
    photo_taken_on: str = ""
    key_risks: tuple[str, ...] = ()
    restricted_persons: tuple[RestrictedPersonLine, ...] = ()
    #: (label, value) pairs: emergency duty team, social worker, police contact...
    out_of_hours: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PackDocument:
    #: A neutral reference with no name in it, e.g. "HP-7K3D9Q-v2" (also the file name's stem).
    reference: str
    version: int
    prepared_for: str
    recipient_title: str
    prepared_on: str
    sending_authority: str
    sender_contact: str
    first_page: FirstPage
    sections: tuple[PackSection, ...]
    marking: str = MARKING
    #: Attached PDFs (title, bytes) appended after the pack's own pages.
    appendices: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)

    def section(self, code: str) -> PackSection | None:
        return next((s for s in self.sections if s.code == code), None)


def _items_json(items: tuple[PackItem, ...]) -> list[dict[str, str]]:
    return [{"label": i.label, "value": i.value, "field_id": i.field_id} for i in items]


def to_json(doc: PackDocument) -> bytes:
    """The document as stored with the pack (appendices are not kept here: they are in the PDF). Written out
    field by field rather than with dataclasses.asdict, which deep-copies every value (3 ms a pack)."""
    fp = doc.first_page
    data = {
        "reference": doc.reference, "version": doc.version, "prepared_for": doc.prepared_for,
        "recipient_title": doc.recipient_title, "prepared_on": doc.prepared_on,
        "sending_authority": doc.sending_authority, "sender_contact": doc.sender_contact, "marking": doc.marking,
        "first_page": {
            "preferred_name": fp.preferred_name, "legal_name": fp.legal_name, "date_of_birth": fp.date_of_birth,
            "photo": base64.b64encode(fp.photo).decode("ascii") if fp.photo else None,
            "photo_taken_on": fp.photo_taken_on, "key_risks": list(fp.key_risks),
            "restricted_persons": [{"name": p.name, "relationship": p.relationship, "reasons": list(p.reasons)}
                                   for p in fp.restricted_persons],
            "out_of_hours": [list(pair) for pair in fp.out_of_hours],
        },
        "sections": [{
            "code": s.code, "title": s.title, "level": s.level, "version": s.version, "reviewed": s.reviewed,
            "items": _items_json(s.items), "entry_plural": s.entry_plural, "documents": list(s.documents),
            "entries": [{"title": e.title, "items": _items_json(e.items), "restricted": e.restricted}
                        for e in s.entries],
        } for s in doc.sections],
    }
    return json.dumps(data, ensure_ascii=False, sort_keys=True).encode("utf-8")


def from_json(raw: bytes) -> PackDocument:
    data: dict[str, Any] = json.loads(raw)
    first = data["first_page"]
    photo = base64.b64decode(first["photo"]) if first.get("photo") else None
    first_page = FirstPage(
        preferred_name=first["preferred_name"], legal_name=first["legal_name"], date_of_birth=first["date_of_birth"],
        photo=photo, photo_taken_on=first["photo_taken_on"], key_risks=tuple(first["key_risks"]),
        restricted_persons=tuple(RestrictedPersonLine(p["name"], p["relationship"], tuple(p["reasons"]))
                                 for p in first["restricted_persons"]),
        out_of_hours=tuple((a, b) for a, b in first["out_of_hours"]))

    def items(rows: list[dict[str, str]]) -> tuple[PackItem, ...]:
        return tuple(PackItem(r["label"], r["value"], r.get("field_id", "")) for r in rows)

    sections = tuple(PackSection(
        code=s["code"], title=s["title"], level=s["level"], version=s["version"], reviewed=s["reviewed"],
        items=items(s["items"]), entries=tuple(PackEntry(e["title"], items(e["items"]), e["restricted"])
                                               for e in s["entries"]),
        entry_plural=s["entry_plural"], documents=tuple(s["documents"])) for s in data["sections"])
    return PackDocument(reference=data["reference"], version=data["version"], prepared_for=data["prepared_for"],
                        recipient_title=data["recipient_title"], prepared_on=data["prepared_on"],
                        sending_authority=data["sending_authority"], sender_contact=data["sender_contact"],
                        first_page=first_page, sections=sections, marking=data["marking"])
