"""Sections of a child's record: every save is a new version; nothing is ever overwritten or lost.

Uploads are checked before anything is stored (photos re-encoded without metadata, PDFs opened in a
separate limited process). A checked upload is stored at once, so when another answer on the same page
is wrong the person does not have to choose the file again: the page keeps a reference to it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from transitions.formdefs import FieldDef, SectionDef
from transitions.models import Attachment, Child, Role, SectionVersion, StaffUser, StoredBlob
from transitions.services import audit, storage, tasks
from transitions.services.accounts import StaffView
from transitions.services.audit import Actor
from transitions.services.children import current_versions, open_child
from transitions.services.deps import ServiceDeps
from transitions.services.errors import (
    EditConflictError,
    ForbiddenActionError,
    NotFoundError,
    SectionInvalidError,
)
from transitions.services.values import (
    ENTRIES,
    Change,
    FieldInput,
    changed_field_ids,
    check_fields,
    differences,
    display,
)
from transitions.uploads import UploadRejectedError, check_pdf, clean_photo, safe_display_name

#: A kept upload may be used to finish the same edit within this time.
KEPT_UPLOAD_HOURS = 12


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


@dataclass(frozen=True)
class SectionState:
    section: SectionDef
    version: int | None
    content: dict[str, Any]
    reviewed_on: date | None
    next_review_due: date | None
    can_edit: bool
    #: On the exploitation plan: contacts marked "associate of concern" (names and relationships), so the
    #: plan and the contacts list cannot drift apart (Lesson CH4.1).
    associates_of_concern: tuple[tuple[str, str], ...] = ()

    def value(self, f: FieldDef, entry: Mapping[str, Any] | None = None) -> str:
        return display(f, (entry if entry is not None else self.content).get(f.id))

    @property
    def entries(self) -> list[dict[str, Any]]:
        return list(self.content.get(ENTRIES, []) or [])

    def entry(self, entry_id: str) -> dict[str, Any] | None:
        return next((e for e in self.entries if e.get("id") == entry_id), None)


def _section(deps: ServiceDeps, code: str) -> SectionDef:
    section = deps.definitions.sections.get(code)
    if section is None:
        raise NotFoundError("section")
    return section


def section_state(deps: ServiceDeps, child_id: uuid.UUID, code: str, user: StaffView, actor: Actor, *,
                  for_edit: bool = False) -> SectionState:
    section = _section(deps, code)
    with deps.db.transaction() as session:
        _child, access = open_child(deps, session, child_id, user, actor,
                               action="section.edit_opened" if for_edit else "section.viewed",
                               details={"purpose": code})
        if for_edit and not access.can_edit(section):
            raise ForbiddenActionError(_not_editable(section))
        versions = current_versions(session, child_id)
        current = versions.get(code)
        return SectionState(section=section, version=current.version if current else None,
                            content=json.loads(current.content or "{}") if current else {},
                            reviewed_on=current.reviewed_on if current else None,
                            next_review_due=current.next_review_due if current else None,
                            can_edit=access.can_edit(section),
                            associates_of_concern=_associates(versions.get("CONTACTS")) if code == "EXPL" else ())


def _associates(contacts: SectionVersion | None) -> tuple[tuple[str, str], ...]:
    entries = json.loads(contacts.content or "{}").get(ENTRIES, []) if contacts else []
    return tuple((str(e.get("name") or ""), str(e.get("relationship") or "")) for e in entries
                 if e.get("is_associate_of_concern") == "yes")


def _not_editable(section: SectionDef) -> str:
    roles = ", ".join(sorted(Role(r).label.lower() + "s" for r in section.edited_by))
    return f"Only {roles} can change the {section.title.lower()} section"


# ---- uploads ----------------------------------------------------------------------------------------------


def _check_upload(deps: ServiceDeps, f: FieldDef, upload: Upload) -> tuple[bytes, str]:
    record = deps.settings.record
    if f.type == "photo":
        photo = clean_photo(upload.data, max_bytes=record.photo_max_bytes, max_pixels=record.photo_max_pixels)
        return photo.data, photo.media_type
    pdf = check_pdf(upload.data, max_bytes=record.document_max_bytes, timeout_seconds=record.pdf_check_seconds)
    return pdf.data, "application/pdf"


def store_attachment(deps: ServiceDeps, session: Session, child_id: uuid.UUID, section: SectionDef, f: FieldDef,
           data: bytes, media_type: str, filename: str, user: StaffView, actor: Actor) -> dict[str, str]:
    now = deps.clock.now()
    blob = storage.store_blob(deps, session, f"attachment-{f.type}", media_type, data)
    name = safe_display_name(filename, default="photo.jpg" if f.type == "photo" else "document.pdf")
    # The stored type decides the name's extension, never the uploader: a photo is a JPEG now, and a
    # document is a PDF (so a download cannot be opened as .html or .hta whatever it was called).
    name = name.rsplit(".", 1)[0] + (".jpg" if f.type == "photo" else ".pdf")
    attachment = Attachment(id=uuid.uuid4(), child_id=child_id, blob_id=blob.id, kind=f.type,
                            section_code=section.code, field_id=f.id, media_type=media_type, size=len(data),
                            uploaded_by=user.id, created_at=now, in_use=False)
    attachment.display_name = name
    session.flush()  # the blob row first: the attachment's foreign key points at it
    session.add(attachment)
    audit.record(session, deps.audit_chain, deps.clock, actor, "attachment.uploaded", object_type="attachment",
                 object_id=attachment.id, details={"purpose": f"{section.code}.{f.id}", "count": len(data)})
    return {"attachment": str(attachment.id), "name": name}


def _kept(session: Session, child_id: uuid.UUID, section: SectionDef, kept: Mapping[str, str], user: StaffView,
          now: datetime) -> dict[str, dict[str, str]]:
    """Uploads from an earlier attempt at this edit, accepted only if they are this person's, for this field."""
    found: dict[str, dict[str, str]] = {}
    for field_id, raw_id in kept.items():
        try:
            attachment = session.get(Attachment, uuid.UUID(raw_id))
        except ValueError:
            continue
        if (attachment is not None and attachment.child_id == child_id and attachment.section_code == section.code
                and attachment.field_id == field_id and attachment.uploaded_by == user.id
                and attachment.created_at > now - timedelta(hours=KEPT_UPLOAD_HOURS)):
            found[field_id] = {"attachment": str(attachment.id), "name": attachment.display_name or ""}
    return found


