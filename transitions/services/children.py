"""The child's profile, search, the child's page and break-glass access.

Every read of a child's record goes through ``open_child`` (the access policy, an audit event, the named error)
so no use case can forget one of the three.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload, load_only
from sqlalchemy.orm.exc import StaleDataError

from transitions.formdefs import SectionDef
from transitions.models import (
    BreakGlassGrant,
    Child,
    ChildProfileVersion,
    ChildSearchKey,
    Organisation,
    Role,
    SectionVersion,
    StaffUser,
    Team,
)
from transitions.services import audit, outbox
from transitions.services.access import ChildAccess, Via, access_to, allocation_access, visible_filter
from transitions.services.accounts import StaffView
from transitions.services.audit import Actor
from transitions.services.deps import ServiceDeps
from transitions.services.errors import (
    BreakGlassRequiredError,
    ChildInvalidError,
    EditConflictError,
    ForbiddenActionError,
    NotFoundError,
)
from transitions.services.values import (
    ENTRIES,
    Change,
    format_date,
    format_nhs_number,
    gaps,
    typed_reason,
    valid_nhs_number,
)

SECTION_STATUS_LABELS = {"missing": "Missing", "overdue": "Overdue", "due_soon": "Due soon", "complete": "Complete"}
PHOTO_STATUS_LABELS = {"missing": "No photo", "stale": "Photo out of date", "warn": "Photo getting old",
                       "current": "Photo up to date"}
RESTRICTED_STATUSES = frozenset({"no_contact_court_order", "no_contact_la_decision"})


# ---- profile ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileInput:
    legal_name: str
    preferred_name: str
    aliases: str
    date_of_birth: date | None
    sex: str
    nhs_number: str
    nhs_number_not_known: bool
    la_child_id: str
    legal_status: str
    placement_type: str
    placement_started_on: date | None
    responsible_la_id: uuid.UUID | None
    current_placement_id: uuid.UUID | None
    allocated_worker_id: uuid.UUID | None
    team_id: uuid.UUID | None


def _check_profile(deps: ServiceDeps, session: Session, data: ProfileInput, today: date) -> dict[str, str]:
    errors: dict[str, str] = {}
    codes = deps.definitions.code_lists
    if not data.legal_name.strip():
        errors["legal_name"] = "Enter the child's legal name"
    elif len(data.legal_name) > 200:
        errors["legal_name"] = "Legal name must be 200 characters or fewer"
    if not data.preferred_name.strip():
        errors["preferred_name"] = "Enter the name the child likes to be called"
    elif len(data.preferred_name) > 200:
        errors["preferred_name"] = "Preferred name must be 200 characters or fewer"
    if len(data.aliases) > 1000:
        errors["aliases"] = "Other names must be 1000 characters or fewer"
    if data.date_of_birth is None:
        errors["date_of_birth"] = "Enter the child's date of birth"
    elif data.date_of_birth > today:
        errors["date_of_birth"] = "Date of birth must be today or in the past"
    elif data.date_of_birth < today.replace(year=today.year - 26):
        errors["date_of_birth"] = "Date of birth must be within the last 25 years"
    if data.sex not in codes["SEX"].codes:
        errors["sex"] = "Select the child's sex"
    nhs = "".join(data.nhs_number.split())
    if nhs and not valid_nhs_number(nhs):
        errors["nhs_number"] = "Enter a valid NHS number, like 943 476 5919 – it is 10 digits and the last one " \
                               "is a check digit"
    elif not nhs and not data.nhs_number_not_known:
        errors["nhs_number"] = "Enter the child's NHS number, or select that it is not known yet"
    if not data.la_child_id.strip():
        errors["la_child_id"] = "Enter the child's ID in the case management system"
    elif len(data.la_child_id.strip()) > 40:
        errors["la_child_id"] = "Local child ID must be 40 characters or fewer"
    if data.legal_status not in codes["LS"].codes:
        errors["legal_status"] = "Select the child's legal status"
    if data.placement_type not in codes["PLACE"].codes:
        errors["placement_type"] = "Select the placement type"
    if data.placement_started_on is not None and data.placement_started_on > today + timedelta(days=366):
        errors["placement_started_on"] = "Placement start date must be within the next year"
    if data.responsible_la_id is None or _org(session, data.responsible_la_id, "local_authority") is None:
        errors["responsible_la_id"] = "Select the responsible local authority"
    if data.current_placement_id is not None and _org(session, data.current_placement_id) is None:
        errors["current_placement_id"] = "Select the current placement from the list"
    if data.team_id is None or session.get(Team, data.team_id) is None:
        errors["team_id"] = "Select the team the child is allocated to"
    if data.allocated_worker_id is not None:
        worker = session.get(StaffUser, data.allocated_worker_id)
        if worker is None or worker.role != Role.SOCIAL_WORKER.value:
            errors["allocated_worker_id"] = "Select the allocated social worker from the list"
        elif "team_id" not in errors and worker.team_id != data.team_id:
            errors["allocated_worker_id"] = "The allocated social worker must be in the team you selected"
    return errors


def _org(session: Session, org_id: uuid.UUID, kind: str | None = None) -> Organisation | None:
    org = session.get(Organisation, org_id)
    if org is None or (kind is not None and org.kind != kind):
        return None
    return org


def apply_profile(deps: ServiceDeps, session: Session, child: Child, data: ProfileInput) -> list[str]:
    values: dict[str, str | None] = {
        "legal_name": " ".join(data.legal_name.split()),
        "preferred_name": " ".join(data.preferred_name.split()),
        "aliases": "\n".join(line.strip() for line in data.aliases.splitlines() if line.strip()) or None,
        "date_of_birth": data.date_of_birth.isoformat() if data.date_of_birth else None,
        "sex": data.sex,
        "nhs_number": "".join(data.nhs_number.split()) or None,
        "la_child_id": data.la_child_id.strip(),
        "legal_status": data.legal_status,
        "placement_type": data.placement_type,
        "placement_started_on": data.placement_started_on.isoformat() if data.placement_started_on else None,
    }
    changed = [name for name, value in values.items() if getattr(child, name) != value]
    for name in changed:
        setattr(child, name, values[name])
    for name in ("responsible_la_id", "current_placement_id", "allocated_worker_id", "team_id"):
        if getattr(child, name) != getattr(data, name):
            setattr(child, name, getattr(data, name))
            changed.append(name)
    _index(deps, session, child, values)
    return changed


def _surname(name: str) -> str:
    parts = name.split()
    return parts[-1] if parts else ""


def _index(deps: ServiceDeps, session: Session, child: Child, values: dict[str, str | None]) -> None:
    """Rebuild the child's blind indexes: full names, aliases, surname + DOB, NHS number, local id (R45)."""
    session.query(ChildSearchKey).filter(ChildSearchKey.child_id == child.id).delete(synchronize_session=False)
    bi = deps.blind_index
    names = {values["legal_name"] or "", values["preferred_name"] or ""}
    names |= set((values["aliases"] or "").splitlines())
    keys: set[tuple[str, bytes]] = set()
    dob = values["date_of_birth"] or ""
    for name in filter(None, names):
        keys.add(("name", bi.digest("child-name", name)))
        if dob:
            keys.add(("surname_dob", bi.digest("child-surname-dob", _surname(name), dob)))
    if values["nhs_number"]:
        keys.add(("nhs", bi.digest("child-nhs", values["nhs_number"])))
    if values["la_child_id"]:
        keys.add(("local_id", bi.digest("child-local-id", values["la_child_id"])))
    session.add_all(ChildSearchKey(child_id=child.id, kind=kind, digest=digest) for kind, digest in sorted(keys))


