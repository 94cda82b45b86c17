"""Staff accounts, teams, server-side sessions, sign-in throttling and one-time set-up links."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from transitions.models.base import Base, EncryptedText, UTCDateTime, new_id


class Role(enum.StrEnum):
    SOCIAL_WORKER = "social_worker"
    CLA_NURSE = "cla_nurse"
    TEAM_MANAGER = "team_manager"
    SENIOR_MANAGER = "senior_manager"
    ADMIN = "admin"
    AUDITOR = "auditor"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.SOCIAL_WORKER: "Social worker",
    Role.CLA_NURSE: "CLA nurse",
    Role.TEAM_MANAGER: "Team manager",
    Role.SENIOR_MANAGER: "Senior manager",
    Role.ADMIN: "Administrator",
    Role.AUDITOR: "Auditor (read only)",
}


class AccountStatus(enum.StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    DISABLED = "disabled"


class Team(Base):
    __tablename__ = "team"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    members: Mapped[list[StaffUser]] = relationship(back_populates="team")


class StaffUser(Base):
    __tablename__ = "staff_user"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    email = EncryptedText(index_kind="staff-email")
    email_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    email_index: Mapped[bytes | None] = mapped_column(LargeBinary(16), unique=True)
    display_name = EncryptedText()
    display_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    role: Mapped[str] = mapped_column(String(32))
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("team.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=AccountStatus.INVITED.value)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_secret = EncryptedText()
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: The authenticator secret shown during enrolment, kept apart until a code from it is confirmed.
    totp_pending_secret = EncryptedText()
    totp_pending_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: Highest TOTP time step accepted so far: a code is single-use (R4).
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    team: Mapped[Team | None] = relationship(back_populates="members")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads it as given

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    @property
    def is_active(self) -> bool:
        return self.status == AccountStatus.ACTIVE.value



class StaffSession(Base):
    """A server-side session. The cookie holds a random id; only its SHA-256 is stored (R6)."""

    __tablename__ = "staff_session"

    id_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"), index=True)
    #: Flash messages may name people, so session data is encrypted like any other personal field.
    data = EncryptedText()
    data_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    authenticated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SignInThrottle(Base):
    """Failed sign-in attempts per account key (a blind index of the email, so unknown emails count too).

    Kept in the database so the limit holds across several app instances.
    """

    __tablename__ = "sign_in_throttle"

    account_key: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SetupLink(Base):
    """A one-time link to set a password and authenticator. Only the token's hash is stored."""

    __tablename__ = "setup_link"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))

    user: Mapped[StaffUser] = relationship(foreign_keys=[user_id])
