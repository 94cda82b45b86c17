"""Missing from care (Recommendation 7's purpose; the Philomena Protocol; domain.md §3.3 rows 10-11, §4.7, §5.8,
SC-3): report a child missing at any hour, record Part 2 on the night, give the police the pack, record the
return, and make sure the return home interview and the update of associates and places follow.

- **Episodes** follow the SSDA903 recording rules: M (missing, whereabouts not known) or A (away without
  authorisation, whereabouts known); the start is when the child left or was last seen; an A that becomes an M
  is two episodes (end of A = start of M). A child has at most one open episode.
- **The police pack** is built by the one need-to-know builder (:func:`packs.build_for`) for the recipient type
  ``missing_police`` of forms/recipients.toml: Philomena Part 1 is whatever that type gets (ID, PHOTO, MISSING,
  CONTACTS, HEALTH and EXPL as it says), with the episodes recorded here added to MISSING and the episode's
  Part 2 after it as a section of its own; both only because that type gets MISSING in full (Part 2 is MISSING's
  ``part2_template``). It is printed (a staff download rendered now, AES-256 with a password shown on the page)
  or sent by secure link to the force's mailbox, through the ordinary recipient journey (services/receipt.py).
- Who: recording needs edit access to the child's record (the allocated worker, the team, managers). Anyone who
  reads the record (an out-of-hours worker through break-glass, which is read-only) may print the pack.
- Nothing personal in audit details or logs: ids, codes and counts only.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from transitions.clock import UK
from transitions.models import (
    MISSING_CODE_LABELS,
    Child,
    InformationRequest,
    MissingEpisode,
    MissingReportEntry,
    Organisation,
    OutboxMessage,
    Pack,
    PackEvent,
    Role,
    StaffUser,
    Task,
)
from transitions.pdf import PackEntry, PackItem, PackSection, PackTooLargeError
from transitions.pdf.document import to_json
from transitions.services import audit, outbox, packs, tasks
from transitions.services.access import ChildAccess
from transitions.services.accounts import StaffView
from transitions.services.audit import Actor
from transitions.services.children import open_child
from transitions.services.deps import ServiceDeps
from transitions.services.errors import ChildInvalidError, ForbiddenActionError, NotFoundError, TransitionStepError
from transitions.services.values import format_date, typed_reason

#: The recipient type of forms/recipients.toml whose entitlements make the police pack.
POLICE_TYPE = "missing_police"
#: The pack section that holds an episode's Part 2 (pdf/render.py prints it on pages of its own).
PART2_CODE = "MISSING_PART2"
PART2_TITLE = "Missing from care – Philomena Protocol Part 2"
#: The child's page shows episodes that started this recently ("3 missing episodes in the last 30 days").
RECENT_DAYS = 30
#: Part 1's previous history: episodes recorded on this service that started within this many days.
HISTORY_DAYS = 365
HISTORY_LIMIT = 20
#: A time "in the future" by less than this is a clock a little fast, not a mistake.
CLOCK_SKEW = timedelta(minutes=5)
MAX_TEXT = 2000
MAX_REFERENCE = 60
#: A second "send" this soon after the last, with nothing changed in the pack, is a double click: not sent again.
RESEND_GUARD = timedelta(seconds=60)

#: Part 2's questions (domain.md §4.7 part2_template, plus "anything else"): id -> label as police read it.
PART2_LABELS = {
    "last_seen_place": "Where last seen",
    "last_seen_at": "When last seen",
    "with_whom": "With whom",
    "clothing": "Clothing",
    "items_taken": "Items taken",
    "state_of_mind": "State of mind",
    "other": "Anything else",
}
PART2_TEXT_FIELDS = ("last_seen_place", "with_whom", "clothing", "items_taken", "state_of_mind", "other")
END_CAUSE_LABELS = {"returned": "Returned or found", "now_missing": "Became missing (whereabouts not known)"}


class PackJustSentError(TransitionStepError):
    """A second send of the same police pack straight after the first (a double click): nothing is sent."""


# ---- inputs ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part2Input:
    last_seen_place: str = ""
    #: When the child was last seen, if this entry says (the first entry's is the episode's start).
    last_seen_at: datetime | None = None
    with_whom: str = ""
    clothing: str = ""
    items_taken: str = ""
    state_of_mind: str = ""
    other: str = ""

    def texts(self) -> dict[str, str]:
        return {name: str(getattr(self, name)).strip() for name in PART2_TEXT_FIELDS}


@dataclass(frozen=True)
class ReportInput:
    code: str
    started_at: datetime | None
    reported_at: datetime | None
    police_reference: str
    police_force_id: uuid.UUID | None
    part2: Part2Input


@dataclass(frozen=True)
class PoliceInput:
    reported_at: datetime | None
    police_reference: str
    police_force_id: uuid.UUID | None


# ---- what pages show ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EpisodeRow:
    id: uuid.UUID
    code: str
    started_at: datetime
    reported_at: datetime | None
    ended_at: datetime | None
    end_cause: str | None
    police_reference: str
    police_force_id: uuid.UUID | None
    police_force: str
    placement: str
    recorded_by: str
    recorded_at: datetime
    where_found: str
    previous_episode_id: uuid.UUID | None
    next_episode_id: uuid.UUID | None

    @property
    def is_open(self) -> bool:
        return self.ended_at is None

    @property
    def code_label(self) -> str:
        return MISSING_CODE_LABELS.get(self.code, self.code)

    @property
    def end_label(self) -> str:
        return END_CAUSE_LABELS.get(self.end_cause or "", "")

    def duration(self, now: datetime) -> str:
        return duration_text((self.ended_at or now) - self.started_at)


@dataclass(frozen=True)
class Part2Entry:
    id: uuid.UUID
    recorded_at: datetime
    recorded_by: str
    last_seen_at: datetime | None
    #: (label, value) in Part 2's order, only what was answered
    answers: tuple[tuple[str, str], ...]
    #: Recorded during the "away without authorisation" episode this one followed.
    earlier_episode: bool = False


@dataclass(frozen=True)
class LinkState:
    """One police pack sent by secure link, as the episode page shows it (only confirmation counts)."""

    id: uuid.UUID
    version: int
    reference: str
    organisation: str
    address: str
    created_at: datetime
    expires_at: datetime
    email_status: str
    steps: tuple[tuple[str, datetime], ...]
    revoked_at: datetime | None
    revoked_label: str
    revoked_reason: str
    confirmed_at: datetime | None
    confirmed_name: str
    confirmed_role: str
    information_requests: int
    now: datetime

    @property
    def live(self) -> bool:
        return self.revoked_at is None and self.expires_at > self.now


@dataclass(frozen=True)
class EpisodePage:
    child_id: uuid.UUID
    access: ChildAccess
    episode: EpisodeRow
    entries: list[Part2Entry]
    links: list[LinkState]
    can_edit: bool
    can_print: bool
    #: The force's secure mailbox (None: the register has none, so the pack can only be printed).
    mailbox: str | None
    now: datetime

    @property
    def live_link(self) -> LinkState | None:
        """The link that still works, which staff may revoke (each send or change of force stops the others)."""
        return next((link for link in self.links if link.live), None)


@dataclass(frozen=True)
class Counts:
    recent: int
    recent_missing: int
    recent_away: int
    year: int

    @property
    def recent_text(self) -> str:
        """'3 missing episodes in the last 30 days (2 missing, 1 away without authorisation)'."""
        text = f"{self.recent} missing episode{'s' if self.recent != 1 else ''} in the last {RECENT_DAYS} days"
        if self.recent and self.recent_away:
            text += f" ({self.recent_missing} missing, {self.recent_away} away without authorisation)"
        return text


@dataclass(frozen=True)
class ReturnPrompt:
    episode_id: uuid.UUID
    ended_at: datetime
    due_at: datetime


@dataclass(frozen=True)
class Panel:
    """The child's page: the count, the open episode, the prompt after a return, and what this person may do."""

    child_id: uuid.UUID
    counts: Counts
    open_episode: EpisodeRow | None
    prompt: ReturnPrompt | None
    can_report: bool
    can_print: bool


