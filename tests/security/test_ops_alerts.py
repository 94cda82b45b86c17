"""Operations alerts (R37, R80): an email backlog older than 15 minutes, a failed tick step or pack generation and a
failed audit check each log one ``alert=<kind>`` ERROR line (counts only, at most once an hour) and show as a
warning to administrators; /healthz stays data-free."""

from __future__ import annotations

import logging
import uuid

import pytest

from tests.conftest import make_staff, sign_in
from transitions.services import audit, audit_views, outbox, tick
from transitions.services.audit import Actor

pytestmark = pytest.mark.security

ADDRESS = "canary-recipient@placement.example"


class SmtpDown:
    def send(self, message: object, message_id: uuid.UUID) -> None:
        raise ConnectionRefusedError("smtp down")


def _alert_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "transitions.alerts" and r.levelno == logging.ERROR]


def test_backlog_older_than_15_minutes_alerts_once_an_hour_and_warns_admins(deps, clock, client, caplog):
    with deps.db.transaction() as session:
        outbox.enqueue(session, clock.now(), to=ADDRESS, subject="Canary subject", body="Canary body",
                       purpose="test", idempotency_key="ops-alert-1")
    caplog.set_level(logging.INFO)
    clock.advance(minutes=15)
    tick.run(deps, transport=SmtpDown())
    assert _alert_lines(caplog) == []  # 15 minutes is not yet "older than 15 minutes"

    clock.advance(minutes=27)
    tick.run(deps, transport=SmtpDown())
    lines = _alert_lines(caplog)
    assert lines == ["alert=outbox_backlog oldest_minutes=42 queued=1"]
    assert not any("canary" in r.getMessage().lower() for r in caplog.records)

    clock.advance(minutes=30)  # still failing within the hour: no second line
    tick.run(deps, transport=SmtpDown())
    assert len(_alert_lines(caplog)) == 1
    clock.advance(minutes=31)
    tick.run(deps, transport=SmtpDown())
    assert _alert_lines(caplog)[1:] == ["alert=outbox_backlog oldest_minutes=103 queued=1"]

    admin = make_staff(deps, role="admin")
    sign_in(client, admin, clock)
    for page in ("/", "/admin/users"):
        html = client.get(page).get_data(as_text=True)
        assert "govuk-warning-text" in html, page
        assert "Emails are not being delivered: the oldest has waited 103 minutes" in html, page
    worker = make_staff(deps, role="social_worker")
    other = client.application.test_client()
    sign_in(other, worker, clock)
    assert "Emails are not being delivered" not in other.get("/").get_data(as_text=True)

    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json() == {"status": "ok"}


def test_failed_tick_step_and_failed_audit_check_alert(deps, clock, client, caplog, monkeypatch):
    from transitions.services import sessions

    def broken(_deps: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(sessions, "purge_expired", broken)
    audit_views.record_check(deps, Actor.system("audit-verify"),
                             audit.ChainReport(ok=False, checked=1, first_broken_seq=2, problem="hash mismatch"))
    caplog.set_level(logging.INFO)
    result = tick.run(deps)
    assert "session purge" in result.failed_jobs
    assert sorted(_alert_lines(caplog)) == ["alert=audit_verify_failed first_broken_seq=2",
                                            "alert=tick_failed failed_steps=1"]

    admin = make_staff(deps, role="admin")
    sign_in(client, admin, clock)
    html = client.get("/").get_data(as_text=True)
    assert "The last check of the audit trail failed at event 2" in html
    assert "A step of the scheduled job (tick) failed 1 time(s)" in html

    # a passing check clears the audit alert; the next tick logs nothing new within the hour
    with deps.db.transaction() as session:
        passed = audit.verify(session, deps.audit_chain)
    assert passed.ok
    audit_views.record_check(deps, Actor.system("audit-verify"), passed)
    caplog.clear()
    tick.run(deps)
    assert _alert_lines(caplog) == []
    assert "The last check of the audit trail failed" not in client.get("/").get_data(as_text=True)
