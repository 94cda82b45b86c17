"""Transitions: derive the facts of a move or admission, and from them its recipients, deadlines, checklist,
approvals and lifecycle. What must be shared with whom, and by when, comes from forms/ (never from code).

Facts (domain.md §3.3; reg 11/13): out of area = the destination's local authority differs from the child's
responsible authority; host LA and host police force = the destination's area and the force covering it;
at a distance = not adjoining (asked, because the register holds no adjacency); children's home = the
destination is one; exploitation risk, open to CAMHS and school age from the child's record.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from transitions.formdefs import APPROVAL_KINDS, DECISIONS, KindApproval, RecipientType, TransitionKind
from transitions.models import (
    ACTIVE_STATUSES,
    Child,
    CrisisFlag,
    Organisation,
    Role,
    SectionOverride,
    SectionVersion,
    StaffUser,
    Task,
    Transition,
    TransitionApproval,
    TransitionRecipient,
    TransitionStatus,
)
from transitions.services import audit, packs, send_limit, tasks
from transitions.services.accounts import StaffView
from transitions.services.audit import Actor
from transitions.services.children import (
    age_on,
    current_versions,
    open_child,
    photo_status,
    section_status,
)
from transitions.services.deadlines import due_at
from transitions.services.deps import ServiceDeps
from transitions.services.errors import (
    ChildInvalidError,
    ForbiddenActionError,
    NotFoundError,
    TransitionStepError,
)
from transitions.services.values import gaps, typed_reason

#: RISK headline risks (forms/codes RISK_CATEGORY) that mean a risk of exploitation (Lesson CH4.1).
EXPLOITATION_RISKS = frozenset({"cse", "cce_county_lines", "trafficking"})
MANAGERS = frozenset({Role.TEAM_MANAGER, Role.SENIOR_MANAGER})
STATUS_LABELS = {
    "draft": "Draft", "ready": "Ready", "approved": "Approved", "sent": "Sent", "complete": "Complete",
    "cancelled": "Cancelled", "superseded": "Superseded",
}


# ---- creating ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransitionInput:
    kind: str
    destination_id: uuid.UUID | None
    origin_id: uuid.UUID | None
    starts_at: datetime | None
    urgency: str
    reason_code: str
    #: "yes" / "no" / "" — asked because adjacency cannot be derived
    at_a_distance: str
    emergency_reason: str
    distance_miles: str


@dataclass(frozen=True)
class Facts:
    out_of_area: bool | None
    at_a_distance: bool | None
    host_la: Organisation | None
    host_police: Organisation | None
    childrens_home: bool
    exploitation_risk: bool
    open_to_camhs: bool
    school_age: bool
    emergency: bool
    changes_placement: bool

    @classmethod
    def stored(cls, transition: Transition, kind: TransitionKind) -> Facts:
        """The facts as derived when the transition was created (kept on its row)."""
        return cls(out_of_area=transition.out_of_area, at_a_distance=transition.at_a_distance, host_la=None,
                   host_police=None, childrens_home=transition.childrens_home,
                   exploitation_risk=transition.exploitation_risk, open_to_camhs=transition.open_to_camhs,
                   school_age=transition.school_age, emergency=transition.urgency == "emergency",
                   changes_placement=not kind.admission)

    def holds(self, condition: str) -> bool:
        return {
            "always": True, "out_of_area": bool(self.out_of_area), "at_a_distance": bool(self.at_a_distance),
            "exploitation_risk": self.exploitation_risk, "open_to_camhs": self.open_to_camhs,
            "childrens_home": self.childrens_home, "school_age": self.school_age, "emergency": self.emergency,
            "changes_placement": self.changes_placement,
        }[condition]


def _record_facts(session: Session, child: Child) -> tuple[bool, bool]:
    versions = current_versions(session, child.id)
    risk = json.loads(versions["RISK"].content or "{}") if "RISK" in versions else {}
    expl = json.loads(versions["EXPL"].content or "{}") if "EXPL" in versions else {}
    mh = json.loads(versions["MH"].content or "{}") if "MH" in versions else {}
    headline = set(risk.get("headline_risks") or [])
    exploited = bool(headline & EXPLOITATION_RISKS) or expl.get("exploitation_concern") == "yes"
    return exploited, mh.get("camhs_open") == "yes"


def derive_facts(session: Session, child: Child, kind: TransitionKind, destination: Organisation,
                 starts_at: datetime, urgency: str, at_a_distance: bool | None) -> Facts:
    host_la = destination if destination.kind == "local_authority" else (
        session.get(Organisation, destination.local_authority_id) if destination.local_authority_id else None)
    if host_la is None and destination.parent_id:  # a ward: its hospital's area
        hospital = session.get(Organisation, destination.parent_id)
        if hospital is not None and hospital.local_authority_id:
            host_la = session.get(Organisation, hospital.local_authority_id)
    host_police = session.get(Organisation, host_la.police_force_id) if host_la and host_la.police_force_id else None
    out_of_area = None if host_la is None or child.responsible_la_id is None else host_la.id != child.responsible_la_id
    if out_of_area is False:
        at_a_distance = False
    elif kind.code == "planned_move_at_distance" and at_a_distance is None:
        at_a_distance = True
    elif kind.code == "planned_move_adjoining" and at_a_distance is None:
        at_a_distance = False
    exploitation, camhs = _record_facts(session, child)
    dob = date.fromisoformat(child.date_of_birth) if child.date_of_birth else None
    return Facts(out_of_area=out_of_area, at_a_distance=at_a_distance, host_la=host_la, host_police=host_police,
                 childrens_home=destination.kind == "childrens_home", exploitation_risk=exploitation,
                 open_to_camhs=camhs, school_age=dob is not None and is_school_age(dob, starts_at.date()),
                 emergency=urgency == "emergency", changes_placement=not kind.admission)


def is_school_age(dob: date, on: date) -> bool:
    """Compulsory school age in England: from 5 until the last Friday of June of the school year (September to
    August) in which the child turns 16 — a Year 11 pupil who is already 16 is still at school."""
    age = age_on(dob, on)
    if age is None or age < 5:
        return False
    sixteenth = date(dob.year + 16, dob.month, 28 if (dob.month, dob.day) == (2, 29) else dob.day)
    leaving_year = sixteenth.year + 1 if sixteenth.month >= 9 else sixteenth.year
    last_friday = date(leaving_year, 6, 30)
    while last_friday.weekday() != 4:
        last_friday -= timedelta(days=1)
    return on <= last_friday


def _organisation_for(source: str, facts: Facts, destination: Organisation, origin: Organisation | None,
                      child: Child) -> uuid.UUID | None:
    return {
        "destination": destination.id, "origin": origin.id if origin else None,
        "host_la": facts.host_la.id if facts.host_la else None,
        "host_police": facts.host_police.id if facts.host_police else None,
        "responsible_la": child.responsible_la_id, "chosen": None,
    }[source]


def _check(deps: ServiceDeps, session: Session, child: Child, data: TransitionInput
           ) -> tuple[dict[str, str], TransitionKind | None, Organisation | None, Organisation | None]:
    errors: dict[str, str] = {}
    kind = deps.definitions.kinds.get(data.kind)
    if kind is None:
        return {"kind": "Select the kind of transition"}, None, None, None
    destination = session.get(Organisation, data.destination_id) if data.destination_id else None
    if destination is None or destination.kind not in kind.destination_kinds:
        errors["destination_id"] = "Select where the child is going from the list"
    origin = session.get(Organisation, data.origin_id) if data.origin_id else None
    if data.origin_id and origin is None:
        errors["origin_id"] = "Select where the child is coming from from the list"
    if data.starts_at is None:
        errors["starts_at"] = "Enter the date and time of the move or admission"
    elif data.starts_at > deps.clock.now() + timedelta(days=366):
        errors["starts_at"] = "The date must be within the next year"
    if data.urgency not in ("planned", "emergency"):
        errors["urgency"] = "Select whether this is planned or an emergency"
    elif data.urgency == "emergency" and kind.urgency == "planned":
        errors["urgency"] = (f"{kind.title} is planned. For an emergency choose 'Emergency or unplanned move' "
                             "(or a hospital admission)")
    if data.reason_code and data.reason_code not in deps.definitions.code_lists["REASON_PLACE_CHANGE"].codes:
        errors["reason_code"] = "Select the reason for the change from the list"
    if data.at_a_distance not in ("", "yes", "no"):
        errors["at_a_distance"] = "Select yes or no"
    if data.urgency == "emergency" and len(" ".join(data.emergency_reason.split())) < 10:
        errors["emergency_reason"] = "Enter why this cannot wait for the usual approvals and notices " \
                                     "(at least 10 characters)"
    if len(data.emergency_reason) > 2000:
        errors["emergency_reason"] = "Reason must be 2000 characters or fewer"
    if data.distance_miles.strip():
        try:
            miles = float(data.distance_miles)
        except ValueError:
            errors["distance_miles"] = "Distance must be a number of miles, like 35 or 12.5"
        else:
            if not 0 <= miles < 10000:
                errors["distance_miles"] = "Distance must be between 0 and 10,000 miles"
    if kind.min_age and child.date_of_birth and data.starts_at is not None:
        age = age_on(date.fromisoformat(child.date_of_birth), data.starts_at.date())
        if age is not None and age < kind.min_age:
            errors["kind"] = f"{kind.title} is only for young people aged {kind.min_age} or over"
    return errors, kind, destination, origin


def create_transition(deps: ServiceDeps, child_id: uuid.UUID, data: TransitionInput, user: StaffView,
                      actor: Actor) -> uuid.UUID:
    now = deps.clock.now()
    with deps.db.transaction() as session:
        child, access = open_child(deps, session, child_id, user, actor, action=None)
        if not access.can_edit_profile:
            raise ForbiddenActionError("Only the child's social worker, their team and managers start a transition")
        errors, kind, destination, origin = _check(deps, session, child, data)
        if errors:
            raise ChildInvalidError(errors)
        assert kind is not None and destination is not None and data.starts_at is not None
        answered = {"yes": True, "no": False}.get(data.at_a_distance)
        if child.responsible_la_id is None:
            raise ChildInvalidError({"kind": "Record the child's responsible local authority (on the child's "
                                             "details) before starting a transition"})
        facts = derive_facts(session, child, kind, destination, data.starts_at, data.urgency, answered)
        if facts.out_of_area is None:
            raise ChildInvalidError({"destination_id": "The register does not say which local authority area this "
                                                       "is in: ask an administrator to add it, so the host area and "
                                                       "police force can be worked out"})
        if facts.out_of_area and facts.at_a_distance is None:
            raise ChildInvalidError({"at_a_distance": "Select whether the new area is next to the child's own "
                                                      "local authority"})
        if facts.out_of_area and kind.code == "planned_move_adjoining" and facts.at_a_distance:
            raise ChildInvalidError({"kind": "The new area is not next to the child's own authority: choose "
                                             "'Planned move at a distance'"})
        if facts.out_of_area and kind.code == "planned_move_at_distance" and facts.at_a_distance is False:
            raise ChildInvalidError({"kind": "The new area is next to the child's own authority: choose "
                                             "'Planned move to an adjoining area'"})
        transition = Transition(
            id=uuid.uuid4(), child_id=child.id, kind=kind.code, status=TransitionStatus.DRAFT.value,
            urgency=data.urgency, origin_id=origin.id if origin else None, destination_id=destination.id,
            starts_at=data.starts_at, reason_code=data.reason_code or None, out_of_area=facts.out_of_area,
            at_a_distance=facts.at_a_distance, host_la_id=facts.host_la.id if facts.host_la else None,
            host_police_id=facts.host_police.id if facts.host_police else None,
            childrens_home=facts.childrens_home, exploitation_risk=facts.exploitation_risk,
            open_to_camhs=facts.open_to_camhs, school_age=facts.school_age,
            distance_miles=float(data.distance_miles) if data.distance_miles.strip() else None,
            created_by=user.id, created_at=now, updated_at=now, definition_digest=deps.definitions.digest)
        transition.emergency_reason = data.emergency_reason.strip() or None
        session.add(transition)
        session.flush()
        for rule in kind.recipients:
            if not facts.holds(rule.when):
                continue
            recipient_type = deps.definitions.recipient_types[rule.type]
            session.add(TransitionRecipient(
                id=uuid.uuid4(), transition_id=transition.id, recipient_type=rule.type,
                organisation_id=_organisation_for(recipient_type.source, facts, destination, origin, child),
                required=rule.required, due_at=due_at(rule.due, data.starts_at), condition=rule.when,
                basis=rule.basis[:200], created_at=now))
        # Lesson CH1.1: the CLA nurse updates the health plan for every move or admission.
        tasks.open_task(session, deps, child_id=child.id, kind="health_plan_update", assigned_role=Role.CLA_NURSE,
                        transition_id=transition.id,
                        due_at=tasks.due_from(deps, "health_plan_update", max(data.starts_at, now)))
        audit.record(session, deps.audit_chain, deps.clock, actor, "transition.created", object_type="transition",
                     object_id=transition.id, details={"kind": kind.code, "status": transition.status})
        return transition.id


def _supersede(deps: ServiceDeps, session: Session, newer: Transition, actor: Actor) -> int:
    """When a transition is sent, the child's earlier active ones give way to it; their links are to be revoked.
    Only earlier ones: a move planned for next month does not end because of tonight's admission."""
    older = list(session.scalars(select(Transition).where(
        Transition.child_id == newer.child_id, Transition.id != newer.id, Transition.starts_at <= newer.starts_at,
        Transition.status.in_([s.value for s in ACTIVE_STATUSES]))))
    for transition in older:
        transition.status = TransitionStatus.SUPERSEDED.value
        transition.superseded_by_id = newer.id
        tasks.close_tasks(session, deps, child_id=transition.child_id, kind="health_plan_update", status="cancelled",
                          transition_id=transition.id)
        transition.updated_at = deps.clock.now()
        _mark_for_revocation(session, transition.id)
        packs.revoke_for_transition(deps, session, transition.id, "superseded", actor)
        audit.record(session, deps.audit_chain, deps.clock, actor, "transition.superseded", object_type="transition",
                     object_id=transition.id, details={"link_id": newer.id})
    return len(older)


