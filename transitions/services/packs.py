"""Handover packs: what each recipient is entitled to, built, encrypted, stored and sent by secure link; the
tracking board; revocation; new versions when the record changes (Lesson CH1.1).

Need-to-know comes from forms/recipients.toml field by field: a section shared in "full" gives every field,
"summary" only the fields marked ``in_summary``; ``exclude_fields`` removes single fields whatever the level;
``never_identity_protected`` removes every field that says where the child lives or can be found. The one
:class:`PackDocument` this produces drives the PDF, the recipient's page and the "new version due" check.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from transitions.clock import UK
from transitions.crypto import new_token, token_hash
from transitions.formdefs import PROFILE_FIELDS, FieldDef, RecipientType, SectionDef
from transitions.models import (
    Attachment,
    Child,
    InformationRequest,
    Organisation,
    OutboxMessage,
    Pack,
    PackEvent,
    RecipientSession,
    SectionVersion,
    StaffUser,
    StoredBlob,
    Transition,
    TransitionRecipient,
)
from transitions.paths import PDF_FONTS_DIR
from transitions.pdf import (
    FirstPage,
    PackDocument,
    PackEntry,
    PackItem,
    PackSection,
    PackTooLargeError,
    RestrictedPersonLine,
)
from transitions.pdf.document import to_json
from transitions.services import audit, outbox, send_limit, storage
from transitions.services.accounts import StaffView
from transitions.services.audit import Actor
from transitions.services.children import current_versions, open_child, restricted_people
from transitions.services.deps import ServiceDeps
from transitions.services.errors import ForbiddenActionError, NotFoundError, TransitionStepError
from transitions.services.values import ENTRIES, display, format_date, format_nhs_number, is_empty, typed_reason

#: Why a link stopped working, as staff read it on the board.
REVOKED_LABELS = {
    "staff": "Revoked",
    "removed": "Revoked: removed from the recipients",
    "reissued": "Replaced by a newer version",
    "superseded": "Revoked: a later move replaced this one",
    "placement_ended": "Revoked: the placement ended",
    "cancelled": "Revoked: the move was cancelled",
    "force_changed": "Revoked: the missing episode was passed to another police force",
    "restore": "Link withdrawn after a restore of the database: send it again",
}
#: What a pack calls the child when the recipient type gets no name (ID not shared).
NAME_NOT_SHARED = "The child (name not shared)"
#: Access-log actions, in the order a recipient goes through them.
EVENT_LABELS = {
    "link_fetched": "Link fetched (may be automated)", "code_sent": "Code sent", "code_wrong": "Wrong code entered",
    "code_voided": "Code voided after too many wrong tries", "verified": "Recipient verified",
    "viewed": "Pack viewed", "downloaded": "PDF downloaded", "confirmed": "Receipt confirmed",
    "information_requested": "Information requested", "refused": "Refused (expired or revoked)",
}


class NoMailboxError(TransitionStepError):
    """The recipient's organisation is not chosen yet, or the register has no mailbox for it."""


# ---- what a recipient is entitled to ----------------------------------------------------------------------


def shares(rtype: RecipientType, section_code: str, f: FieldDef) -> bool:
    """Whether this recipient type may see this field (the one need-to-know rule; the property test uses it)."""
    level = rtype.level(section_code)
    if level == "none" or (level == "summary" and not f.in_summary):
        return False
    if f"{section_code}.{f.id}" in rtype.exclude_fields:
        return False
    return not (rtype.never_identity_protected and f.sensitivity == "identity_protected")


def shares_profile(rtype: RecipientType, field_id: str) -> bool:
    if rtype.level("ID") == "none" or f"ID.{field_id}" in rtype.exclude_fields:
        return False
    return not (rtype.never_identity_protected and PROFILE_FIELDS[field_id][1] == "identity_protected")


@dataclass(frozen=True)
class Built:
    """A recipient's pack before the bytes of its photo and documents are read."""

    document: PackDocument
    photo: uuid.UUID | None
    documents: tuple[tuple[str, uuid.UUID], ...]
    section_versions: str
    #: SHA-256 of everything the recipient is entitled to (attachments by their immutable ids).
    digest: str


def _attachment_id(value: object) -> uuid.UUID | None:
    if isinstance(value, dict) and value.get("attachment"):
        try:
            return uuid.UUID(str(value["attachment"]))
        except ValueError:
            return None
    return None


def _items(rtype: RecipientType, section: SectionDef, fields: Iterable[FieldDef], content: dict[str, Any],
           documents: list[tuple[str, uuid.UUID]]) -> tuple[PackItem, ...]:
    items = []
    for f in fields:
        if not shares(rtype, section.code, f):
            continue
        value = content.get(f.id)
        if is_empty(value):
            continue
        if f.type == "document":
            attachment = _attachment_id(value)
            if attachment is not None:
                documents.append((f.label, attachment))
            items.append(PackItem(f.label, display(f, value) + " (attached after this pack)", f.id))
        elif f.type == "photo":
            continue  # the photo is shown on the first page, not as a file name
        else:
            items.append(PackItem(f.label, display(f, value), f.id))
    return tuple(items)