def _receive_uploads(deps: ServiceDeps, child_id: uuid.UUID, section: SectionDef, files: Mapping[str, Upload],
                     kept: Mapping[str, str], user: StaffView, actor: Actor
                     ) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Check new files (outside any transaction: it can take seconds), store those that pass, resolve kept ones."""
    checked: dict[str, tuple[bytes, str, str]] = {}
    errors: dict[str, str] = {}
    for f in section.fields:
        upload = files.get(f.id)
        if not f.is_upload or upload is None or not upload.data:
            continue
        try:
            data, media_type = _check_upload(deps, f, upload)
        except UploadRejectedError as exc:
            errors[f.id] = exc.message
        else:
            checked[f.id] = (data, media_type, upload.filename)
    with deps.db.transaction() as session:
        refs = _kept(session, child_id, section, {k: v for k, v in kept.items() if k not in errors}, user,
                     deps.clock.now())
        for field_id, (data, media_type, filename) in checked.items():
            refs[field_id] = store_attachment(deps, session, child_id, section, section.field(field_id), data,
                                              media_type, filename, user, actor)
    return refs, errors


# ---- saving -----------------------------------------------------------------------------------------------


def add_version(deps: ServiceDeps, session: Session, child: Child, section: SectionDef, content: dict[str, Any],
                 previous: SectionVersion | None, change: str, user: StaffView, actor: Actor) -> SectionVersion:
    now = deps.clock.now()
    today = now.date()
    old = json.loads(previous.content or "{}") if previous else {}
    changed = changed_field_ids(section, old, content)
    if previous is not None:
        session.execute(update(SectionVersion).where(SectionVersion.id == previous.id)
                        .values(is_current=False).execution_options(synchronize_session=False))
    version = SectionVersion(
        id=uuid.uuid4(), child_id=child.id, section_code=section.code,
        version=(previous.version if previous else 0) + 1,
        is_current=True, change=change, fields_changed=",".join(changed)[:2000], reviewed_on=today,
        next_review_due=today + timedelta(days=section.review_interval_days), author_id=user.id,
        author_role=user.role.value, created_at=now, definition_digest=deps.definitions.digest,
    )
    version.content = json.dumps(content, sort_keys=True, ensure_ascii=False)
    session.add(version)
    used = [uuid.UUID(v["attachment"]) for v in content.values() if isinstance(v, dict) and "attachment" in v]
    if used:
        session.execute(update(Attachment).where(Attachment.id.in_(used), Attachment.child_id == child.id)
                        .values(in_use=True).execution_options(synchronize_session=False))
    try:
        session.flush()
    except IntegrityError as exc:  # another save of the same section won the race for this version number
        raise EditConflictError(version.version - 1) from exc
    tasks.after_section_saved(session, deps, child, section, content, user)
    action = "section.reviewed" if change == "review" else "section.saved"
    audit.record(session, deps.audit_chain, deps.clock, actor, action, object_type="child", object_id=child.id,
                 details={"purpose": section.code, "count": version.version, "fields": ",".join(changed)})
    return version


def _editable(deps: ServiceDeps, session: Session, child_id: uuid.UUID, section: SectionDef, user: StaffView,
              actor: Actor) -> tuple[Child, SectionVersion | None]:
    child, access = open_child(deps, session, child_id, user, actor, action=None)
    if not access.can_edit(section):
        raise ForbiddenActionError(_not_editable(section))
    return child, current_versions(session, child_id).get(section.code)


def save_section(deps: ServiceDeps, child_id: uuid.UUID, code: str, given: Mapping[str, FieldInput],
                 files: Mapping[str, Upload], kept: Mapping[str, str], base_version: int | None, user: StaffView,
                 actor: Actor) -> int:
    """Save the section's own fields as a new version (entries, if any, are carried over unchanged)."""
    section = _section(deps, code)
    with deps.db.transaction() as session:
        _editable(deps, session, child_id, section, user, actor)
    refs, upload_errors = _receive_uploads(deps, child_id, section, files, kept, user, actor)
    merged = {k: FieldInput(v.value, v.not_known, v.date_invalid, refs.get(k)) for k, v in given.items()}
    for field_id, ref in refs.items():
        merged.setdefault(field_id, FieldInput(upload=ref))
    with deps.db.transaction() as session:
        child, current = _editable(deps, session, child_id, section, user, actor)
        if (current.version if current else None) != base_version:
            raise EditConflictError(current.version if current else 0, refs)
        previous = json.loads(current.content or "{}") if current else {}
        content, errors = check_fields(section.fields, merged, previous, deps.clock.now().date())
        errors = {**errors, **upload_errors}
        if errors:
            raise SectionInvalidError(errors, refs)
        if section.entry is not None:
            content[ENTRIES] = previous.get(ENTRIES, [])
        return add_version(deps, session, child, section, content, current, "edit", user, actor).version


