"""Concurrency and failure paths found in review: each must fail closed, count, and keep its audit trail."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from tests.conftest import make_staff, post_form, sign_in
from transitions.crypto import current_code
from transitions.services import accounts, audit, outbox
from transitions.services.audit import Actor
from transitions.services.errors import AccountLockedError, InvalidCodeError, InvalidCredentialsError

pytestmark = pytest.mark.security


def _at_once(n, fn):
    """Run fn(i) in n threads released together; return what each returned or raised."""
    results: list[object] = [None] * n
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_wrong_passwords_are_all_counted(deps):
    account = make_staff(deps)
    results = _at_once(8, lambda i: accounts.check_password(deps, account.email, f"wrong guess number {i}!",
                                                            Actor("anonymous")))
    assert all(isinstance(r, InvalidCredentialsError | AccountLockedError) for r in results), results
    with pytest.raises(AccountLockedError):
        accounts.check_password(deps, account.email, account.password, Actor("anonymous"))


def test_the_same_code_used_twice_at_once_signs_in_once(deps, clock):
    account = make_staff(deps)
    code = current_code(account.totp_secret, clock.now())
    results = _at_once(4, lambda i: accounts.check_code(deps, account.id, code, Actor("anonymous")))
    successes = [r for r in results if isinstance(r, accounts.StaffView)]
    assert len(successes) == 1
    assert all(isinstance(r, InvalidCodeError) for r in results if r not in successes), results


def test_concurrent_audit_events_all_land_in_one_chain(app, deps):
    results = _at_once(6, lambda i: audit.log_event(deps, Actor("system", f"w{i}"), "test.concurrent"))
    assert results == [None] * 6
    with deps.db.transaction() as session:
        report = audit.verify(session, deps.audit_chain)
    assert report.ok and report.checked == 6


def test_signing_yourself_out_everywhere_is_not_undone_by_the_same_request(client, deps, clock):
    admin = make_staff(deps, role="admin")
    sign_in(client, admin, clock)
    response = post_form(client, f"/admin/users/{admin.id}/sign-out-everywhere", {}, page=f"/admin/users/{admin.id}")
    assert response.status_code == 302
    assert client.get("/account").status_code == 302
    with deps.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM staff_session WHERE user_id IS NOT NULL")).scalar()
    assert rows == 0


def test_wrong_current_password_is_throttled(client, deps, clock):
    account = make_staff(deps)
    sign_in(client, account, clock)
    for _ in range(5):
        post_form(client, "/account", {"current": "not my password at all", "password": "new harbour lantern kettle",
                                       "confirm": "new harbour lantern kettle"})
    response = post_form(client, "/account", {"current": account.password, "password": "new harbour lantern kettle",
                                               "confirm": "new harbour lantern kettle"})
    assert "too many attempts" in response.get_data(as_text=True)
    assert response.status_code == 200


def test_password_change_does_not_extend_the_shift_limit(client, deps, clock):
    account = make_staff(deps)
    sign_in(client, account, clock)
    for _ in range(18):  # 9 hours of activity
        clock.advance(minutes=30 - 1)
        client.get("/")
    assert post_form(client, "/account", {"current": account.password, "password": "new harbour lantern kettle",
                                          "confirm": "new harbour lantern kettle"}).status_code == 302
    for _ in range(3):
        clock.advance(minutes=29)
        response = client.get("/")
    assert response.status_code == 302  # 10 hours after the sign-in, not after the change


def test_session_data_is_encrypted(client, deps, clock):
    admin = make_staff(deps, role="admin")
    worker = make_staff(deps)
    sign_in(client, admin, clock)
    post_form(client, f"/admin/users/{worker.id}/disable", {}, page=f"/admin/users/{worker.id}")
    with deps.db.engine.connect() as conn:
        blobs = conn.execute(text("SELECT data_enc FROM staff_session")).scalars().all()
    assert blobs and all(b"Test Social Worker" not in bytes(b) for b in blobs if b)


def test_sign_out_and_denials_are_audited(client, deps, clock):
    worker = make_staff(deps)
    sign_in(client, worker, clock)
    assert client.get("/admin/users").status_code == 403
    post_form(client, "/sign-out", {}, page="/")
    with deps.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT action, outcome, details FROM audit_event ORDER BY seq")).all()
    assert ("access.denied", "denied") in [(r.action, r.outcome) for r in rows]
    assert any(r.action == "access.denied" and "admin.users" in r.details for r in rows)
    assert "sign_out" in [r.action for r in rows]


def test_an_undecryptable_message_fails_alone_and_the_rest_are_sent(deps, smtp_server):
    for i in range(3):
        with deps.db.transaction() as session:
            outbox.enqueue(session, deps.clock.now(), to=f"p{i}@example.gov.uk", subject="Subject", body="Body",
                           purpose="test", idempotency_key=f"k{i}")
    with deps.db.engine.begin() as conn:
        conn.execute(text("UPDATE outbox_message SET body_enc = subject_enc WHERE idempotency_key = 'k0'"))
    report = outbox.deliver_due(deps)
    assert (report.sent, report.failed) == (2, 1)
    assert len(smtp_server.wait_for(2)) == 2


def test_database_outage_still_gets_an_error_page_with_headers(app, client, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from transitions.services import sessions

    client.get("/sign-in")  # a session cookie exists, so the store is asked

    def down(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(sessions, "_load", down)
    monkeypatch.setattr(accounts, "check_password", lambda *a, **k: down())
    page = client.get("/sign-in")
    assert page.status_code == 200  # a signed-out page still renders without the store
    response = post_form(client, "/sign-in", {"email": "a@example.gov.uk", "password": "p"}, page="/sign-in")
    assert response.status_code in (400, 500)  # the form token lived in the unreachable store: fail closed
    assert response.headers["Cache-Control"] == "no-store"
    assert "Content-Security-Policy" in response.headers
    assert "Reference:" in response.get_data(as_text=True)