def _profile_items(deps: ServiceDeps, session: Session, rtype: RecipientType, child: Child,
                   destination_id: uuid.UUID | None) -> tuple[PackItem, ...]:
    codes = deps.definitions.code_lists
    ids = {i for i in (child.responsible_la_id, child.current_placement_id, destination_id) if i}
    orgs = {o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(ids)))}

    def org_text(org_id: uuid.UUID | None) -> str:
        org = orgs.get(org_id) if org_id else None
        if org is None:
            return ""
        return org.name + (("\n" + org.address) if org.address else "")

    values = {
        "legal_name": child.legal_name or "", "preferred_name": child.preferred_name or "",
        "aliases": child.aliases or "",
        "date_of_birth": format_date(child.date_of_birth) if child.date_of_birth else "",
        "sex": codes["SEX"].label(child.sex) if child.sex else "",
        "nhs_number": format_nhs_number(child.nhs_number) if child.nhs_number else "",
        "la_child_id": child.la_child_id or "",
        "legal_status": codes["LS"].label(child.legal_status) if child.legal_status else "",
        "placement_type": codes["PLACE"].label(child.placement_type) if child.placement_type else "",
        "responsible_la": org_text(child.responsible_la_id).split("\n")[0],
        "placement": org_text(child.current_placement_id),
        "destination": org_text(destination_id),
    }
    return tuple(PackItem(PROFILE_FIELDS[k][0], v, k) for k, v in values.items()
                 if v and shares_profile(rtype, k))


def _restricted(rtype: RecipientType, section: SectionDef, content: dict[str, Any]
                ) -> tuple[RestrictedPersonLine, ...]:
    """The child page's restricted people, read only through the fields this recipient gets; none at all if it
    does not get their names."""
    entry = section.entry
    if entry is None or not any(f.id == "name" and shares(rtype, section.code, f) for f in entry.fields):
        return ()
    fields = {f.id: f for f in entry.fields}
    people = restricted_people(section, content,
                               lambda field_id: field_id in fields and shares(rtype, section.code, fields[field_id]))
    return tuple(RestrictedPersonLine(p.name, p.relationship, tuple(p.reasons)) for p in people)


def _reviewed(version: SectionVersion | None) -> str:
    if version is None:
        return "Not recorded yet"
    return f"Version {version.version}, last reviewed {format_date(version.reviewed_on)}"


def build(deps: ServiceDeps, session: Session, child: Child, transition: Transition, recipient: TransitionRecipient,
          organisation: Organisation, *, version: int, reference: str,
          versions: dict[str, SectionVersion] | None = None) -> Built:
    """Snapshot the current section versions through the recipient type's need-to-know profile."""
    return build_for(deps, session, child, recipient.recipient_type, organisation.name,
                     destination_id=transition.destination_id, version=version, reference=reference,
                     versions=versions)