def save_entry(deps: ServiceDeps, child_id: uuid.UUID, code: str, entry_id: str | None,
               given: Mapping[str, FieldInput], base_version: int | None, user: StaffView, actor: Actor) -> str:
    """Add or change one repeatable entry (a contact); the section gets a new version."""
    section = _section(deps, code)
    if section.entry is None:
        raise NotFoundError("entry")
    with deps.db.transaction() as session:
        child, current = _editable(deps, session, child_id, section, user, actor)
        if (current.version if current else None) != base_version:
            raise EditConflictError(current.version if current else 0)
        previous = json.loads(current.content or "{}") if current else {}
        entries: list[dict[str, Any]] = list(previous.get(ENTRIES, []) or [])
        existing = next((e for e in entries if e.get("id") == entry_id), None) if entry_id else None
        if entry_id and existing is None:
            raise NotFoundError("entry")
        values, errors = check_fields(section.entry.fields, given, existing or {}, deps.clock.now().date())
        if errors:
            raise SectionInvalidError(errors)
        new_id = entry_id or uuid.uuid4().hex
        entry = {"id": new_id, **values}
        entries = [entry if e.get("id") == new_id else e for e in entries] if existing else [*entries, entry]
        content = {k: v for k, v in previous.items() if k != ENTRIES}
        content[ENTRIES] = entries
        add_version(deps, session, child, section, content, current, "edit", user, actor)
        return new_id


def remove_entry(deps: ServiceDeps, child_id: uuid.UUID, code: str, entry_id: str, base_version: int | None,
                 user: StaffView, actor: Actor) -> None:
    section = _section(deps, code)
    with deps.db.transaction() as session:
        child, current = _editable(deps, session, child_id, section, user, actor)
        if current is None or current.version != base_version:
            raise EditConflictError(current.version if current else 0)
        previous = json.loads(current.content or "{}")
        entries = [e for e in previous.get(ENTRIES, []) or [] if e.get("id") != entry_id]
        if len(entries) == len(previous.get(ENTRIES, []) or []):
            raise NotFoundError("entry")
        add_version(deps, session, child, section, {**previous, ENTRIES: entries}, current, "edit", user, actor)