def create_child(deps: ServiceDeps, data: ProfileInput, user: StaffView, actor: Actor) -> uuid.UUID:
    if user.role not in (Role.SOCIAL_WORKER, Role.TEAM_MANAGER, Role.SENIOR_MANAGER):
        raise ForbiddenActionError("Only social workers and managers add children")
    now = deps.clock.now()
    with deps.db.transaction() as session:
        errors = _check_profile(deps, session, data, now.date())
        if not errors and user.role is not Role.SENIOR_MANAGER and data.team_id != user.team_id:
            errors["team_id"] = "You can only add children to your own team"
        if errors:
            raise ChildInvalidError(errors)
        child = Child(id=uuid.uuid4(), created_at=now, updated_at=now)
        session.add(child)
        apply_profile(deps, session, child, data)
        session.flush()
        save_profile_version(deps, session, child, user.id, user.role)
        audit.record(session, deps.audit_chain, deps.clock, actor, "child.created", object_type="child",
                     object_id=child.id, details={"team_id": data.team_id})
        return child.id


def update_profile(deps: ServiceDeps, child_id: uuid.UUID, data: ProfileInput, base_version: int | None,
                   user: StaffView, actor: Actor) -> list[str]:
    """Change the child's details. ``base_version`` is the version the form was opened on: a save over
    someone else's later change is refused (EditConflictError), never silently undone."""
    now = deps.clock.now()
    with deps.db.transaction() as session:
        child, access = open_child(deps, session, child_id, user, actor, action=None)
        if not access.can_edit_profile:
            raise ForbiddenActionError("You cannot change this child's details")
        if base_version != child.version:
            raise EditConflictError(child.version)
        errors = _check_profile(deps, session, data, now.date())
        if not errors and user.role is Role.SOCIAL_WORKER and data.team_id != child.team_id:
            errors["team_id"] = "Only a team manager or senior manager can move a child to another team"
        if errors:
            raise ChildInvalidError(errors)
        old_placement = child.current_placement_id
        changed = apply_profile(deps, session, child, data)
        if old_placement is not None and child.current_placement_id != old_placement:
            from transitions.services import packs  # packs build on this module; the end of a placement revokes

            packs.revoke_for_placement_end(deps, session, child.id, old_placement, actor)
        if changed:
            child.updated_at = now
            try:
                session.flush()
            except StaleDataError as exc:  # a concurrent save of the same child got there first
                raise EditConflictError(child.version) from exc
            save_profile_version(deps, session, child, user.id, user.role)
        audit.record(session, deps.audit_chain, deps.clock, actor, "child.profile_changed", object_type="child",
                     object_id=child.id, details={"fields": ",".join(changed), "via": access.via.value})
        return changed


