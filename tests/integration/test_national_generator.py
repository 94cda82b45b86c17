"""bench/national.py writes a database the app reads: decryptable children, a chain audit-verify accepts, accounts
that sign in, and row counts that follow --scale (a tiny scale here; the full one is measured in performance.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from tests.conftest import POSTGRES_URL, test_environ
from transitions.clock import FrozenClock
from transitions.models import AuditEvent, Child, Pack, StaffUser, Transition, TransitionRecipient
from transitions.services import audit
from transitions.services.audit import Actor

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import national

SCALE = 0.002  # 20 children


def test_generated_database_is_one_the_app_reads(database_url: str, tmp_path: Path) -> None:
    environ = test_environ(database_url, tmp_path / "instance")
    summary = national.generate(database_url, SCALE, seed=3, environ=environ, render_packs=False,
                                production_hashes=False)

    children = summary.counts["child"]
    assert children == 20
    assert 4 * children <= summary.counts["transition"] <= 16 * children
    assert 2 * summary.counts["transition"] <= summary.counts["transition_recipient"] <= 9 * summary.counts[
        "transition"]
    assert summary.counts["pack"] > 0 and summary.counts["audit_event"] >= 1000

    app = national.open_app(environ, FrozenClock(), migrate=False)
    deps = app.extensions["transitions"]
    try:
        with deps.db.transaction() as session:
            assert session.scalar(select(func.count()).select_from(Child)) == children
            assert session.scalar(select(func.count()).select_from(TransitionRecipient)) == \
                summary.counts["transition_recipient"]
            child = session.get(Child, summary.child_id)
            assert child is not None and child.allocated_worker_id == summary.accounts["social_worker"].id
            legal_name, preferred = child.legal_name, child.preferred_name  # decrypted with the app's keys
            assert legal_name and preferred and legal_name.startswith(preferred)
            worker = session.get(StaffUser, summary.accounts["social_worker"].id)
            assert worker is not None and worker.email == summary.accounts["social_worker"].email
            statuses = {s for s, in session.execute(select(Transition.status).distinct())}
            assert {"sent", "superseded"} <= statuses
            confirmed = session.scalar(select(func.count()).select_from(Pack).where(Pack.confirmed_at.is_not(None)))
            revoked = session.scalar(select(func.count()).select_from(Pack).where(Pack.revoked_at.is_not(None)))
            assert confirmed and revoked
            report = audit.verify(session, deps.audit_chain)
            assert report.ok, report.problem
            assert report.checked == session.scalar(select(func.count()).select_from(AuditEvent))

        bodies: dict[str, str] = {}
        pages = national.check(environ, summary.accounts["social_worker"], summary.child_id, summary.transition_id,
                               bodies=bodies, app=app)
        assert len(pages) == 4 and set(pages.values()) == {200}, pages  # home, child list, the child, a transition
        assert legal_name in bodies[f"/children/{summary.child_id}"]
        assert preferred in bodies["/children"]
    finally:
        deps.db.dispose()


# ---- audit-verify over a long trail (the verification path changed for national scale) -----------------------


def _seed(deps, count: int) -> None:
    for _ in range(count):
        audit.log_event(deps, Actor.system("test"), "test.seed")


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="SQLite serialises the check and the append (one write lock)")
def test_events_appended_while_the_trail_is_checked_are_checked_too(deps) -> None:
    _seed(deps, 30)
    appended: list[int] = []

    def append_once(conn, cursor, statement, parameters, context, executemany) -> None:
        if "FROM audit_event" in statement and not appended:
            appended.append(1)
            audit.log_event(deps, Actor.system("test"), "test.during_check")  # its own connection, committed

    event.listen(deps.db.engine, "after_cursor_execute", append_once)
    try:
        with deps.db.transaction() as session:
            report = audit.verify(session, deps.audit_chain, batch=10)
    finally:
        event.remove(deps.db.engine, "after_cursor_execute", append_once)
    assert appended
    assert report.ok, report.problem
    assert report.checked == report.head_seq == 31


def test_a_row_written_after_the_chain_head_breaks_the_check(deps) -> None:
    _seed(deps, 5)
    with deps.db.transaction() as session:
        session.add(AuditEvent(seq=6, occurred_at=deps.clock.now(), actor_kind="system", actor_id="x",
                               action="test.forged", outcome="success", details="{}", chain_hash=b"\0" * 32))
    with deps.db.transaction() as session:
        report = audit.verify(session, deps.audit_chain, batch=2)
    assert not report.ok
    assert report.first_broken_seq == 6 and report.checked == 5
