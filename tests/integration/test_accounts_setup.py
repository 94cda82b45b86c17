"""First administrator, invitations through the outbox to a real SMTP server, set-up links, administration."""

from __future__ import annotations

import re

from sqlalchemy import text

from tests.conftest import csrf_from, make_staff, post_form, sign_in
from transitions.cli import main as cli
from transitions.crypto import current_code
from transitions.services import outbox


def _setup_path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def _complete_setup(client, path, clock, password="amber kettle harbour lantern"):
    assert post_form(client, path, {"password": password, "confirm": password}).status_code == 302
    page = client.get(path + "/authenticator").get_data(as_text=True)
    secret = re.search(r'id="totp-secret"><code>([A-Z2-7 ]+)</code>', page).group(1).replace(" ", "")
    assert "<svg" in page and "QR code for your authenticator app" in page
    response = post_form(client, path + "/authenticator", {"code": current_code(secret, clock.now())})
    assert response.status_code == 302 and response.headers["Location"] == "/sign-in"
    clock.advance(seconds=30)
    return secret


def test_fresh_database_has_no_accounts_and_admin_admin_fails(client):
    response = post_form(client, "/sign-in", {"email": "admin", "password": "admin"})
    assert "Enter an email address in the correct format" in response.get_data(as_text=True)
    response = post_form(client, "/sign-in", {"email": "admin@example.com", "password": "admin"})
    assert "Enter a correct email address and password" in response.get_data(as_text=True)


def test_create_admin_link_sets_password_and_totp_then_signs_in(app, client, deps, clock):
    result = app.test_cli_runner().invoke(cli, ["create-admin", "root@example-council.test", "--name", "Alex Morgan"])
    assert result.exit_code == 0, result.output
    url = re.search(r"https://localhost/setup/\S+", result.output).group(0)
    path = _setup_path(url)

    # Scanners fetch links: GETs show the page and change nothing at all.
    def snapshot():
        with deps.db.engine.connect() as conn:
            return [conn.execute(text(f"SELECT * FROM {table} ORDER BY 1")).all()
                    for table in ("staff_user", "setup_link", "audit_event", "outbox_message")]

    before = snapshot()
    for _ in range(3):
        assert client.get(path).status_code == 200
        assert client.get(path + "/authenticator").status_code == 302  # no password yet: back to step 1
    assert snapshot() == before
    weak = post_form(client, path, {"password": "Password1!Password1!", "confirm": "Password1!Password1!"})
    assert "too common" in weak.get_data(as_text=True)
    secret = _complete_setup(client, path, clock)

    assert client.get(path).status_code == 410  # single use
    post_form(client, "/sign-in", {"email": "root@example-council.test", "password": "amber kettle harbour lantern"})
    assert post_form(client, "/sign-in/code", {"code": current_code(secret, clock.now())}).status_code == 302
    assert "Welcome, Alex Morgan" in client.get("/").get_data(as_text=True)

    again = app.test_cli_runner().invoke(cli, ["create-admin", "root@example-council.test"])
    assert again.exit_code == 1


def test_invitation_travels_through_outbox_to_smtp_and_completes(app, client, deps, clock, smtp_server):
    admin = make_staff(deps, role="admin", team="Children in Care North")
    sign_in(client, admin, clock)
    page = client.get("/admin/users/invite").get_data(as_text=True)
    team_value = re.search(r'<option value="([0-9a-f-]{36})">Children in Care North', page).group(1)
    response = client.post("/admin/users/invite", data={
        "csrf_token": csrf_from(page), "name": "Sam Okafor", "email": "Sam.Okafor@Example-Council.test",
        "role": "social_worker", "team": team_value})
    assert response.status_code == 302

    assert smtp_server.messages == []  # queued in the same transaction, not sent inline
    report = outbox.deliver_due(deps)
    assert report.sent == 1
    (message,) = smtp_server.wait_for(1)
    assert message["To"] == "sam.okafor@example-council.test"
    assert message["Message-ID"].startswith("<") and "@" in message["Message-ID"]
    body = message.get_body().get_content()
    url = re.search(r"https://localhost/setup/\S+", body).group(0)
    assert outbox.deliver_due(deps).sent == 0  # never twice

    newcomer = app.test_client()
    secret = _complete_setup(newcomer, _setup_path(url), clock, password="violet meadow copper anchor")
    post_form(newcomer, "/sign-in", {"email": "sam.okafor@example-council.test",
                                      "password": "violet meadow copper anchor"})
    assert post_form(newcomer, "/sign-in/code", {"code": current_code(secret, clock.now())}).status_code == 302
    home = newcomer.get("/").get_data(as_text=True)
    assert "Welcome, Sam Okafor" in home and "Social worker" in home