PROFILE_LABELS = (
    "Legal name", "Preferred name", "Other names", "Date of birth", "Sex", "NHS number", "Local child ID",
    "Legal status", "Placement type", "Placement started", "Current placement", "Responsible local authority",
    "Team", "Allocated social worker",
)


def _snapshot(profile: Profile) -> dict[str, str]:
    """The child's details as a person reads them, in PROFILE_LABELS order."""
    values = (
        profile.legal_name, profile.preferred_name, ", ".join(profile.aliases), profile.date_of_birth_text,
        profile.sex_label, profile.nhs_number_text or "Not known – to be obtained", profile.la_child_id,
        f"{profile.legal_status} – {profile.legal_status_label}",
        f"{profile.placement_type} – {profile.placement_type_label}", format_date(profile.placement_started_on),
        profile.placement.name if profile.placement else "", profile.responsible_la.name
        if profile.responsible_la else "", profile.team.name if profile.team else "",
        profile.worker.name if profile.worker else "",
    )
    return dict(zip(PROFILE_LABELS, values, strict=True))


def save_profile_version(deps: ServiceDeps, session: Session, child: Child, author_id: uuid.UUID | None,
                         role: Role) -> None:
    """Add a snapshot of the child's details (called after every change, in the same transaction)."""
    previous = session.scalars(select(ChildProfileVersion).where(ChildProfileVersion.child_id == child.id)
                               .order_by(ChildProfileVersion.version.desc()).limit(1)).first()
    snapshot = _snapshot(_profiles(deps, session, [child])[0])
    before: dict[str, str] = json.loads(previous.content or "{}") if previous else {}
    changed = [label for label in PROFILE_LABELS if before.get(label, "") != snapshot[label]]
    if previous is not None and not changed:
        return
    version = ChildProfileVersion(id=uuid.uuid4(), child_id=child.id, version=(previous.version if previous else 0) + 1,
                                  fields_changed=", ".join(changed)[:500], author_id=author_id, author_role=role.value,
                                  created_at=deps.clock.now())
    version.content = json.dumps(snapshot, ensure_ascii=False)
    session.add(version)


@dataclass(frozen=True)
class ProfileVersionView:
    version: int
    author: str
    author_role: str
    saved_at: datetime
    changes: list[Change]