def review_unchanged(deps: ServiceDeps, child_id: uuid.UUID, code: str, base_version: int, user: StaffView,
                     actor: Actor) -> int:
    """'Reviewed, no change': a new version with the same content and a fresh review date (Lesson CH2.1)."""
    section = _section(deps, code)
    with deps.db.transaction() as session:
        child, current = _editable(deps, session, child_id, section, user, actor)
        if current is None:
            raise ForbiddenActionError("There is nothing to review yet: complete the section first")
        if current.version != base_version:
            raise EditConflictError(current.version)
        content = json.loads(current.content or "{}")
        return add_version(deps, session, child, section, content, current, "review", user, actor).version


# ---- history ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionSummary:
    version: int
    change: str
    author: str
    author_role: str
    saved_at: datetime
    reviewed_on: date
    next_review_due: date
    fields_changed: list[str]


@dataclass(frozen=True)
class History:
    section: SectionDef
    versions: list[VersionSummary]
    compared: tuple[int, int] | None
    changes: list[Change]


def history(deps: ServiceDeps, child_id: uuid.UUID, code: str, compare: tuple[int, int] | None, user: StaffView,
            actor: Actor) -> History:
    section = _section(deps, code)
    labels = {f.id: f.label for f in section.fields} | {ENTRIES: section.entry.plural.capitalize()
                                                        if section.entry else ENTRIES}
    with deps.db.transaction() as session:
        open_child(deps, session, child_id, user, actor, action="section.history_viewed", details={"purpose": code})
        rows = session.execute(
            select(SectionVersion, StaffUser).join(StaffUser, StaffUser.id == SectionVersion.author_id)
            .where(SectionVersion.child_id == child_id, SectionVersion.section_code == code)
            .order_by(SectionVersion.version.desc())
        ).all()
        versions = [VersionSummary(version=v.version, change=v.change, author=u.display_name or "",
                                   author_role=Role(v.author_role).label, saved_at=v.created_at,
                                   reviewed_on=v.reviewed_on, next_review_due=v.next_review_due,
                                   fields_changed=[labels.get(i, i) for i in v.fields_changed.split(",") if i])
                    for v, u in rows]
        changes: list[Change] = []
        if compare is None and len(rows) >= 2:
            compare = (rows[1][0].version, rows[0][0].version)
        if compare is not None:
            by_number = {v.version: v for v, _ in rows}
            old, new = by_number.get(compare[0]), by_number.get(compare[1])
            if old is None or new is None:
                raise NotFoundError("version")
            changes = differences(section, json.loads(old.content or "{}"), json.loads(new.content or "{}"))
        return History(section=section, versions=versions, compared=compare, changes=changes)


# ---- files ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileContent:
    data: bytes
    media_type: str
    name: str
    kind: str


def read_attachment(deps: ServiceDeps, child_id: uuid.UUID, attachment_id: uuid.UUID, user: StaffView,
                    actor: Actor) -> FileContent:
    with deps.db.transaction() as session:
        attachment = session.get(Attachment, attachment_id)
        if attachment is None or attachment.child_id != child_id or (
                not attachment.in_use and attachment.uploaded_by != user.id):
            raise NotFoundError("attachment")
        open_child(deps, session, child_id, user, actor, action="attachment.viewed",
              details={"purpose": f"{attachment.section_code}.{attachment.field_id}"})
        blob = session.get(StoredBlob, attachment.blob_id)
        if blob is None:
            raise NotFoundError("attachment")
        data = deps.blob_cipher.decrypt(blob.ciphertext, context=blob.context)
        return FileContent(data=data, media_type=attachment.media_type, name=attachment.display_name or "file",
                           kind=attachment.kind)


def purge_unused_uploads(deps: ServiceDeps) -> int:
    """Remove uploads kept for an edit that was never finished (no saved version refers to them)."""
    cutoff = deps.clock.now() - timedelta(hours=KEPT_UPLOAD_HOURS)
    with deps.db.transaction() as session:
        stale = list(session.scalars(select(Attachment).where(Attachment.in_use.is_(False),
                                                              Attachment.created_at < cutoff)))
        for attachment in stale:
            blob_id = attachment.blob_id
            session.delete(attachment)
            session.flush()
            session.execute(delete(StoredBlob).where(StoredBlob.id == blob_id))
        if stale:
            audit.record(session, deps.audit_chain, deps.clock, Actor.system("tick"), "attachment.purged",
                         details={"count": len(stale)})
        return len(stale)
