"""Follow-through of sent packs (Lesson CH6.2): when each confirmation is due, reminders to the recipient before
and when it is due, and escalation to the allocated social worker, the team manager and a senior manager when it
is late; managers acknowledge and resolve escalations on their dashboards.

Each slot of a pack (forms/follow_up.toml) is claimed by inserting a `FollowUpSlot` row, unique per pack and
slot, in the same transaction that queues its emails and raises its escalation; the pack row is locked with
SKIP LOCKED on PostgreSQL, so several `tick` processes share the work and none sends a slot twice. On SQLite
(one process) the unique row is the claim.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, load_only

from transitions.clock import UK
from transitions.formdefs import EscalationRule, TransitionKind
from transitions.models import (
    ESCALATION_LEVELS,
    AccountStatus,
    Child,
    Escalation,
    EscalationStatus,
    FollowUpSlot,
    Organisation,
    OutboxMessage,
    OutboxStatus,
    Pack,
    Role,
    StaffUser,
    Transition,
    TransitionRecipient,
    TransitionStatus,
)
from transitions.services import audit, deadlines, outbox
from transitions.services.accounts import StaffView
from transitions.services.audit import Actor
from transitions.services.deps import ServiceDeps
from transitions.services.errors import ForbiddenActionError, NotFoundError
from transitions.services.tasks import AlreadyDoneError
from transitions.services.values import typed_reason

log = logging.getLogger("transitions.follow_up")

LEVEL_LABELS = {"social_worker": "Social worker", "team_manager": "Team manager",
                "senior_manager": "Senior manager"}
#: Who acts on an escalation of each level (a senior manager may act on any).
LEVEL_ROLES = {"social_worker": Role.SOCIAL_WORKER, "team_manager": Role.TEAM_MANAGER,
               "senior_manager": Role.SENIOR_MANAGER}
#: Transition states whose packs are still followed through.
FOLLOWED = (TransitionStatus.SENT.value, TransitionStatus.COMPLETE.value)


def confirmation_due_at(deps: ServiceDeps, transition: Transition, recipient: TransitionRecipient,
                        pack: Pack) -> datetime:
    """The later of the recipient's own due time and the confirmation window after this version was sent.

    A planned move's receiving home confirms before the child arrives (its due time); a pack sent late, or a
    new version, gets the window from when it was sent (forms/follow_up.toml [confirmation]).
    """
    window = deps.definitions.rules.confirm_within(pack.recipient_type)
    after_send = deadlines.due_at(window, pack.created_at)
    if pack.version > 1:
        return after_send
    return max(recipient.due_at, after_send)


def kind_of(deps: ServiceDeps, transition: Transition) -> TransitionKind | None:
    return deps.definitions.kinds.get(transition.kind)


def rule_for(deps: ServiceDeps, transition: Transition) -> EscalationRule:
    return deps.definitions.rules.escalation(kind_of(deps, transition), transition.urgency)


def slot_times(rule: EscalationRule, due: datetime) -> dict[str, datetime]:
    """When each slot of a pack whose confirmation is due at `due` falls."""
    working = rule.working_hours
    times = {"remind_before": deadlines.shift_hours(due, -rule.remind_before_hours, working_hours=working),
             "remind_due": deadlines.shift_hours(due, 0, working_hours=working)}
    for level in ESCALATION_LEVELS:
        times[level] = deadlines.shift_hours(due, rule.after_hours(level), working_hours=working)
    return times


@dataclass
class FollowUpReport:
    reminders: int = 0
    escalations: int = 0
    skipped: int = 0
    closed: int = 0
    busy: int = 0
    withdrawn: int = 0
    errors: list[str] = field(default_factory=list)


def _followed() -> Select[Pack, TransitionRecipient, Transition]:
    """Unconfirmed, unrevoked packs that are the latest version for a recipient still on a sent transition,
    and not resolved by staff."""
    newer = aliased(Pack)
    return (select(Pack, TransitionRecipient, Transition)
            .join(TransitionRecipient, TransitionRecipient.id == Pack.recipient_id)
            .join(Transition, Transition.id == Pack.transition_id)
            .where(Pack.confirmed_at.is_(None), Pack.revoked_at.is_(None), TransitionRecipient.removed_at.is_(None),
                   Transition.status.in_(FOLLOWED),
                   ~exists().where(newer.recipient_id == Pack.recipient_id, newer.version > Pack.version),
                   ~exists().where(Escalation.pack_id == Pack.id, Escalation.resolved_cause == "staff"))
            .order_by(Pack.created_at))


def _candidates(deps: ServiceDeps) -> list[uuid.UUID]:
    """The followed packs with a slot due and not yet claimed, read in two queries: most minutes there are
    none, and only these get a transaction (and a row lock) of their own."""
    now = deps.clock.now()
    with deps.db.transaction() as session:
        rows = session.execute(_followed()).all()
        if not rows:
            return []
        claimed = {(pack_id, slot) for pack_id, slot in session.execute(
            select(FollowUpSlot.pack_id, FollowUpSlot.slot).join(Pack, Pack.id == FollowUpSlot.pack_id)
            .where(Pack.confirmed_at.is_(None), Pack.revoked_at.is_(None)))}
        due = []
        for pack, recipient, transition in rows:
            try:
                times = slot_times(rule_for(deps, transition), confirmation_due_at(deps, transition, recipient, pack))
            except Exception:  # its own transaction (below) reports it, and the others go ahead
                due.append(pack.id)
                continue
            if any(at <= now and (pack.id, slot) not in claimed for slot, at in times.items()):
                due.append(pack.id)
        return due


def followed_count(deps: ServiceDeps) -> int:
    """How many packs are being followed up (for benchmarks and operators)."""
    with deps.db.transaction() as session:
        return len(session.execute(_followed()).all())


def run(deps: ServiceDeps, *, worker: str = "tick") -> FollowUpReport:
    """Send every reminder and raise every escalation whose time has come, once; close escalations whose pack
    has been confirmed or withdrawn since, and withdraw their reminders and alerts not yet delivered."""
    report = FollowUpReport()
    for pack_id in _candidates(deps):
        try:
            _follow(deps, pack_id, report, worker)
        except IntegrityError:  # another process claimed a slot of this pack first: its work, not ours
            report.busy += 1
        except Exception as exc:  # one bad pack must not stop the others' follow-up; it is retried next tick
            log.exception("follow-up of pack %s failed", pack_id)
            report.errors.append(f"{pack_id}: {type(exc).__name__}")
    report.closed = _close_settled(deps)
    report.withdrawn = withdraw_settled(deps)
    return report


def _follow(deps: ServiceDeps, pack_id: uuid.UUID, report: FollowUpReport, worker: str) -> None:
    now = deps.clock.now()
    with deps.db.transaction() as session:
        query = select(Pack).where(Pack.id == pack_id)
        if deps.db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        pack = session.scalars(query).first()
        if pack is None:  # locked by another tick process: it is doing this pack now
            report.busy += 1
            return
        if pack.confirmed_at is not None or pack.revoked_at is not None or _resolved_by_staff(session, pack.id):
            return  # settled since the candidates were listed
        transition = session.get(Transition, pack.transition_id)
        recipient = session.get(TransitionRecipient, pack.recipient_id)
        assert transition is not None and recipient is not None
        due = confirmation_due_at(deps, transition, recipient, pack)
        times = slot_times(rule_for(deps, transition), due)
        claimed = set(session.scalars(select(FollowUpSlot.slot).where(FollowUpSlot.pack_id == pack.id)))
        for slot, at in times.items():
            if slot in claimed or at > now:
                continue
            messages = _act(deps, session, slot, pack, transition, recipient, due, times, now)
            session.add(FollowUpSlot(id=uuid.uuid4(), pack_id=pack.id, slot=slot, due_at=at, claimed_at=now,
                                     messages=messages))
            session.flush()  # the unique (pack, slot) row: a concurrent claim fails here, before anything commits
            if slot in ESCALATION_LEVELS:
                report.escalations += 1
            elif messages:
                report.reminders += 1
            else:
                report.skipped += 1


def _resolved_by_staff(session: Session, pack_id: uuid.UUID) -> bool:
    return session.scalars(select(Escalation.id).where(Escalation.pack_id == pack_id,
                                                       Escalation.resolved_cause == "staff")).first() is not None


def _act(deps: ServiceDeps, session: Session, slot: str, pack: Pack, transition: Transition,
         recipient: TransitionRecipient, due: datetime, times: dict[str, datetime], now: datetime) -> int:
    """Do what the slot is for; return the number of emails queued."""
    type_title = _type_title(deps, pack.recipient_type)
    if slot in ("remind_before", "remind_due"):
        # A reminder only helps while the link works, and only the latest one due is worth sending: a tick
        # that was down for a while does not send "due in 4 hours" after the due time.
        late = slot == "remind_before" and (times["remind_due"] <= now or pack.created_at >= times[slot])
        if late or pack.expires_at <= now or not pack.address:
            return 0
        outbox.enqueue(session, now, to=pack.address, subject=f"Reminder: please confirm handover pack "
                       f"{pack.reference}", body=_reminder_body(deps, session, pack, due, slot),
                       purpose="pack_reminder", idempotency_key=f"follow-up-{pack.id}-{slot}")
        return 1
    child = session.get(Child, pack.child_id)
    assert child is not None
    addressed, people = _alerted(session, slot, child)
    escalation = Escalation(id=uuid.uuid4(), child_id=child.id, transition_id=transition.id, pack_id=pack.id,
                            team_id=child.team_id, level=slot, addressed_role=addressed, confirmation_due_at=due,
                            raised_at=now, status=EscalationStatus.OPEN)
    session.add(escalation)
    audit.record(session, deps.audit_chain, deps.clock, Actor.system("tick"), "escalation.raised",
                 object_type="child", object_id=child.id,
                 details={"pack_id": pack.id, "level": slot, "recipient_type": pack.recipient_type})
    for person_id, address in people:
        # The email names neither the child nor the receiving organisation (where the child is), only the
        # pack's reference and the kind of recipient.
        outbox.enqueue(session, now, to=address, subject=f"Confirmation overdue: handover pack {pack.reference}",
                       body=ESCALATION_EMAIL.format(
                           recipient=type_title, reference=pack.reference, version=pack.version, due=_uk(due),
                           level=LEVEL_LABELS[slot].lower(), url=deps.settings.app.public_base_url.rstrip("/") + "/"),
                       purpose="escalation", idempotency_key=f"follow-up-{pack.id}-{slot}-{person_id}")
    return len(people)


def _alerted(session: Session, level: str, child: Child) -> tuple[str, list[tuple[uuid.UUID, str]]]:
    """Who answers for an alert, and their addresses: the allocated worker; the child's team managers; every
    senior manager. Nobody at a level (no worker allocated, no team manager) passes it up a level rather than
    dropping it."""
    def active(query: object) -> list[tuple[uuid.UUID, str]]:
        users = session.scalars(query)  # type: ignore[call-overload]
        return sorted((u.id, u.email) for u in users if u.status == AccountStatus.ACTIVE.value and u.email)

    if level == "social_worker" and child.allocated_worker_id is not None:
        found = active(select(StaffUser).where(StaffUser.id == child.allocated_worker_id))
        if found:
            return "social_worker", found
    if level in ("social_worker", "team_manager") and child.team_id is not None:
        found = active(select(StaffUser).where(StaffUser.role == Role.TEAM_MANAGER.value,
                                               StaffUser.team_id == child.team_id))
        if found:
            return "team_manager", found
    return "senior_manager", active(select(StaffUser).where(StaffUser.role == Role.SENIOR_MANAGER.value))


def _close_settled(deps: ServiceDeps) -> int:
    """Escalations whose pack was confirmed, revoked or replaced since are resolved by that fact."""
    now = deps.clock.now()
    closed = 0
    with deps.db.transaction() as session:
        rows = session.execute(select(Escalation, Pack).join(Pack, Pack.id == Escalation.pack_id).where(
            Escalation.status != EscalationStatus.RESOLVED,
            (Pack.confirmed_at.is_not(None)) | (Pack.revoked_at.is_not(None)))).all()
        for escalation, pack in rows:
            escalation.status = EscalationStatus.RESOLVED
            escalation.resolved_at = now
            escalation.resolved_cause = "confirmed" if pack.confirmed_at is not None else "closed"
            closed += 1
    return closed


#: The follow-up emails' idempotency keys start "follow-up-<pack id>-" (see _act).
_KEY_PREFIX = "follow-up-"


def withdraw_settled(deps: ServiceDeps) -> int:
    """Reminders and alerts still queued (the mail server was down) whose pack has since been confirmed,
    revoked or resolved by staff are withdrawn, not delivered late. Runs before delivery in the same tick."""
    with deps.db.transaction() as session:
        queued = list(session.scalars(select(OutboxMessage).where(
            OutboxMessage.status == OutboxStatus.QUEUED.value,
            OutboxMessage.purpose.in_(("pack_reminder", "escalation")))))
        if not queued:
            return 0
        by_pack: dict[uuid.UUID, list[OutboxMessage]] = {}
        for message in queued:
            try:
                pack_id = uuid.UUID(message.idempotency_key[len(_KEY_PREFIX):len(_KEY_PREFIX) + 36])
            except ValueError:
                continue
            by_pack.setdefault(pack_id, []).append(message)
        settled = set(session.scalars(select(Pack.id).where(
            Pack.id.in_(by_pack), (Pack.confirmed_at.is_not(None)) | (Pack.revoked_at.is_not(None)))))
        settled |= set(session.scalars(select(Escalation.pack_id).where(
            Escalation.pack_id.in_(by_pack), Escalation.resolved_cause == "staff")))
        withdrawn = 0
        for pack_id in settled:
            for message in by_pack[pack_id]:
                message.status = OutboxStatus.WITHDRAWN.value
                withdrawn += 1
        return withdrawn


def _type_title(deps: ServiceDeps, code: str) -> str:
    found = deps.definitions.recipient_types.get(code)
    return found.title if found is not None else code


def _uk(when: datetime) -> str:
    local = when.astimezone(UK)
    return f"{local:%A} {local.day} {local:%B %Y} at {local:%H:%M}"


REMINDER_EMAIL = """{sender} sent {organisation} handover pack {reference} (version {version}) and needs you to
confirm you have received it {when}.