def _mark_for_revocation(session: Session, transition_id: uuid.UUID) -> None:
    for recipient in session.scalars(select(TransitionRecipient).where(
            TransitionRecipient.transition_id == transition_id, TransitionRecipient.removed_at.is_(None))):
        recipient.revoke_pending = True


#: Recipient types used only for a missing-from-care report (services/missing.py), never for a move.
MISSING_ONLY_TYPES = frozenset({"missing_police"})


# ---- crisis flag (Lesson CH6.3) ---------------------------------------------------------------------------


def _raise_flag(deps: ServiceDeps, session: Session, child: Child, reason: str, count: int,
                transition_id: uuid.UUID | None, actor: Actor) -> bool:
    open_flag = session.scalars(select(CrisisFlag).where(CrisisFlag.child_id == child.id, CrisisFlag.reason == reason,
                                                         CrisisFlag.acknowledged_at.is_(None))).first()
    if open_flag is not None:
        open_flag.count = max(open_flag.count, count)
        return False
    now = deps.clock.now()
    flag = CrisisFlag(id=uuid.uuid4(), child_id=child.id, reason=reason, count=count, transition_id=transition_id,
                      raised_at=now)
    session.add(flag)
    session.flush()
    session.add(Task(id=uuid.uuid4(), child_id=child.id, transition_id=transition_id, crisis_flag_id=flag.id,
                     kind="crisis_planning", assigned_role=Role.SENIOR_MANAGER.value,
                     due_at=now + timedelta(days=deps.settings.transitions.crisis_task_days), created_at=now))
    audit.record(session, deps.audit_chain, deps.clock, actor, "crisis.flagged", object_type="child",
                 object_id=child.id, details={"reason_code": reason, "count": count})
    return True


