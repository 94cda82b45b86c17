"""The recipient's side of a secure link: no account, a code to the bound mailbox, a short session, the pack,
and an explicit confirmation of receipt (security.md C3 and §e; domain.md §4.13).

Possession of the link grants a landing page and nothing else. Mail scanners fetch links and even press
buttons, so a GET changes no state (it may write one rate-limited "link fetched" line in the access log), and
the most a pressed "Send me a code" can do is send a code, within its limits. A person must type the code.
Viewing and downloading are logged but never count as receipt: only the confirmation POST does.
"""

from __future__ import annotations

import logging
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from transitions.crypto import UnknownKeyError, code_mac, equal, new_numeric_code, new_token, token_hash
from transitions.models import (
    Child,
    InformationRequest,
    Organisation,
    Pack,
    PackCode,
    PackEvent,
    RecipientSession,
    Role,
    StaffUser,
    StoredBlob,
)
from transitions.models.packs import LinkEpoch
from transitions.pdf import PackDocument
from transitions.pdf.document import from_json
from transitions.services import audit, outbox, tasks
from transitions.services.audit import Actor
from transitions.services.deps import ServiceDeps
from transitions.services.errors import ServiceError
from transitions.services.packs import allocated_worker_email, sender_name, staff_pack_url

_CODE_PURPOSE = "recipient-code"
log = logging.getLogger("transitions.receipt")


class LinkUnknownError(ServiceError):
    """No such link (a mistyped or invented address)."""


class LinkClosedError(ServiceError):
    """The link has expired or been revoked; the page says who to contact."""

    def __init__(self, sender: str, contact: str, *, replaced: bool = False) -> None:
        super().__init__("link closed")
        self.sender = sender
        self.contact = contact
        self.replaced = replaced