Open the secure link in the email of {sent} (it works until {expires}), read the pack and press "Confirm
receipt". Opening the link is not a confirmation.

If you cannot find the email or the link no longer works: {contact}
"""
ESCALATION_EMAIL = """The {recipient} has not confirmed receipt of handover pack {reference} (version {version}).
Confirmation was due on {due}.

This is the {level} alert. Sign in to see it on your home page, acknowledge it and say what you are doing:
{url}
"""


def _reminder_body(deps: ServiceDeps, session: Session, pack: Pack, due: datetime, slot: str) -> str:
    """To the recipient's own mailbox: it may name its own organisation, as the link email does."""
    from transitions.services.packs import sender_name

    organisation = session.get(Organisation, pack.organisation_id)
    return REMINDER_EMAIL.format(
        sender=sender_name(deps), organisation=organisation.name if organisation is not None else "",
        reference=pack.reference, version=pack.version,
        when=f"by {_uk(due)}" if slot == "remind_before" else f"now (it was due on {_uk(due)})",
        sent=_uk(pack.created_at), expires=_uk(pack.expires_at), contact=deps.settings.packs.sender_contact)


# ---- managers' dashboards ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EscalationRow:
    id: uuid.UUID
    child_id: uuid.UUID
    child_name: str
    transition_id: uuid.UUID
    pack_reference: str
    pack_version: int
    recipient_title: str
    organisation: str
    level: str
    status: str
    confirmation_due_at: datetime
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledged_note: str | None

    @property
    def level_label(self) -> str:
        return LEVEL_LABELS[self.level]


