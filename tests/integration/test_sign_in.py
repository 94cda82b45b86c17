"""Staff sign-in: password then single-use TOTP, throttling per account, server-side sessions."""

from __future__ import annotations

import re

from tests.conftest import csrf_from, make_staff, post_form, sign_in
from transitions.crypto import current_code


def _error_text(html: str) -> str:
    found = re.search(r'<ul class="govuk-list govuk-error-summary__list">(.*?)</ul>', html, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip() if found else ""


def test_correct_password_without_code_creates_no_staff_session(client, deps):
    account = make_staff(deps)
    response = post_form(client, "/sign-in", {"email": account.email, "password": account.password})
    assert response.headers["Location"] == "/sign-in/code"
    assert client.get("/").headers["Location"].startswith("/sign-in")


def test_wrong_code_is_refused_with_a_gov_uk_error(client, deps):
    account = make_staff(deps)
    post_form(client, "/sign-in", {"email": account.email, "password": account.password})
    response = post_form(client, "/sign-in/code", {"code": "000000"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "There is a problem" in html
    assert "The code is not correct" in _error_text(html)
    assert client.get("/").status_code == 302


def test_replayed_totp_code_is_refused_also_with_spaces(client, app, deps, clock):
    account = make_staff(deps)
    code = current_code(account.totp_secret, clock.now())
    post_form(client, "/sign-in", {"email": account.email, "password": account.password})
    assert post_form(client, "/sign-in/code", {"code": code}).status_code == 302
    client.post("/sign-out", data={"csrf_token": csrf_from(client.get("/").get_data(as_text=True))})

    other = app.test_client()
    post_form(other, "/sign-in", {"email": account.email, "password": account.password})
    spaced = f"{code[:3]} {code[3:]}"
    response = post_form(other, "/sign-in/code", {"code": spaced})
    assert response.status_code == 200
    assert "already been used" in _error_text(response.get_data(as_text=True))


def test_unknown_user_and_wrong_password_get_identical_responses(client, deps):
    account = make_staff(deps)
    wrong = post_form(client, "/sign-in", {"email": account.email, "password": "not the right password at all"})
    unknown = post_form(client, "/sign-in", {"email": "nobody@example-council.test",
                                             "password": "not the right password at all"})
    assert wrong.status_code == unknown.status_code == 200

    def body(response, email):
        html = response.get_data(as_text=True).replace(email, "EMAIL")
        html = re.sub(r'nonce="[^"]+"', "NONCE", html)
        return re.sub(r'value="[^"]*"(?=[^>]*name="csrf_token")|(?<=name="csrf_token")[^>]*', "", html)

    assert body(wrong, account.email) == body(unknown, "nobody@example-council.test")
    assert "Enter a correct email address and password" in _error_text(wrong.get_data(as_text=True))


def test_sixth_wrong_password_is_throttled_for_that_account_only(client, app, deps, clock):
    victim = make_staff(deps)
    colleague = make_staff(deps, role="cla_nurse")
    for _ in range(5):
        response = post_form(client, "/sign-in", {"email": victim.email, "password": "wrong password guess 123"})
        assert response.status_code == 200
    sixth = post_form(client, "/sign-in", {"email": victim.email, "password": victim.password})
    assert sixth.status_code == 429
    assert "too many attempts" in _error_text(sixth.get_data(as_text=True))

    # Another account signs in from the same address at the same time (never a global lock).
    other = app.test_client()
    sign_in(other, colleague, clock)
    assert other.get("/").status_code == 200

    # After the lock-out the right password works again.
    clock.advance(minutes=16)
    sign_in(app.test_client(), victim, clock)


def test_unknown_email_is_throttled_the_same_way(client):
    for _ in range(5):
        post_form(client, "/sign-in", {"email": "ghost@example-council.test", "password": "wrong password guess 1"})
    assert post_form(client, "/sign-in", {"email": "ghost@example-council.test",
                                          "password": "wrong password guess 1"}).status_code == 429


def test_session_id_changes_at_sign_in_and_cookie_is_opaque(client, deps, clock):
    account = make_staff(deps)
    client.get("/sign-in")
    before = client.get_cookie("__Host-session").value
    sign_in(client, account, clock)
    cookie = client.get_cookie("__Host-session")
    assert cookie.value != before
    assert cookie.secure and cookie.http_only and cookie.same_site == "Strict" and cookie.path == "/"
    assert cookie.domain in ("", "localhost", None)
    assert len(cookie.value) >= 43 and "." not in cookie.value  # random id, not a signed payload


def test_session_cookie_replayed_after_sign_out_is_refused(client, app, deps, clock):
    account = make_staff(deps)
    sign_in(client, account, clock)
    stolen = client.get_cookie("__Host-session").value
    response = client.post("/sign-out", data={"csrf_token": csrf_from(client.get("/").get_data(as_text=True))})
    assert response.status_code == 302
    assert "You have signed out." in client.get(response.headers["Location"]).get_data(as_text=True)
    assert client.get_cookie("__Host-session").value != stolen
    attacker = app.test_client()
    attacker.set_cookie("__Host-session", stolen, domain="localhost", secure=True)
    assert attacker.get("/", base_url="https://localhost").headers["Location"].startswith("/sign-in")


def test_get_never_signs_anyone_out(client, deps, clock):
    account = make_staff(deps)
    sign_in(client, account, clock)
    assert client.get("/sign-out").status_code == 405
    assert client.get("/account/sign-out-everywhere").status_code == 405
    assert client.get("/").status_code == 200


def test_sign_out_without_csrf_token_changes_nothing(client, deps, clock):
    account = make_staff(deps)
    sign_in(client, account, clock)
    response = client.post("/sign-out", data={})
    assert response.status_code == 400
    assert "Your session has expired or the form was out of date" in response.get_data(as_text=True)
    assert client.get("/").status_code == 200


def test_idle_timeout_and_absolute_lifetime(client, deps, clock):
    account = make_staff(deps)
    sign_in(client, account, clock)
    clock.advance(minutes=29)
    assert client.get("/").status_code == 200
    clock.advance(minutes=31)
    assert client.get("/").status_code == 302

    sign_in(client, account, clock)
    for _ in range(21):  # busy all shift: a request every 29 minutes for over 10 hours
        clock.advance(minutes=29)
        response = client.get("/")
    assert response.status_code == 302


def test_password_change_ends_other_sessions_but_keeps_this_one(client, app, deps, clock):
    account = make_staff(deps)
    sign_in(client, account, clock)
    laptop = app.test_client()
    sign_in(laptop, account, clock)
    response = post_form(client, "/account", {"current": account.password,
                                              "password": "new harbour lantern kettle",
                                              "confirm": "new harbour lantern kettle"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    assert laptop.get("/").status_code == 302


def test_sign_out_everywhere(client, app, deps, clock):
    account = make_staff(deps)
    sign_in(client, account, clock)
    phone = app.test_client()
    sign_in(phone, account, clock)
    response = post_form(client, "/account/sign-out-everywhere", {}, page="/account")
    assert response.status_code == 302
    assert phone.get("/").status_code == 302
    assert client.get("/").status_code == 302


def test_bad_input_keeps_what_was_typed(client):
    long_email = "a" * 300 + "@example.gov.uk"
    response = post_form(client, "/sign-in", {"email": long_email, "password": ""})
    html = response.get_data(as_text=True)
    assert "Email address must be 254 characters or fewer" in html
    assert "Enter your password" in html
    assert f'value="{long_email}"' in html
    assert "<title>Error: Sign in" in html


def test_open_redirect_after_sign_in_is_refused(client, deps, clock):
    account = make_staff(deps)
    html = client.get("/sign-in?next=//evil.example/x").get_data(as_text=True)
    client.post("/sign-in?next=//evil.example/x", data={"email": account.email, "password": account.password,
                                                        "csrf_token": csrf_from(html)})
    response = post_form(client, "/sign-in/code", {"code": current_code(account.totp_secret, clock.now())})
    assert response.headers["Location"] == "/"


def test_unknown_email_costs_the_same_argon2_work_as_a_wrong_password(client, deps, monkeypatch):
    account = make_staff(deps)
    calls = []
    hasher = deps.hasher
    real_verify, real_dummy = hasher.verify, hasher.dummy_verify
    monkeypatch.setattr(hasher, "verify", lambda h, p: calls.append("verify") or real_verify(h, p))
    monkeypatch.setattr(hasher, "dummy_verify", lambda p: calls.append("dummy") or real_dummy(p))
    post_form(client, "/sign-in", {"email": "nobody@example-council.test", "password": "a wrong password here"})
    post_form(client, "/sign-in", {"email": account.email, "password": "a wrong password here"})
    assert calls == ["dummy", "verify"]
