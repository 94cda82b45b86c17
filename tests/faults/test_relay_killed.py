"""The mail relay killed after claiming a message, before sending it (security.md R33/R36, attack #47).

tests/integration/test_outbox.py kills it after the SMTP server's 250 (#49: at most one duplicate, with the same
Message-ID). Here the worker dies between its claim and the SMTP conversation: nothing was sent, nobody else
takes the message while the dead worker's lease runs, and once it has run out the message is sent exactly once.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from transitions.models import OutboxMessage
from transitions.services import outbox
from transitions.services.outbox import SmtpTransport

pytestmark = pytest.mark.security


def test_a_relay_killed_between_claim_and_send_leaves_the_message_to_be_sent_once_after_its_lease(
        deps, clock, smtp_server):
    with deps.db.transaction() as session:
        outbox.enqueue(session, clock.now(), to="ward@nhs.example", subject="A secure link", body="Body",
                       purpose="pack_link", idempotency_key="killed-before-send")

    class DiesBeforeSending(SmtpTransport):
        def send(self, message, message_id):
            raise SystemExit("worker killed")

    with contextlib.suppress(SystemExit):
        outbox.deliver_due(deps, DiesBeforeSending("127.0.0.1", smtp_server.port, starttls=False, timeout=5))
    with deps.db.transaction() as session:
        claimed = session.scalars(select(OutboxMessage)).one()
        lease = claimed.claimed_until - clock.now()  # type: ignore[operator]
        assert claimed.status == "queued" and claimed.attempts == 0 and lease > timedelta(0)
    clock.advance(seconds=lease.total_seconds() - 1)
    assert outbox.deliver_due(deps).claimed == 0  # still the dead worker's
    assert smtp_server.messages == []
    clock.advance(seconds=2)
    assert outbox.deliver_due(deps).sent == 1
    assert outbox.deliver_due(deps).claimed == 0
    assert len(smtp_server.wait_for(1)) == 1
    with deps.db.transaction() as session:
        sent = session.scalars(select(OutboxMessage)).one()
        assert sent.status == "sent" and sent.attempts == 1
