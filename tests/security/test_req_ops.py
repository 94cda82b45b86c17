"""Operations (security.md C11–C12: R73, R79, R80, R81): SQLite's safety settings, the purge of transient
copies, the health check, and the dependency pins.
"""

from __future__ import annotations

import re
import threading
import tomllib

import pytest
from sqlalchemy import func, select, text

from tests.conftest import POSTGRES_URL, make_staff, sign_in
from tests.integration.conftest import world  # noqa: F401 - a fixture
from tests.integration.test_packs import link_for, send_emergency, verified_session
from transitions.models import AuditEvent, Pack, PackCode, RecipientSession, StaffSession, StoredBlob
from transitions.paths import REPO_ROOT
from transitions.services import tick

pytestmark = pytest.mark.security


@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite mode only (R73)")
def test_every_sqlite_connection_has_foreign_keys_wal_busy_timeout_and_secure_delete(deps):
    with deps.db.engine.connect() as conn:
        pragmas = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                   for name in ("foreign_keys", "journal_mode", "busy_timeout", "secure_delete")}
    assert pragmas == {"foreign_keys": 1, "journal_mode": "wal", "busy_timeout": 5000, "secure_delete": 1}
    with pytest.raises(Exception, match="FOREIGN KEY"), deps.db.engine.begin() as conn:
        conn.execute(text("INSERT INTO attachment (id, child_id, blob_id, kind, section_code, field_id, "
                          "media_type, size, uploaded_by, created_at, in_use) VALUES "
                          "(:i, :i, :i, 'photo', 'PHOTO', 'photo', 'image/jpeg', 1, :i, '2026-01-01', 0)"),
                     {"i": "0" * 32})


def test_healthz_answers_without_data_or_detail(client):
    """R80: only that the process answers: no version, host, database or count in it."""
    response = client.get("/healthz")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok"}


def test_the_tick_purges_expired_recipient_sessions_codes_and_staff_sessions_and_keeps_the_audit(
        client, deps, world, clock):  # noqa: F811
    """R79 for the transient copies the app purges: recipient sessions (15 min idle), one-time codes (a day
    after they expire) and staff sessions. The audit trail is never purged. Pack blobs are kept (a gap: R79
    asks for them to go 30 days after confirmation or expiry)."""
    transition_id = send_emergency(deps, world)
    token, pack = link_for(deps, transition_id, "receiving_placement")
    verified_session(deps, token, pack.id)
    sign_in(client, make_staff(deps), clock)

    def count(model) -> int:
        with deps.db.transaction() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

    assert count(RecipientSession) == 1 and count(PackCode) == 1 and count(StaffSession) >= 1
    audit_before, blobs_before = count(AuditEvent), count(StoredBlob)
    clock.advance(minutes=14)
    assert tick.run(deps).recipient_purged == 0  # nothing is early
    assert count(RecipientSession) == 1
    clock.advance(days=1, minutes=20)
    report = tick.run(deps)
    assert report.recipient_purged == 2 and report.sessions_purged >= 1 and not report.failed_jobs
    assert count(RecipientSession) == 0 and count(PackCode) == 0 and count(StaffSession) == 0
    assert count(AuditEvent) >= audit_before
    with deps.db.transaction() as session:
        assert session.get(Pack, pack.id) is not None
    assert count(StoredBlob) == blobs_before  # the gap: blobs are not purged yet


# ---- R81: what can be checked offline about the dependencies ---------------------------------------------------

_EXACT = re.compile(r"^[A-Za-z0-9_.\-]+(\[[a-z,]+\])?==[0-9][0-9A-Za-z.]*$")


def test_every_dependency_and_build_requirement_is_pinned_to_one_version():
    """Partly R81: exact pins (no ranges), so a new release never arrives unreviewed. Not hashes: there is no
    lock file with hashes, and pip-audit / semgrep do not run in CI (it has no network): both are gaps."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    pins = [*project["build-system"]["requires"], *project["project"]["dependencies"],
            *(d for group in project["project"]["optional-dependencies"].values() for d in group)]
    loose = [pin for pin in pins if not _EXACT.match(pin)]
    assert len(pins) >= 30 and loose == []


# ---- R74: no bulk UPDATE can skip the optimistic lock ----------------------------------------------------------


def test_no_bulk_update_statement_targets_a_version_locked_table():
    """Child, StaffUser and Transition carry version_id_col: an ORM save checks the version, a bulk
    ``update(Model)`` would not. The key rotation (services/keys.py) updates tables generically, but only
    re-encrypts the same plaintext under row locks, so it is the one reviewed exception and names no model."""
    from sqlalchemy.orm import class_mapper

    from transitions.models import Base

    versioned = {m.class_.__name__ for m in Base.registry.mappers if class_mapper(m.class_).version_id_col is not None}
    assert {"Child", "StaffUser", "Transition"} <= versioned
    pattern = re.compile(r"\bupdate\(\s*(" + "|".join(sorted(versioned)) + r")\b")
    offenders = [f"{path.name}: {match.group(0)}" for path in sorted((REPO_ROOT / "transitions").rglob("*.py"))
                 for match in pattern.finditer(path.read_text())]
    assert offenders == []


# ---- R75: the same send pressed twice at once sends once ---------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="concurrent sends contend for a PostgreSQL row lock (SQLite serialises)")
def test_two_send_presses_at_the_same_moment_make_one_pack_one_link_and_one_email(deps, world):  # noqa: F811
    """Partly R75: there is no idempotency key on the form; the transition row is locked for the send and only
    recipients still due are sent, so the second press finds nothing to do."""
    from transitions.models import OutboxMessage, TransitionRecipient
    from transitions.services import packs
    from transitions.services import transitions as service

    transition_id = send_emergency(deps, world)
    sw, sw_actor = world.view(deps, "social_worker_south"), world.actor("social_worker_south")
    service.add_recipient(deps, transition_id, "school", world.orgs["999001"], "Amira will start at Fellside",
                          sw, sw_actor)
    start = threading.Barrier(2)
    reports, errors = [], []

    def press() -> None:
        start.wait()
        try:
            reports.append(packs.send_remaining(deps, transition_id, sw, sw_actor))
        except Exception as exc:  # collected, so a failure in a thread fails the test
            errors.append(exc)

    threads = [threading.Thread(target=press) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and sorted(r.sent for r in reports) == [0, 1]
    with deps.db.transaction() as session:
        school_packs = list(session.scalars(select(Pack).join(TransitionRecipient, Pack.recipient_id ==
                                                                TransitionRecipient.id)
                                            .where(TransitionRecipient.recipient_type == "school")))
        assert len(school_packs) == 1
        links = session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.idempotency_key == f"pack-link-{school_packs[0].id}"))
        assert links == 1
