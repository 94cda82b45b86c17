"""Reports for managers and auditors ("How will we know"): for a period and a team, or every team.

Moves and admissions are counted by when they start (``Transition.starts_at``) and by the child's team;
escalations by when they were raised (and the team they were raised for); information requests by when they
were asked. "Overdue now" is about the present, whatever the period.

A report holds counts, times and references only: never a child's name, date of birth or record, so the
auditor (who sees reports and the audit trail, not child records) may read every table. Override reasons are
shown as the manager typed them (they are what an auditor checks). Each table is plain data: the web layer
draws its chart and writes its CSV from the same rows.
"""

from __future__ import annotations

import json
import math
import statistics
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, and_, select
from sqlalchemy.orm import Session, aliased

from transitions.clock import UK
from transitions.models import (
    ESCALATION_LEVELS,
    ROLE_LABELS,
    Child,
    Escalation,
    EscalationStatus,
    InformationRequest,
    Organisation,
    Pack,
    Role,
    SectionOverride,
    SectionVersion,
    Team,
    Transition,
    TransitionRecipient,
    TransitionStatus,
)
from transitions.services import audit
from transitions.services.accounts import StaffView
from transitions.services.audit import Actor
from transitions.services.deps import ServiceDeps
from transitions.services.errors import ForbiddenActionError, NotFoundError
from transitions.services.follow_up import confirmation_due_at

#: Who reads reports. Team managers see their own team's; senior managers and auditors any team or all.
REPORT_ROLES = frozenset({Role.TEAM_MANAGER, Role.SENIOR_MANAGER, Role.AUDITOR})
ANY_TEAM_ROLES = frozenset({Role.SENIOR_MANAGER, Role.AUDITOR})
#: The default period: the last 30 days, today included.
DEFAULT_DAYS = 30
#: A longer period is refused (a report is for a month or a year, not the whole history at once).
MAX_DAYS = 3 * 366
ALL_RECIPIENTS = "All recipient types"
LEVEL_LABELS = {"social_worker": "Social worker", "team_manager": "Team manager", "senior_manager": "Senior manager"}

Cell = str | int | float | datetime | None
_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")