def _crisis_check(deps: ServiceDeps, session: Session, child: Child, transition: Transition, kind: TransitionKind,
                  actor: Actor) -> None:
    """Called when a transition is sent: count the moves and admissions that happened (sent, whatever became of
    them since, but not cancelled) in any window of the configured length that contains this one."""
    if not kind.counts_for_crisis:
        return
    settings = deps.settings.transitions
    window = timedelta(days=settings.crisis_window_days)
    counted_kinds = [k.code for k in deps.definitions.kinds.values() if k.counts_for_crisis]
    when = transition.starts_at
    dates = sorted(session.scalars(select(Transition.starts_at).where(
        Transition.child_id == child.id, Transition.kind.in_(counted_kinds), Transition.sent_at.is_not(None),
        Transition.status != TransitionStatus.CANCELLED.value, Transition.starts_at > when - window,
        Transition.starts_at < when + window)))
    most = max((sum(1 for d in dates if start <= d < start + window) for start in dates if start <= when),
               default=0)
    if most > settings.crisis_max_transitions:
        _raise_flag(deps, session, child, "many_transitions", most, transition.id, actor)


def check_onward_placements(deps: ServiceDeps) -> int:
    """tick: an admission with no later move recorded after N days flags the child (no onward placement)."""
    settings = deps.settings.transitions
    now = deps.clock.now()
    admissions = [k.code for k in deps.definitions.kinds.values() if k.admission]
    moves = [k.code for k in deps.definitions.kinds.values() if not k.admission]
    raised = 0
    with deps.db.transaction() as session:
        stale = list(session.scalars(select(Transition).where(
            Transition.kind.in_(admissions),
            Transition.starts_at < now - timedelta(days=settings.onward_placement_days),
            Transition.status.notin_([TransitionStatus.CANCELLED.value]))))
        flagged = set(session.scalars(select(CrisisFlag.transition_id).where(
            CrisisFlag.reason == "no_onward_placement")))
        for admission in stale:
            if admission.id in flagged or admission.sent_at is None:
                continue
            later = session.scalar(select(func.count()).select_from(Transition).where(
                Transition.child_id == admission.child_id, Transition.kind.in_(moves),
                Transition.starts_at >= admission.starts_at, Transition.status != TransitionStatus.CANCELLED.value))
            child = session.get(Child, admission.child_id)
            if not later and child is not None and _raise_flag(deps, session, child, "no_onward_placement", 1,
                                                               admission.id, Actor.system("tick")):
                raised += 1
    return raised


