"""The audit viewer: for one child, who viewed or changed what and when, staff and recipients (issue 6 part 7);
and the audit trail's integrity check for administrators.

A child's trail is read from two places and merged by time:

- audit events about the child itself (``object_type="child"``) and about what belongs to it: its transitions,
  its packs and its uploaded files. Staff, system jobs and refusals are here. Events a recipient caused are
  recorded twice (the audit event and the pack's access log); only the access log's copy is shown.
- the access log of every pack of the child (:class:`PackEvent`): link fetched, code sent, wrong code,
  verified, viewed, downloaded, confirmed, information requested, refused.

Auditors, senior managers and (for their team's children) team managers read a trail without opening the
child's record (``access.can_view_audit``): it names the child only by a neutral reference (local child ID
and year of birth), never by name, and shows no content of the record. Where the child lives or is going is
record content (the identity-protected "placement" and "destination"): an auditor, who may not read the record,
sees a placement, home, hospital or ward the child moved to, from or was sent a pack by its kind ("a children's
home"), never its name; managers, who may read the record, see the name. Police forces, local authorities and
other public bodies are named for everyone. Reading a trail is itself audited.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Subquery, and_, func, literal_column, or_, select, union_all
from sqlalchemy.orm import Session

from transitions.models import (
    Attachment,
    AuditEvent,
    Child,
    ChildSearchKey,
    MissingEpisode,
    Organisation,
    OrganisationKind,
    Pack,
    PackEvent,
    StaffUser,
    Team,
    Transition,
)
from transitions.services import audit
from transitions.services.access import audit_filter, can_view_audit
from transitions.services.accounts import StaffView
from transitions.services.audit import Actor, ChainReport
from transitions.services.deps import ServiceDeps
from transitions.services.errors import ForbiddenActionError, NotFoundError
from transitions.services.packs import EVENT_LABELS, REVOKED_LABELS
from transitions.services.roles import ROLE_LABELS, Role

PAGE_SIZE = 100
CHILDREN_PAGE_SIZE = 50
AUDIT_ROLES = frozenset({Role.AUDITOR, Role.SENIOR_MANAGER, Role.TEAM_MANAGER})
#: Organisations that are where a child lives or stays, as an auditor's trail names them instead of by name.
PLACE_LABELS = {
    OrganisationKind.PLACEMENT.value: "a placement",
    OrganisationKind.CHILDRENS_HOME.value: "a children's home",
    OrganisationKind.HOSPITAL.value: "a hospital",
    OrganisationKind.WARD.value: "a hospital ward",
}

#: What each audit action means, as an auditor reads it. An unknown code is shown as it is.
ACTION_LABELS = {
    "child.created": "Added the child's record",
    "child.viewed": "Opened the record",
    "child.profile_changed": "Changed the child's details",
    "child.history_viewed": "Read the history of the child's details",
    "child.access_denied": "Was refused access",
    "child.break_glass": "Opened the record with break-glass access",
    "section.viewed": "Read a section",
    "section.edit_opened": "Opened a section to change it",
    "section.saved": "Saved a section",
    "section.reviewed": "Reviewed a section with no change",
    "section.history_viewed": "Read a section's history",
    "attachment.uploaded": "Uploaded a file",
    "attachment.viewed": "Opened a file",
    "transition.created": "Started a move or admission",
    "transition.viewed": "Opened a move or admission",
    "transition.superseded": "A later move replaced this one",
    "transition.override": "Agreed to go ahead without a section",
    "transition.recipient_added": "Added a recipient",
    "transition.recipient_removed": "Removed a recipient",
    "transition.approval_recorded": "Recorded an approval",
    "transition.status_changed": "Changed the status of a move or admission",
    "crisis.flagged": "Crisis flag raised",
    "crisis.acknowledged": "Acknowledged a crisis flag",
    "pack.issued": "Sent a pack",
    "pack.send_refused_limit": "Was stopped by the pack send limit",
    "ops.alert_raised": "Operations alert raised",
    "pack.revoked": "Revoked a pack's link",
    "pack.access_log_viewed": "Read a recipient's access log",
    "pack.recipient_verified": "Recipient verified",
    "pack.downloaded": "PDF downloaded",
    "pack.confirmed": "Receipt confirmed",
    "pack.information_requested": "Information requested",
    "escalation.raised": "Escalation raised",
    "escalation.acknowledged": "Acknowledged an escalation",
    "escalation.resolved": "Resolved an escalation",
    "task.done": "Completed a task",
    "audit.trail_viewed": "Read this audit trail",
    "recipient_map.viewed": "Read the recipient map",
}
#: Events a recipient caused are also in the pack's access log, which is the copy shown.
RECIPIENT = "recipient"
OUTCOME_LABELS = {"success": "", "ok": "", "denied": "Refused", "refused": "Refused", "failed": "Failed"}


def action_label(code: str) -> str:
    return ACTION_LABELS.get(code, code)


# ---- which child ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildReference:
    """A child as the audit pages name them: no name, no record content."""

    id: uuid.UUID
    la_child_id: str
    birth_year: int | None
    team: str

    @property
    def label(self) -> str:
        return self.la_child_id or "no local child ID"


def _require_role(user: StaffView) -> None:
    if user.role not in AUDIT_ROLES:
        raise ForbiddenActionError("Only auditors and managers read the audit trail")


def _references(session: Session, children: list[Child]) -> list[ChildReference]:
    team_ids = {c.team_id for c in children if c.team_id}
    teams = {t.id: t.name for t in session.scalars(select(Team).where(Team.id.in_(team_ids)))} if team_ids else {}
    return [ChildReference(id=c.id, la_child_id=c.la_child_id or "",
                           birth_year=int(c.date_of_birth[:4]) if c.date_of_birth else None,
                           team=teams.get(c.team_id, "") if c.team_id else "") for c in children]


@dataclass(frozen=True)
class ChildList:
    children: list[ChildReference]
    page: int
    pages: int
    total: int


def _pages(total: int, size: int) -> int:
    return max(1, -(-total // size))


def children_for_audit(deps: ServiceDeps, user: StaffView, actor: Actor, page: int = 1) -> ChildList:
    """The children whose trail this person may read, newest record first, by neutral reference only."""
    _require_role(user)
    with deps.db.transaction() as session:
        condition = audit_filter(user)
        count = select(func.count()).select_from(Child)
        query = select(Child).order_by(Child.created_at.desc(), Child.id)
        if condition is not None:
            count, query = count.where(condition), query.where(condition)  # type: ignore[arg-type]
        total = session.scalar(count) or 0
        pages = _pages(total, CHILDREN_PAGE_SIZE)
        page = min(max(page, 1), pages)
        found = list(session.scalars(query.limit(CHILDREN_PAGE_SIZE).offset((page - 1) * CHILDREN_PAGE_SIZE)))
        audit.record(session, deps.audit_chain, deps.clock, actor, "audit.children_listed",
                     details={"count": len(found), "rows": total})
        return ChildList(children=_references(session, found), page=page, pages=pages, total=total)


def find_by_local_id(deps: ServiceDeps, local_id: str, user: StaffView, actor: Actor) -> list[ChildReference]:
    """Exact match on the local child ID through its blind index (never a plaintext search)."""
    _require_role(user)
    text = " ".join(local_id.replace("\x00", "").split())
    with deps.db.transaction() as session:
        ids = set(session.scalars(select(ChildSearchKey.child_id).where(
            ChildSearchKey.digest == deps.blind_index.digest("child-local-id", text)))) if text else set()
        found = [c for c in session.scalars(select(Child).where(Child.id.in_(ids)).order_by(Child.created_at))
                 if can_view_audit(user, c)] if ids else []
        audit.record(session, deps.audit_chain, deps.clock, actor, "audit.child_searched",
                     details={"kind": "local_id", "count": len(found)})
        return _references(session, found)


# ---- one child's trail ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrailFilter:
    """Everyone, all staff, all recipients, one member of staff or one recipient organisation."""

    who: str = "all"  # all, staff, recipients, person, organisation
    id: uuid.UUID | None = None

    @property
    def value(self) -> str:
        return f"{self.who}:{self.id}" if self.id else self.who

    @classmethod
    def parse(cls, text: str) -> TrailFilter:
        """From the filter's query parameter; ValueError when it is not one of the forms above."""
        who, _, ident = (text or "all").partition(":")
        if who in ("all", "staff", "recipients") and not ident:
            return cls(who)
        if who in ("person", "organisation") and ident:
            return cls(who, uuid.UUID(ident))
        raise ValueError("not a filter")