def build_for(deps: ServiceDeps, session: Session, child: Child, recipient_type: str, prepared_for: str, *,
              destination_id: uuid.UUID | None, version: int, reference: str,
              versions: dict[str, SectionVersion] | None = None) -> Built:
    """:func:`build` for a recipient type, with or without a transition (a missing episode's police pack has
    none: ``destination_id`` is then None)."""
    rtype = deps.definitions.recipient_types[recipient_type]
    versions = current_versions(session, child.id) if versions is None else versions
    documents: list[tuple[str, uuid.UUID]] = []
    sections: list[PackSection] = []
    photo: uuid.UUID | None = None
    photo_taken = ""
    key_risks: tuple[str, ...] = ()
    restricted: tuple[RestrictedPersonLine, ...] = ()
    out_of_hours: list[tuple[str, str]] = []
    used: list[str] = []
    for section in deps.definitions.ordered():
        level = rtype.level(section.code)
        if level == "none":
            continue
        row = versions.get(section.code)
        content: dict[str, Any] = json.loads(row.content or "{}") if row is not None else {}
        if row is not None:
            used.append(f"{section.code}@{row.version}")
        own_documents: list[tuple[str, uuid.UUID]] = []
        items = _items(rtype, section, section.fields, content, own_documents)
        if section.code == "ID":
            items = _profile_items(deps, session, rtype, child, destination_id) + items
        entries: list[PackEntry] = []
        if section.entry is not None:
            restricted = _restricted(rtype, section, content)
            restricted_names = {p.name for p in restricted}
            for entry in content.get(ENTRIES, []) or []:
                entry_items = _items(rtype, section, section.entry.fields, entry, own_documents)
                if entry_items:
                    title_field = next((f for f in section.entry.fields if f.id == section.entry.title_field), None)
                    shown = title_field is not None and shares(rtype, section.code, title_field)
                    title = str(entry.get(section.entry.title_field) or "") if shown else ""
                    title = title or section.entry.name.capitalize()
                    entries.append(PackEntry(title, entry_items, restricted=title in restricted_names))
        if section.code == "PHOTO":
            photo_field = next((f for f in section.fields if f.type == "photo"), None)
            if photo_field is not None and shares(rtype, "PHOTO", photo_field):
                photo = _attachment_id(content.get(photo_field.id))
                photo_taken = format_date(content.get("taken_on")) if content.get("taken_on") else ""
        if section.code == "RISK":
            risk_field = next((f for f in section.fields if f.id == "headline_risks"), None)
            if risk_field is not None and shares(rtype, "RISK", risk_field) and isinstance(
                    content.get("headline_risks"), list) and risk_field.codes:
                key_risks = tuple(risk_field.codes.label(str(c)) for c in content["headline_risks"])
        if section.code == "NETWORK":
            out_of_hours = [(i.label, i.value) for i in items if i.field_id in (
                "edt_phone", "social_worker_name", "social_worker_phone", "police_contact_phone")]
        documents += own_documents
        sections.append(PackSection(code=section.code, title=section.title, level=level,
                                    version=row.version if row is not None else None, reviewed=_reviewed(row),
                                    items=items, entries=tuple(entries),
                                    entry_plural=section.entry.plural if section.entry else "",
                                    documents=tuple(label for label, _ in own_documents)))
    legal = child.legal_name or "" if shares_profile(rtype, "legal_name") else ""
    preferred = (child.preferred_name or "" if shares_profile(rtype, "preferred_name") else "") or legal or \
        NAME_NOT_SHARED
    dob = format_date(child.date_of_birth) if child.date_of_birth and shares_profile(rtype, "date_of_birth") else ""
    now_uk = deps.clock.now().astimezone(UK)
    document = PackDocument(
        reference=reference, version=version, prepared_for=prepared_for, recipient_title=rtype.title,
        prepared_on=format_date(now_uk.date()), sending_authority=sender_name(deps),
        sender_contact=deps.settings.packs.sender_contact,
        first_page=FirstPage(preferred_name=preferred, legal_name=legal, date_of_birth=dob, photo=None,
                             photo_taken_on=photo_taken, key_risks=key_risks, restricted_persons=restricted,
                             out_of_hours=tuple(out_of_hours)),
        sections=tuple(sections))
    # Only what the recipient reads counts: a new version that changed fields they do not get (or a "reviewed, no
    # change") makes no new pack due for them.
    digest_doc = replace(document, reference="", version=0, prepared_on="", prepared_for="", recipient_title="",
                         sending_authority="", sender_contact="",
                         sections=tuple(replace(s, version=None, reviewed="") for s in sections))
    digest = hashlib.sha256(to_json(digest_doc) + json.dumps(
        [str(photo), [str(d) for _, d in documents]]).encode()).hexdigest()
    return Built(document=document, photo=photo, documents=tuple(documents), section_versions=",".join(used),
                 digest=digest)


def sender_name(deps: ServiceDeps) -> str:
    return f"{deps.settings.app.council_name} children's services"


# ---- issuing ----------------------------------------------------------------------------------------------


def _attachment_bytes(deps: ServiceDeps, session: Session, child_id: uuid.UUID, ids: list[uuid.UUID]
                      ) -> dict[uuid.UUID, bytes]:
    """The decrypted files of these attachments of this child, read in two queries."""
    if not ids:
        return {}
    attachments = {a.id: a for a in session.scalars(select(Attachment).where(Attachment.id.in_(ids),
                                                                              Attachment.child_id == child_id))}
    found = {}
    for attachment_id, attachment in attachments.items():
        # One ciphertext at a time, read as a column and never loaded into the session: a StoredBlob entity
        # would keep every document's ciphertext in memory beside its plaintext until the transaction ends.
        row = session.execute(select(StoredBlob.id, StoredBlob.purpose, StoredBlob.ciphertext).where(
            StoredBlob.id == attachment.blob_id)).first()
        if row is not None:
            context = StoredBlob(id=row.id, purpose=row.purpose).context
            found[attachment_id] = deps.blob_cipher.decrypt(row.ciphertext, context=context)
            del row
    return found


def new_reference() -> str:
    alphabet = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
    return "HP-" + "".join(secrets.choice(alphabet) for _ in range(6))


def materialise(deps: ServiceDeps, session: Session, child: Child, built: Built) -> PackDocument:
    """The built document with the bytes of its photo and attached documents read (decrypted) in."""
    files = _attachment_bytes(deps, session, child.id,
                              ([built.photo] if built.photo else []) + [a for _, a in built.documents])
    photo = files.get(built.photo) if built.photo else None
    if built.photo and photo is None:
        raise TransitionStepError("The child's photo could not be read: upload it again, then send")
    appendices = []
    for label, attachment_id in built.documents:
        data = files.get(attachment_id)
        if data is None:  # never say "attached" of a file that is not there
            raise TransitionStepError(f"The document '{label}' could not be read: upload it again, then send")
        appendices.append((label, data))
    return replace(built.document, first_page=replace(built.document.first_page, photo=photo),
                   appendices=tuple(appendices))


