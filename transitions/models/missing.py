"""Missing from care (SSDA903 MISSING; Philomena Protocol): episodes with a start and an end, and the Part 2 form
recorded on the night, one timestamped entry at a time (domain.md §4.7, §5.8; SC-3).

Recording rules (903 Annex A): the start is when the child left the placement or was last seen by a
responsible adult; an "away without authorisation" (A) episode that turns into "missing" (M) is two episodes,
the end of the A being the start of the M; an episode stays open until the child returns. A child has at most
one open episode at a time (a partial unique index says so, whatever two workers press at once).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from transitions.models.base import Base, EncryptedText, UTCDateTime, new_id

#: 903 MISSING codes and what staff read (domain.md §5.8).
MISSING_CODE_LABELS = {
    "M": "Missing: whereabouts not known",
    "A": "Away without authorisation: whereabouts known",
}


class MissingEpisode(Base):
    __tablename__ = "missing_episode"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id"), index=True)
    #: "M" (missing: whereabouts not known) or "A" (away without authorisation: whereabouts known)
    code: Mapped[str] = mapped_column(String(1))
    #: When the child left the placement or was last seen by a responsible adult (903 MIS_START).
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: When the placement or the council reported it to the police (None: not reported yet).
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The police reference for the report (free text the police give: encrypted).
    police_reference = EncryptedText()
    police_reference_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: The force it was reported to: the force of the placement's area unless the worker chose another.
    police_force_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisation.id"))
    #: Where the child was living when the episode started (the force follows its area).
    placement_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisation.id"))
    #: The A episode this M episode followed (end of A = start of M).
    previous_episode_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("missing_episode.id"))
    recorded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: When the child came back or was found (903 MIS_END); None while the episode is open.
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: returned (the child came back or was found) or now_missing (an A episode that became M)
    end_cause: Mapped[str | None] = mapped_column(String(12))
    ended_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    #: Where the child was found and how they came back (free text: encrypted).
    where_found = EncryptedText()
    where_found_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_missing_episode_child_started", "child_id", "started_at"),
        # At most one open episode per child (SQLite and PostgreSQL both have partial indexes).
        Index("uq_missing_episode_open", "child_id", unique=True, sqlite_where=text("ended_at IS NULL"),
              postgresql_where=text("ended_at IS NULL")),
    )


class MissingReportEntry(Base):
    """One timestamped entry of Part 2 (clothing, where and when last seen, with whom, items taken, state of
    mind, anything else), as a JSON object encrypted whole. Entries are only ever added: a later one (a
    sighting at 1 a.m.) adds to the earlier ones, it does not overwrite them."""

    __tablename__ = "missing_report_entry"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    episode_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("missing_episode.id"), index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"))
    content = EncryptedText()
    content_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
