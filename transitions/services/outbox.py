"""Email outbox: enqueue inside the caller's transaction; deliver from `tick` with retry and back-off.

Delivery is at-least-once with a stable Message-ID derived from the outbox id: if the process dies after
the SMTP server accepted a message but before it was marked sent, the retry carries the same Message-ID,
so the receiving side can recognise the duplicate. The idempotency key stops the same change from queueing
a message twice.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import smtplib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from transitions.crypto import CryptoError
from transitions.models import OutboxMessage, OutboxStatus
from transitions.services import audit
from transitions.services.deps import ServiceDeps

#: One plain address, no display name, no line breaks (the outbox adds no Bcc, ever).
ADDRESS = re.compile(r"[^@\s<>,;:\"]+@[^@\s<>,;:\"]+\.[^@\s<>,;:\"]+")


class Transport(Protocol):
    def send(self, message: EmailMessage, message_id: uuid.UUID) -> None: ...


class SmtpTransport:
    def __init__(self, host: str, port: int, *, starttls: bool, timeout: float, username: str = "",
                 password: str = "") -> None:
        self.host, self.port, self.starttls, self.timeout = host, port, starttls, timeout
        self.username, self.password = username, password

    def send(self, message: EmailMessage, message_id: uuid.UUID) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(message)


class MailboxTransport:
    """Development delivery: one .eml file per message under the instance folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: EmailMessage, message_id: uuid.UUID) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"{message_id}.eml"
        tmp = final.with_suffix(".tmp")
        tmp.write_bytes(bytes(message))
        os.replace(tmp, final)


def transport_for(deps: ServiceDeps) -> Transport:
    mail = deps.settings.mail
    if mail.transport == "mailbox":
        return MailboxTransport(deps.settings.instance_path / "mailbox")
    return SmtpTransport(mail.smtp_host, mail.smtp_port, starttls=mail.smtp_starttls,
                         timeout=mail.smtp_timeout_seconds, username=mail.smtp_username,
                         password=mail.smtp_password)


def enqueue(session: Session, now: datetime, *, to: str, subject: str, body: str, purpose: str,
            idempotency_key: str) -> OutboxMessage:
    """Queue an email in the caller's transaction. A repeated idempotency key returns the first message."""
    if not ADDRESS.fullmatch(to) or any(c in subject for c in "\r\n"):
        raise ValueError("refusing to queue an email with an invalid address or a line break in a header")
    existing = session.scalars(
        select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key)
    ).first()
    if existing is not None:
        return existing
    message = OutboxMessage(idempotency_key=idempotency_key, purpose=purpose, next_attempt_at=now, created_at=now,
                            status=OutboxStatus.QUEUED.value, attempts=0)
    message.to_address = to
    message.subject = subject
    message.body = body
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:  # a concurrent writer queued the same key first
        found = session.scalars(
            select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key)
        ).one()
        return found
    return message


def build_email(deps: ServiceDeps, message: OutboxMessage) -> EmailMessage:
    """EmailMessage refuses CR/LF in headers, so a hostile display name cannot add a Bcc (R39)."""
    email = EmailMessage()
    domain = deps.settings.mail.from_address.rpartition("@")[2] or "localhost"
    email["From"] = f"{deps.settings.app.council_name} <{deps.settings.mail.from_address}>"
    email["To"] = message.to_address or ""
    email["Subject"] = message.subject or ""
    email["Message-ID"] = f"<{message.id}@{domain}>"
    email["Date"] = format_datetime(message.created_at)
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.body or "")
    return email


@dataclass
class DeliveryReport:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def _due(deps: ServiceDeps, limit: int) -> list[uuid.UUID]:
    now = deps.clock.now()
    with deps.db.transaction() as session:
        query = (
            select(OutboxMessage.id)
            .where(OutboxMessage.status == OutboxStatus.QUEUED.value, OutboxMessage.next_attempt_at <= now,
                   or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now))
            .order_by(OutboxMessage.next_attempt_at)
            .limit(limit)
        )
        if deps.db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(session.scalars(query).all())


