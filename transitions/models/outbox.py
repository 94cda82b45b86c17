"""Transactional email outbox and encrypted blob storage."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from transitions.models.base import Base, EncryptedText, UTCDateTime, new_id


class OutboxStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"  # gave up after the last attempt; shown to admins
    WITHDRAWN = "withdrawn"  # a reminder or alert whose pack was confirmed or withdrawn before it went


class OutboxMessage(Base):
    """An email written in the same transaction as the change that causes it; `tick` delivers it.

    Address, subject and body are encrypted: a set-up link in a queued message is a credential.
    """

    __tablename__ = "outbox_message"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    purpose: Mapped[str] = mapped_column(String(48))
    to_address = EncryptedText()
    to_address_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    subject = EncryptedText()
    subject_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    body = EncryptedText()
    body_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.QUEUED.value, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(200))


class StoredBlob(Base):
    """An envelope-encrypted file (uploads and packs use it from issue 3 on)."""

    __tablename__ = "stored_blob"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    purpose: Mapped[str] = mapped_column(String(32))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def context(self) -> str:
        return f"blob|{self.id}|{self.purpose}"