@dataclass(frozen=True)
class TrailRow:
    at: datetime
    who: str
    #: staff, recipient, system or anonymous
    who_kind: str
    what: str
    code: str
    object: str
    detail: str
    outcome: str


@dataclass(frozen=True)
class Trail:
    child: ChildReference
    rows: list[TrailRow]
    page: int
    pages: int
    total: int
    filter: TrailFilter
    #: (filter value, label) for the filter's select: everyone, staff, recipients, then each person and
    #: each recipient organisation that appears in this child's trail.
    choices: list[tuple[str, str]] = field(default_factory=list)
    #: Placements, homes, hospitals and wards are shown by their kind, not their name (an auditor's trail).
    places_hidden: bool = False


@dataclass
class _Objects:
    """The child's transitions, packs and files: what its audit events may be about."""

    transitions: dict[str, Transition]
    packs: dict[str, Pack]
    attachments: dict[str, Attachment]
    episodes: dict[str, MissingEpisode]
    organisations: dict[uuid.UUID, Organisation]
    #: Organisations whose name says where the child lives, lived or is going; empty unless the reader may not
    #: read the child's record (an auditor), who then sees each by its kind (:func:`_org_name`).
    places: set[uuid.UUID] = field(default_factory=set)


def _places(deps: ServiceDeps, transitions: dict[str, Transition], orgs: dict[uuid.UUID, Organisation]
            ) -> set[uuid.UUID]:
    """The placements, homes, hospitals and wards among the organisations, any kind a move or admission may go
    to, and each move's destination and origin whatever their kind."""
    kinds = set(PLACE_LABELS)
    for kind in deps.definitions.kinds.values():
        kinds |= kind.destination_kinds
    found = {o.id for o in orgs.values() if o.kind in kinds}
    for transition in transitions.values():
        found |= {transition.destination_id} | ({transition.origin_id} if transition.origin_id else set())
    return found


