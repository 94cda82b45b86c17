"""FICTIONAL demo history, so that the reports have something to show on a fresh demo: five past moves and
admissions of the demo children, their packs (confirmed after various delays, one sent late, two never
confirmed), escalations of the late ones, two overrides and two answered requests for more information.

None of it happened. The transitions are made by the real service with its clock set in the past (so their
recipients, due times and audit rows are what the service would have made); the history after that (sending,
confirmations, escalations, requests) is written directly as rows, with the real pack PDFs built from today's
record, because replaying the recipient's side in the past is not possible. The demo children's first section
versions are dated 45 days back (the record was kept before these moves), except Leo's photo, which was added
after his move (the override shows it). Development only, like every demo loader; idempotent: it is recorded in
the audit trail once, and not added again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import and_, not_, select, update
from sqlalchemy.orm import Session

from transitions.clock import FrozenClock
from transitions.crypto import new_token, token_hash
from transitions.models import (
    ESCALATION_LEVELS,
    AuditEvent,
    Child,
    Escalation,
    EscalationStatus,
    FollowUpSlot,
    InformationRequest,
    Organisation,
    Pack,
    PackEvent,
    Role,
    SectionVersion,
    StaffUser,
    Transition,
    TransitionRecipient,
    TransitionStatus,
)
from transitions.pdf.document import to_json
from transitions.services import audit, packs, storage
from transitions.services import transitions as service
from transitions.services.accounts import StaffView, get_user
from transitions.services.audit import Actor
from transitions.services.children import current_versions
from transitions.services.deps import ServiceDeps
from transitions.services.errors import ForbiddenActionError
from transitions.services.follow_up import confirmation_due_at

MARKER = "demo.history_added"
#: How long after it is raised each level acknowledges an escalation (hours); None: nobody does.
ACKNOWLEDGE_AFTER = {"social_worker": 1.5, "team_manager": 3.0, "senior_manager": 0.5}
#: Chosen organisations (the worker picks them on the checklist) by recipient type: demo organisation codes.
CHOSEN = {"school": "999001", "camhs": "North Cumbria CAMHS (demo)", "gp": "Z99001"}


@dataclass(frozen=True)
class Sent:
    """What became of one recipient's pack: confirmed this many hours after it was sent (None: never), and a
    request for more information (its sections and the hours it took to answer)."""

    confirm_after: float | None
    request: tuple[str, float] | None = None


@dataclass(frozen=True)
class Move:
    key: str
    child: str
    kind: str
    destination: str
    urgency: str
    at_a_distance: str
    #: Days before now the move started, and hours after (negative: before) the start it was sent.
    started_days_ago: float
    sent_after_start: float
    packs: dict[str, Sent]
    override: tuple[str, str] | None = None
    emergency_reason: str = ""
    #: The key of the move (or "demo:<kind>" for one of the demo's own) that superseded this one.
    superseded_by: str | None = None


MOVES = (
    Move("jade-break", "Jade", "temporary_move", "SC900002", "planned", "yes", 20, -44,
         {"receiving_placement": Sent(1.5, ("HEALTH", 3.5)), "host_la": Sent(20), "host_police": Sent(30),
          "school": Sent(None)}, superseded_by="jade-admission"),
    Move("leo-break", "Leo", "temporary_move", "SC900003", "planned", "yes", 15, -26,
         {"receiving_placement": Sent(0.5), "host_la": Sent(6), "host_police": Sent(50), "school": Sent(12)},
         override=("PHOTO", "No photo on file yet: the home will take one on arrival and the social worker will "
                            "add it to the record (demo)"),
         superseded_by="demo:emergency_move"),
    Move("jade-admission", "Jade", "hospital_admission", "RZZ07", "emergency", "", 4, 1.5,
         {"hospital_ward": Sent(1), "camhs": Sent(30), "cla_nurse": Sent(None)},
         emergency_reason="Taken to A&E after a fall at the home; admitted overnight for observation (demo)"),
    Move("amira-break", "Amira", "temporary_move", "SC900001", "planned", "", 12, -20,
         {"receiving_placement": Sent(0.75, ("HEALTH", 5))},
         override=("PHOTO", "The photo is eight months old: the home will take a new one on arrival (demo)")),
    Move("tyler-break", "Tyler", "temporary_move", "SC900001", "planned", "", 8, 3,
         {"receiving_placement": Sent(3), "school": Sent(None)},
         override=("PHOTO", "No photo on file yet: the social worker takes one at the next visit (demo)")),
)


def _at(clock_now: datetime, days_ago: float, hours_after: float = 0) -> datetime:
    return clock_now - timedelta(days=days_ago) + timedelta(hours=hours_after)


def load_demo_history(deps: ServiceDeps) -> list[str]:
    """Add the fictional history once (development only). Returns what was added."""
    if deps.settings.env == "production":
        raise ForbiddenActionError("Demo data is for development only")
    now = deps.clock.now().replace(minute=0, second=0, microsecond=0)
    with deps.db.transaction() as session:
        if session.scalars(select(AuditEvent.seq).where(AuditEvent.action == MARKER).limit(1)).first():
            return []
        kids = {c.preferred_name: c for c in session.scalars(select(Child))}
        if not all(m.child in kids and kids[m.child].allocated_worker_id for m in MOVES):
            return []  # the demo children are not there (or not allocated): nothing to add history to
        orgs = {o.code or o.name: o.id for o in session.scalars(select(Organisation))}
        people = {u.role: u.id for u in session.scalars(select(StaffUser).where(StaffUser.is_demo.is_(True)))}
        kid_ids = {name or "": (c.id, c.allocated_worker_id) for name, c in kids.items() if c.allocated_worker_id}
        ours = {kind: t.id for kind, t in ((t.kind, t) for t in session.scalars(
            select(Transition).where(Transition.sent_at.is_not(None))))}
        leo = kids["Leo"].id
        # The record was kept before these moves (Leo's photo excepted): first versions dated 45 days back.
        session.execute(update(SectionVersion).where(
            SectionVersion.version == 1, SectionVersion.child_id.in_([c.id for c in kids.values()]),
            not_(and_(SectionVersion.child_id == leo, SectionVersion.section_code == "PHOTO")))
            .values(created_at=now - timedelta(days=45)).execution_options(synchronize_session=False))
    made: dict[str, uuid.UUID] = {}
    for move in MOVES:
        made[move.key] = _create(deps, move, now, kid_ids, orgs, people)
    with deps.db.transaction() as session:
        for move in MOVES:
            _send(deps, session, move, now, made, ours, people)
        audit.record(session, deps.audit_chain, deps.clock, Actor.system("demo"), MARKER, object_type="demo",
                     details={"count": len(MOVES)})
    return [f"history: {m.kind} for {m.child}" for m in MOVES]


def _create(deps: ServiceDeps, move: Move, now: datetime, kids: dict[str, tuple[uuid.UUID, uuid.UUID]],
            orgs: dict[str, uuid.UUID], people: dict[str, uuid.UUID]) -> uuid.UUID:
    """The transition as its social worker started it then (the real service, its clock in the past)."""
    child_id, worker_id = kids[move.child]
    starts = _at(now, move.started_days_ago)
    created = starts - timedelta(hours=72) if move.urgency == "planned" else starts + timedelta(minutes=40)
    then = replace(deps, clock=FrozenClock(created))
    worker = get_user(deps, worker_id)
    transition_id = service.create_transition(then, child_id, service.TransitionInput(
        kind=move.kind, destination_id=orgs[move.destination], origin_id=None, starts_at=starts,
        urgency=move.urgency, reason_code="", at_a_distance=move.at_a_distance,
        emergency_reason=move.emergency_reason, distance_miles=""), worker, Actor("staff", str(worker.id)))
    if move.override is not None:
        manager = _manager(deps, worker, people)
        section, reason = move.override
        service.override_section(replace(deps, clock=FrozenClock(created + timedelta(hours=1))), transition_id,
                                 section, reason, manager, Actor("staff", str(manager.id)))
    return transition_id


def _manager(deps: ServiceDeps, worker: StaffView, people: dict[str, uuid.UUID]) -> StaffView:
    """The worker's team manager when there is one in the demo (North), otherwise the senior manager."""
    team_manager = get_user(deps, people[Role.TEAM_MANAGER.value])
    if team_manager.team_id == worker.team_id:
        return team_manager
    return get_user(deps, people[Role.SENIOR_MANAGER.value])