@dataclass(frozen=True)
class Period:
    """Whole days in UK time, both ends included."""

    start: date
    end: date

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.start, time(0), tzinfo=UK).astimezone(UTC)

    @property
    def ends_at(self) -> datetime:
        """The first moment after the period (midnight UK time at the end of its last day)."""
        return datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=UK).astimezone(UTC)

    def holds(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


def default_period(deps: ServiceDeps) -> Period:
    today = deps.clock.now().astimezone(UK).date()
    return Period(today - timedelta(days=DEFAULT_DAYS - 1), today)


def period_errors(start: date | None, end: date | None) -> dict[str, str]:
    """GOV.UK messages for a period whose two dates are real dates (the form checks that they are)."""
    if start is not None and end is not None:
        if end < start:
            return {"to_date": "The end date must be the same as or after the start date"}
        if (end - start).days >= MAX_DAYS:
            return {"to_date": "The period must be 3 years or shorter"}
    return {}


@dataclass(frozen=True)
class Scope:
    period: Period
    #: None: every team.
    team_id: uuid.UUID | None
    team_name: str


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    #: What the page says when there are no rows.
    empty: str
    #: Per row, the transition it is about (only "overdue now" has them); the web layer links managers to it.
    transition_ids: tuple[uuid.UUID | None, ...] = ()
    #: Columns holding numbers (right-aligned in the page).
    numeric: frozenset[int] = field(default_factory=frozenset)
    #: How to read it, shown above it.
    note: str = ""


@dataclass(frozen=True)
class Report:
    scope: Scope
    generated_at: datetime
    tables: tuple[Table, ...]

    def table(self, name: str) -> Table:
        return next(t for t in self.tables if t.name == name)


@dataclass(frozen=True)
class TeamChoice:
    id: uuid.UUID
    name: str


# ---- the figures ------------------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least p% of the values at or below it ("9 in 10 within")."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return float(ordered[rank - 1])


def hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _share(part: int, whole: int) -> int | None:
    return None if whole == 0 else round(100 * part / whole)


class _Builder:
    """One report's queries, in one session, for one scope."""

    def __init__(self, deps: ServiceDeps, session: Session, scope: Scope, now: datetime) -> None:
        self.deps = deps
        self.session = session
        self.scope = scope
        self.now = now
        self.types = deps.definitions.recipient_types

    def type_title(self, code: str) -> str:
        found = self.types.get(code)
        return found.title if found else code

    def type_order(self, codes: Iterable[str]) -> list[str]:
        known = list(self.types)
        return sorted(set(codes), key=lambda c: (known.index(c) if c in known else len(known), c))

    def moves(self, query: _Query) -> _Query:
        """Narrow a query that joins Transition to the period's moves and the scope's team."""
        period = self.scope.period
        query = query.join(Child, Child.id == Transition.child_id).where(
            Transition.starts_at >= period.starts_at, Transition.starts_at < period.ends_at)
        if self.scope.team_id is not None:
            query = query.where(Child.team_id == self.scope.team_id)
        return query

    # 1
    def kinds(self) -> Table:
        rows = self.session.execute(self.moves(select(Transition.kind, Transition.status, Transition.sent_at))).all()
        started: Counter[str] = Counter(kind for kind, _status, _sent in rows)
        sent = Counter(kind for kind, _status, sent_at in rows if sent_at is not None)
        cancelled = Counter(kind for kind, status, _sent in rows if status == TransitionStatus.CANCELLED.value)
        kinds = self.deps.definitions.kinds
        order = {k.code: i for i, k in enumerate(self.deps.definitions.ordered_kinds())}
        return Table(
            name="kinds", title="Transitions by kind",
            columns=("Kind of transition", "Transitions", "Packs sent", "Cancelled"),
            rows=tuple((kinds[k].title if k in kinds else k, started[k], sent[k], cancelled[k])
                       for k in sorted(started, key=lambda k: (order.get(k, len(order)), k))),
            empty="No moves or admissions started in this period.", numeric=frozenset({1, 2, 3}))

    # 2
    def on_time(self) -> Table:
        first = aliased(Pack)
        rows = self.session.execute(self.moves(
            select(TransitionRecipient.recipient_type, TransitionRecipient.due_at, first.created_at)
            .select_from(TransitionRecipient)
            .join(Transition, Transition.id == TransitionRecipient.transition_id)
            .outerjoin(first, and_(first.recipient_id == TransitionRecipient.id, first.version == 1)))
            .where(Transition.sent_at.is_not(None), TransitionRecipient.removed_at.is_(None))).all()
        tally: dict[str, Counter[str]] = defaultdict(Counter)
        for rtype, due, sent_at in rows:
            outcome = on_time_outcome(due, sent_at, self.now)
            tally[rtype][outcome] += 1
            tally[ALL_RECIPIENTS][outcome] += 1
        out = []
        for code in [*self.type_order(c for c in tally if c != ALL_RECIPIENTS), ALL_RECIPIENTS]:
            if code not in tally:
                continue
            c = tally[code]
            counted = c["on_time"] + c["late"] + c["not_sent"]
            out.append((code if code == ALL_RECIPIENTS else self.type_title(code), sum(c.values()), c["on_time"],
                        c["late"], c["not_sent"], c["not_yet_due"], _share(c["on_time"], counted)))
        return Table(
            name="on_time", title="Packs sent by their due time",
            columns=("Recipient type", "Recipients", "Sent on time", "Sent late", "Not sent, past due",
                     "Not sent, not yet due", "On time (%)"),
            rows=tuple(out), empty="No packs were due for moves or admissions in this period.",
            numeric=frozenset(range(1, 7)),
            note="Each recipient of a move or admission whose packs were sent. On time: its first pack went by the "
                 "time it was due. A pack never sent counts as late once its due time has passed.")

    # 3
    def confirmation(self) -> Table:
        rows = self.session.execute(self.moves(
            select(Pack.recipient_type, Pack.created_at, Pack.confirmed_at).select_from(Pack)
            .join(Transition, Transition.id == Pack.transition_id))
            .where(Pack.confirmed_at.is_not(None))).all()
        waits: dict[str, list[float]] = defaultdict(list)
        for rtype, created, confirmed in rows:
            if confirmed is not None:  # always (the query asks for confirmed packs): for the type checker
                waits[rtype].append(hours(confirmed - created))
                waits[ALL_RECIPIENTS].append(hours(confirmed - created))
        out = []
        for code in [*self.type_order(c for c in waits if c != ALL_RECIPIENTS), ALL_RECIPIENTS]:
            if code in waits:
                values = waits[code]
                out.append((code if code == ALL_RECIPIENTS else self.type_title(code), len(values),
                            _round(median(values)), _round(percentile(values, 90))))
        return Table(
            name="confirmation", title="Time from sending a pack to its confirmation",
            columns=("Recipient type", "Packs confirmed", "Median (hours)", "90th percentile (hours)"),
            rows=tuple(out), empty="No packs for moves or admissions in this period have been confirmed.",
            numeric=frozenset({1, 2, 3}))

    # 4
    def overdue(self) -> Table:
        newer = aliased(Pack)
        latest = ~select(newer.id).where(newer.recipient_id == Pack.recipient_id,
                                        newer.version > Pack.version).exists()
        query = (select(Pack, TransitionRecipient, Transition, Organisation.name).select_from(Pack)
                 .join(TransitionRecipient, TransitionRecipient.id == Pack.recipient_id)
                 .join(Transition, Transition.id == Pack.transition_id)
                 .join(Child, Child.id == Transition.child_id)
                 .join(Organisation, Organisation.id == Pack.organisation_id)
                 .where(Pack.confirmed_at.is_(None), Pack.revoked_at.is_(None), Pack.expires_at > self.now,
                        TransitionRecipient.removed_at.is_(None), latest))
        if self.scope.team_id is not None:
            query = query.where(Child.team_id == self.scope.team_id)
        late = []
        for pack, recipient, transition, organisation in self.session.execute(query).all():
            due = confirmation_due_at(self.deps, transition, recipient, pack)
            if due < self.now:
                late.append((due, pack.reference, pack.recipient_type, organisation, transition.id))
        late.sort(key=lambda row: (row[0], row[1]))
        return Table(
            name="overdue", title="Confirmations overdue now",
            columns=("Pack reference", "Recipient type", "Organisation", "Confirmation was due (UK time)",
                     "Hours late"),
            rows=tuple((ref, self.type_title(rtype), org, due, _round(hours(self.now - due)))
                       for due, ref, rtype, org, _t in late),
            transition_ids=tuple(t for *_rest, t in late),
            empty="No confirmation is overdue now.", numeric=frozenset({4}),
            note="As it stands now, whatever the period: each pack still waiting for its confirmation after the "
                 "time it was due (its latest version, with a live link).")

    # 5
    def sections(self) -> Table:
        moves = self.session.execute(self.moves(
            select(Transition.child_id, Transition.kind, Transition.sent_at))
            .where(Transition.sent_at.is_not(None))).all()
        history = self._section_history({child_id for child_id, _k, _s in moves})
        stale_days = self.deps.settings.record.photo_stale_days
        needed: Counter[str] = Counter()
        missing: Counter[str] = Counter()
        stale: Counter[str] = Counter()
        for child_id, kind_code, sent_at in moves:
            kind = self.deps.definitions.kinds.get(kind_code)
            if kind is None or sent_at is None:
                continue
            for item in kind.sections:
                needed[item.code] += 1
                state = section_state_at(history.get((child_id, item.code), []), sent_at,
                                         photo_stale_days=stale_days if item.code == "PHOTO" else None)
                if state == "missing":
                    missing[item.code] += 1
                elif state == "stale" and item.fresh:
                    stale[item.code] += 1
        sections = self.deps.definitions.sections
        order = {s.code: i for i, s in enumerate(self.deps.definitions.ordered())}
        gaps = [c for c in needed if missing[c] or stale[c]]
        return Table(
            name="sections", title="Sections missing or out of date when the packs were sent",
            columns=("Section", "Moves that needed it", "Missing", "Out of date"),
            rows=tuple((sections[c].title if c in sections else c, needed[c], missing[c], stale[c])
                       for c in sorted(gaps, key=lambda c: (order.get(c, len(order)), c))),
            empty=("Every section these moves needed was there and up to date when their packs were sent."
                   if moves else "No packs were sent for moves or admissions in this period."),
            numeric=frozenset({1, 2, 3}),
            note=f"Packs were sent for {len(moves)} "
                 f"{'move or admission' if len(moves) == 1 else 'moves or admissions'} in this period. Listed: "
                 "each section that was missing or past its review date, when they were sent, for at least one of "
                 "them (a photo also when older than the record allows).")

    def _section_history(self, children: set[uuid.UUID]) -> dict[tuple[uuid.UUID, str], list[SavedVersion]]:
        """Every saved version of these children's sections (dates only; a photo's date taken as well)."""
        history: dict[tuple[uuid.UUID, str], list[SavedVersion]] = defaultdict(list)
        if not children:
            return history
        for child_id, code, version, created, review_due in self.session.execute(
                select(SectionVersion.child_id, SectionVersion.section_code, SectionVersion.version,
                       SectionVersion.created_at, SectionVersion.next_review_due)
                .where(SectionVersion.child_id.in_(children), SectionVersion.section_code != "PHOTO")):
            history[(child_id, code)].append(SavedVersion(version, created, review_due))
        for row in self.session.scalars(select(SectionVersion).where(
                SectionVersion.child_id.in_(children), SectionVersion.section_code == "PHOTO")):
            content = json.loads(row.content or "{}")
            taken = content.get("taken_on")
            history[(row.child_id, "PHOTO")].append(SavedVersion(
                row.version, row.created_at, row.next_review_due,
                photo_taken_on=date.fromisoformat(taken) if isinstance(taken, str) and content.get("photo") else None))
        return history

    # 6
    def overrides(self) -> Table:
        found = self.session.execute(self.moves(
            select(SectionOverride, Transition.kind).select_from(SectionOverride)
            .join(Transition, Transition.id == SectionOverride.transition_id))
            .order_by(SectionOverride.created_at)).all()
        sections = self.deps.definitions.sections
        kinds = self.deps.definitions.kinds
        rows = []
        for override, kind in found:
            try:
                role = ROLE_LABELS[Role(override.by_role)]
            except ValueError:
                role = override.by_role
            rows.append((sections[override.section_code].title if override.section_code in sections
                         else override.section_code, kinds[kind].title if kind in kinds else kind,
                         override.reason or "", role, override.created_at))
        return Table(
            name="overrides", title="Overrides used, with their reasons",
            columns=("Section", "Kind of transition", "Reason given", "Overridden by", "When (UK time)"),
            rows=tuple(rows), empty="No gaps were overridden for moves or admissions in this period.")

    # 7
    def escalations(self) -> Table:
        period = self.scope.period
        query = select(Escalation.level, Escalation.raised_at, Escalation.status, Escalation.acknowledged_at,
                       Escalation.resolved_at).where(Escalation.raised_at >= period.starts_at,
                                                     Escalation.raised_at < period.ends_at)
        if self.scope.team_id is not None:
            query = query.where(Escalation.team_id == self.scope.team_id)
        found = self.session.execute(query).all()
        if not found:
            rows: tuple[tuple[Cell, ...], ...] = ()
        else:
            out = []
            for level in ESCALATION_LEVELS:
                mine = [e for e in found if e.level == level]
                waits = [hours(e.acknowledged_at - e.raised_at) for e in mine if e.acknowledged_at is not None]
                out.append((LEVEL_LABELS.get(level, level), len(mine), len(waits),
                            sum(1 for e in mine if e.resolved_at is not None),
                            sum(1 for e in mine if e.status == EscalationStatus.OPEN), _round(median(waits))))
            rows = tuple(out)
        return Table(
            name="escalations", title="Escalations raised and resolved",
            columns=("Escalated to", "Raised", "Acknowledged", "Resolved", "Still open",
                     "Median hours to acknowledge"),
            rows=rows, empty="No escalations were raised in this period.", numeric=frozenset(range(1, 6)),
            note="Escalations of late confirmations raised in the period, by whom they went to, and what became of "
                 "them: acknowledged with a note, resolved (the recipient confirmed, or a manager settled it).")

    # 8
    def requests(self) -> Table:
        period = self.scope.period
        query = (select(Pack.recipient_type, InformationRequest.requested_at, InformationRequest.answered_at)
                 .select_from(InformationRequest).join(Pack, Pack.id == InformationRequest.pack_id)
                 .join(Child, Child.id == Pack.child_id)
                 .where(InformationRequest.requested_at >= period.starts_at,
                        InformationRequest.requested_at < period.ends_at))
        if self.scope.team_id is not None:
            query = query.where(Child.team_id == self.scope.team_id)
        by_type: dict[str, list[tuple[datetime, datetime | None]]] = defaultdict(list)
        for rtype, asked, answered in self.session.execute(query).all():
            by_type[rtype].append((asked, answered))
            by_type[ALL_RECIPIENTS].append((asked, answered))
        out = []
        for code in [*self.type_order(c for c in by_type if c != ALL_RECIPIENTS), ALL_RECIPIENTS]:
            if code in by_type:
                items = by_type[code]
                waits = [hours(answered - asked) for asked, answered in items if answered is not None]
                out.append((code if code == ALL_RECIPIENTS else self.type_title(code), len(items), len(waits),
                            len(items) - len(waits), _round(median(waits))))
        return Table(
            name="requests", title="Requests for more information and the time to answer them",
            columns=("Recipient type", "Requests", "Answered", "Still open", "Median hours to answer"),
            rows=tuple(out), empty="No recipient asked for more information in this period.",
            numeric=frozenset({1, 2, 3, 4}),
            note="Requests a recipient made from their pack for information it did not hold, made in the period.")


def on_time_outcome(due_at: datetime, first_sent_at: datetime | None, now: datetime) -> str:
    """on_time (the first pack was made by the due time), late, not_sent (nothing sent and the due time has
    passed: late too) or not_yet_due."""
    if first_sent_at is not None:
        return "on_time" if first_sent_at <= due_at else "late"
    return "not_sent" if due_at < now else "not_yet_due"


@dataclass(frozen=True)
class SavedVersion:
    version: int
    created_at: datetime
    next_review_due: date
    #: For the photo: the day it was taken (None when there is no photo in that version).
    photo_taken_on: date | None = None


def section_state_at(versions: Sequence[SavedVersion], at: datetime, *, photo_stale_days: int | None = None) -> str:
    """missing (no version saved by then), stale (the version current then was past its review date that day,
    or, for the photo, older than the record's limit, as the checklist judges it) or current."""
    saved = [v for v in versions if v.created_at <= at]
    if not saved:
        return "missing"
    current = max(saved, key=lambda v: v.version)
    day = at.astimezone(UK).date()
    if current.next_review_due < day:
        return "stale"
    if photo_stale_days is not None and (
            current.photo_taken_on is None or (day - current.photo_taken_on).days > photo_stale_days):
        return "stale"
    return "current"


#: Table name -> how it is built, in the order the page shows them.
TABLES: dict[str, Callable[[_Builder], Table]] = {
    "kinds": _Builder.kinds,
    "on_time": _Builder.on_time,
    "confirmation": _Builder.confirmation,
    "overdue": _Builder.overdue,
    "sections": _Builder.sections,
    "overrides": _Builder.overrides,
    "escalations": _Builder.escalations,
    "requests": _Builder.requests,
}


# ---- who sees what ----------------------------------------------------------------------------------------


def _scope(session: Session, user: StaffView, team_id: uuid.UUID | None, period: Period) -> Scope:
    if user.role not in REPORT_ROLES:
        raise ForbiddenActionError("Reports are for team managers, senior managers and auditors")
    if user.role not in ANY_TEAM_ROLES:
        if user.team_id is None:
            raise ForbiddenActionError("You are not in a team, so there is no team report for you")
        if team_id is not None and team_id != user.team_id:
            raise ForbiddenActionError("Team managers see their own team's reports only")
        team_id = user.team_id
    if team_id is None:
        return Scope(period, None, "All teams")
    team = session.get(Team, team_id)
    if team is None:
        raise NotFoundError("team")
    return Scope(period, team.id, team.name)


def teams_for(deps: ServiceDeps, user: StaffView) -> list[TeamChoice]:
    """The teams a user may report on (a team manager: their own)."""
    with deps.db.transaction() as session:
        query = select(Team.id, Team.name).order_by(Team.name)
        if user.role not in ANY_TEAM_ROLES:
            query = query.where(Team.id == user.team_id)
        return [TeamChoice(i, n) for i, n in session.execute(query)]


def report(deps: ServiceDeps, user: StaffView, actor: Actor, period: Period, team_id: uuid.UUID | None, *,
           only: str | None = None) -> Report:
    """Every table (or only one, for its CSV), recorded in the audit trail as viewed or exported."""
    if only is not None and only not in TABLES:
        raise NotFoundError("report table")
    now = deps.clock.now()
    with deps.db.transaction() as session:
        scope = _scope(session, user, team_id, period)
        builder = _Builder(deps, session, scope, now)
        tables = tuple(build(builder) for name, build in TABLES.items() if only in (None, name))
        audit.record(session, deps.audit_chain, deps.clock, actor,
                     "report.exported" if only else "report.viewed", object_type="report", object_id=only or "all",
                     details={"team_id": str(scope.team_id) if scope.team_id else "all",
                              "purpose": f"{period.start.isoformat()}/{period.end.isoformat()}",
                              "count": sum(len(t.rows) for t in tables)})
    return Report(scope=scope, generated_at=now, tables=tables)


def refuse(deps: ServiceDeps, actor: Actor, reason: str) -> None:
    """Record a refused report (another team's, or a role without reports) in the audit trail."""
    audit.log_event(deps, actor, "access.denied", outcome="denied", details={"endpoint": "reports",
                                                                              "reason_code": reason})