def _org_name(org: Organisation, objects: _Objects) -> str:
    if org.id not in objects.places:
        return org.name
    return PLACE_LABELS.get(org.kind, "an organisation")


def _objects(deps: ServiceDeps, session: Session, child_id: uuid.UUID, *, hide_places: bool) -> _Objects:
    transitions = {str(t.id): t for t in session.scalars(select(Transition).where(Transition.child_id == child_id))}
    packs = {str(p.id): p for p in session.scalars(select(Pack).where(Pack.child_id == child_id))}
    attachments = {str(a.id): a for a in session.scalars(select(Attachment).where(Attachment.child_id == child_id))}
    episodes = {str(e.id): e for e in session.scalars(select(MissingEpisode).where(
        MissingEpisode.child_id == child_id))}
    org_ids = {p.organisation_id for p in packs.values()} | {t.destination_id for t in transitions.values()}
    orgs = {o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(org_ids)))} \
        if org_ids else {}
    places = _places(deps, transitions, orgs) if hide_places else set()
    return _Objects(transitions, packs, attachments, episodes, orgs, places)


def _about_child(child_id: uuid.UUID, objects: _Objects) -> ColumnElement[bool]:
    """Audit events about the child or something of the child's."""
    conditions = [and_(AuditEvent.object_type == "child", AuditEvent.object_id == str(child_id))]
    for object_type, ids in (("transition", objects.transitions), ("pack", objects.packs),
                             ("attachment", objects.attachments), ("missing_episode", objects.episodes)):
        if ids:
            conditions.append(and_(AuditEvent.object_type == object_type, AuditEvent.object_id.in_(list(ids))))
    return and_(or_(*conditions), AuditEvent.actor_kind != RECIPIENT)


Condition = ColumnElement[bool]