def _scope(user: StaffView) -> object | None:
    """Which escalations a person answers for: those addressed to their role, for their children or team (the
    child's team now, as everywhere else in the service)."""
    if user.role is Role.SENIOR_MANAGER:
        return Escalation.addressed_role == "senior_manager"
    if user.role is Role.TEAM_MANAGER and user.team_id is not None:
        return (Escalation.addressed_role == "team_manager") & (Child.team_id == user.team_id)
    if user.role is Role.SOCIAL_WORKER:
        return (Escalation.addressed_role == "social_worker") & (Child.allocated_worker_id == user.id)
    return None


def dashboard(deps: ServiceDeps, user: StaffView, actor: Actor) -> tuple[list[EscalationRow], list[EscalationRow]]:
    """Open escalations for this person (needing acknowledgement), and the acknowledged ones not yet resolved."""
    scope = _scope(user)
    if scope is None:
        return [], []
    with deps.db.transaction() as session:
        acknowledger = aliased(StaffUser)
        # Only the columns the rows show are loaded (a manager may have hundreds of rows), in one SELECT.
        rows = session.execute(
            select(Escalation, Child, Pack.reference, Pack.version, Pack.recipient_type, Organisation.name,
                   acknowledger)
            .join(Child, Child.id == Escalation.child_id).join(Pack, Pack.id == Escalation.pack_id)
            .join(Organisation, Organisation.id == Pack.organisation_id)
            .outerjoin(acknowledger, acknowledger.id == Escalation.acknowledged_by)
            .options(load_only(Child.preferred_name_enc, Child.legal_name_enc, raiseload=True),
                     load_only(acknowledger.display_name_enc, raiseload=True))
            .where(Escalation.status != EscalationStatus.RESOLVED, scope)  # type: ignore[arg-type]
            .order_by(Escalation.confirmation_due_at, Escalation.raised_at)).all()
        out = [EscalationRow(
            id=e.id, child_id=c.id, child_name=c.preferred_name or c.legal_name or "", transition_id=e.transition_id,
            pack_reference=reference, pack_version=version, recipient_title=_type_title(deps, recipient_type),
            organisation=organisation, level=e.level, status=e.status, confirmation_due_at=e.confirmation_due_at,
            raised_at=e.raised_at, acknowledged_at=e.acknowledged_at,
            acknowledged_by=(a.display_name or "") if a is not None else None,
            acknowledged_note=e.acknowledged_note)
            for e, c, reference, version, recipient_type, organisation, a in rows]
        if out:
            audit.record(session, deps.audit_chain, deps.clock, actor, "escalations.viewed",
                         details={"count": len(out)})
    return ([r for r in out if r.status == EscalationStatus.OPEN],
            [r for r in out if r.status == EscalationStatus.ACKNOWLEDGED])