# ---- the checklist ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SectionCheck:
    code: str
    title: str
    blocking: bool
    state: str
    gaps: list[str]
    override_reason: str | None
    override_by: str | None

    @property
    def state_label(self) -> str:
        return {"complete": "Complete", "gaps": "Complete, with gaps", "stale": "Out of date",
                "missing": "Missing"}[self.state]

    @property
    def blocks(self) -> bool:
        return self.blocking and self.state in ("missing", "stale") and self.override_reason is None


@dataclass(frozen=True)
class RecipientRow:
    id: uuid.UUID
    type: RecipientType
    organisation: str | None
    organisation_id: uuid.UUID | None
    required: bool
    due_at: datetime
    condition: str
    basis: str
    removed: bool
    removed_reason: str | None
    added_reason: str | None
    revoke_pending: bool


@dataclass(frozen=True)
class ApprovalRow:
    kind: str
    label: str
    decision: bool
    outcome: str | None
    person: str | None
    answer: str | None
    recorded_by: str | None
    recorded_at: datetime | None
    retrospective_due: datetime | None


@dataclass(frozen=True)
class Checklist:
    id: uuid.UUID
    child_id: uuid.UUID
    kind: TransitionKind
    status: str
    urgency: str
    starts_at: datetime
    destination: str
    origin: str | None
    host_la: str | None
    host_police: str | None
    out_of_area: bool | None
    at_a_distance: bool | None
    childrens_home: bool
    exploitation_risk: bool
    open_to_camhs: bool
    school_age: bool
    reason_code: str | None
    emergency_reason: str | None
    distance_miles: float | None
    distance_flag: bool
    #: Admissions: the hospital the child should go to every time (Lesson CH3.2), from HEALTH.
    preferred_hospital: str | None
    sections: list[SectionCheck]
    recipients: list[RecipientRow]
    approvals: list[ApprovalRow]
    can_edit: bool
    can_override: bool
    can_decide: bool
    version: int

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def blocking(self) -> list[SectionCheck]:
        return [s for s in self.sections if s.blocks]

    @property
    def approvals_outstanding(self) -> list[ApprovalRow]:
        return [a for a in self.approvals if a.outcome not in ("approved", "notified", "consulted")]


def _active_approvals(kind: TransitionKind, transition: Transition) -> list[KindApproval]:
    facts = Facts.stored(transition, kind)
    seen: set[str] = set()
    active = []
    for approval in kind.approvals:
        # Consulting the host area on a placement's appropriateness (CH4.1) is about changing area.
        applies = facts.holds(approval.when) and (approval.when != "exploitation_risk" or bool(facts.out_of_area))
        if applies and approval.kind not in seen:
            seen.add(approval.kind)
            active.append(approval)
    return active


