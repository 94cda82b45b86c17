"""The audit trail: append an event in the caller's transaction; verify the HMAC chain."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from transitions.clock import Clock
from transitions.crypto import AuditChain, canonical_json
from transitions.models import AuditChainHead, AuditEvent
from transitions.services.errors import AuditChainConflictError

if TYPE_CHECKING:
    from transitions.services.deps import ServiceDeps

#: Keys allowed in an event's details. Anything else is dropped, so nobody logs a name or an address by habit.
ALLOWED_DETAIL_KEYS = frozenset({
    "role", "old_role", "new_role", "team_id", "reason_code", "count", "key_id", "rows", "blobs", "purpose",
    "attempts", "status", "target_user_id", "link_id", "message_id", "method", "path_rule", "old_team_id",
    "new_team_id", "endpoint", "via", "fields", "kind", "old_status",
    "ok", "checked", "first_broken_seq",  # an integrity check's result (audit_views.record_check)
    "pack_id", "level", "escalation_id", "task_id", "request_id", "recipient_type",  # follow-through: ids, codes
    "queued", "oldest_minutes", "failed_steps", "packs", "sent", "limit", "window_minutes",  # services.alerts
})


@dataclass(frozen=True)
class Actor:
    """Who is acting. `kind` is staff, system, anonymous or recipient; never a name or an email."""

    kind: str
    id: str | None = None
    ip: str | None = None
    user_agent: str | None = None

    @classmethod
    def system(cls, name: str = "cli") -> Actor:
        return cls(kind="system", id=name)


class _EntryFields(Protocol):
    """What the chain hashes of an event: an AuditEvent, or a row of its columns when verifying."""

    @property
    def seq(self) -> int: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def actor_kind(self) -> str: ...
    @property
    def actor_id(self) -> str | None: ...
    @property
    def action(self) -> str: ...
    @property
    def object_type(self) -> str | None: ...
    @property
    def object_id(self) -> str | None: ...
    @property
    def outcome(self) -> str: ...
    @property
    def ip(self) -> str | None: ...
    @property
    def user_agent(self) -> str | None: ...
    @property
    def details(self) -> str: ...


#: The columns verification reads: plain rows, not ORM objects (a national trail has millions of events).
_VERIFY_COLUMNS = (AuditEvent.seq, AuditEvent.occurred_at, AuditEvent.actor_kind, AuditEvent.actor_id,
                   AuditEvent.action, AuditEvent.object_type, AuditEvent.object_id, AuditEvent.outcome,
                   AuditEvent.ip, AuditEvent.user_agent, AuditEvent.details, AuditEvent.chain_hash)


def _entry(event: _EntryFields) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "occurred_at": event.occurred_at.isoformat(),
        "actor_kind": event.actor_kind,
        "actor_id": event.actor_id,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "outcome": event.outcome,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "details": event.details,
    }


def record(
    session: Session,
    chain: AuditChain,
    clock: Clock,
    actor: Actor,
    action: str,
    *,
    object_type: str | None = None,
    object_id: object | None = None,
    outcome: str = "success",
    details: Mapping[str, object] | None = None,
) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction."""
    head = session.scalars(select(AuditChainHead).where(AuditChainHead.id == 1).with_for_update()).first()
    if head is None:
        install_id = secrets.token_hex(16)
        try:
            with session.begin_nested():
                session.add(AuditChainHead(id=1, last_seq=0, last_hash=chain.genesis(install_id),
                                           install_id=install_id))
        except IntegrityError:  # the very first two events raced to start the chain
            pass
        head = session.scalars(select(AuditChainHead).where(AuditChainHead.id == 1).with_for_update()).one()
    clean = {k: v for k, v in (details or {}).items() if k in ALLOWED_DETAIL_KEYS}
    event = AuditEvent(
        seq=head.last_seq + 1,
        occurred_at=clock.now().replace(microsecond=0),
        actor_kind=actor.kind,
        actor_id=actor.id,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        outcome=outcome,
        ip=actor.ip,
        user_agent=(actor.user_agent or "")[:200] or None,
        details=json.dumps(clean, sort_keys=True, default=str),
    )
    event.chain_hash = chain.link(head.last_hash, canonical_json(_entry(event)))
    moved = session.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == 1, AuditChainHead.last_seq == event.seq - 1)
        .values(last_seq=event.seq, last_hash=event.chain_hash)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise AuditChainConflictError("audit chain head moved")
    session.expire(head)
    session.add(event)
    return event