def _may_act(user: StaffView, escalation: Escalation, child: Child, *, resolving: bool = False) -> bool:
    """Acknowledge: whoever it is addressed to, or a manager above them. Resolve (which stops the alerts
    above): a team manager for their team's child, or a senior manager; never the social worker alone."""
    if user.role is Role.SENIOR_MANAGER:
        return True
    if user.role is Role.TEAM_MANAGER:
        return (escalation.addressed_role in ("social_worker", "team_manager") and user.team_id is not None
                and child.team_id == user.team_id)
    return (not resolving and user.role is Role.SOCIAL_WORKER and escalation.addressed_role == "social_worker"
            and child.allocated_worker_id == user.id)


def acknowledge(deps: ServiceDeps, escalation_id: uuid.UUID, note: str, user: StaffView, actor: Actor) -> None:
    """"I have seen it and this is what I am doing." Later levels still fall due if the pack stays
    unconfirmed; resolving stops them."""
    text = typed_reason(note, asking="what you are doing about it")
    with deps.db.transaction() as session:
        escalation, child = _get(session, escalation_id)
        if not _may_act(user, escalation, child):
            raise ForbiddenActionError("This escalation is not yours to acknowledge")
        if escalation.status != EscalationStatus.OPEN:
            raise AlreadyDoneError("Someone has already acknowledged this escalation")
        escalation.status = EscalationStatus.ACKNOWLEDGED
        escalation.acknowledged_at, escalation.acknowledged_by = deps.clock.now(), user.id
        escalation.acknowledged_note = text
        audit.record(session, deps.audit_chain, deps.clock, actor, "escalation.acknowledged", object_type="child",
                     object_id=child.id, details={"escalation_id": escalation.id, "level": escalation.level})