def _claim(deps: ServiceDeps, message_id: uuid.UUID, worker: str) -> bool:
    """Claim one message just before sending it, with a conditional UPDATE that works on both databases.

    The lease covers one send (connection, TLS, data) with room to spare, not a whole batch, so a slow
    server cannot make a lease expire while the message is still waiting its turn in this worker.
    """
    now = deps.clock.now()
    lease = now + timedelta(seconds=3 * deps.settings.mail.smtp_timeout_seconds + 60)
    with deps.db.transaction() as session:
        result = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status == OutboxStatus.QUEUED.value,
                   or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now))
            .values(claimed_by=worker, claimed_until=lease)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _build(deps: ServiceDeps, message_id: uuid.UUID) -> EmailMessage | None:
    """None when the message can never be sent (bad header, undecryptable): retrying would not help."""
    with deps.db.transaction() as session:
        message = session.get(OutboxMessage, message_id)
        assert message is not None
        try:
            return build_email(deps, message)
        except (ValueError, CryptoError):
            return None


def deliver_due(deps: ServiceDeps, transport: Transport | None = None, *, worker: str | None = None,
                limit: int | None = None) -> DeliveryReport:
    """Send every queued message whose time has come. Safe to run from several processes at once."""
    transport = transport or transport_for(deps)
    worker = worker or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    mail = deps.settings.mail
    report = DeliveryReport()
    for message_id in _due(deps, limit or mail.batch_size):
        if not _claim(deps, message_id, worker):
            continue
        report.claimed += 1
        email = _build(deps, message_id)
        error: str | None = None
        if email is None:
            error = "InvalidMessage"
        else:
            try:
                transport.send(email, message_id)
            except (OSError, smtplib.SMTPException) as exc:
                error = type(exc).__name__
        _record_attempt(deps, message_id, worker, error, permanent=email is None, report=report)
    return report


def _record_attempt(deps: ServiceDeps, message_id: uuid.UUID, worker: str, error: str | None, *,
                    permanent: bool, report: DeliveryReport) -> None:
    mail = deps.settings.mail
    with deps.db.transaction() as session:
        message = session.get(OutboxMessage, message_id, with_for_update=True)
        assert message is not None
        if message.claimed_by != worker:  # our lease ran out and another worker took over: it records
            return
        now = deps.clock.now()
        message.claimed_by = None
        message.claimed_until = None
        message.attempts += 1
        if error is None:
            message.status = OutboxStatus.SENT.value
            message.sent_at = now
            message.last_error = None
            report.sent += 1
            return
        message.last_error = error
        report.errors.append(error)
        if permanent or message.attempts >= mail.max_attempts:
            message.status = OutboxStatus.FAILED.value
            report.failed += 1
            audit.record(session, deps.audit_chain, deps.clock, audit.Actor.system("outbox"),
                         "outbox.failed", object_type="outbox_message", object_id=message.id,
                         outcome="failed", details={"attempts": message.attempts, "purpose": message.purpose})
        else:
            delay = min(mail.backoff_seconds * 2 ** (message.attempts - 1), mail.max_backoff_seconds)
            message.next_attempt_at = now + timedelta(seconds=delay)
            report.retrying += 1


@dataclass(frozen=True)
class MailboxMessage:
    id: str
    to: str
    subject: str
    date: str
    body: str


def mailbox_messages(deps: ServiceDeps) -> list[MailboxMessage]:
    """What MailboxTransport delivered (development), newest first."""
    directory = deps.settings.instance_path / "mailbox"
    found = []
    for path in sorted(directory.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True):
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = parsed.get_body(preferencelist=("plain",))
        found.append(MailboxMessage(path.stem, str(parsed["To"]), str(parsed["Subject"]), str(parsed["Date"]),
                                    body.get_content() if body else ""))
    return found


@dataclass(frozen=True)
class OutboxSummary:
    id: uuid.UUID
    purpose: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


def recent(deps: ServiceDeps, limit: int = 50) -> list[OutboxSummary]:
    with deps.db.transaction() as session:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at.desc()).limit(limit)).all()
        return [OutboxSummary(m.id, m.purpose, m.status, m.attempts, m.created_at, m.sent_at, m.last_error)
                for m in rows]
