"""Outbox delivery to a real SMTP server: retry with back-off, never lost, never duplicated."""

from __future__ import annotations

import contextlib
import socket

import pytest
from sqlalchemy import text

from transitions.services import outbox
from transitions.services.outbox import SmtpTransport


def _queue(deps, key="k1", to="ward@nhs.example"):
    with deps.db.transaction() as session:
        outbox.enqueue(session, deps.clock.now(), to=to, subject="A secure link from Example Council",
                       body="Body", purpose="test", idempotency_key=key)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_same_idempotency_key_queues_once(deps, smtp_server):
    _queue(deps)
    _queue(deps)
    assert outbox.deliver_due(deps).sent == 1
    assert len(smtp_server.wait_for(1)) == 1
    assert outbox.deliver_due(deps).claimed == 0


def test_smtp_outage_retries_with_backoff_then_delivers(deps, clock, smtp_server):
    _queue(deps)
    down = SmtpTransport("127.0.0.1", _closed_port(), starttls=False, timeout=2)
    report = outbox.deliver_due(deps, down)
    assert (report.sent, report.retrying) == (0, 1)
    assert report.errors == ["ConnectionRefusedError"]
    assert outbox.deliver_due(deps).claimed == 0  # not due yet: backing off
    clock.advance(seconds=deps.settings.mail.backoff_seconds + 1)
    assert outbox.deliver_due(deps).sent == 1
    assert len(smtp_server.wait_for(1)) == 1


def test_gives_up_after_max_attempts_and_audits(deps, clock):
    _queue(deps)
    down = SmtpTransport("127.0.0.1", _closed_port(), starttls=False, timeout=2)
    for _ in range(deps.settings.mail.max_attempts):
        outbox.deliver_due(deps, down)
        clock.advance(hours=2)
    with deps.db.engine.connect() as conn:
        status = conn.execute(text("SELECT status FROM outbox_message")).scalar_one()
        audited = conn.execute(text("SELECT count(*) FROM audit_event WHERE action = 'outbox.failed'")).scalar()
    assert status == "failed" and audited == 1


def test_crash_after_smtp_accept_resends_with_same_message_id(deps, clock, smtp_server):
    """A worker that dies between the server's 250 and 'mark sent' leaves a claim that expires."""
    _queue(deps)

    class DiesAfterSending(SmtpTransport):
        def send(self, message, message_id):
            super().send(message, message_id)
            raise SystemExit("worker killed")

    transport = DiesAfterSending("127.0.0.1", smtp_server.port, starttls=False, timeout=5)
    with contextlib.suppress(SystemExit):
        outbox.deliver_due(deps, transport)
    assert outbox.deliver_due(deps).claimed == 0  # still claimed by the dead worker
    clock.advance(minutes=6)
    assert outbox.deliver_due(deps).sent == 1
    first, second = smtp_server.wait_for(2)
    assert first["Message-ID"] == second["Message-ID"]


def test_header_injection_is_refused(deps, smtp_server):
    with pytest.raises(ValueError, match="invalid address"):
        _queue(deps, to="victim@example.gov.uk\r\nBcc: attacker@evil.example")
    with pytest.raises(ValueError):
        _queue(deps, to="Victim <victim@example.gov.uk>, attacker@evil.example")
    with deps.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM outbox_message")).scalar() == 0


def test_a_message_that_cannot_be_built_fails_at_once(deps, smtp_server):
    _queue(deps)
    with deps.db.transaction() as session:
        from transitions.models import OutboxMessage

        message = session.query(OutboxMessage).one()
        message.subject = "line\r\nBcc: attacker@evil.example"
    report = outbox.deliver_due(deps)
    assert (report.sent, report.failed) == (0, 1)
    assert smtp_server.messages == []


def test_queued_message_is_encrypted_at_rest(deps):
    _queue(deps, to="secret.person@example.gov.uk")
    with deps.db.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM outbox_message")).one()
    assert b"secret.person" not in b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row)


def test_two_workers_at_once_send_each_message_exactly_once(deps, smtp_server):
    """Row claims (SKIP LOCKED on PostgreSQL, conditional UPDATE on SQLite) keep workers apart."""
    import threading

    for i in range(12):
        _queue(deps, key=f"k{i}", to=f"person{i}@example.gov.uk")
    reports = []
    barrier = threading.Barrier(2)

    def worker(name):
        barrier.wait()
        reports.append(outbox.deliver_due(deps, worker=name, limit=12))

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.sent for r in reports) == 12
    received = sorted(m["To"] for m in smtp_server.wait_for(12))
    assert received == sorted(f"person{i}@example.gov.uk" for i in range(12))