class RecipientLimitError(ServiceError):
    """Too many codes asked for, or too many entered, on this link."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class CodeRejectedError(ServiceError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RecipientSessionEndedError(ServiceError):
    """No verified session, or it timed out: the recipient opens the link again."""


class ReceiptInvalidError(ServiceError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("invalid")
        self.errors = errors


# ---- helpers ----------------------------------------------------------------------------------------------


def _event(session: Session, deps: ServiceDeps, pack: Pack, action: str, actor: Actor, outcome: str = "ok") -> None:
    session.add(PackEvent(pack_id=pack.id, at=deps.clock.now(), action=action, outcome=outcome, ip=actor.ip,
                          user_agent=(actor.user_agent or "")[:200] or None))


def _closed(deps: ServiceDeps, pack: Pack) -> LinkClosedError:
    return LinkClosedError(sender_name(deps), deps.settings.packs.sender_contact,
                           replaced=pack.revoked_cause == "reissued")


def _unavailable(deps: ServiceDeps, pack: Pack) -> LinkClosedError:
    """A stored pack that cannot be found: the recipient is told who to contact, support is told why."""
    log.error("pack %s: stored file missing", pack.id)
    return _closed(deps, pack)


def _live(deps: ServiceDeps, pack: Pack) -> bool:
    return pack.revoked_at is None and pack.expires_at > deps.clock.now()


def current_epoch(session: Session) -> int:
    """The restore epoch links and recipient sessions must carry to work (R77): raised by `after-restore`."""
    return int(session.scalar(select(func.coalesce(func.max(LinkEpoch.epoch), 1))) or 1)


def _by_token(deps: ServiceDeps, session: Session, token: str, *, lock: bool = False) -> Pack:
    """A link from before the latest restore of a backup is unknown, like a mistyped one: the restored database
    may have forgotten that it was revoked (attack #57), so it is never trusted again."""
    if not 20 <= len(token) <= 100:
        raise LinkUnknownError("link")
    query = select(Pack).where(Pack.token_hash == token_hash(token))
    pack = session.scalars(query.with_for_update() if lock else query).first()
    if pack is None or pack.epoch != current_epoch(session):
        raise LinkUnknownError("link")
    return pack


@dataclass(frozen=True)
class Landing:
    sender: str
    organisation: str
    recipient_title: str
    expires_at: datetime
    contact: str
    #: n•••@ward.nhs.uk: which mailbox the code goes to
    address_hint: str


def landing(deps: ServiceDeps, token: str, actor: Actor) -> Landing:
    """What the link's page may say: who sent it, for whom, until when. Nothing about the child."""
    with deps.db.transaction() as session:
        pack = _by_token(deps, session, token)
        live = _live(deps, pack)
        action = "link_fetched" if live else "refused"
        since = deps.clock.now() - timedelta(hours=1)
        logged = session.scalar(select(func.count()).select_from(PackEvent).where(
            PackEvent.pack_id == pack.id, PackEvent.action == action, PackEvent.at > since)) or 0
        if logged < deps.settings.packs.fetch_log_per_hour:  # scanners re-fetch: the log stays bounded
            _event(session, deps, pack, action, actor, "ok" if live else "refused")
        closed = None if live else _closed(deps, pack)
        organisation = session.get(Organisation, pack.organisation_id)
        page = Landing(sender=sender_name(deps), organisation=organisation.name if organisation else "",
                       recipient_title=_type_title(deps, pack), expires_at=pack.expires_at,
                       contact=deps.settings.packs.sender_contact, address_hint=mask(pack.address or ""))
    if closed is not None:  # raised after the commit, so the refusal stays in the access log
        raise closed
    return page


def _type_title(deps: ServiceDeps, pack: Pack) -> str:
    found = deps.definitions.recipient_types.get(pack.recipient_type)
    return found.title if found is not None else "Recipient"


CODE_EMAIL = """Your code is {code}

Enter it on the page where you asked for it. It works for {minutes} minutes, once.

If you did not ask for a code, someone may have pressed the button on a link sent to this mailbox: you can
ignore this email. Nothing has been shared.
"""


def mask(address: str) -> str:
    """n•••@ward.nhs.uk: enough to know which mailbox to look in."""
    local, _, domain = address.partition("@")
    return (local[:1] + "•••@" + domain) if domain else "•••"


@dataclass(frozen=True)
class CodeSent:
    #: Where to look: n•••@ward.nhs.uk
    address: str
    #: False when a code was sent less than a minute ago and this press sent nothing.
    sent: bool


def _code_send_outcome(deps: ServiceDeps, session: Session, pack: Pack, now: datetime) -> str:
    """"ok", or why no code is sent: "refused" (closed link), "repeat" (one went less than a minute ago: a
    scanner pressing every button, or an impatient nurse; the code on its way keeps working), "limited"."""
    rules = deps.settings.packs
    if not _live(deps, pack):
        return "refused"
    newest = session.scalars(select(PackCode).where(PackCode.pack_id == pack.id, PackCode.used_at.is_(None),
                                                    PackCode.voided.is_(False))
                             .order_by(PackCode.created_at.desc())).first()
    if newest is not None and newest.created_at > now - timedelta(seconds=rules.code_resend_seconds):
        return "repeat"
    hour = session.scalar(select(func.count()).select_from(PackCode).where(
        PackCode.pack_id == pack.id, PackCode.created_at > now - timedelta(hours=1))) or 0
    day = session.scalar(select(func.count()).select_from(PackCode).where(
        PackCode.pack_id == pack.id, PackCode.created_at > now - timedelta(days=1))) or 0
    return "limited" if hour >= rules.code_sends_per_hour or day >= rules.code_sends_per_day else "ok"


def send_code(deps: ServiceDeps, token: str, actor: Actor) -> CodeSent:
    """POST "Send me a code": a new 6-digit code to the bound address, within the send limits (R20).
    Every press is logged, and a refusal is committed before it is answered."""
    rules = deps.settings.packs
    with deps.db.transaction() as session:
        pack = _by_token(deps, session, token, lock=True)  # one sender at a time per link: the limit holds
        now = deps.clock.now()
        outcome = _code_send_outcome(deps, session, pack, now)
        if outcome == "ok":
            for old in session.scalars(select(PackCode).where(PackCode.pack_id == pack.id, PackCode.used_at.is_(None),
                                                              PackCode.voided.is_(False))):
                old.voided = True  # only the newest code works
            code = new_numeric_code(6)
            key_id = deps.keyring.active_id
            row = PackCode(id=uuid.uuid4(), pack_id=pack.id, key_id=key_id, created_at=now,
                           expires_at=now + timedelta(minutes=rules.code_minutes), wrong_attempts=0, voided=False,
                           code_mac=code_mac(deps.keyring.derive(key_id, _CODE_PURPOSE), str(pack.id), code))
            session.add(row)
            outbox.enqueue(session, now, to=pack.address or "",
                           subject=f"Your code from {deps.settings.app.council_name}",
                           body=CODE_EMAIL.format(code=code, minutes=rules.code_minutes), purpose="pack_code",
                           idempotency_key=f"pack-code-{row.id}")
        _event(session, deps, pack, "code_sent", actor, outcome)
        closed = _closed(deps, pack) if outcome == "refused" else None
        address = pack.address or ""
    if closed is not None:
        raise closed
    if outcome == "limited":
        raise RecipientLimitError("Too many codes have been sent for this link. Use the last code we sent, or "
                                  "try again in an hour.", 3600)
    return CodeSent(mask(address), outcome == "ok")


def _over_entry_limit(deps: ServiceDeps, session: Session, pack: Pack) -> RecipientLimitError | None:
    since = deps.clock.now() - timedelta(minutes=5)
    tries = session.scalar(select(func.count()).select_from(PackEvent).where(
        PackEvent.pack_id == pack.id, PackEvent.action.in_(["code_wrong", "verified"]),
        PackEvent.at > since)) or 0
    if tries >= deps.settings.packs.verify_attempts_per_5_minutes:
        return RecipientLimitError("Too many codes have been entered for this link. Wait 5 minutes and try again.",
                                   300)
    return None


def verify(deps: ServiceDeps, token: str, code: str, actor: Actor) -> str:
    """POST the code. Right: a new recipient session id (for the cookie). Wrong: how many tries are left."""
    typed = "".join(unicodedata.normalize("NFKC", code[:100]).split())  # full-width digits are digits
    if not typed:
        raise CodeRejectedError("Enter the 6-digit code from the email")
    if not (typed.isascii() and typed.isdigit()) or len(typed) != 6:
        raise CodeRejectedError("The code must be 6 numbers, like 123456")
    rules = deps.settings.packs
    rejected: ServiceError | None = None
    with deps.db.transaction() as session:
        pack = _by_token(deps, session, token, lock=True)
        now = deps.clock.now()
        row = session.scalars(select(PackCode).where(PackCode.pack_id == pack.id, PackCode.used_at.is_(None),
                                                     PackCode.voided.is_(False))
                              .order_by(PackCode.created_at.desc())).first()
        refusal = _closed(deps, pack) if not _live(deps, pack) else _over_entry_limit(deps, session, pack)
        key = _code_key(deps, row.key_id) if row is not None else None
        if refusal is not None:  # closed or over the limit: logged, committed, then refused
            _event(session, deps, pack, "code_wrong", actor, "refused")
            rejected = refusal
        elif row is None or key is None or row.expires_at <= now:
            _event(session, deps, pack, "code_wrong", actor, "refused")
            rejected = CodeRejectedError("That code has expired or was replaced. Ask for a new code.")
        elif not equal(row.code_mac, code_mac(key, str(pack.id), typed)):  # (key and row are set here)
            # Counted and committed before the answer goes back, so parallel guesses all count.
            row.wrong_attempts += 1
            _event(session, deps, pack, "code_wrong", actor, "refused")
            left = rules.code_max_wrong - row.wrong_attempts
            if left <= 0:
                row.voided = True
                _event(session, deps, pack, "code_voided", actor, "refused")
                rejected = CodeRejectedError("That code is wrong, and has now stopped working after "
                                             f"{rules.code_max_wrong} wrong tries. Ask for a new code.")
            else:
                rejected = CodeRejectedError(f"That code is wrong. You can try {left} more "
                                             f"time{'s' if left != 1 else ''} before it stops working.")
        else:
            row.used_at = now
            sid = new_token()
            session.add(RecipientSession(id_hash=token_hash(sid), pack_id=pack.id, created_at=now,
                                         last_seen_at=now))
            _event(session, deps, pack, "verified", actor)
            audit.record(session, deps.audit_chain, deps.clock, actor, "pack.recipient_verified",
                         object_type="pack", object_id=pack.id)
    if rejected is not None:
        raise rejected
    return sid


def _code_key(deps: ServiceDeps, key_id: str) -> bytes | None:
    """None when the key the code was made with has left the keyring (the code then cannot be checked)."""
    try:
        return deps.keyring.derive(key_id, _CODE_PURPOSE)
    except UnknownKeyError:
        return None


# ---- the verified session ---------------------------------------------------------------------------------


def _open(deps: ServiceDeps, session: Session, sid: str | None, *, lock: bool = False) -> Pack:
    """The pack of a live recipient session; expiry and revocation are checked at every request. (An expired
    session's row is left for `tick` to remove: this request only refuses.)"""
    if not sid or not 20 <= len(sid) <= 100:
        raise RecipientSessionEndedError("no session")
    row = session.get(RecipientSession, token_hash(sid))
    if row is None:
        raise RecipientSessionEndedError("no session")
    rules = deps.settings.packs
    now = deps.clock.now()
    if (row.last_seen_at + timedelta(minutes=rules.session_idle_minutes) <= now
            or row.created_at + timedelta(minutes=rules.session_absolute_minutes) <= now):
        raise RecipientSessionEndedError("expired")
    pack = session.get(Pack, row.pack_id, with_for_update=lock)
    if pack is None:
        raise RecipientSessionEndedError("no pack")
    epoch = current_epoch(session)
    if row.epoch != epoch or pack.epoch != epoch:  # opened before the latest restore of a backup (R77)
        raise RecipientSessionEndedError("restored")
    if not _live(deps, pack):
        raise _closed(deps, pack)
    row.last_seen_at = now
    return pack


def _snapshot(deps: ServiceDeps, session: Session, pack: Pack) -> PackDocument:
    blob = session.get(StoredBlob, pack.snapshot_blob_id)
    if blob is None:
        raise _unavailable(deps, pack)
    return from_json(deps.blob_cipher.decrypt(blob.ciphertext, context=blob.context))


@dataclass(frozen=True)
class RecipientView:
    document: PackDocument
    password: str
    organisation: str
    expires_at: datetime
    confirmed_at: datetime | None
    confirmed_name: str
    confirmed_role: str
    file_name: str
    session_ends_at: datetime
    section_choices: list[tuple[str, str]]


def _view(deps: ServiceDeps, session: Session, pack: Pack, sid: str) -> RecipientView:
    document = _snapshot(deps, session, pack)
    organisation = session.get(Organisation, pack.organisation_id)
    row = session.get(RecipientSession, token_hash(sid))
    rules = deps.settings.packs
    ends = row.created_at + timedelta(minutes=rules.session_absolute_minutes) if row else deps.clock.now()
    return RecipientView(
        document=document, password=pack.password or "", organisation=organisation.name if organisation else "",
        expires_at=pack.expires_at, confirmed_at=pack.confirmed_at, confirmed_name=pack.confirmed_name or "",
        confirmed_role=pack.confirmed_role or "", file_name=f"handover-{pack.reference}-v{pack.version}.pdf",
        session_ends_at=ends, section_choices=[(s.code, s.title) for s in deps.definitions.ordered()])


def view(deps: ServiceDeps, sid: str | None, actor: Actor, *, log: bool = True) -> RecipientView:
    with deps.db.transaction() as session:
        pack = _open(deps, session, sid)
        if log:
            _event(session, deps, pack, "viewed", actor)
        return _view(deps, session, pack, sid or "")


@dataclass(frozen=True)
class PackFile:
    data: bytes
    name: str


def download(deps: ServiceDeps, sid: str | None, actor: Actor) -> PackFile:
    with deps.db.transaction() as session:
        pack = _open(deps, session, sid)
        blob = session.get(StoredBlob, pack.pdf_blob_id)
        if blob is None:
            raise _unavailable(deps, pack)
        _event(session, deps, pack, "downloaded", actor)
        audit.record(session, deps.audit_chain, deps.clock, actor, "pack.downloaded", object_type="pack",
                     object_id=pack.id)
        return PackFile(deps.blob_cipher.decrypt(blob.ciphertext, context=blob.context),
                        f"handover-{pack.reference}-v{pack.version}.pdf")


def photo(deps: ServiceDeps, sid: str | None) -> bytes | None:
    with deps.db.transaction() as session:
        pack = _open(deps, session, sid)
        return _snapshot(deps, session, pack).first_page.photo


def _notify_worker(deps: ServiceDeps, session: Session, pack: Pack, subject: str, body: str, key: str) -> None:
    child = session.get(Child, pack.child_id)
    address = allocated_worker_email(session, child) if child is not None else None
    if not address:  # no allocated worker (or not active): the person who sent the pack is told instead
        sender = session.get(StaffUser, pack.created_by)
        address = sender.email if sender is not None and sender.status == "active" else None
    if address:
        outbox.enqueue(session, deps.clock.now(), to=address, subject=subject, body=body, purpose="pack_notice",
                       idempotency_key=key)


CONFIRMED_EMAIL = """{organisation} ({recipient}) has confirmed receipt of handover pack {reference} version {version}.

Confirmed by: {name}, {role}

See who has confirmed and who has not: {url}
"""
REQUEST_EMAIL = """{organisation} ({recipient}) has asked for missing information in handover pack {reference}
version {version}.

Sections: {sections}

Read the request and answer it: {url}
"""


def confirm(deps: ServiceDeps, sid: str | None, name: str, role: str, attested: bool, actor: Actor) -> RecipientView:
    """Receipt is this explicit act alone (R26). Confirming twice keeps the first confirmation."""
    errors = {}
    name, role = " ".join(name.split()), " ".join(role.split())
    if not name:
        errors["name"] = "Enter your full name"
    elif len(name) > 120:
        errors["name"] = "Your name must be 120 characters or fewer"
    if not role:
        errors["role"] = "Enter your role, like ward sister or registered manager"
    elif len(role) > 120:
        errors["role"] = "Your role must be 120 characters or fewer"
    if not attested:
        errors["attested"] = ("Confirm that you have read the pack and it is available to the staff caring for "
                              "the child")
    with deps.db.transaction() as session:
        pack = _open(deps, session, sid, lock=True)  # two presses at once: one confirmation
        if errors:
            raise ReceiptInvalidError(errors)
        if pack.confirmed_at is None:
            pack.confirmed_at = deps.clock.now()
            pack.confirmed_name = name
            pack.confirmed_role = role
            _event(session, deps, pack, "confirmed", actor)
            audit.record(session, deps.audit_chain, deps.clock, actor, "pack.confirmed", object_type="pack",
                         object_id=pack.id)
            organisation = session.get(Organisation, pack.organisation_id)
            _notify_worker(deps, session, pack, f"Pack {pack.reference} confirmed", CONFIRMED_EMAIL.format(
                organisation=organisation.name if organisation else "", reference=pack.reference,
                recipient=_type_title(deps, pack), version=pack.version,
                name=name, role=role, url=staff_pack_url(deps, pack)),
                f"pack-confirmed-{pack.id}")
        return _view(deps, session, pack, sid or "")


def request_information(deps: ServiceDeps, sid: str | None, sections: list[str], reason: str, name: str,
                        actor: Actor) -> None:
    """Lesson CH6.1: the receiving service pulls what is missing; it reaches the allocated social worker."""
    known = deps.definitions.sections
    chosen = [s for s in dict.fromkeys(sections) if s in known]
    errors = {}
    text = reason.strip()
    if not chosen:
        errors["sections"] = "Select the information that is missing"
    if not text:
        errors["reason"] = "Say what is missing and why you need it"
    elif len(text) > 2000:
        errors["reason"] = "What is missing must be 2000 characters or fewer"
    who = " ".join(name.split())
    if not who:
        errors["requested_by"] = "Enter your name and role"
    elif len(who) > 200:
        errors["requested_by"] = "Your name and role must be 200 characters or fewer"
    with deps.db.transaction() as session:
        pack = _open(deps, session, sid)
        if errors:
            raise ReceiptInvalidError(errors)
        now = deps.clock.now()
        request = InformationRequest(id=uuid.uuid4(), pack_id=pack.id, sections=",".join(chosen), requested_at=now)
        request.reason = text
        request.requested_by = who
        session.add(request)
        child = session.get(Child, pack.child_id)
        assert child is not None
        tasks.open_task(session, deps, child_id=child.id, kind="information_request",
                        assigned_role=Role.SOCIAL_WORKER, team_id=child.team_id, transition_id=pack.transition_id,
                        assigned_user_id=child.allocated_worker_id or pack.created_by, subject_id=request.id,
                        due_at=tasks.due_from(deps, "information_request", now))
        _event(session, deps, pack, "information_requested", actor)
        audit.record(session, deps.audit_chain, deps.clock, actor, "pack.information_requested",
                     object_type="pack", object_id=pack.id, details={"fields": ",".join(chosen)})
        organisation = session.get(Organisation, pack.organisation_id)
        _notify_worker(deps, session, pack, f"Information requested for pack {pack.reference}", REQUEST_EMAIL.format(
            organisation=organisation.name if organisation else "", reference=pack.reference,
            recipient=_type_title(deps, pack), version=pack.version,
            sections=", ".join(known[c].title for c in chosen), url=staff_pack_url(deps, pack)),
            f"pack-request-{request.id}")


def end_session(deps: ServiceDeps, sid: str | None) -> None:
    if sid:
        with deps.db.transaction() as session:
            session.execute(delete(RecipientSession).where(RecipientSession.id_hash == token_hash(sid)))


def purge_expired(deps: ServiceDeps) -> int:
    """Recipient sessions past their limits and codes past their time are deleted (tick)."""
    rules = deps.settings.packs
    now = deps.clock.now()
    with deps.db.transaction() as session:
        sessions = session.execute(delete(RecipientSession).where(
            (RecipientSession.last_seen_at <= now - timedelta(minutes=rules.session_idle_minutes))
            | (RecipientSession.created_at <= now - timedelta(minutes=rules.session_absolute_minutes))))
        codes = session.execute(delete(PackCode).where(PackCode.expires_at <= now - timedelta(days=1)))
        return int(sessions.rowcount) + int(codes.rowcount)  # type: ignore[attr-defined]


# ---- after a backup is restored ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreReport:
    epoch: int
    links_withdrawn: int
    sessions_ended: int
    codes_voided: int


def withdraw_links_after_restore(deps: ServiceDeps, note: str, actor: Actor) -> RestoreReport:
    """Run once on a database restored from a backup, before the app serves it (R77, attack #57).

    The new epoch makes every link and recipient session of the restored database unknown, whatever the backup
    says about them (a link revoked after the backup was taken is live in it). The links that were still live
    in the backup are also marked withdrawn, so the board tells staff to send them again; their sessions and
    unused codes are deleted. The epoch is recorded in the database it protects: a later restore of an older
    backup brings back older epochs, and running this again bumps above those."""
    now = deps.clock.now()
    with deps.db.transaction() as session:
        epoch = current_epoch(session) + 1
        session.add(LinkEpoch(epoch=epoch, started_at=now, note=" ".join(note.split())[:200] or "restore"))
        live = list(session.scalars(select(Pack).where(Pack.revoked_at.is_(None), Pack.epoch < epoch)))
        for pack in live:
            pack.revoked_at = now
            pack.revoked_cause = "restore"
        ended = session.execute(delete(RecipientSession))
        voided = session.execute(update(PackCode).where(PackCode.used_at.is_(None), PackCode.voided.is_(False))
                                 .values(voided=True))
        audit.record(session, deps.audit_chain, deps.clock, actor, "links.withdrawn_after_restore",
                     details={"count": len(live), "status": f"epoch {epoch}"})
        return RestoreReport(epoch=epoch, links_withdrawn=len(live),
                             sessions_ended=int(ended.rowcount),  # type: ignore[attr-defined]
                             codes_voided=int(voided.rowcount))  # type: ignore[attr-defined]