def _load(deps: ServiceDeps, session: Session, transition_id: uuid.UUID, user: StaffView, actor: Actor,
          action: str | None) -> tuple[Transition, TransitionKind, Child, bool]:
    transition = session.get(Transition, transition_id)
    if transition is None:
        raise NotFoundError("transition")
    child, access = open_child(deps, session, transition.child_id, user, actor, action=action,
                          details={"purpose": "transition"})
    kind = deps.definitions.kinds.get(transition.kind)
    if kind is None:
        raise NotFoundError("transition kind")
    return transition, kind, child, access.can_edit_profile


def _names(session: Session, ids: set[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {o.id: o.name for o in session.scalars(select(Organisation).where(Organisation.id.in_(wanted)))}


def checklist(deps: ServiceDeps, transition_id: uuid.UUID, user: StaffView, actor: Actor) -> Checklist:
    with deps.db.transaction() as session:
        transition, kind, child, can_edit = _load(deps, session, transition_id, user, actor, "transition.viewed")
        return _checklist(deps, session, transition, kind, child, user, can_edit)


def _checklist(deps: ServiceDeps, session: Session, transition: Transition, kind: TransitionKind, child: Child,
               user: StaffView, can_edit: bool) -> Checklist:
    record = deps.settings.record
    today = deps.clock.now().date()
    versions = current_versions(session, child.id)
    overrides = {o.section_code: o for o in session.scalars(
        select(SectionOverride).where(SectionOverride.transition_id == transition.id))}
    staff_ids = {o.by_id for o in overrides.values()}
    approvals_done = {a.kind: a for a in session.scalars(
        select(TransitionApproval).where(TransitionApproval.transition_id == transition.id)
        .order_by(TransitionApproval.recorded_at))}
    staff_ids |= {a.recorded_by for a in approvals_done.values()}
    staff = {u.id: u.display_name or ""
             for u in session.scalars(select(StaffUser).where(StaffUser.id.in_(staff_ids)))} if staff_ids else {}
    checks = []
    for item in kind.sections:
        section = deps.definitions.sections[item.code]
        version = versions.get(item.code)
        content = json.loads(version.content or "{}") if version else {}
        if version is None:
            state = "missing"
        else:
            status = section_status(version.next_review_due, today, record.due_soon_days)
            stale = item.fresh and status == "overdue"
            if item.code == "PHOTO" and item.fresh:
                taken = content.get("taken_on")
                photo = photo_status(date.fromisoformat(taken) if isinstance(taken, str) else None,
                                     uuid.uuid4() if content.get("photo") else None, today, record.photo_warn_days,
                                     record.photo_stale_days)
                stale = stale or photo.status in ("stale", "missing")
            found = gaps(section, content)
            state = "stale" if stale else "gaps" if found else "complete"
        override = overrides.get(item.code)
        checks.append(SectionCheck(
            code=item.code, title=section.title, blocking=item.blocking, state=state,
            gaps=gaps(section, content) if version else [], override_reason=override.reason if override else None,
            override_by=staff.get(override.by_id) if override else None))
    recipients = list(session.scalars(select(TransitionRecipient).where(
        TransitionRecipient.transition_id == transition.id).order_by(TransitionRecipient.due_at,
                                                                     TransitionRecipient.recipient_type)))
    names = _names(session, {r.organisation_id for r in recipients} | {
        transition.destination_id, transition.origin_id, transition.host_la_id, transition.host_police_id})
    rows = [RecipientRow(
        id=r.id, type=deps.definitions.recipient_types[r.recipient_type], organisation=names.get(r.organisation_id)
        if r.organisation_id else None, organisation_id=r.organisation_id, required=r.required, due_at=r.due_at,
        condition=r.condition, basis=r.basis, removed=r.removed_at is not None, removed_reason=r.removed_reason,
        added_reason=r.added_reason, revoke_pending=r.revoke_pending) for r in recipients
        if r.recipient_type in deps.definitions.recipient_types]
    approvals = []
    for approval in _active_approvals(kind, transition):
        done = approvals_done.get(approval.kind)
        retro = due_at(approval.retrospective_due, transition.starts_at) if transition.urgency == "emergency" \
            else None
        approvals.append(ApprovalRow(
            kind=approval.kind, label=APPROVAL_KINDS[approval.kind], decision=approval.kind in DECISIONS,
            outcome=done.outcome if done else None, person=done.person if done else None,
            answer=done.answer if done else None, recorded_by=staff.get(done.recorded_by) if done else None,
            recorded_at=done.recorded_at if done else None, retrospective_due=retro))
    limit = deps.settings.transitions.tier4_distance_limit_miles
    return Checklist(
        id=transition.id, child_id=child.id, kind=kind, status=transition.status, urgency=transition.urgency,
        starts_at=transition.starts_at, destination=names.get(transition.destination_id, ""),
        origin=names.get(transition.origin_id) if transition.origin_id else None,
        host_la=names.get(transition.host_la_id) if transition.host_la_id else None,
        host_police=names.get(transition.host_police_id) if transition.host_police_id else None,
        out_of_area=transition.out_of_area, at_a_distance=transition.at_a_distance,
        childrens_home=transition.childrens_home, exploitation_risk=transition.exploitation_risk,
        open_to_camhs=transition.open_to_camhs, school_age=transition.school_age,
        reason_code=transition.reason_code, emergency_reason=transition.emergency_reason,
        distance_miles=transition.distance_miles,
        distance_flag=transition.distance_miles is not None and transition.distance_miles > limit,
        preferred_hospital=_preferred_hospital(versions) if kind.admission else None,
        sections=checks, recipients=rows, approvals=approvals, can_edit=can_edit and _open_status(transition),
        can_override=can_edit and user.role in MANAGERS and _open_status(transition),
        can_decide=can_edit and user.role is Role.SENIOR_MANAGER and _open_status(transition),
        version=transition.version)


def _preferred_hospital(versions: dict[str, SectionVersion]) -> str | None:
    health = json.loads(versions["HEALTH"].content or "{}") if "HEALTH" in versions else {}
    name = health.get("preferred_hospital_name")
    return name if isinstance(name, str) and name else None


def _open_status(transition: Transition) -> bool:
    return transition.status in (TransitionStatus.DRAFT.value, TransitionStatus.READY.value,
                                 TransitionStatus.APPROVED.value, TransitionStatus.SENT.value)


# ---- changing a transition --------------------------------------------------------------------------------


def _editable(deps: ServiceDeps, session: Session, transition_id: uuid.UUID, user: StaffView, actor: Actor
              ) -> tuple[Transition, TransitionKind, Child]:
    transition, kind, child, can_edit = _load(deps, session, transition_id, user, actor, None)
    if not can_edit:
        raise ForbiddenActionError("You cannot change this transition")
    if not _open_status(transition):
        raise TransitionStepError(f"This transition is {STATUS_LABELS[transition.status].lower()}: it cannot be "
                                  "changed")
    return transition, kind, child


def override_section(deps: ServiceDeps, transition_id: uuid.UUID, section_code: str, reason: str, user: StaffView,
                     actor: Actor) -> None:
    """A team manager or above lets a blocking gap through, with the reason recorded (Lesson CH6.2)."""
    if user.role not in MANAGERS:
        raise ForbiddenActionError("Only a team manager or senior manager can override a blocking gap")
    text = typed_reason(reason, asking="the reason for the override")
    with deps.db.transaction() as session:
        transition, kind, _child = _editable(deps, session, transition_id, user, actor)
        if section_code not in {s.code for s in kind.sections if s.blocking}:
            raise NotFoundError("section")
        if session.scalars(select(SectionOverride).where(SectionOverride.transition_id == transition.id,
                                                         SectionOverride.section_code == section_code)).first():
            return
        override = SectionOverride(id=uuid.uuid4(), transition_id=transition.id, section_code=section_code,
                                   by_id=user.id, by_role=user.role.value, created_at=deps.clock.now())
        override.reason = text
        session.add(override)
        audit.record(session, deps.audit_chain, deps.clock, actor, "transition.override", object_type="transition",
                     object_id=transition.id, details={"purpose": section_code, "role": user.role.value})


def add_recipient(deps: ServiceDeps, transition_id: uuid.UUID, recipient_type: str, organisation_id: uuid.UUID | None,
                  reason: str, user: StaffView, actor: Actor) -> None:
    errors: dict[str, str] = {}
    definition = deps.definitions.recipient_types.get(recipient_type)
    if definition is None or recipient_type in MISSING_ONLY_TYPES:
        errors["recipient_type"] = "Select the type of recipient"
    try:
        text = typed_reason(reason, asking="the reason for adding this recipient")
    except ChildInvalidError as exc:
        errors |= exc.errors
    with deps.db.transaction() as session:
        transition, _kind, _child = _editable(deps, session, transition_id, user, actor)
        organisation = session.get(Organisation, organisation_id) if organisation_id else None
        if organisation_id and (organisation is None or (definition and definition.organisation_kinds
                                                         and organisation.kind not in definition.organisation_kinds)):
            errors["organisation_id"] = "Select an organisation of the right type for this recipient"
        if errors:
            raise ChildInvalidError(errors)
        recipient = TransitionRecipient(
            id=uuid.uuid4(), transition_id=transition.id, recipient_type=recipient_type,
            organisation_id=organisation_id, required=True, due_at=transition.starts_at, condition="added",
            basis="Added by staff", created_at=deps.clock.now())
        recipient.added_reason = text
        session.add(recipient)
        audit.record(session, deps.audit_chain, deps.clock, actor, "transition.recipient_added",
                     object_type="transition", object_id=transition.id, details={"purpose": recipient_type})


def remove_recipient(deps: ServiceDeps, transition_id: uuid.UUID, recipient_id: uuid.UUID, reason: str,
                     user: StaffView, actor: Actor) -> None:
    text = typed_reason(reason, asking="the reason for removing this recipient")
    with deps.db.transaction() as session:
        transition, _kind, _child = _editable(deps, session, transition_id, user, actor)
        recipient = session.get(TransitionRecipient, recipient_id)
        if recipient is None or recipient.transition_id != transition.id or recipient.removed_at is not None:
            raise NotFoundError("recipient")
        if recipient.required and recipient.condition != "added" and user.role not in MANAGERS:
            raise ForbiddenActionError("Only a team manager or senior manager can remove a required recipient")
        recipient.removed_at = deps.clock.now()
        recipient.removed_by = user.id
        recipient.removed_reason = text
        packs.revoke_for_recipient(deps, session, recipient.id, "removed", actor)  # its link stops working too
        audit.record(session, deps.audit_chain, deps.clock, actor, "transition.recipient_removed",
                     object_type="transition", object_id=transition.id,
                     details={"purpose": recipient.recipient_type})


def record_approval(deps: ServiceDeps, transition_id: uuid.UUID, approval_kind: str, outcome: str, person: str,
                    answer: str, user: StaffView, actor: Actor) -> None:
    """A senior manager approves (nominated officer, DCS); staff record a notice or consultation of the host LA."""
    errors: dict[str, str] = {}
    decision = approval_kind in DECISIONS
    allowed = ("approved", "refused") if decision else (
        ("notified",) if approval_kind == "host_la_notified" else ("consulted",))
    if outcome not in allowed:
        errors["outcome"] = "Select the outcome"
    if not decision and not person.strip():
        errors["person"] = "Enter who in the host local authority was told or asked"
    if approval_kind in ("host_la_consulted", "host_consulted_on_appropriateness") and not answer.strip():
        errors["answer"] = "Enter what the host area said"
    if len(person) > 200 or len(answer) > 2000:
        errors["answer"] = "The answer must be 2000 characters or fewer"
    if decision and user.role is not Role.SENIOR_MANAGER:
        raise ForbiddenActionError("Only a senior manager (nominated officer or Director) can approve this move")
    with deps.db.transaction() as session:
        transition, kind, _child = _editable(deps, session, transition_id, user, actor)
        if approval_kind not in {a.kind for a in _active_approvals(kind, transition)}:
            raise NotFoundError("approval")
        if errors:
            raise ChildInvalidError(errors)
        if decision and outcome == "approved" and transition.urgency != "emergency":
            waiting = [APPROVAL_KINDS[k] for k in _outstanding_approvals(session, kind, transition)
                       if k not in DECISIONS]
            if waiting:
                raise TransitionStepError("Record this first, before the approval (reg 11): " + "; ".join(waiting))
        now = deps.clock.now()
        row = TransitionApproval(id=uuid.uuid4(), transition_id=transition.id, kind=approval_kind, outcome=outcome,
                                 recorded_by=user.id, recorded_role=user.role.value, recorded_at=now,
                                 retrospective=now > transition.starts_at)
        row.person = person.strip() or None
        row.answer = answer.strip() or None
        session.add(row)
        outstanding = _outstanding_approvals(session, kind, transition)
        if transition.status == TransitionStatus.READY.value and not outstanding:
            transition.status = TransitionStatus.APPROVED.value
        elif transition.status == TransitionStatus.APPROVED.value and outstanding:
            transition.status = TransitionStatus.READY.value  # a refusal takes the approval away
        transition.updated_at = now
        audit.record(session, deps.audit_chain, deps.clock, actor, "transition.approval_recorded",
                     object_type="transition", object_id=transition.id,
                     details={"purpose": approval_kind, "status": outcome, "role": user.role.value})


def _outstanding_approvals(session: Session, kind: TransitionKind, transition: Transition) -> list[str]:
    session.flush()
    latest: dict[str, str] = {}
    for row in session.scalars(select(TransitionApproval).where(TransitionApproval.transition_id == transition.id)
                               .order_by(TransitionApproval.recorded_at)):
        latest[row.kind] = row.outcome
    return [a.kind for a in _active_approvals(kind, transition)
            if latest.get(a.kind) not in ("approved", "notified", "consulted")]


@send_limit.audited  # "sent" sends every due pack: a refusal by the send limit is audited (R71)
def change_status(deps: ServiceDeps, transition_id: uuid.UUID, action: str, reason: str, base_version: int | None,
                  user: StaffView, actor: Actor) -> str:
    """draft → ready → (approved) → sent; cancel with a reason. Invalid steps are refused with a clear message."""
    with deps.db.transaction() as session:
        transition, kind, child = _editable(deps, session, transition_id, user, actor)
        session.refresh(transition, with_for_update=True)  # one step at a time: two "send" presses send once
        if base_version is not None and base_version != transition.version:
            raise TransitionStepError("Someone else changed this transition since you opened it: check it again")
        check = _checklist(deps, session, transition, kind, child, user, True)
        now = deps.clock.now()
        status = transition.status
        if action == "ready":
            if status != TransitionStatus.DRAFT.value:
                raise TransitionStepError("Only a draft can be marked ready")
            if check.blocking:
                names = ", ".join(s.title for s in check.blocking)
                raise TransitionStepError(f"Not ready: {names} must be completed or brought up to date first, or "
                                          "overridden by a team manager with a reason")
            transition.status = (TransitionStatus.APPROVED.value if not check.approvals_outstanding
                                 else TransitionStatus.READY.value)
        elif action == "sent":
            if status not in (TransitionStatus.READY.value, TransitionStatus.APPROVED.value):
                raise TransitionStepError("Mark the transition ready before marking it sent")
            if check.blocking:
                raise TransitionStepError("Blocking gaps must be resolved or overridden before the packs go")
            outstanding = check.approvals_outstanding
            refused = [a.label for a in check.approvals if a.outcome == "refused"]
            if refused:
                raise TransitionStepError("This move has been refused: " + "; ".join(refused) + ". It cannot go "
                                          "ahead unless a new decision approves it")
            if outstanding and transition.urgency != "emergency":
                names = "; ".join(a.label for a in outstanding)
                raise TransitionStepError(f"Not yet: this move needs {names} before it goes ahead")
            if outstanding and not transition.emergency_reason:
                raise TransitionStepError("An emergency move can go ahead before its approvals only with a "
                                          "recorded reason")
            transition.status = TransitionStatus.SENT.value
            transition.sent_at = now
            session.flush()
            _supersede(deps, session, transition, actor)
            _crisis_check(deps, session, child, transition, kind, actor)
            packs.send_due(deps, session, transition, user, actor)  # one action sends every due pack
        elif action == "cancel":
            transition.cancelled_reason = typed_reason(reason, asking="the reason for cancelling")
            if status == TransitionStatus.SENT.value:
                _mark_for_revocation(session, transition.id)  # packs already out must be withdrawn
                packs.revoke_for_transition(deps, session, transition.id, "cancelled", actor)
            transition.status = TransitionStatus.CANCELLED.value
            tasks.close_tasks(session, deps, child_id=child.id, kind="health_plan_update", status="cancelled",
                              transition_id=transition.id, by=user.id)
        else:
            raise TransitionStepError("Unknown step")
        transition.updated_at = now
        audit.record(session, deps.audit_chain, deps.clock, actor, "transition.status_changed",
                     object_type="transition", object_id=transition.id,
                     details={"old_status": status, "status": transition.status})
        return transition.status


# ---- lists ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransitionSummary:
    id: uuid.UUID
    kind_title: str
    status: str
    urgency: str
    starts_at: datetime
    destination: str

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]


@dataclass(frozen=True)
class ChildTransitions:
    transitions: list[TransitionSummary]
    #: Open crisis flags (Lesson CH6.3), shown on the child's page until a senior manager acknowledges them.
    flags: list[CrisisRow]


def for_child(deps: ServiceDeps, child_id: uuid.UUID, user: StaffView, actor: Actor) -> ChildTransitions:
    with deps.db.transaction() as session:
        open_child(deps, session, child_id, user, actor, action=None)
        rows = session.execute(select(Transition, Organisation.name)
                               .outerjoin(Organisation, Organisation.id == Transition.destination_id)
                               .where(Transition.child_id == child_id)
                               .order_by(Transition.starts_at.desc()).limit(50)).all()
        summaries = [TransitionSummary(id=r.id, kind_title=deps.definitions.kinds[r.kind].title
                                       if r.kind in deps.definitions.kinds else r.kind, status=r.status,
                                       urgency=r.urgency, starts_at=r.starts_at,
                                       destination=destination or "") for r, destination in rows]
        flags = [CrisisRow(id=f.id, child_id=f.child_id, reason=f.reason, count=f.count, raised_at=f.raised_at,
                           task_due=None) for f in child_flags(session, child_id)]
        return ChildTransitions(transitions=summaries, flags=flags)


@dataclass(frozen=True)
class CrisisRow:
    id: uuid.UUID
    child_id: uuid.UUID
    reason: str
    count: int
    raised_at: datetime
    task_due: datetime | None

    @property
    def reason_label(self) -> str:
        if self.reason == "many_transitions":
            return f"{self.count} moves or admissions in a short period"
        return "No onward placement recorded after an admission"


def open_crisis_flags(deps: ServiceDeps, user: StaffView, actor: Actor) -> list[CrisisRow]:
    if user.role not in (Role.SENIOR_MANAGER, Role.TEAM_MANAGER, Role.AUDITOR):
        raise ForbiddenActionError("Only managers and auditors see crisis flags")
    with deps.db.transaction() as session:
        query = (select(CrisisFlag).join(Child, Child.id == CrisisFlag.child_id)
                 .where(CrisisFlag.acknowledged_at.is_(None)).order_by(CrisisFlag.raised_at))
        if user.role is Role.TEAM_MANAGER:
            query = query.where(Child.team_id == user.team_id)
        flags = list(session.scalars(query))
        tasks = {t.crisis_flag_id: t for t in session.scalars(select(Task).where(
            Task.crisis_flag_id.in_([f.id for f in flags])))} if flags else {}
        audit.record(session, deps.audit_chain, deps.clock, actor, "crisis.list_viewed", details={"count": len(flags)})
        return [CrisisRow(id=f.id, child_id=f.child_id, reason=f.reason, count=f.count, raised_at=f.raised_at,
                          task_due=tasks[f.id].due_at if f.id in tasks else None) for f in flags]


def acknowledge_flag(deps: ServiceDeps, flag_id: uuid.UUID, note: str, user: StaffView, actor: Actor) -> None:
    if user.role is not Role.SENIOR_MANAGER:
        raise ForbiddenActionError("Only a senior manager can acknowledge a crisis flag")
    text = typed_reason(note, asking="what was agreed")
    with deps.db.transaction() as session:
        flag = session.get(CrisisFlag, flag_id)
        if flag is None or flag.acknowledged_at is not None:
            raise NotFoundError("flag")
        now = deps.clock.now()
        flag.acknowledged_at = now
        flag.acknowledged_by = user.id
        flag.note = text
        for task in session.scalars(select(Task).where(Task.crisis_flag_id == flag.id, Task.status == "open")):
            task.status, task.done_at, task.done_by = "done", now, user.id
        audit.record(session, deps.audit_chain, deps.clock, actor, "crisis.acknowledged", object_type="child",
                     object_id=flag.child_id, details={"reason_code": flag.reason})


def child_flags(session: Session, child_id: uuid.UUID) -> list[CrisisFlag]:
    return list(session.scalars(select(CrisisFlag).where(CrisisFlag.child_id == child_id,
                                                         CrisisFlag.acknowledged_at.is_(None))))
