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


def test_a_long_check_reads_a_snapshot_and_never_blocks_the_service_writing(deps):
    """audit-verify over a national trail takes minutes; on SQLite a write transaction for it would hold the write
    lock that long and every request that writes would fail after the busy timeout."""
    import threading

    _events(deps, 3)
    with deps.db.reading() as session:
        assert audit.verify(session, deps.audit_chain).checked == 3
        errors: list[BaseException] = []

        def write() -> None:
            try:
                _events(deps, 2)  # a request of the service, on its own connection, mid-check
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(timeout=3)  # under SQLite's 5 s busy timeout: a write lock held here would still be waiting
        assert not writer.is_alive() and errors == []
        # SQLite: the snapshot it started with; PostgreSQL (read committed): the appended events are checked too
        assert audit.verify(session, deps.audit_chain).checked == (3 if deps.db.dialect == "sqlite" else 5)
    with deps.db.reading() as session:
        assert audit.verify(session, deps.audit_chain).checked == 5


def test_a_read_only_unit_of_work_refuses_to_write_on_postgresql(deps):
    import pytest
    from sqlalchemy.exc import DBAPIError

    if deps.db.dialect != "postgresql":
        pytest.skip("SQLite has no read-only transactions; its reading() is a deferred snapshot")
    with pytest.raises(DBAPIError, match="read-only"), deps.db.reading() as session:
        session.execute(text("DELETE FROM audit_event"))


def test_a_check_since_a_checkpoint_reads_only_the_new_events_and_still_catches_a_break(app, deps):
    _events(deps, 5)
    checkpoint = _verify(app).output.split("Checkpoint (keep it outside the database): ")[1].strip()
    seq = int(checkpoint.split(":")[0])  # the 5 events and the check's own record
    _events(deps, 3)
    result = app.test_cli_runner().invoke(cli, ["audit-verify", "--since", checkpoint])
    assert result.exit_code == 0, result.output
    assert f"4 events verified after event {seq}." in result.output  # 3 events and the first check's record

    _raw(deps, "UPDATE audit_event SET action = 'edited' WHERE seq = :seq", seq=seq + 2)
    broken = app.test_cli_runner().invoke(cli, ["audit-verify", "--since", checkpoint])
    assert broken.exit_code == 1 and f"AUDIT CHAIN BROKEN at event {seq + 2}" in broken.output


def test_a_check_since_a_checkpoint_the_trail_no_longer_matches_fails(app, deps):
    _events(deps, 3)
    checkpoint = _verify(app).output.split("Checkpoint (keep it outside the database): ")[1].strip()
    seq = int(checkpoint.split(":")[0])
    forged = f"{seq}:{'00' * 32}"
    result = app.test_cli_runner().invoke(cli, ["audit-verify", "--since", forged])
    assert result.exit_code == 1 and f"event {seq} no longer matches the checkpoint" in result.output
