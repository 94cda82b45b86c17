"""Audit rows and logs (security.md C10: R68–R70; attacks #58, #59 for names).

tests/integration/test_audit.py proves the HMAC chain and the verifier; these prove what one request writes,
that PostgreSQL itself refuses to change the trail, and that a child's name and NHS number never reach a log.
"""

from __future__ import annotations

import logging

import pytest
import sqlalchemy.exc
from sqlalchemy import select, text

from tests.conftest import POSTGRES_URL, sign_in
from tests.integration.test_child_record import record, submit  # noqa: F401 - `record` is a fixture
from transitions.models import AuditEvent
from transitions.services import audit
from transitions.services.audit import Actor

pytestmark = pytest.mark.security

LONG_AGENT = "Mozilla/5.0 (canary) " + "x" * 400


def _rows(deps, action: str) -> list[AuditEvent]:
    with deps.db.transaction() as session:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))
        session.expunge_all()
        return rows


def test_a_view_and_a_denial_each_write_one_row_naming_who_what_when_where_and_the_outcome(
        client, deps, clock, record):  # noqa: F811
    """R68: actor, action, object, UTC time, IP and a truncated user agent, outcome; the content is not copied."""
    sign_in(client, record.worker, clock)
    before = len(_rows(deps, "child.viewed"))
    page = client.get(f"/children/{record.child_id}", headers={"User-Agent": LONG_AGENT},
                      environ_overrides={"REMOTE_ADDR": "203.0.113.7"})
    assert page.status_code == 200
    viewed = _rows(deps, "child.viewed")[before:]
    assert len(viewed) == 1
    row = viewed[0]
    assert (row.actor_kind, row.actor_id) == ("staff", str(record.worker.id))
    assert (row.object_type, row.object_id) == ("child", str(record.child_id))
    assert row.outcome == "success" and row.ip == "203.0.113.7"
    assert row.user_agent == LONG_AGENT[:200]
    assert row.occurred_at == clock.now()
    assert "Zoë" not in (row.details or "") and "9990000999" not in (row.details or "")

    sign_in(client, record.outsider, clock)
    assert client.get(f"/children/{record.child_id}").status_code == 403
    denied = _rows(deps, "child.access_denied")
    assert len(denied) == 1
    assert denied[0].actor_id == str(record.outsider.id) and denied[0].outcome == "denied"
    assert denied[0].object_id == str(record.child_id)


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="the append-only trigger is PostgreSQL's (SQLite has no such guard)")
def test_the_database_refuses_to_change_or_remove_audit_rows(deps):
    """R69 / #58 as the application's own connection: the trigger raises, whatever the code asks for."""
    audit.log_event(deps, Actor.system("test"), "test.event")
    for statement in ("UPDATE audit_event SET outcome = 'allowed'", "DELETE FROM audit_event",
                      "TRUNCATE audit_event"):
        with pytest.raises(sqlalchemy.exc.DatabaseError, match="append-only"), deps.db.engine.begin() as conn:
            conn.execute(text(statement))
    with deps.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_event")).scalar_one() >= 1


def test_a_childs_name_and_nhs_number_never_reach_the_logs(client, deps, clock, record, caplog):  # noqa: F811
    """R70 for personal data (test_operations covers tokens, codes, e-mail addresses and passwords): searching,
    viewing, saving and a refused view of the child's record, with every logger at DEBUG and SQLAlchemy's
    statement log on (the setting someone turns on to debug production). Names reach SQL only encrypted or as
    keyed blind-index digests, and bound parameters are hidden from logged errors."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    sign_in(client, record.worker, clock)
    submit(client, "/children/search", {"query": "Zoë Smith 999 000 0999"}, page="/children")
    client.get(f"/children/{record.child_id}")
    submit(client, f"/children/{record.child_id}/sections/VOICE/edit", {"about_me_text": "Zoë Smith's own words"})
    sign_in(client, record.outsider, clock)
    client.get(f"/children/{record.child_id}")
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records)  # the statement log was on
    for canary in ("Zoë", "Smith", "9990000999", "999 000 0999", "LCS-1"):
        assert canary not in logged, canary
