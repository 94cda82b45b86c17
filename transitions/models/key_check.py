"""Key fingerprints: which key bytes each key id stood for when first seen (R46, attack #54)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from transitions.models.base import Base, UTCDateTime


class KeyCheck(Base):
    """HMAC-SHA256(key, "cla-transitions key check v1") per purpose and key id; never the key itself. A key id
    whose bytes changed (a mistyped or swapped secret) no longer matches, and the app refuses to start."""

    __tablename__ = "key_check"

    purpose: Mapped[str] = mapped_column(String(16), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
