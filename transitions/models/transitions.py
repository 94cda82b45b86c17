"""Transitions (moves and admissions), their recipients, section overrides, approvals, crisis flags and tasks."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, Numeric, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from transitions.models.base import Base, EncryptedText, UTCDateTime, new_id


class TransitionStatus(enum.StrEnum):
    DRAFT = "draft"
    READY = "ready"
    APPROVED = "approved"
    SENT = "sent"
    COMPLETE = "complete"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"


ACTIVE_STATUSES = frozenset({TransitionStatus.DRAFT, TransitionStatus.READY, TransitionStatus.APPROVED,
                             TransitionStatus.SENT})


class Transition(Base):
    """One move or admission of one child. The facts derived when it was created are kept with it, so the
    checklist shows why each recipient is there ("out of area: the placement is in Cumberland")."""

    __tablename__ = "transition"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12), default=TransitionStatus.DRAFT.value)
    urgency: Mapped[str] = mapped_column(String(10))
    origin_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisation.id"))
    destination_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisation.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    #: SSDA903 reason for placement change (REASON_PLACE_CHANGE), for moves.
    reason_code: Mapped[str | None] = mapped_column(String(8))
    out_of_area: Mapped[bool | None] = mapped_column(Boolean)
    at_a_distance: Mapped[bool | None] = mapped_column(Boolean)
    host_la_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisation.id"))
    host_police_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisation.id"))
    childrens_home: Mapped[bool] = mapped_column(Boolean, default=False)
    exploitation_risk: Mapped[bool] = mapped_column(Boolean, default=False)
    open_to_camhs: Mapped[bool] = mapped_column(Boolean, default=False)
    school_age: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Why an emergency move went ahead before its approvals (they are then due retrospectively).
    emergency_reason = EncryptedText()
    emergency_reason_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: Tier 4: miles between the unit and the placement the child will return to (Lesson CH3.3).
    distance_miles: Mapped[float | None] = mapped_column(Numeric(6, 1, asdecimal=False))
    cancelled_reason = EncryptedText()
    cancelled_reason_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    superseded_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("transition.id"))
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    definition_digest: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads it as given


class TransitionRecipient(Base):
    __tablename__ = "transition_recipient"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    transition_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("transition.id"), index=True)
    recipient_type: Mapped[str] = mapped_column(String(40))
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisation.id"))
    required: Mapped[bool] = mapped_column(Boolean)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The rule that put it there ("out_of_area", "always") or "added" by a person.
    condition: Mapped[str] = mapped_column(String(24))
    basis: Mapped[str] = mapped_column(String(200), default="")
    added_reason = EncryptedText()
    added_reason_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    removed_reason = EncryptedText()
    removed_reason_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: Set when the transition is superseded: the packs issue revokes this recipient's link.
    revoke_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SectionOverride(Base):
    """A blocking gap a manager allowed, with the reason (Lesson CH6.2); reports list these."""

    __tablename__ = "section_override"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    transition_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("transition.id"), index=True)
    section_code: Mapped[str] = mapped_column(String(20))
    reason = EncryptedText()
    reason_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"))
    by_role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TransitionApproval(Base):
    """An approval decision or a recorded notice/consultation of the host area (reg 11; Lesson CH4.1)."""

    __tablename__ = "transition_approval"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    transition_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("transition.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    #: approved, refused, notified or consulted
    outcome: Mapped[str] = mapped_column(String(12))
    #: Who in the host area was notified or consulted, and what they said (free text: encrypted).
    person = EncryptedText()
    person_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    answer = EncryptedText()
    answer_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    recorded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"))
    recorded_role: Mapped[str] = mapped_column(String(20))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Recorded after the move (an emergency that went ahead first).
    retrospective: Mapped[bool] = mapped_column(Boolean, default=False)


class CrisisFlag(Base):
    """Too many moves or admissions, or no onward placement after an admission (Lesson CH6.3)."""

    __tablename__ = "crisis_flag"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id"), index=True)
    reason: Mapped[str] = mapped_column(String(30))
    count: Mapped[int] = mapped_column(Integer, default=0)
    transition_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("transition.id"))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    note = EncryptedText()
    note_enc: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (Index("ix_crisis_flag_open", "child_id", "acknowledged_at"),)


class Task(Base):
    """Work someone must do by a time: a senior manager's planning meeting, the nurse's health plan update."""

    __tablename__ = "task"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id"), index=True)
    transition_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("transition.id"))
    crisis_flag_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("crisis_flag.id"))
    kind: Mapped[str] = mapped_column(String(30))
    assigned_role: Mapped[str] = mapped_column(String(20))
    #: A named person (the allocated worker answering a request); otherwise anyone in the role (and team).
    assigned_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"), index=True)
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("team.id"))
    #: What the task is about, by kind: an information request, a missing episode (ids, never text).
    subject_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    #: For a chase task, the field still "not known" ("HEALTH.gp_name"); a field id, never its value.
    field_ref: Mapped[str | None] = mapped_column(String(80))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: open, done or cancelled
    status: Mapped[str] = mapped_column(String(10), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    note = EncryptedText()
    note_enc: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("ix_task_open_due", "status", "due_at"),
        #: "Your work" and the home page's count (`tasks._mine`): a person's open tasks, and a role's in a team,
        #: each one index search rather than a read of every open task in the service.
        Index("ix_task_open_user", "status", "assigned_user_id"),
        Index("ix_task_open_role_team", "status", "assigned_role", "team_id"),
        #: A child's open tasks of a kind (the child's page asks for "share again after a return"; opening and
        #: closing tasks look them up the same way).
        Index("ix_task_child_kind_status", "child_id", "kind", "status"),
    )