def profile_history(deps: ServiceDeps, child_id: uuid.UUID, user: StaffView, actor: Actor
                    ) -> tuple[Profile, list[ProfileVersionView]]:
    with deps.db.transaction() as session:
        child, _access = open_child(deps, session, child_id, user, actor, action="child.history_viewed",
                               details={"purpose": "profile"})
        rows = session.execute(
            select(ChildProfileVersion, StaffUser).outerjoin(StaffUser, StaffUser.id == ChildProfileVersion.author_id)
            .where(ChildProfileVersion.child_id == child_id).order_by(ChildProfileVersion.version)
        ).all()
        views: list[ProfileVersionView] = []
        before: dict[str, str] = {}
        for version, author in rows:
            after: dict[str, str] = json.loads(version.content or "{}")
            views.append(ProfileVersionView(
                version=version.version, author=(author.display_name or "") if author else "System",
                author_role=Role(version.author_role).label, saved_at=version.created_at,
                changes=[Change(label, before.get(label, ""), after.get(label, "")) for label in PROFILE_LABELS
                         if before.get(label, "") != after.get(label, "")]))
            before = after
        return _profiles(deps, session, [child])[0], list(reversed(views))


# ---- opening a record -------------------------------------------------------------------------------------


def open_child(deps: ServiceDeps, session: Session, child_id: uuid.UUID, user: StaffView, actor: Actor, *,
          action: str | None = "child.viewed", details: dict[str, object] | None = None) -> tuple[Child, ChildAccess]:
    child = session.get(Child, child_id)
    if child is None:
        raise NotFoundError("child")
    access = access_to(session, user, child, deps.clock.now())
    if not access.can_read:
        raise BreakGlassRequiredError(child_id, allowed=access.may_break_glass)
    if action:
        audit.record(session, deps.audit_chain, deps.clock, actor, action, object_type="child", object_id=child.id,
                     details={**(details or {}), "via": access.via.value})
    return child, access


def record_denial(deps: ServiceDeps, child_id: uuid.UUID | None, actor: Actor, endpoint: str) -> None:
    audit.log_event(deps, actor, "child.access_denied", object_type="child", object_id=child_id, outcome="denied",
                    details={"endpoint": endpoint})


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    name: str


@dataclass(frozen=True)
class OrgSummary:
    id: uuid.UUID
    name: str
    kind: str
    code: str | None
    phone: str | None
    local_authority: str | None = None
    police_force: str | None = None


class ShownNames:
    """How a child is named on a page: the preferred name (else the legal name), the date of birth as people read it."""

    legal_name: str
    preferred_name: str
    date_of_birth: date | None

    @property
    def display_name(self) -> str:
        return self.preferred_name or self.legal_name

    @property
    def date_of_birth_text(self) -> str:
        return format_date(self.date_of_birth)


@dataclass(frozen=True)
class Profile(ShownNames):
    id: uuid.UUID
    legal_name: str
    preferred_name: str
    aliases: list[str]
    date_of_birth: date | None
    age: int | None
    sex: str
    sex_label: str
    nhs_number: str
    la_child_id: str
    legal_status: str
    legal_status_label: str
    placement_type: str
    placement_type_label: str
    placement_started_on: date | None
    responsible_la: OrgSummary | None
    placement: OrgSummary | None
    worker: Person | None
    team: Person | None
    version: int = 1

    @property
    def nhs_number_text(self) -> str:
        return format_nhs_number(self.nhs_number) if self.nhs_number else ""


def age_on(dob: date | None, today: date) -> int | None:
    if dob is None:
        return None
    return today.year - dob.year - ((today.month, today.day) < (dob.month, dob.day))


