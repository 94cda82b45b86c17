"""The child's record: profile, versioned sections, attachments, break-glass grants; and the organisations
register that placements, hospitals and (later) recipients are picked from."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from transitions.models.base import Base, EncryptedText, UTCDateTime, new_id


class OrganisationKind(enum.StrEnum):
    PLACEMENT = "placement"
    CHILDRENS_HOME = "childrens_home"
    HOSPITAL = "hospital"
    WARD = "ward"
    CAMHS = "camhs"
    SCHOOL = "school"
    GP_PRACTICE = "gp_practice"
    LOCAL_AUTHORITY = "local_authority"
    POLICE_FORCE = "police_force"


ORGANISATION_KIND_LABELS = {
    OrganisationKind.PLACEMENT: "Placement (foster care or other)",
    OrganisationKind.CHILDRENS_HOME: "Children's home",
    OrganisationKind.HOSPITAL: "Hospital",
    OrganisationKind.WARD: "Hospital ward",
    OrganisationKind.CAMHS: "CAMHS service",
    OrganisationKind.SCHOOL: "School",
    OrganisationKind.GP_PRACTICE: "GP practice",
    OrganisationKind.LOCAL_AUTHORITY: "Local authority",
    OrganisationKind.POLICE_FORCE: "Police force",
}


class Organisation(Base):
    """A placement, home, hospital, ward, CAMHS service, school, GP practice, local authority or police force.

    Names, codes and role mailboxes are organisational, not personal. The address is encrypted: a
    placement's address next to a child is exactly what must not leak (a foster home is a family's house).
    """

    __tablename__ = "organisation"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(200))
    #: Ofsted URN, ODS code, ONS code (local authorities) or force code.
    code: Mapped[str | None] = mapped_column(String(32), index=True)
    area: Mapped[str | None] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(40))
    mailbox: Mapped[str | None] = mapped_column(String(254))
    address = EncryptedText()
    address_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: The hospital a ward belongs to.
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisation.id"))
    #: The local authority area the organisation is in (the host LA of a placement).
    local_authority_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisation.id"))
    #: For a local authority: the police force covering it.
    police_force_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisation.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("kind", "code", name="uq_organisation_kind_code"),)


class Child(Base):
    """A child looked after. Every identifying value is encrypted; allocation is plain (access needs it)."""

    __tablename__ = "child"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    legal_name = EncryptedText()
    legal_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    preferred_name = EncryptedText()
    preferred_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: One alias per line.
    aliases = EncryptedText()
    aliases_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: ISO date.
    date_of_birth = EncryptedText()
    date_of_birth_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    sex = EncryptedText()
    sex_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: Ten digits, or empty when not yet known.
    nhs_number = EncryptedText()
    nhs_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    la_child_id = EncryptedText()
    la_child_id_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    legal_status = EncryptedText()
    legal_status_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    placement_type = EncryptedText()
    placement_type_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: ISO date the current placement started.
    placement_started_on = EncryptedText()
    placement_started_on_enc: Mapped[bytes | None] = mapped_column(LargeBinary)

    responsible_la_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisation.id"))
    current_placement_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisation.id"))
    allocated_worker_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"), index=True)
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("team.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads it as given


class ChildSearchKey(Base):
    """A keyed blind index of one normalised identifier (name, surname + DOB, NHS number, local id)."""

    __tablename__ = "child_search_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    digest: Mapped[bytes] = mapped_column(LargeBinary(16))

    __table_args__ = (Index("ix_child_search_key_digest", "digest"),)


class SectionVersion(Base):
    """One saved version of one section of a child's record. Rows are only ever added, never changed,
    except that the previous version's ``is_current`` flag is cleared in the same transaction."""

    __tablename__ = "section_version"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id"), index=True)
    section_code: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer)
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    #: JSON object of field id -> value, validated against the section definition when saved.
    content = EncryptedText()
    content_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: "edit" or "review" (reviewed, no change).
    change: Mapped[str] = mapped_column(String(10))
    #: Field ids whose values changed from the previous version, comma-separated (ids only, no values).
    fields_changed: Mapped[str] = mapped_column(String(2000), default="")
    reviewed_on: Mapped[date] = mapped_column(Date)
    next_review_due: Mapped[date] = mapped_column(Date)
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"))
    author_role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    definition_digest: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("child_id", "section_code", "version", name="uq_section_version_child_section_version"),
        Index("ix_section_version_current", "child_id", "is_current"),
    )


class Attachment(Base):
    """An uploaded photo (re-encoded, metadata-free) or PDF, kept as an envelope-encrypted blob."""

    __tablename__ = "attachment"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id"), index=True)
    blob_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stored_blob.id"))
    kind: Mapped[str] = mapped_column(String(10))
    section_code: Mapped[str] = mapped_column(String(20))
    field_id: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    display_name = EncryptedText()
    display_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    uploaded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: False while only kept for an unfinished edit (then only its uploader may open it, and `tick` removes
    #: it after a while); True once a saved version refers to it (then it is kept with that version).
    in_use: Mapped[bool] = mapped_column(Boolean, default=False)


class BreakGlassGrant(Base):
    """Time-limited, read-only access to a child not allocated to the user, with the reason they typed."""

    __tablename__ = "break_glass_grant"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id"), index=True)
    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"), index=True)
    reason = EncryptedText()
    reason_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChildProfileVersion(Base):
    """A snapshot of the child's details after each change: placements, legal status and allocation keep
    their history (Finding CH3: three counties, two placements, a ward and a Tier 4 unit)."""

    __tablename__ = "child_profile_version"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    #: JSON object of label -> value as shown at the time (organisation and staff names resolved).
    content = EncryptedText()
    content_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    fields_changed: Mapped[str] = mapped_column(String(500), default="")
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    author_role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("child_id", "version", name="uq_child_profile_version_child_version"),)