def _send(deps: ServiceDeps, session: Session, move: Move, now: datetime, made: dict[str, uuid.UUID],
          ours: dict[str, uuid.UUID], people: dict[str, uuid.UUID]) -> None:
    transition = session.get(Transition, made[move.key])
    assert transition is not None
    child = session.get(Child, transition.child_id)
    assert child is not None
    sent_at = transition.starts_at + timedelta(hours=move.sent_after_start)
    transition.status = TransitionStatus.SENT.value
    transition.sent_at = transition.updated_at = sent_at
    ended: datetime | None = None
    if move.superseded_by is not None:
        if move.superseded_by.startswith("demo:"):
            newer = session.get(Transition, ours[move.superseded_by[5:]]) if move.superseded_by[5:] in ours else None
            newer_sent = newer.sent_at if newer is not None else None
        else:
            newer = session.get(Transition, made[move.superseded_by])
            later = next(m for m in MOVES if m.key == move.superseded_by)
            newer_sent = _at(now, later.started_days_ago, later.sent_after_start)
        if newer is not None:
            transition.status = TransitionStatus.SUPERSEDED.value
            transition.superseded_by_id = newer.id
            ended = min(newer_sent or now, now)
    versions = current_versions(session, child.id)
    for recipient in session.scalars(select(TransitionRecipient).where(
            TransitionRecipient.transition_id == transition.id)):
        if ended is not None:
            recipient.revoke_pending = True
        plan = move.packs.get(recipient.recipient_type)
        if plan is None:
            continue  # never sent (no organisation chosen): the reports count it as not sent
        if recipient.organisation_id is None and recipient.recipient_type in CHOSEN:
            recipient.organisation_id = session.scalars(select(Organisation.id).where(
                (Organisation.code == CHOSEN[recipient.recipient_type])
                | (Organisation.name == CHOSEN[recipient.recipient_type]))).first()
        organisation = session.get(Organisation, recipient.organisation_id) if recipient.organisation_id else None
        if organisation is None or not organisation.mailbox:
            continue
        pack = _pack(deps, session, child, transition, recipient, organisation, sent_at, versions,
                     child.allocated_worker_id or people[Role.SOCIAL_WORKER.value])
        closes = None
        if plan.confirm_after is not None and (ended is None or
                                               sent_at + timedelta(hours=plan.confirm_after) < ended):
            pack.confirmed_at = sent_at + timedelta(hours=plan.confirm_after)
            pack.confirmed_name = "A. Member (demo)"
            pack.confirmed_role = "Manager on duty"
            closes = pack.confirmed_at
            for n, action in enumerate(("link_fetched", "code_sent", "verified", "viewed", "downloaded")):
                session.add(PackEvent(pack_id=pack.id, action=action, outcome="ok",
                                      at=pack.confirmed_at - timedelta(minutes=10 - 2 * n)))
        elif ended is not None:
            pack.revoked_at, pack.revoked_cause, closes = ended, "superseded", ended
        if plan.request is not None and pack.confirmed_at is not None:
            sections, answer_hours = plan.request
            request = InformationRequest(id=uuid.uuid4(), pack_id=pack.id, sections=sections,
                                         requested_at=pack.confirmed_at + timedelta(minutes=20))
            session.add(request)
            request.requested_by = "A. Member (demo), manager on duty"
            request.reason = "Please send the current medication times and the GP's details (demo)"
            request.answered_at = request.requested_at + timedelta(hours=answer_hours)
            request.answered_by = child.allocated_worker_id
            request.answer = "Phoned the home with the medication times and the GP's details (demo)"
        _escalations(deps, session, transition, recipient, pack, child, closes, now, people)