@dataclass(frozen=True)
class History:
    child_id: uuid.UUID
    counts: Counts
    episodes: list[EpisodeRow]
    can_report: bool
    can_print: bool
    now: datetime


@dataclass(frozen=True)
class ReportContext:
    """What the "Report missing" form needs: the force of the placement's area (the default), and whether a
    child is already missing."""

    child_id: uuid.UUID
    default_force_id: uuid.UUID | None
    placement: str
    open_episode_id: uuid.UUID | None


@dataclass(frozen=True)
class PrintedPack:
    data: bytes
    name: str


# ---- helpers -----------------------------------------------------------------------------------------------


def duration_text(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if not days and (minutes or not hours):
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)


def at_text(value: datetime) -> str:
    """'3 March 2026, 10:30pm' in UK time (as web/timefmt.date_time shows it)."""
    local = value.astimezone(UK)
    if local.hour == 12 and local.minute == 0:
        clock = "midday"
    elif local.hour == 0 and local.minute == 0:
        clock = "midnight"
    else:
        clock = f"{local.hour % 12 or 12}:{local.minute:02d}{'am' if local.hour < 12 else 'pm'}"
    return f"{format_date(local.date())}, {clock}"


def may_record(access: ChildAccess) -> bool:
    """Those who can edit the child's record (not break-glass, which is read-only: R13)."""
    return access.can_edit_profile


def may_print(access: ChildAccess) -> bool:
    """Printing the police pack reads the record: anyone who may read it except an auditor (and the read is
    audited). An out-of-hours worker breaks glass for it."""
    return access.can_read and access.role is not Role.AUDITOR


def _open(deps: ServiceDeps, session: Session, child_id: uuid.UUID, user: StaffView, actor: Actor, *,
          edit: bool, action: str | None = None, purpose: str = "missing") -> tuple[Child, ChildAccess]:
    child, access = open_child(deps, session, child_id, user, actor, action=action,
                               details={"purpose": purpose} if action else None)
    if edit and not may_record(access):
        raise ForbiddenActionError("Only the child's social worker, their team and managers record a missing "
                                   "episode. You can still print the police pack from the child's page.")
    return child, access


def _episode(session: Session, child: Child, episode_id: uuid.UUID, *, lock: bool = False) -> MissingEpisode:
    episode = session.get(MissingEpisode, episode_id, with_for_update=lock)
    if episode is None or episode.child_id != child.id:
        raise NotFoundError("episode")
    return episode


def force_for_placement(session: Session, placement_id: uuid.UUID | None) -> Organisation | None:
    """The police force covering where the child lives now: the placement's own force if the register has one,
    otherwise its local authority's (a ward: its hospital's area)."""
    place = session.get(Organisation, placement_id) if placement_id else None
    seen = 0
    while place is not None and seen < 3:  # a ward -> its hospital -> the hospital's area
        seen += 1
        if place.kind == "police_force":
            return place
        if place.police_force_id:
            return session.get(Organisation, place.police_force_id)
        if place.local_authority_id:
            la = session.get(Organisation, place.local_authority_id)
            return session.get(Organisation, la.police_force_id) if la and la.police_force_id else None
        place = session.get(Organisation, place.parent_id) if place.parent_id else None
    return None


