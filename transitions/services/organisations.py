"""The organisations register: placements, homes, hospitals and wards, CAMHS, schools, GP practices,
local authorities and police forces. Administrators keep it; later issues pick recipients from it.

Local authorities and police forces are seeded from ``forms/reference/`` (every English authority mapped
to the force that covers it), so a host area's force is known the moment a placement is chosen.
"""

from __future__ import annotations

import re
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from transitions.models import ORGANISATION_KIND_LABELS, Organisation, OrganisationKind
from transitions.paths import FORMS_DIR
from transitions.services import audit
from transitions.services.audit import Actor
from transitions.services.deps import ServiceDeps
from transitions.services.errors import ChildInvalidError, NotFoundError
from transitions.services.values import valid_email, valid_phone_or_empty

KIND_CHOICES = [(kind.value, ORGANISATION_KIND_LABELS[kind]) for kind in OrganisationKind]
#: Kinds a child's current placement can be (a hospital ward for a T1 stay, a Tier 4 unit is a ward).
PLACEMENT_KINDS = frozenset({OrganisationKind.PLACEMENT, OrganisationKind.CHILDRENS_HOME,
                             OrganisationKind.HOSPITAL, OrganisationKind.WARD})
_URN = re.compile(r"^(SC[0-9]{6}|[0-9]{7})$")
_ODS = re.compile(r"^[A-Z0-9]{3,6}$")


@dataclass(frozen=True)
class OrganisationView:
    id: uuid.UUID
    kind: str
    kind_label: str
    name: str
    code: str | None
    area: str | None
    phone: str | None
    mailbox: str | None
    address: str | None
    local_authority_id: uuid.UUID | None
    local_authority: str | None
    police_force_id: uuid.UUID | None
    police_force: str | None
    parent_id: uuid.UUID | None
    active: bool

    @property
    def choice_label(self) -> str:
        """How it reads in a select: name, type and area, so two "Riverside" homes can be told apart."""
        area = f", {self.local_authority}" if self.local_authority else ""
        return f"{self.name} ({self.kind_label.lower()}{area})"


@dataclass(frozen=True)
class OrganisationInput:
    kind: str
    name: str
    code: str
    area: str
    phone: str
    mailbox: str
    address: str
    local_authority_id: uuid.UUID | None
    police_force_id: uuid.UUID | None
    parent_id: uuid.UUID | None


def _views(session: Session, orgs: list[Organisation]) -> list[OrganisationView]:
    """Views with the names of each organisation's area and police force (a placement's force is its area's)."""
    la_ids = {o.local_authority_id for o in orgs if o.local_authority_id}
    related = {o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(la_ids)))} \
        if la_ids else {}
    force_ids = {o.police_force_id for o in [*orgs, *related.values()] if o.police_force_id}
    related |= {o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(force_ids)))} \
        if force_ids else {}

    def force_of(o: Organisation) -> Organisation | None:
        la = related.get(o.local_authority_id) if o.local_authority_id else o
        return related.get(la.police_force_id) if la is not None and la.police_force_id else None

    views = []
    for o in orgs:
        force = force_of(o)
        la = related.get(o.local_authority_id) if o.local_authority_id else None
        views.append(OrganisationView(
            id=o.id, kind=o.kind, kind_label=ORGANISATION_KIND_LABELS[OrganisationKind(o.kind)], name=o.name,
            code=o.code, area=o.area, phone=o.phone, mailbox=o.mailbox, address=o.address,
            local_authority_id=o.local_authority_id, local_authority=la.name if la else None,
            police_force_id=o.police_force_id, police_force=force.name if force else None, parent_id=o.parent_id,
            active=o.active))
    return views


def list_organisations(deps: ServiceDeps, kinds: frozenset[str] | None = None) -> list[OrganisationView]:
    with deps.db.transaction() as session:
        query = select(Organisation).order_by(Organisation.name)
        if kinds:
            query = query.where(Organisation.kind.in_(kinds))
        return _views(session, list(session.scalars(query)))


def get_organisation(deps: ServiceDeps, org_id: uuid.UUID) -> OrganisationView:
    with deps.db.transaction() as session:
        org = session.get(Organisation, org_id)
        if org is None:
            raise NotFoundError("organisation")
        return _views(session, [org])[0]