def render(deps: ServiceDeps, document: PackDocument, password: str | None = None) -> tuple[bytes, str, int]:
    """The pack as an AES-256 PDF (its attached documents appended), its password (a new one unless given) and
    its page count."""
    # Imported here: ReportLab and pikepdf cost 0.1 s to import, which commands that draw no pack need not pay.
    from transitions.pdf import appendix_stamp, encrypt_pack, load_fonts, new_pdf_password, render_pack

    fonts = load_fonts(PDF_FONTS_DIR)
    plain = render_pack(document, fonts, max_pages=deps.settings.packs.max_pages)
    password = password or new_pdf_password()
    stamp = appendix_stamp(document, fonts) if document.appendices else None
    encrypted, pages = encrypt_pack(plain, password, document.appendices, stamp)
    return encrypted, password, pages


LINK_EMAIL = """{sender} has sent {organisation} secure information about a child looked after.

Open it here:
{url}

The link works until {expires}. When you open it, we will send a code to this mailbox. Nothing is shown
until the code is entered, and the information stays on this service.

Reference: {reference} (version {version})

If you did not expect this, or you need help opening it: {contact}
"""


def _link_url(deps: ServiceDeps, token: str) -> str:
    """Built from the configured address, never from the request's Host header (R30)."""
    return deps.settings.app.public_base_url.rstrip("/") + "/r/" + token


def issue(deps: ServiceDeps, session: Session, transition: Transition, recipient: TransitionRecipient,
          user: StaffView, actor: Actor, *, versions: dict[str, SectionVersion] | None = None) -> Pack:
    """Build, encrypt and store one recipient's next pack version, and queue its link email.

    A recipient whose organisation has no mailbox cannot be sent a link: the caller reports it.
    """
    organisation = session.get(Organisation, recipient.organisation_id) if recipient.organisation_id else None
    if organisation is None or not organisation.mailbox:
        raise NoMailboxError(deps.definitions.recipient_types[recipient.recipient_type].title)
    child = session.get(Child, transition.child_id)
    if child is None:
        raise NotFoundError("child")
    previous = session.scalars(select(Pack).where(Pack.recipient_id == recipient.id)
                               .order_by(Pack.version.desc())).first()
    version = previous.version + 1 if previous is not None else 1
    reference = previous.reference if previous is not None else new_reference()
    built = build(deps, session, child, transition, recipient, organisation, version=version, reference=reference,
                  versions=versions)
    return issue_built(deps, session, child, built, organisation, recipient.recipient_type, user, actor,
                       version=version, reference=reference, previous=previous, transition_id=transition.id,
                       recipient_id=recipient.id)


def issue_built(deps: ServiceDeps, session: Session, child: Child, built: Built, organisation: Organisation,
                recipient_type: str, user: StaffView, actor: Actor, *, version: int, reference: str,
                previous: Pack | None, transition_id: uuid.UUID | None = None,
                recipient_id: uuid.UUID | None = None, episode_id: uuid.UUID | None = None) -> Pack:
    """Encrypt, store and link a built pack: for a transition's recipient, or for a missing episode's police
    force (then ``episode_id`` instead of the transition and recipient). The previous version's link stops."""
    if not organisation.mailbox:
        raise NoMailboxError(deps.definitions.recipient_types[recipient_type].title)
    now = deps.clock.now()
    document = materialise(deps, session, child, built)
    try:
        pdf, password, pages = render(deps, document)
    except PackTooLargeError:
        # Nothing is sent to anyone: the whole send is one transaction, and the worker sees why.
        raise TransitionStepError(
            f"The pack for {organisation.name} would be longer than {deps.settings.packs.max_pages} pages. "
            "Shorten the longest answers in the child's record (summarise, and attach documents instead), then "
            "send again.") from None
    # The attached documents are in the PDF now: let them go before the PDF is encrypted and written, so the
    # worker never holds the documents, the PDF, its ciphertext and the driver's copy of it all at once.
    document = replace(document, appendices=())
    token = new_token()
    pdf_blob = storage.store_blob(deps, session, "pack-pdf", "application/pdf", pdf)
    del pdf
    snapshot_blob = storage.store_blob(deps, session, "pack-snapshot", "application/json", to_json(document))
    session.flush()
    pack = Pack(id=uuid.uuid4(), child_id=child.id, transition_id=transition_id, recipient_id=recipient_id,
                episode_id=episode_id, version=version, reference=reference, recipient_type=recipient_type,
                organisation_id=organisation.id, token_hash=token_hash(token), created_at=now, created_by=user.id,
                expires_at=now + timedelta(days=deps.settings.packs.link_expiry_days), pdf_blob_id=pdf_blob.id,
                snapshot_blob_id=snapshot_blob.id, section_versions=built.section_versions[:400],
                content_digest=built.digest, definition_digest=deps.definitions.digest, page_count=pages)
    pack.address = organisation.mailbox
    pack.password = password
    session.add(pack)
    session.flush()
    if previous is not None and previous.revoked_at is None:
        _revoke(session, previous, now, "reissued", None, None)
    message = outbox.enqueue(
        session, now, to=organisation.mailbox, subject=f"Secure information from {deps.settings.app.council_name}",
        body=LINK_EMAIL.format(sender=sender_name(deps), organisation=organisation.name, url=_link_url(deps, token),
                               expires=_when(pack.expires_at), reference=reference, version=version,
                               contact=deps.settings.packs.sender_contact),
        purpose="pack_link", idempotency_key=f"pack-link-{pack.id}")
    pack.outbox_message_id = message.id
    audit.record(session, deps.audit_chain, deps.clock, actor, "pack.issued", object_type="pack", object_id=pack.id,
                 details={"kind": recipient_type, "count": version, "link_id": transition_id or episode_id})
    return pack


