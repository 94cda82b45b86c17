"""The audit trail is chained by HMAC; audit-verify names the first broken link."""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import make_staff, post_form, sign_in
from transitions.cli import main as cli
from transitions.services import audit
from transitions.services.audit import Actor


def _events(deps, n=5):
    with deps.db.transaction() as session:
        for i in range(n):
            audit.record(session, deps.audit_chain, deps.clock, Actor("staff", f"user-{i}", "127.0.0.1", "ua"),
                         "test.event", object_type="thing", object_id=i, details={"count": i, "name": "Zoë"})


def _raw(deps, sql, **params):
    """Tamper as a database superuser would: straight SQL, around the append-only trigger on PostgreSQL."""
    with deps.db.engine.begin() as conn:
        if deps.db.dialect == "postgresql":
            conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
        conn.execute(text(sql), params)
        if deps.db.dialect == "postgresql":
            conn.execute(text("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only"))


def _verify(app):
    return app.test_cli_runner().invoke(cli, ["audit-verify"])


def test_intact_chain_verifies(app, deps):
    _events(deps)
    result = _verify(app)
    assert result.exit_code == 0
    assert "5 events verified" in result.output


def test_details_never_carry_unlisted_keys(deps):
    _events(deps, 1)
    with deps.db.engine.connect() as conn:
        details = conn.execute(text("SELECT details FROM audit_event")).scalar_one()
    assert "Zoë" not in details and '"count": 0' in details


def test_edited_row_is_reported(app, deps):
    _events(deps)
    _raw(deps, "UPDATE audit_event SET action = 'nothing.to.see' WHERE seq = 3")
    result = _verify(app)
    assert result.exit_code == 1
    assert "AUDIT CHAIN BROKEN at event 3" in result.output


def test_deleted_row_is_reported(app, deps):
    _events(deps)
    _raw(deps, "DELETE FROM audit_event WHERE seq = 2")
    result = _verify(app)
    assert result.exit_code == 1 and "event 2" in result.output


def test_reordered_rows_are_reported(app, deps):
    _events(deps)
    _raw(deps, "UPDATE audit_event SET seq = 100 WHERE seq = 2")
    _raw(deps, "UPDATE audit_event SET seq = 2 WHERE seq = 4")
    _raw(deps, "UPDATE audit_event SET seq = 4 WHERE seq = 100")
    result = _verify(app)
    assert result.exit_code == 1 and "event 2" in result.output


def test_truncated_tail_is_reported(app, deps):
    _events(deps)
    _raw(deps, "DELETE FROM audit_event WHERE seq = 5")
    result = _verify(app)
    assert result.exit_code == 1 and "event 5" in result.output


def test_sign_in_success_and_failure_are_audited(client, deps, clock):
    account = make_staff(deps)
    post_form(client, "/sign-in", {"email": account.email, "password": "wrong password guess 123"})
    sign_in(client, account, clock)
    with deps.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT action, outcome, actor_id, object_id, details FROM audit_event "
                                 "ORDER BY seq")).all()
    actions = [(r.action, r.outcome) for r in rows]
    assert ("sign_in.password", "failed") in actions
    assert ("sign_in.success", "success") in actions
    everything = " ".join(str(v) for r in rows for v in r)
    assert account.email not in everything and account.password not in everything


def test_a_cut_tail_with_a_rewritten_head_is_caught_by_an_outside_checkpoint(app, deps):
    _events(deps)
    checkpoint = _verify(app).output.split("Checkpoint (keep it outside the database): ")[1].strip()
    assert checkpoint.startswith("5:")
    # Without the key, an intruder can still delete the tail and point the head at the new last event.
    _raw(deps, "DELETE FROM audit_event WHERE seq > 3")
    with deps.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_chain_head SET last_seq = 3, last_hash = "
                          "(SELECT chain_hash FROM audit_event WHERE seq = 3)"))
    assert _verify(app).exit_code == 0  # the database alone cannot tell
    result = app.test_cli_runner().invoke(cli, ["audit-verify", "--checkpoint", checkpoint])
    assert result.exit_code == 1
    assert "event 5 no longer matches the checkpoint" in result.output


def test_a_malformed_checkpoint_is_a_usage_error(app, deps):
    _events(deps, 1)
    result = app.test_cli_runner().invoke(cli, ["audit-verify", "--checkpoint", "five:zz"])
    assert result.exit_code == 2 and "1234:<64 hex digits>" in result.output


def test_edited_details_are_reported(app, deps):
    _events(deps)
    _raw(deps, """UPDATE audit_event SET details = '{"count": 99}' WHERE seq = 3""")
    result = _verify(app)
    assert result.exit_code == 1 and "event 3" in result.output