def _filtered(flt: TrailFilter, child_id: uuid.UUID, objects: _Objects) -> tuple[Condition | None, Condition | None]:
    """The conditions on audit events and on pack events (None: that source is left out)."""
    about = _about_child(child_id, objects)
    staff_events: Condition | None = about
    pack_ids = [p.id for p in objects.packs.values()]
    pack_events: Condition | None = PackEvent.pack_id.in_(pack_ids) if pack_ids else None
    if flt.who == "staff":
        staff_events, pack_events = and_(about, AuditEvent.actor_kind == "staff"), None
    elif flt.who == "recipients":
        staff_events = None
    elif flt.who == "person":
        staff_events = and_(about, AuditEvent.actor_kind == "staff", AuditEvent.actor_id == str(flt.id))
        pack_events = None
    elif flt.who == "organisation":
        staff_events = None
        mine = [p.id for p in objects.packs.values() if p.organisation_id == flt.id]
        pack_events = PackEvent.pack_id.in_(mine) if mine else None
    return staff_events, pack_events


def _section_title(deps: ServiceDeps, code: str) -> str:
    section = deps.definitions.sections.get(code)
    return section.title if section else code


def _object_text(deps: ServiceDeps, event: AuditEvent, details: dict[str, object], objects: _Objects) -> str:
    purpose = str(details.get("purpose") or "")
    if event.object_type == "transition" and event.object_id in objects.transitions:
        transition = objects.transitions[event.object_id]
        return _transition_text(deps, transition, objects)
    if event.object_type == "pack" and event.object_id in objects.packs:
        return _pack_text(objects.packs[event.object_id], objects)
    if event.object_type == "attachment":
        attachment = objects.attachments.get(event.object_id or "")
        code = attachment.section_code if attachment else purpose.split(".")[0]
        return f"A file in {_section_title(deps, code)}" if code else "A file"
    if event.object_type == "missing_episode":
        return "A missing episode"
    if purpose == "profile":
        return "The child's details"
    if purpose == "transition":
        return "A move or admission"
    if purpose and "." in purpose:
        return f"A file in {_section_title(deps, purpose.split('.')[0])}"
    if purpose and purpose in deps.definitions.sections:
        return f"Section: {_section_title(deps, purpose)}"
    return "The child's record"


def _transition_text(deps: ServiceDeps, transition: Transition, objects: _Objects) -> str:
    kind = deps.definitions.kinds.get(transition.kind)
    where = objects.organisations.get(transition.destination_id)
    return (kind.title if kind else transition.kind) + (f" to {_org_name(where, objects)}" if where else "")


def _pack_text(pack: Pack, objects: _Objects) -> str:
    org = objects.organisations.get(pack.organisation_id)
    return f"Pack {pack.reference} version {pack.version}" + (f" for {_org_name(org, objects)}" if org else "")


def _recipient_label(org: Organisation, objects: _Objects) -> str:
    """A recipient organisation in the filter: by name, or (a place, for an auditor) by its kind and the
    references of its packs, which tell two homes apart without naming them."""
    if org.id not in objects.places:
        return f"Recipient: {org.name}"
    refs = sorted({p.reference for p in objects.packs.values() if p.organisation_id == org.id})
    return f"Recipient: {_org_name(org, objects)} (pack{'s' if len(refs) > 1 else ''} {', '.join(refs)})"


def _detail_text(deps: ServiceDeps, event: AuditEvent, details: dict[str, object]) -> str:
    parts = []
    if details.get("via") == "break_glass":
        parts.append("Break-glass access")
    if event.action in ("section.saved", "section.reviewed") and details.get("count"):
        parts.append(f"Version {details['count']}")
    if event.action == "pack.issued" and details.get("kind"):
        rtype = deps.definitions.recipient_types.get(str(details["kind"]))
        parts.append(rtype.title if rtype else str(details["kind"]))
    if event.action == "pack.revoked" and details.get("reason_code"):
        parts.append(REVOKED_LABELS.get(str(details["reason_code"]), str(details["reason_code"])))
    if event.action == "transition.status_changed" and details.get("status"):
        parts.append(f"Now {str(details['status']).replace('_', ' ')}")
    if event.action == "audit.trail_viewed" and details.get("kind") not in (None, "all"):
        parts.append(f"Filtered: {details['kind']}")
    return "; ".join(parts)


