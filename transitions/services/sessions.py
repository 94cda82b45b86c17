"""Server-side staff sessions (R6–R9). The cookie carries a random id; the table stores only its hash."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import joinedload

from transitions.crypto import new_token, token_hash
from transitions.models import StaffSession, StaffUser
from transitions.services.accounts import StaffView, active_view
from transitions.services.deps import ServiceDeps
from transitions.services.errors import StoreUnavailableError

#: How stale last_seen may get before a request writes it again (saves a write per page view).
TOUCH_INTERVAL = timedelta(seconds=60)


@dataclass
class SessionRecord:
    data: dict[str, Any] = field(default_factory=dict)
    user_id: uuid.UUID | None = None
    authenticated_at: datetime | None = None
    #: From `load` only: the signed-in person (`accounts.active_view` of user_id, read in the same SELECT), or
    #: None when they may no longer act. Not stored.
    staff: StaffView | None = None


def new_session_id() -> str:
    return new_token()


def _expired(deps: ServiceDeps, row: StaffSession, now: datetime) -> bool:
    rules = deps.settings.session
    if row.user_id is None:
        return row.last_seen_at + timedelta(minutes=rules.anonymous_idle_minutes) <= now
    started = row.authenticated_at or row.created_at
    return (row.last_seen_at + timedelta(minutes=rules.idle_minutes) <= now
            or started + timedelta(hours=rules.absolute_hours) <= now)


def load(deps: ServiceDeps, session_id: str) -> SessionRecord | None:
    """The live session for this id, or None. Raises StoreUnavailableError when the database cannot answer."""
    try:
        return _load(deps, session_id)
    except SQLAlchemyError as exc:
        raise StoreUnavailableError() from exc


#: Built once: it runs on every request, and only the hash changes.
_SESSION_WITH_PERSON = (
    select(StaffSession, StaffUser)
    .outerjoin(StaffUser, StaffUser.id == StaffSession.user_id)
    .options(joinedload(StaffUser.team))
    .where(StaffSession.id_hash == bindparam("id_hash"))
)


def _load(deps: ServiceDeps, session_id: str) -> SessionRecord | None:
    """The session row and its person (with their team) in one SELECT and one transaction: every signed-in
    request needs both, and reading them apart cost a statement and a transaction per page."""
    now = deps.clock.now()
    with deps.db.transaction() as db:
        found = db.execute(_SESSION_WITH_PERSON, {"id_hash": token_hash(session_id)}).one_or_none()
        if found is None:
            return None
        row, user = found
        if _expired(deps, row, now):
            db.delete(row)
            return None
        if now - row.last_seen_at >= TOUCH_INTERVAL:
            row.last_seen_at = now
        return SessionRecord(data=json.loads(row.data or "{}"), user_id=row.user_id,
                             authenticated_at=row.authenticated_at,
                             staff=active_view(user) if row.user_id is not None else None)


def save(deps: ServiceDeps, session_id: str, record: SessionRecord, *, create: bool) -> bool:
    """Write a session. Only an id made in this request is inserted: an existing id is updated, and if its
    row has gone (signed out everywhere, password changed) meanwhile, nothing is written and False tells
    the caller to drop the cookie, so a request in flight cannot bring a revoked session back."""
    now = deps.clock.now()
    with deps.db.transaction() as db:
        key = token_hash(session_id)
        row = db.get(StaffSession, key, with_for_update=True)
        if row is None:
            if not create:
                return False
            row = StaffSession(id_hash=key, created_at=now)
            db.add(row)
        row.user_id = record.user_id
        row.authenticated_at = record.authenticated_at
        row.data = json.dumps(record.data, default=str)
        row.last_seen_at = now
    return True


def delete_session(deps: ServiceDeps, session_id: str) -> None:
    with deps.db.transaction() as db:
        db.execute(delete(StaffSession).where(StaffSession.id_hash == token_hash(session_id)))


def purge_expired(deps: ServiceDeps) -> int:
    now = deps.clock.now()
    rules = deps.settings.session
    with deps.db.transaction() as db:
        result = db.execute(delete(StaffSession).where(or_(
            StaffSession.last_seen_at <= now - timedelta(minutes=max(rules.idle_minutes,
                                                                     rules.anonymous_idle_minutes)),
            StaffSession.created_at <= now - timedelta(hours=rules.absolute_hours),
        )))
        return int(result.rowcount)  # type: ignore[attr-defined]