def _when(at: datetime) -> str:
    local = at.astimezone(UK)
    return f"{local.strftime('%-I:%M%p').lower()} on {format_date(local.date())}"


@dataclass(frozen=True)
class SendReport:
    sent: int
    not_sent: tuple[str, ...]


def send_due(deps: ServiceDeps, session: Session, transition: Transition, user: StaffView, actor: Actor, *,
             only_stale: bool = False) -> SendReport:
    """Send every recipient with no live pack (or, with only_stale, those whose entitled content changed)."""
    versions = current_versions(session, transition.child_id)
    child = session.get(Child, transition.child_id)
    sent, skipped = 0, []
    recipients = list(session.scalars(select(TransitionRecipient).where(
        TransitionRecipient.transition_id == transition.id, TransitionRecipient.removed_at.is_(None))
        .order_by(TransitionRecipient.created_at, TransitionRecipient.id)))
    types = deps.definitions.recipient_types
    recent = send_limit.sent_recently(deps, session, user)  # R71: one user's burst of sends is refused
    for recipient in recipients:
        latest = session.scalars(select(Pack).where(Pack.recipient_id == recipient.id)
                                 .order_by(Pack.version.desc())).first()
        if only_stale:
            if latest is None or latest.revoked_at is not None or child is None:
                continue
            organisation = session.get(Organisation, latest.organisation_id)
            if organisation is None or build(deps, session, child, transition, recipient, organisation,
                                             version=0, reference="", versions=versions).digest == \
                    latest.content_digest:
                continue
        elif not needs_first_or_renewed_link(latest, deps.clock.now()):
            continue
        try:
            issue(deps, session, transition, recipient, user, actor, versions=versions)
            sent += 1
            send_limit.check(deps, recent, sent, user, actor, transition.id)
        except NoMailboxError:
            skipped.append(types[recipient.recipient_type].title)
    return SendReport(sent=sent, not_sent=tuple(skipped))


def needs_first_or_renewed_link(latest: Pack | None, now: datetime) -> bool:
    """Sent nothing yet, the link ran out, or it was withdrawn when a backup was restored (R77). A revoked link
    is never sent again by itself: revoked by staff (the wrong home?), by a later move or by the end of the
    placement, it stays revoked."""
    return latest is None or latest.revoked_cause == "restore" or (latest.revoked_at is None
                                                                     and latest.expires_at <= now)


def _transition_for_change(deps: ServiceDeps, session: Session, transition_id: uuid.UUID, user: StaffView,
                           actor: Actor) -> Transition:
    transition = session.get(Transition, transition_id, with_for_update=True)  # one send at a time
    if transition is None:
        raise NotFoundError("transition")
    _child, access = open_child(deps, session, transition.child_id, user, actor, action=None)
    if not access.can_edit_profile:
        raise ForbiddenActionError("Only the child's social worker, their team and managers send packs")
    if transition.status != "sent":
        raise TransitionStepError("Packs are sent when the transition is sent")
    return transition


@send_limit.audited
def send_remaining(deps: ServiceDeps, transition_id: uuid.UUID, user: StaffView, actor: Actor, *,
                   only_stale: bool = False) -> SendReport:
    with deps.db.transaction() as session:
        transition = _transition_for_change(deps, session, transition_id, user, actor)
        return send_due(deps, session, transition, user, actor, only_stale=only_stale)


# ---- revocation -------------------------------------------------------------------------------------------


def _revoke(session: Session, pack: Pack, now: datetime, cause: str, by: uuid.UUID | None, reason: str | None
            ) -> None:
    pack.revoked_at = now
    pack.revoked_cause = cause
    pack.revoked_by = by
    if reason:
        pack.revoked_reason = reason
    session.execute(delete(RecipientSession).where(RecipientSession.pack_id == pack.id))


def _revoke_live(deps: ServiceDeps, session: Session, which: Any, cause: str, actor: Actor) -> int:
    now = deps.clock.now()
    live = list(session.scalars(select(Pack).where(which, Pack.revoked_at.is_(None))))
    for pack in live:
        _revoke(session, pack, now, cause, None, None)
        audit.record(session, deps.audit_chain, deps.clock, actor, "pack.revoked", object_type="pack",
                     object_id=pack.id, details={"reason_code": cause})
    return len(live)