def _profiles(deps: ServiceDeps, session: Session, children: list[Child]) -> list[Profile]:
    """Profiles for many children with a fixed number of queries (organisations, staff, teams in bulk)."""
    today = deps.clock.now().date()
    org_ids = {i for c in children for i in (c.responsible_la_id, c.current_placement_id) if i}
    orgs: dict[uuid.UUID, Organisation] = {}
    if org_ids:
        # The organisations, their host local authority and the police force of either, in one SELECT.
        given = Organisation.id.in_(org_ids)
        with_areas = or_(given, Organisation.id.in_(select(Organisation.local_authority_id).where(given)))
        forces = select(Organisation.police_force_id).where(with_areas)
        orgs = {o.id: o for o in session.scalars(select(Organisation).where(
            or_(with_areas, Organisation.id.in_(forces))))}
    worker_ids = {c.allocated_worker_id for c in children if c.allocated_worker_id}
    # Each worker comes with their own team, usually the child's: the teams query is only for the others.
    workers = {u.id: u for u in session.scalars(select(StaffUser).options(joinedload(StaffUser.team))
                                                .where(StaffUser.id.in_(worker_ids)))} if worker_ids else {}
    teams = {u.team.id: u.team for u in workers.values() if u.team is not None}
    team_ids = {c.team_id for c in children if c.team_id} - set(teams)
    if team_ids:
        teams |= {t.id: t for t in session.scalars(select(Team).where(Team.id.in_(team_ids)))}
    codes = deps.definitions.code_lists

    def summary(org_id: uuid.UUID | None) -> OrgSummary | None:
        org = orgs.get(org_id) if org_id else None
        if org is None:
            return None
        la = orgs.get(org.local_authority_id) if org.local_authority_id else (
            org if org.kind == "local_authority" else None)
        force = orgs.get(la.police_force_id) if la is not None and la.police_force_id else None
        return OrgSummary(id=org.id, name=org.name, kind=org.kind, code=org.code, phone=org.phone,
                          local_authority=la.name if la else None, police_force=force.name if force else None)

    profiles = []
    for c in children:
        dob = date.fromisoformat(c.date_of_birth) if c.date_of_birth else None
        worker = workers.get(c.allocated_worker_id) if c.allocated_worker_id else None
        team = teams.get(c.team_id) if c.team_id else None
        profiles.append(Profile(
            id=c.id, legal_name=c.legal_name or "", preferred_name=c.preferred_name or "",
            aliases=(c.aliases or "").splitlines(), date_of_birth=dob, age=age_on(dob, today), sex=c.sex or "",
            sex_label=codes["SEX"].label(c.sex or ""), nhs_number=c.nhs_number or "",
            la_child_id=c.la_child_id or "", legal_status=c.legal_status or "",
            legal_status_label=codes["LS"].label(c.legal_status or ""), placement_type=c.placement_type or "",
            placement_type_label=codes["PLACE"].label(c.placement_type or ""),
            placement_started_on=date.fromisoformat(c.placement_started_on) if c.placement_started_on else None,
            responsible_la=summary(c.responsible_la_id), placement=summary(c.current_placement_id),
            worker=Person(worker.id, worker.display_name or "") if worker else None,
            team=Person(team.id, team.name) if team else None, version=c.version,
        ))
    return profiles


@dataclass(frozen=True)
class SectionSummary:
    code: str
    title: str
    summary: str
    core: bool
    status: str
    version: int | None
    reviewed_on: date | None
    next_review_due: date | None
    gaps: list[str]
    can_edit: bool
    author: str | None = None
    author_role: str | None = None

    @property
    def status_label(self) -> str:
        return SECTION_STATUS_LABELS[self.status]


@dataclass(frozen=True)
class PhotoStatus:
    status: str
    attachment_id: uuid.UUID | None
    taken_on: date | None
    age_days: int | None

    @property
    def label(self) -> str:
        return PHOTO_STATUS_LABELS[self.status]


@dataclass(frozen=True)
class RestrictedPerson:
    name: str
    relationship: str
    reasons: list[str]
    order_reference: str


@dataclass(frozen=True)
class ChildPage:
    profile: Profile
    access: ChildAccess
    sections: list[SectionSummary]
    photo: PhotoStatus
    restricted: list[RestrictedPerson]
    preferred_hospital: str
    emergency_instruction: str
    contents: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def core_gaps(self) -> int:
        return sum(1 for s in self.sections if s.core and s.status in ("missing", "overdue"))


def section_status(next_review_due: date | None, today: date, due_soon_days: int) -> str:
    if next_review_due is None:
        return "missing"
    if next_review_due < today:
        return "overdue"
    if next_review_due <= today + timedelta(days=due_soon_days):
        return "due_soon"
    return "complete"


def photo_status(taken_on: date | None, attachment: uuid.UUID | None, today: date, warn_days: int,
                 stale_days: int) -> PhotoStatus:
    if taken_on is None or attachment is None:
        return PhotoStatus("missing", None, None, None)
    age = (today - taken_on).days
    status = "stale" if age > stale_days else "warn" if age > warn_days else "current"
    return PhotoStatus(status, attachment, taken_on, age)


def current_versions(session: Session, child_id: uuid.UUID) -> dict[str, SectionVersion]:
    """The newest version of each section in one query, however many versions exist."""
    rows = session.scalars(select(SectionVersion).where(SectionVersion.child_id == child_id,
                                                        SectionVersion.is_current.is_(True)))
    return {row.section_code: row for row in rows}