def _pack(deps: ServiceDeps, session: Session, child: Child, transition: Transition, recipient: TransitionRecipient,
          organisation: Organisation, sent_at: datetime, versions: dict[str, SectionVersion],
          sender: uuid.UUID) -> Pack:
    """Version 1 for this recipient, as packs.issue builds it (today's record), sent at ``sent_at``; no email."""
    reference = packs.new_reference()
    built = packs.build(deps, session, child, transition, recipient, organisation, version=1, reference=reference,
                        versions=versions)
    document = packs.materialise(deps, session, child, built)
    pdf, password, pages = packs.render(deps, document)
    pdf_blob = storage.store_blob(deps, session, "pack-pdf", "application/pdf", pdf)
    snapshot_blob = storage.store_blob(deps, session, "pack-snapshot", "application/json", to_json(document))
    session.flush()
    pack = Pack(id=uuid.uuid4(), child_id=child.id, transition_id=transition.id, recipient_id=recipient.id, version=1,
                reference=reference, recipient_type=recipient.recipient_type, organisation_id=organisation.id,
                token_hash=token_hash(new_token()), created_at=sent_at, created_by=sender,
                expires_at=sent_at + timedelta(days=deps.settings.packs.link_expiry_days), pdf_blob_id=pdf_blob.id,
                snapshot_blob_id=snapshot_blob.id, section_versions=built.section_versions[:400],
                content_digest=built.digest, definition_digest=deps.definitions.digest, page_count=pages)
    pack.address = organisation.mailbox
    pack.password = password
    session.add(pack)
    session.flush()
    return pack