def revoke_for_transition(deps: ServiceDeps, session: Session, transition_id: uuid.UUID, cause: str,
                          actor: Actor) -> int:
    """Every live link of a transition stops working now (superseded or cancelled)."""
    return _revoke_live(deps, session, Pack.transition_id == transition_id, cause, actor)


def revoke_for_episode(deps: ServiceDeps, session: Session, episode_id: uuid.UUID, cause: str, actor: Actor, *,
                       keep_organisation_id: uuid.UUID | None = None) -> int:
    """Every live police link of a missing episode stops working now, except those to `keep_organisation_id`
    (the force it is now reported to)."""
    which = Pack.episode_id == episode_id
    if keep_organisation_id is not None:
        which = which & (Pack.organisation_id != keep_organisation_id)
    return _revoke_live(deps, session, which, cause, actor)


def revoke_by_staff(deps: ServiceDeps, session: Session, pack: Pack, reason: str, user: StaffView,
                    actor: Actor) -> None:
    """A member of staff stops one link now, with their typed reason (the caller has checked who may): the
    recipient's verified sessions end with it."""
    if pack.revoked_at is not None:
        raise TransitionStepError("This link was already revoked")
    _revoke(session, pack, deps.clock.now(), "staff", user.id, reason)
    audit.record(session, deps.audit_chain, deps.clock, actor, "pack.revoked", object_type="pack",
                 object_id=pack.id, details={"reason_code": "staff"})


def revoke_for_recipient(deps: ServiceDeps, session: Session, recipient_id: uuid.UUID, cause: str,
                         actor: Actor) -> int:
    """A recipient taken off the transition keeps no working link."""
    return _revoke_live(deps, session, Pack.recipient_id == recipient_id, cause, actor)


def revoke_for_placement_end(deps: ServiceDeps, session: Session, child_id: uuid.UUID,
                             old_placement_id: uuid.UUID | None, actor: Actor) -> int:
    """When the child leaves a placement, the packs sent for the move into it stop working."""
    if old_placement_id is None:
        return 0
    ids = list(session.scalars(select(Transition.id).where(Transition.child_id == child_id,
                                                           Transition.destination_id == old_placement_id)))
    return sum(revoke_for_transition(deps, session, t, "placement_ended", actor) for t in ids)


def revoke(deps: ServiceDeps, transition_id: uuid.UUID, pack_id: uuid.UUID, reason: str, user: StaffView,
           actor: Actor) -> None:
    text = typed_reason(reason, asking="why you are revoking this recipient's access")
    with deps.db.transaction() as session:
        transition = session.get(Transition, transition_id)
        pack = session.get(Pack, pack_id)
        if transition is None or pack is None or pack.transition_id != transition.id:
            raise NotFoundError("pack")
        _child, access = open_child(deps, session, transition.child_id, user, actor, action=None)
        if not access.can_edit_profile:
            raise ForbiddenActionError("Only the child's social worker, their team and managers revoke access")
        revoke_by_staff(deps, session, pack, text, user, actor)


# ---- the tracking board -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackState:
    id: uuid.UUID
    version: int
    reference: str
    created_at: datetime
    expires_at: datetime
    email_status: str
    events: dict[str, datetime]
    revoked_at: datetime | None
    revoked_label: str
    revoked_reason: str
    confirmed_at: datetime | None
    confirmed_name: str
    confirmed_role: str
    information_requests: int
    now: datetime
    #: Set once the pack's files were deleted under the retention rule (R79): the board says so.
    purged_note: str = ""

    @property
    def live(self) -> bool:
        return self.revoked_at is None and self.expires_at > self.now

    @property
    def expired(self) -> bool:
        return self.revoked_at is None and self.expires_at <= self.now

    @property
    def steps(self) -> list[tuple[str, datetime | None]]:
        """Honest labels (security.md §e rule 6): a fetch may be a mail scanner; only confirmation counts."""
        labels = [("link_fetched", "Link fetched (may be automated)"), ("code_sent", "Code sent"),
                  ("verified", "Verified"), ("viewed", "Viewed"), ("downloaded", "Downloaded")]
        return [(text, self.events.get(action)) for action, text in labels if action in self.events]


@dataclass(frozen=True)
class BoardRow:
    recipient_id: uuid.UUID
    recipient_title: str
    organisation: str
    address: str
    required: bool
    due_at: datetime
    packs: list[PackState]
    #: The recipient is entitled to something that changed since their latest pack (Lesson CH1.1).
    new_version_due: bool
    can_send: bool
    #: Nothing sent yet, or the link ran out (a revoked link is not sent again by "send the remaining").
    needs_link: bool

    @property
    def latest(self) -> PackState | None:
        return self.packs[0] if self.packs else None

    @property
    def confirmed(self) -> PackState | None:
        return next((p for p in self.packs if p.confirmed_at is not None), None)

    def overdue(self, now: datetime) -> bool:
        latest = self.latest
        return self.due_at <= now and (latest is None or latest.confirmed_at is None)

    @property
    def summary(self) -> str:
        latest = self.latest
        if latest is None:
            return "Not sent" + ("" if self.can_send else ": the organisation has no mailbox")
        confirmed = self.confirmed
        parts = []
        if confirmed is not None:
            parts.append(f"v{confirmed.version} confirmed")
        if self.new_version_due:
            parts.append(f"v{latest.version + 1} pending")
        elif confirmed is None or confirmed is not latest:
            parts.append(f"v{latest.version} awaiting confirmation")
        return ", ".join(parts)