def _force(session: Session, force_id: uuid.UUID | None) -> Organisation | None:
    force = session.get(Organisation, force_id) if force_id else None
    return force if force is not None and force.kind == "police_force" else None


def _people(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    return {u.id: (u.display_name or "") + f" ({Role(u.role).label})"
            for u in session.scalars(select(StaffUser).where(StaffUser.id.in_(ids)))}


def _rows(session: Session, episodes: list[MissingEpisode]) -> list[EpisodeRow]:
    org_ids = {i for e in episodes for i in (e.police_force_id, e.placement_id) if i}
    orgs = {o.id: o.name for o in session.scalars(select(Organisation).where(Organisation.id.in_(org_ids)))} \
        if org_ids else {}
    people = _people(session, {e.recorded_by for e in episodes})
    ids = [e.id for e in episodes]
    following = {e.previous_episode_id: e.id for e in session.scalars(select(MissingEpisode).where(
        MissingEpisode.previous_episode_id.in_(ids)))} if ids else {}
    return [EpisodeRow(
        id=e.id, code=e.code, started_at=e.started_at, reported_at=e.reported_at, ended_at=e.ended_at,
        end_cause=e.end_cause, police_reference=e.police_reference or "", police_force_id=e.police_force_id,
        police_force=orgs.get(e.police_force_id, "") if e.police_force_id else "",
        placement=orgs.get(e.placement_id, "") if e.placement_id else "", recorded_by=people.get(e.recorded_by, ""),
        recorded_at=e.recorded_at, where_found=e.where_found or "", previous_episode_id=e.previous_episode_id,
        next_episode_id=following.get(e.id)) for e in episodes]


def _counts(session: Session, child_id: uuid.UUID, now: datetime) -> Counts:
    # One SELECT for both windows (RECENT_DAYS is inside HISTORY_DAYS): the last year's episodes by code and by
    # whether they are recent.
    is_recent = MissingEpisode.started_at >= now - timedelta(days=RECENT_DAYS)
    recent: dict[str, int] = {}
    year = 0
    for code, in_recent, n in session.execute(
            select(MissingEpisode.code, is_recent, func.count()).where(
                MissingEpisode.child_id == child_id, MissingEpisode.started_at >= now - timedelta(days=HISTORY_DAYS))
            .group_by(MissingEpisode.code, is_recent)):
        year += int(n)
        if in_recent:
            recent[code] = recent.get(code, 0) + int(n)
    missing, away = int(recent.get("M", 0)), int(recent.get("A", 0))
    return Counts(recent=missing + away, recent_missing=missing, recent_away=away, year=int(year))


def _open_episode(session: Session, child_id: uuid.UUID) -> MissingEpisode | None:
    return session.scalars(select(MissingEpisode).where(MissingEpisode.child_id == child_id,
                                                        MissingEpisode.ended_at.is_(None))).first()


def _text(value: str, name: str, errors: dict[str, str], *, required: str | None = None,
          label: str = "The answer", limit: int = MAX_TEXT) -> str:
    text = value.replace("\x00", "").strip()
    if not text and required:
        errors[name] = required
    elif len(text) > limit:
        errors[name] = f"{label} must be {limit} characters or fewer"
    return text


def _check_time(value: datetime | None, name: str, errors: dict[str, str], now: datetime, *, missing: str | None,
                future: str) -> None:
    if value is None:
        if missing:
            errors.setdefault(name, missing)
        return
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    if value > now + CLOCK_SKEW:
        errors.setdefault(name, future)


def _part2_errors(data: Part2Input, errors: dict[str, str], now: datetime, *, first: bool) -> dict[str, str]:
    """Part 2's answers, checked: on the night, where the child was last seen and what they wore are asked for
    (either may be 'not known'); a later entry needs at least one answer."""
    texts = {}
    texts["last_seen_place"] = _text(data.last_seen_place, "last_seen_place", errors, label="Where last seen",
                                     required="Enter where the child was last seen" if first else None)
    texts["with_whom"] = _text(data.with_whom, "with_whom", errors, label="Who they were with")
    texts["clothing"] = _text(data.clothing, "clothing", errors, label="What they were wearing",
                              required="Enter what the child was wearing, or 'not known'" if first else None)
    texts["items_taken"] = _text(data.items_taken, "items_taken", errors, label="What they took")
    texts["state_of_mind"] = _text(data.state_of_mind, "state_of_mind", errors, label="How they seemed")
    texts["other"] = _text(data.other, "other", errors, label="Anything else")
    if not first:
        _check_time(data.last_seen_at, "last_seen_at", errors, now, missing=None,
                    future="The time the child was last seen must be in the past")
        if not any(texts.values()) and data.last_seen_at is None and not errors:
            errors["last_seen_place"] = "Enter what has been learned: where the child was seen, who with, or more"
    return texts


def _add_entry(session: Session, episode: MissingEpisode, texts: dict[str, str], last_seen_at: datetime | None,
               user: StaffView, now: datetime) -> MissingReportEntry:
    content: dict[str, str] = {k: v for k, v in texts.items() if v}
    if last_seen_at is not None:
        content["last_seen_at"] = last_seen_at.astimezone(UTC).isoformat()
    entry = MissingReportEntry(id=uuid.uuid4(), episode_id=episode.id, recorded_at=now, recorded_by=user.id)
    entry.content = json.dumps(content, ensure_ascii=False, sort_keys=True)
    session.add(entry)
    return entry


def _entries(session: Session, episode: MissingEpisode) -> list[Part2Entry]:
    """Part 2 of this episode and, if it followed an "away" episode, of that one too (newest first)."""
    chain = [(episode.id, False)]
    if episode.previous_episode_id is not None:
        chain.append((episode.previous_episode_id, True))
    rows = list(session.scalars(select(MissingReportEntry).where(
        MissingReportEntry.episode_id.in_([i for i, _ in chain]))
        .order_by(MissingReportEntry.recorded_at.desc(), MissingReportEntry.id)))
    people = _people(session, {r.recorded_by for r in rows})
    earlier = {i for i, was in chain if was}
    out = []
    for row in rows:
        content: dict[str, str] = json.loads(row.content or "{}")
        seen = datetime.fromisoformat(content["last_seen_at"]) if content.get("last_seen_at") else None
        answers = [(PART2_LABELS[k], content[k]) for k in PART2_TEXT_FIELDS if content.get(k)]
        if seen is not None:
            answers.insert(1, (PART2_LABELS["last_seen_at"], at_text(seen)))
        out.append(Part2Entry(id=row.id, recorded_at=row.recorded_at, recorded_by=people.get(row.recorded_by, ""),
                              last_seen_at=seen, answers=tuple(answers), earlier_episode=row.episode_id in earlier))
    return out


# ---- reporting, Part 2, the police details -----------------------------------------------------------------


def report_context(deps: ServiceDeps, child_id: uuid.UUID, user: StaffView, actor: Actor) -> ReportContext:
    with deps.db.transaction() as session:
        child, _access = _open(deps, session, child_id, user, actor, edit=True)
        force = force_for_placement(session, child.current_placement_id)
        placement = session.get(Organisation, child.current_placement_id) if child.current_placement_id else None
        current = _open_episode(session, child.id)
        return ReportContext(child_id=child.id, default_force_id=force.id if force else None,
                             placement=placement.name if placement else "",
                             open_episode_id=current.id if current else None)


def _report_errors(session: Session, child: Child, data: ReportInput, now: datetime
                   ) -> tuple[dict[str, str], str, dict[str, str]]:
    """The report's problems, and its police reference and Part 2 answers as they will be kept."""
    errors: dict[str, str] = {}
    if data.code not in MISSING_CODE_LABELS:
        errors["code"] = "Select whether the child is missing or away without permission"
    _check_time(data.started_at, "started_at", errors, now,
                missing="Enter the date and time the child left or was last seen",
                future="The time the child left or was last seen must be in the past")
    _check_time(data.reported_at, "reported_at", errors, now, missing=None,
                future="The time it was reported to the police must be in the past")
    if data.started_at is not None and data.reported_at is not None and data.reported_at < data.started_at:
        errors.setdefault("reported_at", "The time it was reported to the police must be after the child left or "
                                         "was last seen")
    last = session.scalars(select(MissingEpisode).where(MissingEpisode.child_id == child.id,
                                                        MissingEpisode.ended_at.is_not(None))
                           .order_by(MissingEpisode.ended_at.desc()).limit(1)).first()
    if data.started_at is not None and last is not None and last.ended_at and data.started_at < last.ended_at:
        errors.setdefault("started_at", f"The child was recorded as back at {at_text(last.ended_at)}: the time "
                                        "they left must be after that")
    if _force(session, data.police_force_id) is None:
        errors["police_force_id"] = "Select the police force it is being reported to"
    reference = _text(data.police_reference, "police_reference", errors, label="Police reference",
                      limit=MAX_REFERENCE)
    texts = _part2_errors(data.part2, errors, now, first=True)
    return errors, reference, texts


def report_errors(deps: ServiceDeps, child_id: uuid.UUID, data: ReportInput, user: StaffView,
                  actor: Actor) -> dict[str, str]:
    """What :func:`report_missing` would refuse, without recording anything (the form shows every problem at
    once, even when a date it could not read stops the report itself)."""
    with deps.db.transaction() as session:
        child, _access = _open(deps, session, child_id, user, actor, edit=True)
        return _report_errors(session, child, data, deps.clock.now())[0]


def report_missing(deps: ServiceDeps, child_id: uuid.UUID, data: ReportInput, user: StaffView,
                   actor: Actor) -> uuid.UUID:
    """Record the start of an episode and its first Part 2 entry. Returns the episode's id."""
    now = deps.clock.now()
    with deps.db.transaction() as session:
        child, _access = _open(deps, session, child_id, user, actor, edit=True)
        session.refresh(child, with_for_update=True)  # one report at a time for a child
        current = _open_episode(session, child.id)
        if current is not None:
            raise TransitionStepError(f"This child is already recorded as {_state_word(current.code)} since "
                                      f"{at_text(current.started_at)}. Add to that episode's Part 2, or record the "
                                      "return first.")
        errors, reference, texts = _report_errors(session, child, data, now)
        if errors:
            raise ChildInvalidError(errors)
        assert data.started_at is not None
        episode = MissingEpisode(id=uuid.uuid4(), child_id=child.id, code=data.code, started_at=data.started_at,
                                 reported_at=data.reported_at, police_force_id=data.police_force_id,
                                 placement_id=child.current_placement_id, recorded_by=user.id, recorded_at=now,
                                 updated_at=now)
        episode.police_reference = reference or None
        session.add(episode)
        try:
            session.flush()  # the one-open-episode index: a second report pressed at the same moment fails here
        except IntegrityError:
            raise TransitionStepError("This child has just been reported missing by someone else: open the "
                                      "episode from the child's page.") from None
        _add_entry(session, episode, texts, None, user, now)
        audit.record(session, deps.audit_chain, deps.clock, actor, "missing.reported", object_type="child",
                     object_id=child.id, details={"link_id": episode.id, "kind": episode.code})
        if child.allocated_worker_id not in (None, user.id):  # EDT or a colleague reported it: tell the worker
            address = packs.allocated_worker_email(session, child)
            if address:
                outbox.enqueue(session, now, to=address, subject="A child you are allocated to has been reported "
                               "missing", body=REPORTED_EMAIL.format(
                                   state=_state_word(episode.code), when=at_text(episode.started_at),
                                   url=deps.settings.app.public_base_url.rstrip("/")
                                   + f"/children/{child.id}/missing/{episode.id}"),
                               purpose="missing_reported", idempotency_key=f"missing-reported-{episode.id}")
        return episode.id


#: To the allocated worker: no name, no place (the episode's page has them, behind sign-in).
REPORTED_EMAIL = """A child allocated to you has been recorded as {state} since {when}, by a colleague.

Open the episode to read Part 2 and give the police the pack: {url}
"""


def _state_word(code: str) -> str:
    return "missing" if code == "M" else "away without authorisation"


def add_part2(deps: ServiceDeps, child_id: uuid.UUID, episode_id: uuid.UUID, data: Part2Input, user: StaffView,
              actor: Actor) -> None:
    """A later Part 2 entry (a sighting, what a friend said): added, timestamped, never overwriting."""
    now = deps.clock.now()
    with deps.db.transaction() as session:
        child, _access = _open(deps, session, child_id, user, actor, edit=True)
        episode = _episode(session, child, episode_id, lock=True)
        errors: dict[str, str] = {}
        texts = _part2_errors(data, errors, now, first=False)
        if data.last_seen_at is not None and data.last_seen_at < episode.started_at:
            errors.setdefault("last_seen_at", "The time the child was last seen must be after the episode started")
        if errors:
            raise ChildInvalidError(errors)
        _add_entry(session, episode, texts, data.last_seen_at, user, now)
        episode.updated_at = now
        count = session.scalar(select(func.count()).select_from(MissingReportEntry).where(
            MissingReportEntry.episode_id == episode.id)) or 0
        audit.record(session, deps.audit_chain, deps.clock, actor, "missing.part2_added", object_type="child",
                     object_id=child.id, details={"link_id": episode.id, "count": int(count)})


def update_police(deps: ServiceDeps, child_id: uuid.UUID, episode_id: uuid.UUID, data: PoliceInput,
                  user: StaffView, actor: Actor) -> int:
    """When it was reported, the police reference, and the force (the police may say it is another force's).
    A new force: the links sent to the old one stop working now (R18). Returns how many were stopped."""
    now = deps.clock.now()
    with deps.db.transaction() as session:
        child, _access = _open(deps, session, child_id, user, actor, edit=True)
        episode = _episode(session, child, episode_id, lock=True)
        errors: dict[str, str] = {}
        _check_time(data.reported_at, "reported_at", errors, now, missing=None,
                    future="The time it was reported to the police must be in the past")
        if data.reported_at is not None and data.reported_at < episode.started_at:
            errors.setdefault("reported_at", "The time it was reported to the police must be after the child left "
                                             "or was last seen")
        if _force(session, data.police_force_id) is None:
            errors["police_force_id"] = "Select the police force it was reported to"
        reference = _text(data.police_reference, "police_reference", errors, label="Police reference",
                          limit=MAX_REFERENCE)
        if errors:
            raise ChildInvalidError(errors)
        changed = [name for name, old, new in (
            ("reported_at", episode.reported_at, data.reported_at),
            ("police_reference", episode.police_reference or "", reference),
            ("police_force_id", episode.police_force_id, data.police_force_id)) if old != new]
        episode.reported_at = data.reported_at
        episode.police_reference = reference or None
        episode.police_force_id = data.police_force_id
        episode.updated_at = now
        stopped = 0
        if "police_force_id" in changed:
            stopped = packs.revoke_for_episode(deps, session, episode.id, "force_changed", actor,
                                               keep_organisation_id=data.police_force_id)
        audit.record(session, deps.audit_chain, deps.clock, actor, "missing.police_updated", object_type="child",
                     object_id=child.id, details={"link_id": episode.id, "fields": ",".join(changed),
                                                  "count": stopped})
        return stopped


def now_missing(deps: ServiceDeps, child_id: uuid.UUID, episode_id: uuid.UUID, at: datetime | None,
                user: StaffView, actor: Actor) -> uuid.UUID:
    """An open "away" (A) episode becomes "missing" (M): two episodes, the end of the A the start of the M
    (903 recording rule). The force stays; Part 2 recorded so far goes with the new episode's pack."""
    now = deps.clock.now()
    with deps.db.transaction() as session:
        child, _access = _open(deps, session, child_id, user, actor, edit=True)
        away = _episode(session, child, episode_id, lock=True)
        if away.ended_at is not None or away.code != "A":
            raise TransitionStepError("Only an open 'away without authorisation' episode can become missing")
        errors: dict[str, str] = {}
        _check_time(at, "at", errors, now, missing="Enter the date and time the child's whereabouts stopped being "
                                                   "known", future="The time must be in the past")
        if at is not None and at < away.started_at:
            errors.setdefault("at", f"The time must be after the child went away ({at_text(away.started_at)})")
        if errors:
            raise ChildInvalidError(errors)
        assert at is not None
        away.ended_at, away.end_cause, away.ended_by, away.updated_at = at, "now_missing", user.id, now
        session.flush()  # the A is closed before the M opens (one open episode per child)
        missing = MissingEpisode(id=uuid.uuid4(), child_id=child.id, code="M", started_at=at,
                                 police_force_id=away.police_force_id, placement_id=away.placement_id,
                                 previous_episode_id=away.id, recorded_by=user.id, recorded_at=now, updated_at=now)
        session.add(missing)
        session.flush()
        audit.record(session, deps.audit_chain, deps.clock, actor, "missing.now_missing", object_type="child",
                     object_id=child.id, details={"link_id": missing.id, "kind": "M"})
        return missing.id


def record_return(deps: ServiceDeps, child_id: uuid.UUID, episode_id: uuid.UUID, ended_at: datetime | None,
                  where_found: str, user: StaffView, actor: Actor) -> None:
    """The child is back: the episode ends; a return home interview is due in 72 hours (statutory guidance),
    and a follow-up to update associates and places and share the pack again (IICSA; SC-3)."""
    now = deps.clock.now()
    with deps.db.transaction() as session:
        child, _access = _open(deps, session, child_id, user, actor, edit=True)
        episode = _episode(session, child, episode_id, lock=True)
        if episode.ended_at is not None:
            raise TransitionStepError("This episode has already ended")
        errors: dict[str, str] = {}
        _check_time(ended_at, "ended_at", errors, now, missing="Enter the date and time the child came back or "
                                                               "was found",
                    future="The time the child came back must be in the past")
        if ended_at is not None and ended_at < episode.started_at:
            errors.setdefault("ended_at", "The time the child came back must be after they left "
                                          f"({at_text(episode.started_at)})")
        text = _text(where_found, "where_found", errors, label="Where the child was found",
                     required="Enter where the child was found and how they came back")
        if errors:
            raise ChildInvalidError(errors)
        assert ended_at is not None
        episode.ended_at, episode.end_cause, episode.ended_by, episode.updated_at = ended_at, "returned", user.id, now
        episode.where_found = text
        for kind in ("return_interview", "missing_reshare"):
            tasks.open_task(session, deps, child_id=child.id, kind=kind, assigned_role=Role.SOCIAL_WORKER,
                            due_at=tasks.due_from(deps, kind, ended_at), subject_id=episode.id,
                            team_id=child.team_id, assigned_user_id=child.allocated_worker_id)
        audit.record(session, deps.audit_chain, deps.clock, actor, "missing.returned", object_type="child",
                     object_id=child.id, details={"link_id": episode.id, "kind": episode.code})


# ---- reading -----------------------------------------------------------------------------------------------


def _link_states(deps: ServiceDeps, session: Session, episode_id: uuid.UUID, now: datetime) -> list[LinkState]:
    sent = list(session.scalars(select(Pack).where(Pack.episode_id == episode_id).order_by(Pack.version.desc())))
    if not sent:
        return []
    ids = [p.id for p in sent]
    events: dict[uuid.UUID, dict[str, datetime]] = {}
    for pack_id, action, at in session.execute(
            select(PackEvent.pack_id, PackEvent.action, func.max(PackEvent.at))
            .where(PackEvent.pack_id.in_(ids), PackEvent.outcome == "ok")
            .group_by(PackEvent.pack_id, PackEvent.action)):
        events.setdefault(pack_id, {})[action] = at
    requests: dict[uuid.UUID, int] = {pack_id: int(n) for pack_id, n in session.execute(
        select(InformationRequest.pack_id, func.count()).where(InformationRequest.pack_id.in_(ids))
        .group_by(InformationRequest.pack_id))}
    messages = {m.id: m.status for m in session.scalars(select(OutboxMessage).where(
        OutboxMessage.id.in_([p.outbox_message_id for p in sent if p.outbox_message_id])))}
    orgs = {o.id: o.name for o in session.scalars(select(Organisation).where(
        Organisation.id.in_({p.organisation_id for p in sent})))}
    labels = (("link_fetched", "Link fetched (may be automated)"), ("code_sent", "Code sent"),
              ("verified", "Verified"), ("viewed", "Viewed"), ("downloaded", "Downloaded"))
    out = []
    for p in sent:
        status = messages.get(p.outbox_message_id) if p.outbox_message_id else None
        email = {"queued": "Email queued", "sent": "Email accepted for delivery by our mail relay",
                 "failed": "Email could not be delivered"}.get(status or "", "Not queued")
        mine = events.get(p.id, {})
        out.append(LinkState(
            id=p.id, version=p.version, reference=p.reference, organisation=orgs.get(p.organisation_id, ""),
            address=p.address or "", created_at=p.created_at, expires_at=p.expires_at, email_status=email,
            steps=tuple((text, mine[action]) for action, text in labels if action in mine), revoked_at=p.revoked_at,
            revoked_label=packs.REVOKED_LABELS.get(p.revoked_cause or "", "Revoked"),
            revoked_reason=p.revoked_reason or "", confirmed_at=p.confirmed_at,
            confirmed_name=p.confirmed_name or "", confirmed_role=p.confirmed_role or "",
            information_requests=int(requests.get(p.id, 0)), now=now))
    return out


def episode_page(deps: ServiceDeps, child_id: uuid.UUID, episode_id: uuid.UUID, user: StaffView,
                 actor: Actor) -> EpisodePage:
    now = deps.clock.now()
    with deps.db.transaction() as session:
        child, access = _open(deps, session, child_id, user, actor, edit=False, action="child.viewed")
        episode = _episode(session, child, episode_id)
        force = _force(session, episode.police_force_id)
        return EpisodePage(child_id=child.id, access=access, episode=_rows(session, [episode])[0],
                           entries=_entries(session, episode), links=_link_states(deps, session, episode.id, now),
                           can_edit=may_record(access), can_print=may_print(access),
                           mailbox=force.mailbox if force is not None and force.mailbox else None, now=now)


def history(deps: ServiceDeps, child_id: uuid.UUID, user: StaffView, actor: Actor) -> History:
    now = deps.clock.now()
    with deps.db.transaction() as session:
        child, access = _open(deps, session, child_id, user, actor, edit=False, action="child.viewed",
                              purpose="missing_history")
        episodes = list(session.scalars(select(MissingEpisode).where(MissingEpisode.child_id == child.id)
                                        .order_by(MissingEpisode.started_at.desc()).limit(500)))
        return History(child_id=child.id, counts=_counts(session, child.id, now), episodes=_rows(session, episodes),
                       can_report=may_record(access), can_print=may_print(access), now=now)


def panel(deps: ServiceDeps, child_id: uuid.UUID, user: StaffView, actor: Actor) -> Panel:
    """For the child's page (which records its own view): nothing is audited here."""
    now = deps.clock.now()
    with deps.db.transaction() as session:
        child, access = _open(deps, session, child_id, user, actor, edit=False)
        current = _open_episode(session, child.id)
        task = session.scalars(select(Task).where(Task.child_id == child.id, Task.kind == "missing_reshare",
                                                  Task.status == "open").order_by(Task.created_at.desc())).first()
        prompt = None
        if task is not None and task.subject_id is not None:
            returned = session.get(MissingEpisode, task.subject_id)
            if returned is not None and returned.ended_at is not None:
                prompt = ReturnPrompt(returned.id, returned.ended_at, task.due_at)
        return Panel(child_id=child.id, counts=_counts(session, child.id, now),
                     open_episode=_rows(session, [current])[0] if current else None, prompt=prompt,
                     can_report=may_record(access) and current is None, can_print=may_print(access))


# ---- the police pack ---------------------------------------------------------------------------------------


def _history_entries(session: Session, child: Child, episode: MissingEpisode | None, now: datetime,
                     with_places: bool) -> tuple[PackEntry, ...]:
    skip = {episode.id, episode.previous_episode_id} if episode is not None else set()
    rows = [e for e in session.scalars(select(MissingEpisode).where(
        MissingEpisode.child_id == child.id, MissingEpisode.started_at >= now - timedelta(days=HISTORY_DAYS))
        .order_by(MissingEpisode.started_at.desc()).limit(HISTORY_LIMIT + 2)) if e.id not in skip][:HISTORY_LIMIT]
    out = []
    for e in rows:
        title = at_text(e.started_at) + (f" to {at_text(e.ended_at)}" if e.ended_at else " (still open)")
        items = [PackItem("Missing or away", MISSING_CODE_LABELS.get(e.code, e.code), "code"),
                 PackItem("How long", duration_text((e.ended_at or now) - e.started_at), "duration")]
        if with_places and e.where_found:
            items.append(PackItem("Where found", e.where_found, "where_found"))
        if e.police_reference:
            items.append(PackItem("Police reference", e.police_reference, "police_reference"))
        out.append(PackEntry(title, tuple(items)))
    return tuple(out)


def _part2_section(deps: ServiceDeps, session: Session, episode: MissingEpisode | None) -> PackSection:
    if episode is None:
        return PackSection(code=PART2_CODE, title=PART2_TITLE, level="full", version=None,
                           reviewed="No missing episode is recorded on this service yet",
                           items=(PackItem("Part 2", "Tell the officer what the child was wearing, and where, when "
                                                     "and with whom the child was last seen.", "none"),))
    rows = _rows(session, [episode])[0]
    people = _people(session, {episode.recorded_by})
    items = [PackItem("Missing or away", rows.code_label, "code"),
             PackItem("Left or last seen", at_text(episode.started_at), "started_at"),
             PackItem("Missing from", rows.placement or "Not recorded", "placement"),
             PackItem("Reported to the police", at_text(episode.reported_at) if episode.reported_at
                      else "Not recorded yet", "reported_at"),
             PackItem("Police force", rows.police_force or "Not recorded", "police_force"),
             PackItem("Police reference", rows.police_reference or "Not recorded yet", "police_reference"),
             PackItem("Recorded by", people.get(episode.recorded_by, ""), "recorded_by")]
    if episode.ended_at is not None:
        items.append(PackItem("Came back or found", at_text(episode.ended_at), "ended_at"))
    if deps.settings.packs.sender_contact:
        items.append(PackItem("When the child is found, tell", deps.settings.packs.sender_contact, "contact"))
    entries = tuple(PackEntry(f"Recorded {at_text(e.recorded_at)}"
                              + (" (while away without authorisation)" if e.earlier_episode else ""),
                              tuple(PackItem(label, value) for label, value in e.answers))
                    for e in _entries(session, episode))
    return PackSection(code=PART2_CODE, title=PART2_TITLE, level="full", version=None,
                       reviewed=f"Recorded from {at_text(episode.recorded_at)}; each entry is timestamped, newest "
                                "first", items=tuple(items), entries=entries, entry_plural="what was recorded")


def police_built(deps: ServiceDeps, session: Session, child: Child, episode: MissingEpisode | None,
                 prepared_for: str, *, version: int, reference: str) -> packs.Built:
    """Part 1 through the need-to-know builder for ``missing_police``; then, because that type gets MISSING in
    full, the episodes recorded here in MISSING and the episode's Part 2 right after it."""
    built = packs.build_for(deps, session, child, POLICE_TYPE, prepared_for, destination_id=None, version=version,
                            reference=reference)
    rtype = deps.definitions.recipient_types[POLICE_TYPE]
    if rtype.level("MISSING") != "full":
        return built
    now = deps.clock.now()
    sections = list(built.document.sections)
    at = next(i for i, s in enumerate(sections) if s.code == "MISSING")
    counts = _counts(session, child.id, now)
    part1 = sections[at]
    sections[at] = replace(
        part1, items=(*part1.items, PackItem("Missing episodes recorded on this service in the last 12 months",
                                             f"{counts.year} ({counts.recent} in the last {RECENT_DAYS} days)",
                                             "recorded_count")),
        entries=_history_entries(session, child, episode, now, with_places=not rtype.never_identity_protected),
        entry_plural="earlier missing episodes recorded on this service")
    sections.insert(at + 1, _part2_section(deps, session, episode))
    document = replace(built.document, sections=tuple(sections))
    digest = hashlib.sha256(to_json(replace(document, reference="", version=0, prepared_on="")) + json.dumps(
        [str(built.photo), [str(d) for _, d in built.documents]]).encode()).hexdigest()
    return replace(built, document=document, digest=digest)


def _prepared_for(force: Organisation | None) -> str:
    return force.name if force is not None else "The police"


def print_police_pack(deps: ServiceDeps, child_id: uuid.UUID, episode_id: uuid.UUID | None, password: str,
                      user: StaffView, actor: Actor) -> PrintedPack:
    """The police pack rendered now from the current record, for printing: AES-256 with the password the page
    showed (R53), and audited. Nothing is stored."""
    if len(password) < 20:
        raise ValueError("a printed pack needs a proper password")
    with deps.db.transaction() as session:
        child, access = _open(deps, session, child_id, user, actor, edit=False)
        if not may_print(access):
            raise ForbiddenActionError("Auditors do not print police packs")
        episode = _episode(session, child, episode_id) if episode_id else _open_episode(session, child.id)
        force = _force(session, episode.police_force_id) if episode is not None else \
            force_for_placement(session, child.current_placement_id)
        reference = packs.new_reference()
        built = police_built(deps, session, child, episode, _prepared_for(force), version=1, reference=reference)
        document = packs.materialise(deps, session, child, built)
        try:
            pdf, _password, pages = packs.render(deps, document, password)
        except PackTooLargeError:
            raise TransitionStepError(
                f"The police pack would be longer than {deps.settings.packs.max_pages} pages. Shorten the longest "
                "answers in the child's record, then print again.") from None
        audit.record(session, deps.audit_chain, deps.clock, actor, "missing.police_pack_printed",
                     object_type="child", object_id=child.id,
                     details={"link_id": episode.id if episode else None, "kind": POLICE_TYPE, "count": pages,
                              "via": access.via.value})
        return PrintedPack(pdf, f"police-pack-{reference}.pdf")


def send_police_pack(deps: ServiceDeps, child_id: uuid.UUID, episode_id: uuid.UUID, user: StaffView,
                     actor: Actor) -> str:
    """The pack by secure link to the force's mailbox (the ordinary recipient journey: a code to that mailbox,
    then explicit confirmation of receipt). Sending again makes a new version and stops the old link. Returns
    the force's name."""
    with deps.db.transaction() as session:
        child, _access = _open(deps, session, child_id, user, actor, edit=True)
        episode = _episode(session, child, episode_id, lock=True)
        force = _force(session, episode.police_force_id)
        if force is None:
            raise TransitionStepError("Record the police force it was reported to first")
        if not force.mailbox:
            raise TransitionStepError(f"{force.name} has no secure mailbox in the organisations register. Print the "
                                      "pack and hand it over, or ask an administrator to add the force's mailbox.")
        previous = session.scalars(select(Pack).where(Pack.episode_id == episode.id)
                                   .order_by(Pack.version.desc())).first()
        version = previous.version + 1 if previous is not None else 1
        reference = previous.reference if previous is not None else packs.new_reference()
        built = police_built(deps, session, child, episode, force.name, version=version, reference=reference)
        now = deps.clock.now()
        if (previous is not None and previous.revoked_at is None and previous.expires_at > now
                and previous.organisation_id == force.id and now - previous.created_at < RESEND_GUARD
                and previous.content_digest == built.digest):  # the episode lock makes a double click wait here
            raise PackJustSentError(f"The police pack was sent to {force.name} less than a minute ago and nothing in "
                                    "it has changed since, so it was not sent again.")
        packs.issue_built(deps, session, child, built, force, POLICE_TYPE, user, actor, version=version,
                          reference=reference, previous=previous, episode_id=episode.id)
        return force.name


def revoke_episode_pack(deps: ServiceDeps, child_id: uuid.UUID, episode_id: uuid.UUID, pack_id: uuid.UUID,
                        reason: str, user: StaffView, actor: Actor) -> None:
    """Stop a police pack's link now, with a typed reason (R18): those who edit the child's record (not
    break-glass, which is read-only). The police's verified sessions end with it; the access log stays."""
    with deps.db.transaction() as session:
        child, access = _open(deps, session, child_id, user, actor, edit=False)
        if not may_record(access):
            raise ForbiddenActionError("Only the child's social worker, their team and managers stop a police link")
        episode = _episode(session, child, episode_id, lock=True)
        pack = session.get(Pack, pack_id, with_for_update=True)
        if pack is None or pack.episode_id != episode.id:
            raise NotFoundError("pack")
        text = typed_reason(reason, asking="why you are stopping the police's access")
        packs.revoke_by_staff(deps, session, pack, text, user, actor)