def resolve(deps: ServiceDeps, escalation_id: uuid.UUID, note: str, user: StaffView, actor: Actor) -> None:
    """Settled outside the service (confirmed by phone, the recipient is no longer involved): no further
    reminders or alerts for this pack version."""
    text = typed_reason(note, asking="how it was resolved")
    with deps.db.transaction() as session:
        escalation, child = _get(session, escalation_id)
        if not _may_act(user, escalation, child, resolving=True):
            raise ForbiddenActionError("Only a team manager or a senior manager can resolve an escalation")
        # Lock the pack, as tick does before raising the next alert: a resolve and a new alert do not cross.
        session.scalars(select(Pack).where(Pack.id == escalation.pack_id).with_for_update()).first()
        if escalation.status == EscalationStatus.RESOLVED:
            raise AlreadyDoneError("This escalation has already been resolved")
        now = deps.clock.now()
        if escalation.acknowledged_at is None:
            escalation.acknowledged_at, escalation.acknowledged_by = now, user.id
        escalation.status, escalation.resolved_at, escalation.resolved_by = EscalationStatus.RESOLVED, now, user.id
        escalation.resolved_cause, escalation.resolved_note = "staff", text
        audit.record(session, deps.audit_chain, deps.clock, actor, "escalation.resolved", object_type="child",
                     object_id=child.id, details={"escalation_id": escalation.id, "level": escalation.level})


