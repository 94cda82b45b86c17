"""Follow-through (Lesson CH6.2): every reminder or alert slot of a pack, claimed once, and the escalations that
managers acknowledge and resolve.

A slot row is the claim: `(pack_id, slot)` is unique, so however many `tick` processes run at once, one inserts
the row (and queues its email in the same transaction) and the others skip it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from transitions.models.base import Base, EncryptedText, UTCDateTime, new_id

#: The slots of one unconfirmed pack, in the order they fall due.
SLOTS = ("remind_before", "remind_due", "social_worker", "team_manager", "senior_manager")
#: The slots that raise an escalation (the others remind the recipient).
ESCALATION_LEVELS = ("social_worker", "team_manager", "senior_manager")


class FollowUpSlot(Base):
    __tablename__ = "follow_up_slot"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    pack_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pack.id"), index=True)
    slot: Mapped[str] = mapped_column(String(20))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The number of emails queued for it (0 when nobody could be told, which the escalation then shows).
    messages: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (UniqueConstraint("pack_id", "slot", name="uq_follow_up_slot"),)


class EscalationStatus:
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Escalation(Base):
    """A recipient's confirmation is late: shown to the social worker, then the team manager, then a senior
    manager, each of whom acknowledges (and may resolve) it with a note."""

    __tablename__ = "escalation"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id"), index=True)
    transition_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("transition.id"), index=True)
    pack_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pack.id"), index=True)
    #: The child's team when it was raised (a team manager sees their own team's).
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("team.id"))
    #: The slot that raised it: social_worker, team_manager or senior_manager
    level: Mapped[str] = mapped_column(String(20))
    #: Who answers for it: the slot's role, or the next one up when nobody holds it (no worker allocated, no
    #: team manager); dashboards and permissions read this, so an alert passed up is on someone's page.
    addressed_role: Mapped[str] = mapped_column(String(20))
    confirmation_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(14), default=EscalationStatus.OPEN)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    acknowledged_note = EncryptedText()
    acknowledged_note_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    #: staff (with a note), confirmed (the recipient confirmed), closed (the link was revoked or replaced)
    resolved_cause: Mapped[str | None] = mapped_column(String(12))
    resolved_note = EncryptedText()
    resolved_note_enc: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (UniqueConstraint("pack_id", "level", name="uq_escalation_pack_level"),
                      Index("ix_escalation_status_level", "status", "level"))