def log_event(deps: ServiceDeps, actor: Actor, action: str, *, object_type: str | None = None,
              object_id: object | None = None, outcome: str = "success",
              details: Mapping[str, object] | None = None) -> None:
    """Record an event in a transaction of its own, for things that change nothing else (sign-out, a denial)."""
    with deps.db.transaction() as session:
        record(session, deps.audit_chain, deps.clock, actor, action, object_type=object_type, object_id=object_id,
               outcome=outcome, details=details)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    problem: str = ""
    head_seq: int = 0
    head_hash: bytes = b""

    @property
    def checkpoint(self) -> str:
        """`SEQ:HASH` of the last event: keep it outside the database (IG mailbox, WORM store, SIEM)."""
        return f"{self.head_seq}:{self.head_hash.hex()}"


def parse_checkpoint(text: str) -> tuple[int, bytes]:
    seq, _, digest = text.strip().partition(":")
    try:
        return int(seq), bytes.fromhex(digest)
    except ValueError as exc:
        raise ValueError("a checkpoint looks like 1234:<64 hex digits>") from exc


def verify(session: Session, chain: AuditChain, *, batch: int = 20000,
           checkpoint: tuple[int, bytes] | None = None, since: tuple[int, bytes] | None = None) -> ChainReport:
    """Recompute every link. Reports the first event whose hash does not follow from its predecessor.

    An edited row breaks its own link; a deleted or reordered row breaks the next one (sequence numbers
    must be consecutive); a truncated tail no longer matches the chain head; a row added after the head was
    not written by the service. Reads plain column rows in keyset batches (no ORM objects, nothing kept in the
    session), so memory stays flat however long the trail is.

    The service may be appending while a long trail is checked (PostgreSQL reads committed rows per statement):
    events up to the head read at the start are checked, then up to the head as it is when those are done, until
    it stops moving. An append commits its event and the head together, so reading the newest sequence number
    before the head can never see an event the head does not cover, unless someone wrote it without the service.

    `since` (a checkpoint kept outside the database) checks only the events after it: the event it names must
    still carry its hash, and every later link must follow. That is the hourly check of a national trail (its
    cost is the new events, not 1.6 million); edits to events before it are found by the full check, which
    should still run, say weekly.
    """
    head = session.get(AuditChainHead, 1)
    if head is None:
        count = session.scalar(select(AuditEvent.seq).limit(1))
        if count is None:
            return ChainReport(ok=True, checked=0)
        return ChainReport(ok=False, checked=0, first_broken_seq=count, problem="events exist without a chain head")
    previous = chain.genesis(head.install_id)
    expected_seq = 1
    checked = 0
    last_seen = 0
    if since is not None:
        seq, digest = since
        found = session.scalar(select(AuditEvent.chain_hash).where(AuditEvent.seq == seq))
        if found is None or found != digest:
            return ChainReport(False, 0, seq, f"event {seq} no longer matches the checkpoint it was asked to start "
                                              "from", head.last_seq, head.last_hash)
        previous, expected_seq, last_seen = digest, seq + 1, seq
    up_to = head.last_seq
    newest: int | None = None
    while True:
        rows = session.execute(
            select(*_VERIFY_COLUMNS).where(AuditEvent.seq > last_seen, AuditEvent.seq <= up_to)
            .order_by(AuditEvent.seq).limit(batch)
        ).all()
        if not rows:
            newest = session.scalar(select(func.max(AuditEvent.seq)))
            session.refresh(head)
            if head.last_seq <= up_to:
                break
            up_to = head.last_seq  # appended while we checked: check those too
            continue
        for event in rows:
            if event.seq != expected_seq:
                return ChainReport(False, checked, expected_seq, f"event {expected_seq} is missing or out of order")
            recomputed = chain.link(previous, canonical_json(_entry(event)))
            if recomputed != event.chain_hash:
                return ChainReport(False, checked, event.seq, f"event {event.seq} was altered or moved")
            previous = event.chain_hash
            expected_seq += 1
            checked += 1
            last_seen = event.seq
    if expected_seq - 1 != head.last_seq or previous != head.last_hash:
        return ChainReport(False, checked, expected_seq, "events after the last one found were removed")
    if newest is not None and newest > head.last_seq:
        return ChainReport(False, checked, head.last_seq + 1, f"event {head.last_seq + 1} is after the chain head: "
                                                              "it was not written by the service")
    if checkpoint is not None:
        # Someone with write access to the database could cut the tail and point the head at the new last
        # event without any key. Only a checkpoint kept elsewhere shows that.
        seq, digest = checkpoint
        found = session.scalar(select(AuditEvent.chain_hash).where(AuditEvent.seq == seq))
        if found is None or found != digest:
            return ChainReport(False, checked, seq, f"event {seq} no longer matches the checkpoint kept outside "
                                                    "the database", head.last_seq, head.last_hash)
    return ChainReport(ok=True, checked=checked, head_seq=head.last_seq, head_hash=head.last_hash)