def _person_label(person: StaffUser) -> str:
    """Name and role, as the trail shows a member of staff: "Dana Price, Social worker"."""
    return f"{person.display_name or 'Unnamed account'}, {ROLE_LABELS[Role(person.role)]}"


def _who(event: AuditEvent, people: dict[str, StaffUser]) -> str:
    if event.actor_kind == "staff":
        person = people.get(event.actor_id or "")
        if person is None:
            return "A member of staff (account not found)"
        return _person_label(person)
    if event.actor_kind == "system":
        return f"The service ({event.actor_id or 'system'})"
    return "Someone not signed in"


def _choices(session: Session, child_id: uuid.UUID, objects: _Objects) -> list[tuple[str, str]]:
    staff_ids = set(session.scalars(select(AuditEvent.actor_id).distinct().where(
        _about_child(child_id, objects), AuditEvent.actor_kind == "staff")))
    people = _people(session, staff_ids)
    out = [("all", "Everyone"), ("staff", "All staff"), ("recipients", "All recipients")]
    out += sorted(((f"person:{p.id}", _person_label(p)) for p in people.values()), key=lambda c: c[1].casefold())
    org_ids = {p.organisation_id for p in objects.packs.values()}
    out += sorted(((f"organisation:{o.id}", _recipient_label(o, objects)) for i, o in objects.organisations.items()
                   if i in org_ids), key=lambda c: c[1].casefold())
    return out


def _people(session: Session, ids: set[str | None]) -> dict[str, StaffUser]:
    uuids = []
    for text in ids:
        try:
            uuids.append(uuid.UUID(text or ""))
        except ValueError:
            continue
    if not uuids:
        return {}
    return {str(u.id): u for u in session.scalars(select(StaffUser).where(StaffUser.id.in_(uuids)))}


def trail(deps: ServiceDeps, child_id: uuid.UUID, user: StaffView, actor: Actor, *, page: int = 1,
          flt: TrailFilter | None = None) -> Trail:
    """One page (newest first) of who saw or changed what of this child's, and when."""
    _require_role(user)
    flt = flt or TrailFilter()
    with deps.db.transaction() as session:
        child = session.get(Child, child_id)
        if child is None:
            raise NotFoundError("child")
        if not can_view_audit(user, child):
            raise ForbiddenActionError("You can read the audit trail of your own team's children only")
        objects = _objects(deps, session, child.id, hide_places=user.role is Role.AUDITOR)
        staff_events, pack_events = _filtered(flt, child.id, objects)
        parts: list[Select[Any, Any, Any]] = []
        if staff_events is not None:
            parts.append(select(AuditEvent.occurred_at.label("at"), literal_column("0").label("src"),
                                AuditEvent.seq.label("key")).where(staff_events))
        if pack_events is not None:
            parts.append(select(PackEvent.at.label("at"), literal_column("1").label("src"),
                                PackEvent.id.label("key")).where(pack_events))
        merged: Subquery | None = None
        if parts:
            merged = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
        total = (session.scalar(select(func.count()).select_from(merged)) or 0) if merged is not None else 0
        pages = _pages(total, PAGE_SIZE)
        page = min(max(page, 1), pages)  # past the end: the last page
        keys = list(session.execute(select(merged.c.src, merged.c.key)
                                    .order_by(merged.c.at.desc(), merged.c.src.desc(), merged.c.key.desc())
                                    .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))) if merged is not None else []
        rows = _rows(deps, session, keys, objects)
        reference = _references(session, [child])[0]
        choices = _choices(session, child.id, objects)
        audit.record(session, deps.audit_chain, deps.clock, actor, "audit.trail_viewed", object_type="child",
                     object_id=child.id, details={"kind": flt.who, "count": len(rows), "rows": total})
        return Trail(child=reference, rows=rows, page=page, pages=pages, total=total, filter=flt, choices=choices,
                     places_hidden=user.role is Role.AUDITOR)