def restricted_people(section: SectionDef | None, content: dict[str, Any],
                      shows: Callable[[str], bool] = lambda _field_id: True) -> list[RestrictedPerson]:
    """The people the child must be kept from, and why. ``shows`` says which entry fields may be used (a pack
    reads only the fields its recipient gets): a reason or a relationship from a hidden field is left out."""
    if section is None or section.entry is None:
        return []
    people = []
    status_codes = section.entry.field("contact_status").codes if any(
        f.id == "contact_status" for f in section.entry.fields) else None
    for entry in content.get(ENTRIES, []) or []:
        reasons = []
        status = entry.get("contact_status")
        if status in RESTRICTED_STATUSES and status_codes and shows("contact_status"):
            reasons.append(status_codes.label(status))
        if entry.get("must_not_know_placement_address") == "yes" and shows("must_not_know_placement_address"):
            reasons.append("Must not know the placement address")
        if entry.get("is_associate_of_concern") == "yes" and shows("is_associate_of_concern"):
            reasons.append("Associate of concern (see the exploitation plan)")
        if reasons:
            people.append(RestrictedPerson(
                name=str(entry.get("name") or ""),
                relationship=str(entry.get("relationship") or "") if shows("relationship") else "",
                reasons=reasons,
                order_reference=str(entry.get("order_reference") or "") if shows("order_reference") else ""))
    return people


def child_page(deps: ServiceDeps, child_id: uuid.UUID, user: StaffView, actor: Actor) -> ChildPage:
    """Everything the child's page shows, read with a fixed number of queries (a test counts them)."""
    record = deps.settings.record
    today = deps.clock.now().date()
    with deps.db.transaction() as session:
        child, access = open_child(deps, session, child_id, user, actor)
        profile = _profiles(deps, session, [child])[0]
        versions: dict[str, SectionVersion] = {}
        authors: dict[uuid.UUID, StaffUser] = {}
        for version, saved_by in session.execute(
                select(SectionVersion, StaffUser).outerjoin(StaffUser, StaffUser.id == SectionVersion.author_id)
                .where(SectionVersion.child_id == child.id, SectionVersion.is_current.is_(True))):
            versions[version.section_code] = version
            if saved_by is not None:
                authors[saved_by.id] = saved_by
        contents = {code: json.loads(v.content or "{}") for code, v in versions.items()}
        summaries = []
        for section in deps.definitions.ordered():
            v = versions.get(section.code)
            content = contents.get(section.code, {})
            author = authors.get(v.author_id) if v else None
            summaries.append(SectionSummary(
                code=section.code, title=section.title, summary=section.summary, core=section.core,
                status=section_status(v.next_review_due if v else None, today, record.due_soon_days),
                version=v.version if v else None, reviewed_on=v.reviewed_on if v else None,
                next_review_due=v.next_review_due if v else None,
                gaps=gaps(section, content) if v else [], can_edit=access.can_edit(section),
                author=author.display_name if author else None,
                author_role=Role(v.author_role).label if v else None,
            ))
        photo_content = contents.get("PHOTO", {})
        taken = photo_content.get("taken_on")
        photo_ref = photo_content.get("photo")
        attachment_id = uuid.UUID(photo_ref["attachment"]) if isinstance(photo_ref, dict) and \
            "attachment" in photo_ref else None
        health = contents.get("HEALTH", {})
        return ChildPage(
            profile=profile, access=access, sections=summaries,
            photo=photo_status(date.fromisoformat(taken) if isinstance(taken, str) else None, attachment_id, today,
                               record.photo_warn_days, record.photo_stale_days),
            restricted=restricted_people(deps.definitions.sections.get("CONTACTS"), contents.get("CONTACTS", {})),
            preferred_hospital=_text(health.get("preferred_hospital_name")),
            emergency_instruction=_text(health.get("emergency_instruction")),
            contents=contents,
        )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def profile_for_edit(deps: ServiceDeps, child_id: uuid.UUID, user: StaffView, actor: Actor) -> Profile:
    with deps.db.transaction() as session:
        child, access = open_child(deps, session, child_id, user, actor, action="child.viewed",
                              details={"purpose": "profile"})
        if not access.can_edit_profile:
            raise ForbiddenActionError("You cannot change this child's details")
        return _profiles(deps, session, [child])[0]


def child_heading(deps: ServiceDeps, child_id: uuid.UUID, user: StaffView, actor: Actor,
                  action: str | None = None) -> tuple[Profile, ChildAccess]:
    """The profile and access for pages inside a record (section forms, history)."""
    with deps.db.transaction() as session:
        child, access = open_child(deps, session, child_id, user, actor, action=action)
        return _profiles(deps, session, [child])[0], access