def _get(session: Session, escalation_id: uuid.UUID) -> tuple[Escalation, Child]:
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        raise NotFoundError("escalation")
    child = session.get(Child, escalation.child_id)
    assert child is not None
    return escalation, child


@dataclass(frozen=True)
class FollowUpLine:
    organisation: str
    recipient_title: str
    pack_reference: str
    pack_version: int
    what: str
    at: datetime
    status: str
    request_id: uuid.UUID | None = None


def transition_follow_up(deps: ServiceDeps, transition_id: uuid.UUID) -> list[FollowUpLine]:
    """Escalations and recipients' requests for one transition, for its page (the caller has checked access to
    the transition: this reads nothing more personal than the page already shows)."""
    from transitions.models import InformationRequest

    with deps.db.transaction() as session:
        lines = []
        for e, p, o in session.execute(
                select(Escalation, Pack, Organisation).join(Pack, Pack.id == Escalation.pack_id)
                .join(Organisation, Organisation.id == Pack.organisation_id)
                .where(Escalation.transition_id == transition_id)).all():
            status = {"open": "Waiting to be acknowledged", "acknowledged": "Acknowledged"}.get(e.status) or {
                "confirmed": "Settled: the recipient confirmed", "closed": "Settled: the link was withdrawn"}.get(
                e.resolved_cause or "", "Resolved")
            lines.append(FollowUpLine(o.name, _type_title(deps, p.recipient_type), p.reference, p.version,
                                      f"Confirmation overdue: {LEVEL_LABELS[e.level].lower()} alerted", e.raised_at,
                                      status))
        for r, p, o in session.execute(
                select(InformationRequest, Pack, Organisation).join(Pack, Pack.id == InformationRequest.pack_id)
                .join(Organisation, Organisation.id == Pack.organisation_id)
                .where(Pack.transition_id == transition_id)).all():
            lines.append(FollowUpLine(o.name, _type_title(deps, p.recipient_type), p.reference, p.version,
                                      "Asked for missing information", r.requested_at,
                                      "Answered" if r.answered_at else "Waiting for an answer", r.id))
        return sorted(lines, key=lambda line: line.at)
