"""Who may see and change a child's record: the one policy every child-scoped use case asks (R12, R13).

- the allocated social worker and everyone in the child's team: read and edit (sections their role edits)
- team managers: their own team's children; senior managers: every child
- CLA nurses: read every child, edit only the sections the definitions give them (HEALTH, MH)
- auditors and administrators: no child record at all (auditors see reports and the audit trail, which
  `can_view_audit` allows them for every child without opening the record)
- anyone else on staff: a typed "break-glass" reason opens the record read-only for a limited time,
  flagged in the audit trail and reported to the child's team manager.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from transitions.formdefs import SectionDef
from transitions.models import BreakGlassGrant, Child, Role
from transitions.services.accounts import StaffView


class Via(enum.StrEnum):
    ALLOCATED = "allocated"
    TEAM = "team"
    SENIOR_MANAGER = "senior_manager"
    NURSE = "cla_nurse"
    BREAK_GLASS = "break_glass"
    NONE = "none"


_EDITING = frozenset({Via.ALLOCATED, Via.TEAM, Via.SENIOR_MANAGER, Via.NURSE})


@dataclass(frozen=True)
class ChildAccess:
    via: Via
    role: Role
    break_glass_until: datetime | None = None

    @property
    def can_read(self) -> bool:
        return self.via is not Via.NONE

    @property
    def may_break_glass(self) -> bool:
        """Staff who cannot see the record may ask to, with a reason; administrators and auditors may not."""
        return self.via is Via.NONE and self.role not in (Role.ADMIN, Role.AUDITOR)

    @property
    def can_edit_profile(self) -> bool:
        return self.via in _EDITING and self.role is not Role.CLA_NURSE

    def can_edit(self, section: SectionDef) -> bool:
        return self.via in _EDITING and self.role.value in section.edited_by


def allocation_access(user: StaffView, child: Child) -> Via:
    """Access that follows from role and allocation alone (no break-glass)."""
    role = user.role
    if role in (Role.ADMIN, Role.AUDITOR):
        return Via.NONE
    if role is Role.SENIOR_MANAGER:
        return Via.SENIOR_MANAGER
    if role is Role.CLA_NURSE:
        return Via.NURSE
    if role is Role.SOCIAL_WORKER and child.allocated_worker_id == user.id:
        return Via.ALLOCATED
    if child.team_id is not None and child.team_id == user.team_id:
        return Via.TEAM
    return Via.NONE


def active_grant(session: Session, child_id: uuid.UUID, user_id: uuid.UUID, now: datetime) -> BreakGlassGrant | None:
    return session.scalars(
        select(BreakGlassGrant)
        .where(BreakGlassGrant.child_id == child_id, BreakGlassGrant.staff_id == user_id,
               BreakGlassGrant.expires_at > now)
        .order_by(BreakGlassGrant.expires_at.desc())
        .limit(1)
    ).first()


def access_to(session: Session, user: StaffView, child: Child, now: datetime) -> ChildAccess:
    via = allocation_access(user, child)
    if via is not Via.NONE or user.role in (Role.ADMIN, Role.AUDITOR):
        return ChildAccess(via, user.role)
    grant = active_grant(session, child.id, user.id, now)
    if grant is not None:
        return ChildAccess(Via.BREAK_GLASS, user.role, grant.expires_at)
    return ChildAccess(Via.NONE, user.role)


def visible_filter(user: StaffView) -> object | None:
    """A SQL condition selecting the children a user sees without break-glass; None means every child."""
    if user.role in (Role.SENIOR_MANAGER, Role.CLA_NURSE):
        return None
    if user.role in (Role.ADMIN, Role.AUDITOR):
        return Child.id.is_(None)  # no rows
    conditions = [Child.allocated_worker_id == user.id] if user.role is Role.SOCIAL_WORKER else []
    if user.team_id is not None:
        conditions.append(Child.team_id == user.team_id)
    if not conditions:
        return Child.id.is_(None)
    from sqlalchemy import or_

    return or_(*conditions)


def can_view_audit(user: StaffView, child: Child) -> bool:
    """Who reads a child's audit trail (who saw or changed what): auditors and senior managers for every child,
    team managers for their team's. It shows no content of the record, so it needs no access to it."""
    if user.role in (Role.AUDITOR, Role.SENIOR_MANAGER):
        return True
    return user.role is Role.TEAM_MANAGER and child.team_id is not None and child.team_id == user.team_id


def audit_filter(user: StaffView) -> object | None:
    """The children whose audit trail a user may read, as a SQL condition; None means every child."""
    if user.role in (Role.AUDITOR, Role.SENIOR_MANAGER):
        return None
    if user.role is Role.TEAM_MANAGER and user.team_id is not None:
        return Child.team_id == user.team_id
    return Child.id.is_(None)  # no rows