# ---- lists and search -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildListRow(ShownNames):
    """A line of the child list: only what the list shows is decrypted (three fields and the worker's name)."""

    id: uuid.UUID
    legal_name: str
    preferred_name: str
    date_of_birth: date | None
    placement: Person | None
    worker: Person | None


def my_children(deps: ServiceDeps, user: StaffView, actor: Actor, limit: int = 500) -> list[ChildListRow]:
    """The children a person sees without break-glass (the newest ``limit``; names are encrypted, so the
    list is sorted by name after decrypting). One SELECT with the placement and the worker joined."""
    with deps.db.transaction() as session:
        query = (select(Child, Organisation.id, Organisation.name, StaffUser)
                 .outerjoin(Organisation, Organisation.id == Child.current_placement_id)
                 .outerjoin(StaffUser, StaffUser.id == Child.allocated_worker_id)
                 .options(load_only(Child.legal_name_enc, Child.preferred_name_enc, Child.date_of_birth_enc,
                                    raiseload=True), load_only(StaffUser.display_name_enc, raiseload=True))
                 .order_by(Child.created_at.desc(), Child.id))
        condition = visible_filter(user)
        if condition is not None:
            query = query.where(condition)  # type: ignore[arg-type]
        rows = session.execute(query.limit(limit)).all()
        workers: dict[uuid.UUID, Person] = {}
        listed = []
        for child, placement_id, placement_name, worker in rows:
            if worker is not None and worker.id not in workers:
                workers[worker.id] = Person(worker.id, worker.display_name or "")
            dob = child.date_of_birth
            listed.append(ChildListRow(
                id=child.id, legal_name=child.legal_name or "", preferred_name=child.preferred_name or "",
                date_of_birth=date.fromisoformat(dob) if dob else None,
                placement=Person(placement_id, placement_name) if placement_id is not None else None,
                worker=workers[worker.id] if worker is not None else None))
        audit.record(session, deps.audit_chain, deps.clock, actor, "child.list_viewed",
                     details={"count": len(rows)})
    return sorted(listed, key=lambda p: (p.display_name.casefold(), str(p.id)))


@dataclass(frozen=True)
class SearchResult:
    visible: list[Profile]
    #: Records that match but which the user may only open with a break-glass reason.
    not_allocated: list[uuid.UUID]


def search(deps: ServiceDeps, query: str, date_of_birth: date | None, user: StaffView, actor: Actor) -> SearchResult:
    """Exact match on a name, alias, NHS number or local child ID through blind indexes; never plaintext."""
    bi = deps.blind_index
    text = " ".join(query.replace("\x00", "").split())
    digits = "".join(text.split())
    digests: list[bytes] = []
    kind = "name"
    if digits.isdigit() and len(digits) == 10:
        digests.append(bi.digest("child-nhs", digits))
        kind = "nhs"
    if text:
        digests += [bi.digest("child-local-id", text), bi.digest("child-name", text)]
        if date_of_birth is not None:
            digests.append(bi.digest("child-surname-dob", _surname(text), date_of_birth.isoformat()))
    if user.role is Role.ADMIN:
        raise ForbiddenActionError("Administrators do not see children's records")
    with deps.db.transaction() as session:
        ids = set(session.scalars(select(ChildSearchKey.child_id).where(ChildSearchKey.digest.in_(digests)))) \
            if digests else set()
        children = list(session.scalars(select(Child).where(Child.id.in_(ids)))) if ids else []
        if date_of_birth is not None:
            children = [c for c in children if c.date_of_birth == date_of_birth.isoformat()]
        visible = [c for c in children if allocation_access(user, c) is not Via.NONE]
        hidden = [c.id for c in children if allocation_access(user, c) is Via.NONE]
        audit.record(session, deps.audit_chain, deps.clock, actor, "child.searched",
                     details={"kind": kind, "count": len(visible), "rows": len(hidden)})
        return SearchResult(visible=_profiles(deps, session, visible), not_allocated=sorted(hidden, key=str))


# ---- break-glass ------------------------------------------------------------------------------------------

BREAK_GLASS_BODY = """A member of staff has opened a child's record that is not allocated to them, using break-glass
access. Their reason is recorded.

Please check that the access was appropriate: sign in to {service} and open "Break-glass access".
{url}

This email does not name the child or the member of staff.
{council}
"""