def _escalations(deps: ServiceDeps, session: Session, transition: Transition, recipient: TransitionRecipient,
                 pack: Pack, child: Child, closes: datetime | None, now: datetime,
                 people: dict[str, uuid.UUID]) -> None:
    """The reminders and escalations a late confirmation had, as `tick` raises them (every hour counted).

    Only for packs whose story is over (confirmed late, or revoked unconfirmed): a pack still waiting is left to
    `tick`, which reminds and escalates it for real."""
    if closes is None:
        return
    due = confirmation_due_at(deps, transition, recipient, pack)
    rule = deps.definitions.rules.escalation(deps.definitions.kinds.get(transition.kind), transition.urgency)
    slots = [("remind_before", due - timedelta(hours=rule.remind_before_hours)), ("remind_due", due)]
    slots += [(level, due + timedelta(hours=rule.after_hours(level))) for level in ESCALATION_LEVELS]
    ackers = {"social_worker": child.allocated_worker_id, "team_manager": people.get(Role.TEAM_MANAGER.value),
              "senior_manager": people.get(Role.SENIOR_MANAGER.value)}
    team_manager = session.get(StaffUser, ackers["team_manager"]) if ackers["team_manager"] else None
    if team_manager is None or team_manager.team_id != child.team_id:
        ackers["team_manager"] = None  # the demo has no South team manager: nobody acknowledged it
    for slot, at in slots:
        if at >= closes or at >= now or at < pack.created_at:
            continue
        session.add(FollowUpSlot(id=uuid.uuid4(), pack_id=pack.id, slot=slot, due_at=at, claimed_at=at, messages=1))
        if slot not in ESCALATION_LEVELS:
            continue
        escalation = Escalation(id=uuid.uuid4(), child_id=child.id, transition_id=transition.id, pack_id=pack.id,
                                team_id=child.team_id, level=slot, addressed_role=slot, confirmation_due_at=due,
                                raised_at=at,
                                status=EscalationStatus.RESOLVED, resolved_at=closes,
                                resolved_cause="confirmed" if pack.confirmed_at else "closed")
        session.add(escalation)
        acknowledged = at + timedelta(hours=ACKNOWLEDGE_AFTER[slot])
        if ackers[slot] is not None and acknowledged < closes:
            escalation.acknowledged_at, escalation.acknowledged_by = acknowledged, ackers[slot]
            escalation.acknowledged_note = "Phoned them: the pack is with the manager on duty (demo)"
