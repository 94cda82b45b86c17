"""R47: a record that cannot be decrypted is not only refused (the page says so, with a reference) but also put on
the audit trail, naming the record and nothing of its content, with an ERROR line for the alert."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select, text

from tests.conftest import sign_in
from tests.integration.test_child_record import Record, events, record  # noqa: F401  (a fixture)
from transitions.models import AuditEvent

pytestmark = pytest.mark.security


def test_an_undecryptable_name_is_audited_once_naming_the_row_and_no_value(
        deps, record: Record, client, clock, caplog):  # noqa: F811
    sign_in(client, record.worker, clock)
    assert client.get(f"/children/{record.child_id}").status_code == 200
    row_id = record.child_id.hex if deps.db.dialect == "sqlite" else record.child_id
    with deps.db.engine.begin() as conn:
        raw = conn.execute(text("SELECT legal_name_enc FROM child WHERE id = :i"), {"i": row_id}).scalar_one()
        conn.execute(text("UPDATE child SET legal_name_enc = :v WHERE id = :i"),
                     {"v": bytes(raw[:-1]) + bytes([raw[-1] ^ 1]), "i": row_id})
    with deps.db.transaction() as session:
        before = session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))

    caplog.set_level(logging.ERROR)
    response = client.get(f"/children/{record.child_id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "cannot be decrypted" in html
    assert "Traceback" not in html and "DecryptionError" not in html

    found = events(deps, "record.undecryptable")
    assert len(found) == 1
    event = found[0]
    assert event.seq > before and event.outcome == "failed"
    assert (event.object_type, event.object_id) == ("child", str(record.child_id))
    assert event.actor_kind == "staff" and event.actor_id == str(record.worker.id)
    assert "Zo" not in event.details and "Smith" not in event.details
    alerts = [r for r in caplog.records if "decryption failed" in r.getMessage()]
    assert alerts and all(r.levelno == logging.ERROR and r.exc_info is None for r in alerts)
    assert not any("Smith" in r.getMessage() or "Zo" in r.getMessage() for r in caplog.records)