def _check(session: Session, data: OrganisationInput, org_id: uuid.UUID | None) -> dict[str, str]:
    errors: dict[str, str] = {}
    try:
        kind = OrganisationKind(data.kind)
    except ValueError:
        return {"kind": "Select the type of organisation"}
    if not data.name.strip():
        errors["name"] = "Enter the organisation's name"
    elif len(data.name) > 200:
        errors["name"] = "Name must be 200 characters or fewer"
    code = data.code.strip().upper()
    if kind is OrganisationKind.CHILDRENS_HOME and not _URN.match(code):
        errors["code"] = "Enter the Ofsted URN, like SC123456 or 1234567"
    elif kind in (OrganisationKind.HOSPITAL, OrganisationKind.WARD, OrganisationKind.GP_PRACTICE) and code \
            and not _ODS.match(code):
        errors["code"] = "Enter the ODS code, 3 to 6 letters and numbers, like RNN or A82001"
    elif len(code) > 32:
        errors["code"] = "Code must be 32 characters or fewer"
    if code and "code" not in errors:
        clash = session.scalars(select(Organisation.id).where(Organisation.kind == kind.value,
                                                              Organisation.code == code)).first()
        if clash is not None and clash != org_id:
            errors["code"] = "Another organisation of this type already has this code"
    if not valid_phone_or_empty(data.phone):
        errors["phone"] = "Enter a phone number, like 01632 960 001 or 07700 900 982"
    if data.mailbox.strip() and not valid_email(data.mailbox.strip()):
        errors["mailbox"] = "Enter the role mailbox in the correct format, like ward7@nhs.net"
    if len(data.area) > 120:
        errors["area"] = "Area must be 120 characters or fewer"
    if len(data.address) > 500:
        errors["address"] = "Address must be 500 characters or fewer"
    if data.local_authority_id is not None:
        la = session.get(Organisation, data.local_authority_id)
        if la is None or la.kind != OrganisationKind.LOCAL_AUTHORITY.value:
            errors["local_authority_id"] = "Select the local authority area from the list"
    elif kind in (OrganisationKind.PLACEMENT, OrganisationKind.CHILDRENS_HOME):
        errors["local_authority_id"] = "Select the local authority area the placement is in"
    if kind is OrganisationKind.LOCAL_AUTHORITY:
        force = session.get(Organisation, data.police_force_id) if data.police_force_id else None
        if force is None or force.kind != OrganisationKind.POLICE_FORCE.value:
            errors["police_force_id"] = "Select the police force covering this local authority"
    if kind is OrganisationKind.WARD:
        hospital = session.get(Organisation, data.parent_id) if data.parent_id else None
        if hospital is None or hospital.kind != OrganisationKind.HOSPITAL.value:
            errors["parent_id"] = "Select the hospital the ward is in"
    return errors


def _apply(org: Organisation, data: OrganisationInput) -> None:
    kind = OrganisationKind(data.kind)
    org.kind = kind.value
    org.name = " ".join(data.name.split())
    org.code = data.code.strip().upper() or None
    org.area = data.area.strip() or None
    org.phone = " ".join(data.phone.split()) or None
    org.mailbox = data.mailbox.strip() or None
    org.address = data.address.strip() or None
    org.local_authority_id = data.local_authority_id
    org.police_force_id = data.police_force_id if kind is OrganisationKind.LOCAL_AUTHORITY else None
    org.parent_id = data.parent_id if kind is OrganisationKind.WARD else None


def save_organisation(deps: ServiceDeps, org_id: uuid.UUID | None, data: OrganisationInput,
                      actor: Actor) -> uuid.UUID:
    now = deps.clock.now()
    with deps.db.transaction() as session:
        errors = _check(session, data, org_id)
        if errors:
            raise ChildInvalidError(errors)
        if org_id is None:
            org = Organisation(id=uuid.uuid4(), created_at=now, updated_at=now, active=True)
            session.add(org)
        else:
            found = session.get(Organisation, org_id)
            if found is None:
                raise NotFoundError("organisation")
            org = found
            org.updated_at = now
        _apply(org, data)
        audit.record(session, deps.audit_chain, deps.clock, actor,
                     "organisation.created" if org_id is None else "organisation.changed",
                     object_type="organisation", object_id=org.id, details={"kind": org.kind})
        return org.id


@dataclass(frozen=True)
class SeedReport:
    forces: int
    authorities: int


def seed_reference(deps: ServiceDeps, actor: Actor, forms_dir: Path = FORMS_DIR) -> SeedReport:
    """Add or update every police force and English local authority from forms/reference (idempotent)."""
    forces_raw = tomllib.loads((forms_dir / "reference" / "police_forces.toml").read_text("utf-8"))["force"]
    las_raw = tomllib.loads((forms_dir / "reference" / "local_authorities.toml").read_text("utf-8"))["authority"]
    now = deps.clock.now()
    with deps.db.transaction() as session:
        existing = {(o.kind, o.code): o for o in session.scalars(
            select(Organisation).where(Organisation.kind.in_(("police_force", "local_authority"))))}
        added = 0
        forces: dict[str, Organisation] = {}
        for raw in forces_raw:
            org = existing.get(("police_force", raw["code"].upper()))
            if org is None:
                org = Organisation(id=uuid.uuid4(), kind="police_force", code=raw["code"].upper(), created_at=now,
                                   updated_at=now, active=True)
                session.add(org)
                added += 1
            org.name, org.area, org.phone = raw["name"], raw["area"][:120], raw["non_emergency"]
            forces[raw["code"]] = org
        session.flush()
        for raw in las_raw:
            org = existing.get(("local_authority", raw["code"]))
            if org is None:
                org = Organisation(id=uuid.uuid4(), kind="local_authority", code=raw["code"], created_at=now,
                                   updated_at=now, active=True)
                session.add(org)
                added += 1
            org.name, org.area = raw["name"], raw["region"]
            org.police_force_id = forces[raw["police_force"]].id
        if added:
            audit.record(session, deps.audit_chain, deps.clock, actor, "organisation.seeded",
                         details={"count": added})
        return SeedReport(forces=len(forces_raw), authorities=len(las_raw))