def break_glass(deps: ServiceDeps, child_id: uuid.UUID, reason: str, user: StaffView, actor: Actor) -> datetime:
    """Grant read-only access for a limited time, tell the child's team managers, flag it in the audit."""
    reason = typed_reason(reason, asking="the reason you need to see this record", max_length=500)
    now = deps.clock.now()
    with deps.db.transaction() as session:
        child = session.get(Child, child_id)
        if child is None:
            raise NotFoundError("child")
        access = access_to(session, user, child, now)
        if access.can_read:
            return access.break_glass_until or now
        if not access.may_break_glass:
            raise ForbiddenActionError("Your role cannot open children's records")
        grant = BreakGlassGrant(id=uuid.uuid4(), child_id=child.id, staff_id=user.id, created_at=now,
                                expires_at=now + timedelta(minutes=deps.settings.record.break_glass_minutes))
        grant.reason = reason
        session.add(grant)
        managers = _team_managers(session, child.team_id)
        settings = deps.settings.app
        for manager in managers:
            outbox.enqueue(session, now, to=manager.email or "", subject=f"{settings.service_name}: break-glass access",
                           body=BREAK_GLASS_BODY.format(service=settings.service_name, council=settings.council_name,
                                                        url=settings.public_base_url.rstrip("/") + "/break-glass"),
                           purpose="break_glass", idempotency_key=f"break-glass:{grant.id}:{manager.id}")
        audit.record(session, deps.audit_chain, deps.clock, actor, "child.break_glass", object_type="child",
                     object_id=child.id, details={"link_id": grant.id, "count": len(managers),
                                                  "via": Via.BREAK_GLASS.value})
        return grant.expires_at


def _team_managers(session: Session, team_id: uuid.UUID | None) -> list[StaffUser]:
    if team_id is None:
        return []
    return list(session.scalars(select(StaffUser).where(StaffUser.team_id == team_id,
                                                        StaffUser.role == Role.TEAM_MANAGER.value,
                                                        StaffUser.status == "active")))


@dataclass(frozen=True)
class BreakGlassEntry:
    id: uuid.UUID
    child_id: uuid.UUID
    staff_name: str
    staff_role: str
    reason: str
    created_at: datetime
    expires_at: datetime


def break_glass_log(deps: ServiceDeps, user: StaffView, actor: Actor, limit: int = 200) -> list[BreakGlassEntry]:
    """Break-glass grants managers must be able to see: a team manager their team's children, seniors all."""
    if user.role not in (Role.TEAM_MANAGER, Role.SENIOR_MANAGER, Role.AUDITOR):
        raise ForbiddenActionError("Only managers and auditors see break-glass access")
    with deps.db.transaction() as session:
        query = (select(BreakGlassGrant, StaffUser).join(StaffUser, StaffUser.id == BreakGlassGrant.staff_id)
                 .join(Child, Child.id == BreakGlassGrant.child_id)
                 .order_by(BreakGlassGrant.created_at.desc()).limit(limit))
        if user.role is Role.TEAM_MANAGER:
            query = query.where(Child.team_id == user.team_id)
        rows = session.execute(query).all()
        audit.record(session, deps.audit_chain, deps.clock, actor, "break_glass.log_viewed",
                     details={"count": len(rows)})
        return [BreakGlassEntry(id=g.id, child_id=g.child_id, staff_name=s.display_name or "",
                                staff_role=Role(s.role).label, reason=g.reason or "", created_at=g.created_at,
                                expires_at=g.expires_at) for g, s in rows]


# ---- choices for forms ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


def allocation_choices(deps: ServiceDeps) -> tuple[list[Choice], list[Choice]]:
    """Teams, and social workers with their team, for the profile form."""
    with deps.db.transaction() as session:
        teams = [Choice(str(t.id), t.name) for t in session.scalars(select(Team).order_by(Team.name))]
        team_names = {c.value: c.label for c in teams}
        workers = [Choice(str(u.id), f"{u.display_name} ({team_names.get(str(u.team_id), 'no team')})")
                   for u in session.scalars(select(StaffUser).where(StaffUser.role == Role.SOCIAL_WORKER.value,
                                                                    StaffUser.status != "disabled"))]
    return teams, sorted(workers, key=lambda c: c.label.casefold())
