"""Staff authentication tried through the web as an attacker would (security.md C1; attacks #6, #23, #25, #27 of
table (d)): password spraying from many addresses, an oversized password, extra form fields, the per-address
layer of the limits, and the rehash of an old password hash at the next sign-in."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import Browser, csrf_from, make_staff, migrate, post_form, sign_in, test_environ
from transitions.crypto import current_code
from transitions.models import StaffUser
from transitions.settings import load_settings

pytestmark = pytest.mark.security


def test_sign_in_upgrades_an_old_hash_and_allows_one_step_of_clock_skew_once(deps, app, client, settings, clock):
    """R3: raising the argon2id parameters rehashes a password the next time it is typed correctly. Attacks #28
    and #60's TOTP part: a phone 30 s behind or ahead still signs in (one step either way), the same code never
    twice, and two steps out is refused."""
    from transitions.app import create_app

    account = make_staff(deps)
    with deps.db.transaction() as session:
        old = session.get(StaffUser, account.id).password_hash
    assert old.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    stronger = settings.with_overrides(passwords=settings.passwords.__class__(
        min_length=15, max_length=256, argon2_time_cost=2, argon2_memory_cost=9216, argon2_parallelism=1))
    upgraded = create_app(stronger, clock=clock)
    upgraded.test_client_class = Browser
    try:
        sign_in(upgraded.test_client(), account, clock)
        with upgraded.extensions["transitions"].db.transaction() as session:
            new = session.get(StaffUser, account.id).password_hash
        assert new.startswith("$argon2id$v=19$m=9216,t=2,p=1$") and new != old
        sign_in(upgraded.test_client(), account, clock)  # and the new hash verifies
    finally:
        upgraded.extensions["transitions"].db.dispose()

    phone = make_staff(deps)
    for offset, accepted in ((-30, True), (30, True), (-90, False), (90, False)):
        code = current_code(phone.totp_secret, clock.now() + timedelta(seconds=offset))
        post_form(client, "/sign-in", {"email": phone.email, "password": phone.password})
        response = post_form(client, "/sign-in/code", {"code": code})
        assert (response.status_code == 302) is accepted, offset
        if accepted:
            post_form(client, "/sign-out", {}, page="/")
            post_form(client, "/sign-in", {"email": phone.email, "password": phone.password})
            replay = post_form(client, "/sign-in/code", {"code": code})
            assert replay.status_code == 200 and "already been used" in replay.get_data(as_text=True)
        clock.advance(seconds=120)
    with deps.db.transaction() as session:
        assert session.get(StaffUser, phone.id).totp_last_step is not None


def test_spraying_one_account_from_fifty_addresses_locks_that_account_only(app, deps, clock):
    """Attack #25: the per-account throttle counts failures whatever address they come from; another person signs
    in meanwhile; the lock ends by itself."""
    victim = make_staff(deps)
    colleague = make_staff(deps, role="cla_nurse")
    app.test_client_class = Browser
    statuses = []
    for n in range(50):
        attacker = app.test_client()
        env = {"REMOTE_ADDR": f"198.51.100.{n + 1}"}
        page = attacker.get("/sign-in", environ_base=env).get_data(as_text=True)
        statuses.append(attacker.post("/sign-in", environ_base=env, data={
            "csrf_token": csrf_from(page), "email": victim.email, "password": f"spray guess number {n:04d}"}
        ).status_code)
    limit = deps.settings.sign_in.max_failures
    assert statuses[:limit] == [200] * limit and set(statuses[limit:]) == {429}
    # The right password from yet another address is refused while the lock lasts ...
    locked = post_form(app.test_client(), "/sign-in", {"email": victim.email, "password": victim.password})
    assert locked.status_code == 429 and "too many attempts" in locked.get_data(as_text=True)
    # ... but the colleague signs in at the same time, and the victim does once the lock has run out.
    sign_in(app.test_client(), colleague, clock)
    clock.advance(minutes=deps.settings.sign_in.lockout_minutes + 1)
    sign_in(app.test_client(), victim, clock)
    with deps.db.engine.connect() as conn:
        failed = conn.execute(text("SELECT count(*) FROM audit_event WHERE action = 'sign_in.password' "
                                   "AND outcome = 'failed'")).scalar()
    assert failed == limit  # every counted failure is audited (the locked ones never reach a password check)


def test_no_default_account_exists_and_an_oversized_password_is_refused_without_hashing(app, client, deps,
                                                                                        monkeypatch):
    """R10: a fresh database has no accounts at all (the first administrator is made from the command line), so
    admin/admin and the like fail. Attack #27: no argon2 run for an oversized password, for a real account or an
    unknown one."""
    with deps.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM staff_user")).scalar() == 0
    for email, password in (("admin@example-council.test", "admin"), ("admin@example.gov.uk", "password")):
        response = post_form(client, "/sign-in", {"email": email, "password": password})
        assert "Enter a correct email address and password" in response.get_data(as_text=True)
    assert client.get("/").headers["Location"].startswith("/sign-in")
    account = make_staff(deps)
    runs = []
    argon2 = type(deps.hasher._hasher)  # argon2-cffi's PasswordHasher: every verify goes through it
    real = argon2.verify
    monkeypatch.setattr(argon2, "verify", lambda self, h, p: runs.append(len(p)) or real(self, h, p))
    huge = "correct horse battery staple " * 345  # 10,005 characters
    assert len(huge) > 10_000
    for email in (account.email, "nobody@example-council.test"):
        response = post_form(client, "/sign-in", {"email": email, "password": huge})
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert "There is a problem" in html and huge not in html  # an error, and the password is not echoed
    assert runs == []
    # An ordinary wrong password does cost a verify (so the spy is really watching the hasher).
    post_form(client, "/sign-in", {"email": account.email, "password": "an ordinary wrong password"})
    assert len(runs) == 1


def test_extra_form_fields_change_nothing(app, client, deps, clock):
    """Attack #23 (R15): fields a form does not declare are ignored: changing one's password cannot also make
    one an administrator, move team or reactivate anything."""
    account = make_staff(deps, team="North")
    sign_in(client, account, clock)
    with deps.db.transaction() as session:
        before = session.get(StaffUser, account.id)
        team_before, role_before = before.team_id, before.role
    response = post_form(client, "/account", {
        "current": account.password, "password": "new harbour lantern kettle", "confirm": "new harbour lantern kettle",
        "role": "admin", "team_id": "00000000-0000-0000-0000-000000000000", "status": "active", "is_demo": "1",
        "totp_secret": "A" * 32})
    assert response.status_code == 302
    with deps.db.transaction() as session:
        after = session.get(StaffUser, account.id)
        assert (after.role, after.team_id, after.totp_secret) == (role_before, team_before, account.totp_secret)
        assert deps.hasher.verify(after.password_hash, "new harbour lantern kettle")  # the declared field did work
    assert client.get("/admin/users").status_code == 403


def _limited_app(tmp_path: Path, database_url: str, smtp_port: int, clock, limits: str):
    from transitions.app import create_app

    config = tmp_path / "limits.toml"
    config.write_text(limits)
    env = test_environ(database_url, tmp_path / "limited", TRANSITIONS_CONFIG=str(config),
                       TRANSITIONS_SMTP_PORT=str(smtp_port))
    app = create_app(load_settings(env), clock=clock)
    migrate(app)
    app.test_client_class = Browser
    return app


def test_the_per_address_layer_limits_link_guessing_code_entry_and_sign_in(tmp_path, database_url, smtp_server,
                                                                           clock):
    """Attack #6 and R21's second layer, R5's per-IP part: one address guessing link tokens is throttled (429)
    after a generous limit (here lowered to 5 a minute), as are its code entries and password tries; another
    address is unaffected. The limits key on the address, never globally."""
    app = _limited_app(tmp_path, database_url, smtp_server.port, clock,
                       '[sign_in]\nip_limit = "4 per minute"\npage_limit = "5 per minute"\n')
    try:
        guesser, other = app.test_client(), app.test_client()
        here, there = {"REMOTE_ADDR": "192.0.2.10"}, {"REMOTE_ADDR": "192.0.2.99"}
        guesses = [guesser.get(f"/r/{secrets.token_urlsafe(32)}", environ_base=here).status_code for _ in range(7)]
        assert guesses == [404] * 5 + [429] * 2
        assert other.get(f"/r/{secrets.token_urlsafe(32)}", environ_base=there).status_code == 404
        # HEAD answers 404 or 200 as GET does, so it counts towards the same limit (it was not limited at all)
        prober = {"REMOTE_ADDR": "192.0.2.12"}
        heads = [guesser.head(f"/r/{secrets.token_urlsafe(32)}", environ_base=prober).status_code for _ in range(6)]
        assert heads == [404] * 5 + [429]
        token = secrets.token_urlsafe(32)
        entries = [guesser.post(f"/r/{token}/enter-code", data={"code": "123456"}, environ_base=here).status_code
                   for _ in range(5)]
        assert entries == [404] * 4 + [429]
        limited = guesser.post(f"/r/{token}/enter-code", data={"code": "123456"}, environ_base=here)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
        assert "Too many" in limited.get_data(as_text=True)
        elsewhere = {"REMOTE_ADDR": "192.0.2.11"}
        form = csrf_from(guesser.get("/sign-in", environ_base=elsewhere).get_data(as_text=True))
        tries = [guesser.post("/sign-in", data={"email": "x@example.gov.uk", "password": "p", "csrf_token": form},
                              environ_base=elsewhere).status_code for _ in range(5)]
        assert tries[-1] == 429 and 429 not in tries[:4]
        form = csrf_from(other.get("/sign-in", environ_base=there).get_data(as_text=True))
        assert other.post("/sign-in", data={"email": "x@example.gov.uk", "password": "p", "csrf_token": form},
                          environ_base=there).status_code == 200
    finally:
        app.extensions["transitions"].db.dispose()
