"""Handover packs: one per recipient per version, the secure link that opens it, one-time codes, recipient
sessions, the access log and requests for missing information (domain.md §4.13; security.md C3, C7, §e).

A pack row is immutable once built except for its delivery facts (revocation, confirmation). Only the
SHA-256 of a link token and of a recipient session id, and only an HMAC of a one-time code, are stored.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    Uuid,
    func,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column

from transitions.models.base import Base, EncryptedText, UTCDateTime, new_id


class LinkEpoch(Base):
    """One row per restore of a backup (R77): the current epoch is the highest. `cla-transitions after-restore`
    adds a row, so every link and recipient session stamped with an older epoch stops working (security.md #57).

    A restored database brings back its own (older) epochs and the links of that time; the bump is made on top
    of what was restored, so it is always higher than any link the restored database holds. No row: epoch 1.
    """

    __tablename__ = "link_epoch"

    epoch: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Why (from the command line: "restored the 02:00 backup after disk failure"); no personal data.
    note: Mapped[str] = mapped_column(String(200))


def current_epoch_sql() -> Any:
    """The current epoch as a SQL expression, so that a link or session row takes it in its own INSERT: no code
    path that creates one can forget it."""
    return select(func.coalesce(func.max(LinkEpoch.epoch), 1)).scalar_subquery()


class Pack(Base):
    __tablename__ = "pack"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id"), index=True)
    #: A pack is sent either for a transition, to one of its recipients, or for a missing episode, to the police
    #: force it was reported to (domain.md §3.3 row 10): exactly one of the two is set.
    transition_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("transition.id"), index=True)
    recipient_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("transition_recipient.id"), index=True)
    episode_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("missing_episode.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    #: A neutral reference with no name in it ("HP-7K3D9Q"); the file name and the email use it.
    reference: Mapped[str] = mapped_column(String(24))
    recipient_type: Mapped[str] = mapped_column(String(40))
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisation.id"))
    #: The one address this link is bound to (codes go only here).
    address = EncryptedText()
    address_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    #: The restore epoch the link was issued in: a link from before the latest restore is unknown (404).
    epoch: Mapped[int] = mapped_column(Integer, default=current_epoch_sql(), server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    #: staff, reissued, superseded, placement_ended, cancelled, force_changed (an episode passed to another force)
    revoked_cause: Mapped[str | None] = mapped_column(String(20))
    revoked_reason = EncryptedText()
    revoked_reason_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: The AES-256 (R6) PDF, itself stored envelope-encrypted.
    pdf_blob_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stored_blob.id"))
    #: What was shared, as JSON (the recipient's HTML page shows exactly this, not today's record).
    snapshot_blob_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stored_blob.id"))
    #: The PDF's password: shown only to the verified recipient, never emailed with the link.
    password = EncryptedText()
    password_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: "ID@3,PHOTO@2,...": the section versions the pack was built from.
    section_versions: Mapped[str] = mapped_column(String(400))
    #: SHA-256 of what this recipient was entitled to see; a later difference means a new version is due.
    content_digest: Mapped[str] = mapped_column(String(64))
    definition_digest: Mapped[str] = mapped_column(String(64))
    page_count: Mapped[int] = mapped_column(Integer)
    outbox_message_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("outbox_message.id"))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_name = EncryptedText()
    confirmed_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    confirmed_role = EncryptedText()
    confirmed_role_enc: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (
        UniqueConstraint("recipient_id", "version", name="uq_pack_recipient_version"),
        UniqueConstraint("episode_id", "version", name="uq_pack_episode_version"),
        CheckConstraint("(transition_id IS NULL) <> (episode_id IS NULL)", name="transition_or_episode"),
    )


class PackCode(Base):
    """A 6-digit code sent to the bound address: HMAC only, 10 minutes, 5 wrong tries void it (R20)."""

    __tablename__ = "pack_code"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    pack_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pack.id"), index=True)
    code_mac: Mapped[bytes] = mapped_column(LargeBinary(32))
    key_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    wrong_attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    voided: Mapped[bool] = mapped_column(Boolean, default=False)


class RecipientSession(Base):
    """A verified recipient's session, for one pack only (R24). The cookie holds the id; this its hash."""

    __tablename__ = "recipient_session"

    id_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    pack_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pack.id"), index=True)
    #: The restore epoch the session was opened in (as Pack.epoch).
    epoch: Mapped[int] = mapped_column(Integer, default=current_epoch_sql(), server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PackEvent(Base):
    """The access log of one pack: every attempt, successful or not (domain.md §4.13, Egress-style)."""

    __tablename__ = "pack_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pack_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pack.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ix_pack_event_pack_action", "pack_id", "action", "at"),)


class InformationRequest(Base):
    """A recipient's request for missing information (Lesson CH6.1): which sections, and why."""

    __tablename__ = "information_request"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    pack_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pack.id"), index=True)
    sections: Mapped[str] = mapped_column(String(300))
    requested_by = EncryptedText()
    requested_by_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    reason = EncryptedText()
    reason_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    #: What was done (a new version sent, a phone call), by the member of staff who answered.
    answer = EncryptedText()
    answer_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