@dataclass(frozen=True)
class Board:
    rows: list[BoardRow]
    now: datetime
    stale: int
    unsent: int


def _email_status(message: OutboxMessage | None) -> str:
    if message is None:
        return "Not queued"
    return {"queued": "Email queued", "sent": "Email accepted for delivery by our mail relay",
            "failed": "Email could not be delivered"}.get(message.status, message.status)


def board(deps: ServiceDeps, session: Session, transition: Transition, child: Child) -> Board:
    now = deps.clock.now()
    versions = current_versions(session, child.id)
    packs = list(session.scalars(select(Pack).where(Pack.transition_id == transition.id)
                                 .order_by(Pack.version.desc())))
    with_packs = {p.recipient_id for p in packs}
    recipients = [r for r in session.scalars(select(TransitionRecipient).where(
        TransitionRecipient.transition_id == transition.id)
        .order_by(TransitionRecipient.created_at, TransitionRecipient.id))
        if r.removed_at is None or r.id in with_packs]  # a removed recipient's links stay on the record
    pack_ids = [p.id for p in packs]
    purged = purged_packs(session, pack_ids)
    events: dict[uuid.UUID, dict[str, datetime]] = {}
    requests: dict[uuid.UUID, int] = {}
    if pack_ids:
        for pack_id, action, at in session.execute(
                select(PackEvent.pack_id, PackEvent.action, func.max(PackEvent.at))
                .where(PackEvent.pack_id.in_(pack_ids), PackEvent.outcome == "ok")
                .group_by(PackEvent.pack_id, PackEvent.action)):
            events.setdefault(pack_id, {})[action] = at
        for pack_id, count in session.execute(
                select(InformationRequest.pack_id, func.count()).where(InformationRequest.pack_id.in_(pack_ids))
                .group_by(InformationRequest.pack_id)):
            requests[pack_id] = int(count)
    messages = {m.id: m for m in session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(
        [p.outbox_message_id for p in packs if p.outbox_message_id])))} if packs else {}
    org_ids = {r.organisation_id for r in recipients if r.organisation_id}
    orgs = {o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(org_ids)))} \
        if org_ids else {}
    rows = []
    types = deps.definitions.recipient_types
    for recipient in recipients:
        mine = [p for p in packs if p.recipient_id == recipient.id]
        states = [PackState(
            id=p.id, version=p.version, reference=p.reference, created_at=p.created_at, expires_at=p.expires_at,
            email_status=_email_status(messages.get(p.outbox_message_id) if p.outbox_message_id else None),
            events=events.get(p.id, {}), revoked_at=p.revoked_at,
            revoked_label=REVOKED_LABELS.get(p.revoked_cause or "", "Revoked"), revoked_reason=p.revoked_reason or "",
            confirmed_at=p.confirmed_at, confirmed_name=p.confirmed_name or "", confirmed_role=p.confirmed_role or "",
            information_requests=requests.get(p.id, 0), now=now,
            purged_note=retention_note(deps) if p.id in purged else "") for p in mine]
        org = orgs.get(recipient.organisation_id) if recipient.organisation_id else None
        stale = False
        if mine and mine[0].revoked_at is None and org is not None:
            stale = build(deps, session, child, transition, recipient, org, version=0, reference="",
                          versions=versions).digest != mine[0].content_digest
        rows.append(BoardRow(recipient_id=recipient.id, recipient_title=types[recipient.recipient_type].title,
                             organisation=org.name if org else "Not chosen yet",
                             address=(mine[0].address or "") if mine else (org.mailbox or "" if org else ""),
                             required=recipient.required, due_at=recipient.due_at, packs=states,
                             new_version_due=stale,
                             can_send=recipient.removed_at is None and org is not None and bool(org.mailbox),
                             needs_link=recipient.removed_at is None and needs_first_or_renewed_link(
                                 mine[0] if mine else None, now)))
    return Board(rows=rows, now=now, stale=sum(1 for r in rows if r.new_version_due),
                 unsent=sum(1 for r in rows if r.can_send and r.needs_link))


def transition_board(deps: ServiceDeps, transition_id: uuid.UUID, user: StaffView, actor: Actor) -> Board:
    with deps.db.transaction() as session:
        transition = session.get(Transition, transition_id)
        if transition is None:
            raise NotFoundError("transition")
        child, _access = open_child(deps, session, transition.child_id, user, actor, action=None)
        return board(deps, session, transition, child)


@dataclass(frozen=True)
class AccessLogRow:
    at: datetime
    version: int
    action: str
    outcome: str
    ip: str
    user_agent: str