def _rows(deps: ServiceDeps, session: Session, keys: Sequence[tuple[int, int]], objects: _Objects
          ) -> list[TrailRow]:
    seqs = [key for src, key in keys if int(src) == 0]
    pack_event_ids = [key for src, key in keys if int(src) == 1]
    events = {e.seq: e for e in session.scalars(select(AuditEvent).where(AuditEvent.seq.in_(seqs)))} if seqs else {}
    pack_events = {e.id: e for e in session.scalars(select(PackEvent).where(PackEvent.id.in_(pack_event_ids)))} \
        if pack_event_ids else {}
    people = _people(session, {e.actor_id for e in events.values() if e.actor_kind == "staff"})
    packs_by_id = {p.id: p for p in objects.packs.values()}
    rows = []
    for src, key in keys:
        if int(src) == 0:
            event = events[key]
            details = _details(event)
            rows.append(TrailRow(at=event.occurred_at, who=_who(event, people), who_kind=event.actor_kind,
                                 what=action_label(event.action), code=event.action,
                                 object=_object_text(deps, event, details, objects),
                                 detail=_detail_text(deps, event, details),
                                 outcome=OUTCOME_LABELS.get(event.outcome, event.outcome)))
        else:
            pe = pack_events[key]
            pack = packs_by_id[pe.pack_id]
            org = objects.organisations.get(pack.organisation_id)
            name = _org_name(org, objects) if org else "organisation not found"
            rows.append(TrailRow(at=pe.at, who=f"Recipient: {name} (pack {pack.reference})", who_kind=RECIPIENT,
                                 what=EVENT_LABELS.get(pe.action, pe.action), code=pe.action,
                                 object=_pack_text(pack, objects), detail="",
                                 outcome=OUTCOME_LABELS.get(pe.outcome, pe.outcome)))
    return rows


def _details(event: AuditEvent) -> dict[str, object]:
    try:
        found = json.loads(event.details or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


# ---- the audit trail's integrity (administrators) ---------------------------------------------------------

VERIFIED = "audit.verified"


@dataclass(frozen=True)
class BrokenEvent:
    seq: int
    occurred_at: datetime | None
    action: str


@dataclass(frozen=True)
class IntegrityCheck:
    ok: bool
    checked: int
    checkpoint: str
    problem: str
    first_broken: BrokenEvent | None


@dataclass(frozen=True)
class LastCheck:
    at: datetime
    by: str
    ok: bool
    checked: int
    first_broken_seq: int | None


def _require_admin(user: StaffView) -> None:
    if user.role is not Role.ADMIN:
        raise ForbiddenActionError("Only administrators check the audit trail")


def check_integrity(deps: ServiceDeps, user: StaffView, actor: Actor,
                    checkpoint: tuple[int, bytes] | None = None) -> IntegrityCheck:
    """What `cla-transitions audit-verify` does, from the admin page; the result is kept as an audit event."""
    _require_admin(user)
    with deps.db.transaction() as session:
        report = audit.verify(session, deps.audit_chain, checkpoint=checkpoint)
    broken = None
    if report.first_broken_seq is not None:
        with deps.db.transaction() as session:
            event = session.get(AuditEvent, report.first_broken_seq)
            broken = BrokenEvent(report.first_broken_seq, event.occurred_at if event else None,
                                 event.action if event else "")
    record_check(deps, actor, report)
    return IntegrityCheck(ok=report.ok, checked=report.checked, checkpoint=report.checkpoint if report.ok else "",
                          problem=report.problem, first_broken=broken)


def record_check(deps: ServiceDeps, actor: Actor, report: ChainReport) -> None:
    """Keep a check's result where the admin page reads it back (the CLI's audit-verify may call this too)."""
    audit.log_event(deps, actor, VERIFIED, outcome="success" if report.ok else "failed",
                    details={"ok": report.ok, "checked": report.checked,
                             "first_broken_seq": report.first_broken_seq})


def last_check(deps: ServiceDeps, user: StaffView) -> LastCheck | None:
    _require_admin(user)
    with deps.db.transaction() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == VERIFIED)
                                .order_by(AuditEvent.seq.desc()).limit(1)).first()
        if event is None:
            return None
        details = _details(event)
        by = _who(event, _people(session, {event.actor_id}))
        broken = details.get("first_broken_seq")
        checked = details.get("checked")
        return LastCheck(at=event.occurred_at, by=by, ok=bool(details.get("ok")) and event.outcome == "success",
                         checked=checked if isinstance(checked, int) else 0,
                         first_broken_seq=broken if isinstance(broken, int) else None)