def test_invite_errors_keep_what_was_typed(client, deps, clock):
    admin = make_staff(deps, role="admin")
    sign_in(client, admin, clock)
    empty = post_form(client, "/admin/users/invite", {})
    html = empty.get_data(as_text=True)
    for message in ("Enter the person&#39;s full name", "Enter the person&#39;s work email address",
                    "Select the person&#39;s role", "Select a team"):
        assert message in html
    bad = post_form(client, "/admin/users/invite", {"name": "Sam Okafor", "email": "sam@", "role": "cla_nurse",
                                                    "team": "none"})
    html = bad.get_data(as_text=True)
    assert "Enter an email address in the correct format" in html
    assert 'value="Sam Okafor"' in html and 'value="sam@"' in html
    assert re.search(r'value="cla_nurse"\s+checked', html)
    tampered = post_form(client, "/admin/users/invite", {"name": "X Y", "email": "x@example.gov.uk",
                                                         "role": "superuser", "team": "none"})
    assert "Not a valid choice" in tampered.get_data(as_text=True)


def test_only_admins_reach_administration(client, deps, clock):
    worker = make_staff(deps, role="social_worker")
    sign_in(client, worker, clock)
    assert client.get("/admin/users").status_code == 403
    assert client.post("/admin/users/invite", data={}).status_code in (400, 403)


def test_disabling_a_user_ends_their_sessions(app, client, deps, clock):
    admin = make_staff(deps, role="admin")
    worker = make_staff(deps)
    sign_in(client, admin, clock)
    other = app.test_client()
    sign_in(other, worker, clock)
    response = post_form(client, f"/admin/users/{worker.id}/disable", {}, page=f"/admin/users/{worker.id}")
    assert response.status_code == 302
    assert other.get("/").status_code == 302
    blocked = post_form(other, "/sign-in", {"email": worker.email, "password": worker.password})
    assert "Enter a correct email address and password" in blocked.get_data(as_text=True)
    # Allowing them back in later must not revive the old session.
    post_form(client, f"/admin/users/{worker.id}/enable", {}, page=f"/admin/users/{worker.id}")
    assert other.get("/").status_code == 302


def test_role_change_signs_the_person_out(app, client, deps, clock):
    admin = make_staff(deps, role="admin")
    worker = make_staff(deps)
    sign_in(client, admin, clock)
    other = app.test_client()
    sign_in(other, worker, clock)
    response = post_form(client, f"/admin/users/{worker.id}", {"role": "team_manager", "team": "none"})
    assert response.status_code == 302
    assert other.get("/").status_code == 302


def test_the_last_administrator_cannot_be_demoted(client, deps, clock):
    admin = make_staff(deps, role="admin")
    sign_in(client, admin, clock)
    response = post_form(client, f"/admin/users/{admin.id}", {"role": "auditor", "team": "none"})
    assert "There must always be at least one active administrator" in response.get_data(as_text=True)


def test_expired_setup_link_is_410(app, client, clock):
    result = app.test_cli_runner().invoke(cli, ["create-admin", "late@example-council.test"])
    path = _setup_path(re.search(r"https://localhost/setup/\S+", result.output).group(0))
    clock.advance(hours=73)
    response = client.get(path)
    assert response.status_code == 410
    assert "expired or has already been used" in response.get_data(as_text=True)
    assert client.get("/setup/" + "x" * 43).status_code == 410