@dataclass(frozen=True)
class AccessLog:
    child_id: uuid.UUID
    recipient_title: str
    organisation: str
    rows: list[AccessLogRow]
    requests: list[tuple[datetime, str, str, str]]


def access_log(deps: ServiceDeps, transition_id: uuid.UUID, recipient_id: uuid.UUID, user: StaffView,
               actor: Actor) -> AccessLog:
    with deps.db.transaction() as session:
        transition = session.get(Transition, transition_id)
        recipient = session.get(TransitionRecipient, recipient_id)
        if transition is None or recipient is None or recipient.transition_id != transition.id:
            raise NotFoundError("recipient")
        open_child(deps, session, transition.child_id, user, actor, action="pack.access_log_viewed")
        packs = {p.id: p for p in session.scalars(select(Pack).where(Pack.recipient_id == recipient.id))}
        rows = [AccessLogRow(at=e.at, version=packs[e.pack_id].version, action=EVENT_LABELS.get(e.action, e.action),
                             outcome=e.outcome, ip=e.ip or "", user_agent=e.user_agent or "")
                for e in session.scalars(select(PackEvent).where(PackEvent.pack_id.in_(list(packs)))
                                         .order_by(PackEvent.at.desc(), PackEvent.id.desc()).limit(1000))] \
            if packs else []
        requests = [(r.requested_at, r.requested_by or "", r.sections, r.reason or "")
                    for r in session.scalars(select(InformationRequest).where(
                        InformationRequest.pack_id.in_(list(packs))).order_by(InformationRequest.requested_at))] \
            if packs else []
        org = session.get(Organisation, recipient.organisation_id) if recipient.organisation_id else None
        return AccessLog(child_id=transition.child_id,
                         recipient_title=deps.definitions.recipient_types[recipient.recipient_type].title,
                         organisation=org.name if org else "", rows=rows, requests=requests)


def allocated_worker_email(session: Session, child: Child) -> str | None:
    worker = session.get(StaffUser, child.allocated_worker_id) if child.allocated_worker_id else None
    return worker.email if worker is not None and worker.status == "active" else None


def staff_transition_url(deps: ServiceDeps, transition_id: uuid.UUID) -> str:
    return deps.settings.app.public_base_url.rstrip("/") + f"/transitions/{transition_id}"


def staff_pack_url(deps: ServiceDeps, pack: Pack) -> str:
    """The staff page a pack was sent from: its transition, or the missing episode it was sent for."""
    if pack.transition_id is not None:
        return staff_transition_url(deps, pack.transition_id)
    return deps.settings.app.public_base_url.rstrip("/") + f"/children/{pack.child_id}/missing/{pack.episode_id}"


# ---- retention: a finished pack's files are deleted (R79) -------------------------------------------------

#: Packs purged in one transaction; the next tick carries on (the purge is idempotent).
PURGE_BATCH = 500


def retention_note(deps: ServiceDeps) -> str:
    return f"Pack deleted after {deps.settings.packs.blob_retention_days} days, per retention"


def purged_packs(session: Session, pack_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these packs had their files deleted under the retention rule."""
    if not pack_ids:
        return set()
    return set(session.scalars(select(Pack.id).join(StoredBlob, StoredBlob.id == Pack.pdf_blob_id).where(
        Pack.id.in_(pack_ids), StoredBlob.purpose == storage.PURGED)))


def purge_finished_packs(deps: ServiceDeps) -> int:
    """Delete the PDF and snapshot of every pack finished with ``blob_retention_days`` ago: confirmed (once its
    link no longer works), revoked (by staff, a reissue, a later move...) or its link expired. The pack row stays
    as the record of what was sent and to whom, its PDF password cleared; its link already refuses (it is not
    live), so the recipient sees the usual "link no longer works" page. One audit event per run, counts only."""
    now = deps.clock.now()
    cutoff = now - timedelta(days=deps.settings.packs.blob_retention_days)
    finished = ((Pack.revoked_at <= cutoff) | (Pack.expires_at <= cutoff)
                | ((Pack.confirmed_at <= cutoff) & (Pack.revoked_at.is_not(None) | (Pack.expires_at <= now))))
    with deps.db.transaction() as session:
        rows = session.execute(select(Pack.id, Pack.pdf_blob_id, Pack.snapshot_blob_id)
                               .join(StoredBlob, StoredBlob.id == Pack.pdf_blob_id)
                               .where(finished, StoredBlob.purpose != storage.PURGED)
                               .order_by(Pack.created_at).limit(PURGE_BATCH)).all()
        if not rows:
            return 0
        blobs = storage.purge_blobs(session, [b for r in rows for b in (r.pdf_blob_id, r.snapshot_blob_id)])
        session.execute(update(Pack).where(Pack.id.in_([r.id for r in rows])).values(password_enc=None)
                        .execution_options(synchronize_session=False))
        audit.record(session, deps.audit_chain, deps.clock, Actor.system("tick"), "pack.files_purged",
                     details={"count": len(rows), "blobs": blobs})
        return len(rows)
