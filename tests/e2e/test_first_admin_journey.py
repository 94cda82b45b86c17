"""The first administrator's journey in headless Chromium against a real gunicorn process.

create-admin link -> password -> authenticator -> sign in -> add a team -> invite a user (with error states)
-> tick sends the invitation over SMTP -> sign out -> the invitee sets up their account and signs in.
axe-core runs on every page the browser shows; console errors and CSP violations fail the test.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import SmtpSink
from tests.e2e.conftest import BrowserAudit, LiveServer, PageReport, skip_without_browser

pytestmark = [pytest.mark.e2e, skip_without_browser]

ADMIN_EMAIL = "admin@example-council.test"
ADMIN_PASSWORD = "amber kettle harbour lantern"
SAM_EMAIL = "sam.okafor@example-council.test"
SAM_PASSWORD = "violet meadow copper anchor"
TEAM = "Leaving Care North"


def navigate(page: Page, audit: BrowserAudit, action: Callable[[], Any]) -> PageReport:
    """Do something that loads a new document, wait for it, and audit it."""
    with page.expect_event("load"):
        action()
    return audit.check(page)


def open_page(page: Page, audit: BrowserAudit, url: str) -> PageReport:
    response = page.goto(url)
    assert response is not None and response.status == 200, f"GET {url} -> {response and response.status}"
    return audit.check(page)


def click_button(page: Page, audit: BrowserAudit, name: str) -> PageReport:
    return navigate(page, audit, lambda: page.get_by_role("button", name=name, exact=True).click())


def expect_heading(page: Page, text: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text(text)


def expect_success_banner(page: Page, text: str) -> None:
    banner = page.locator(".govuk-notification-banner--success")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(text)


def set_up_account(page: Page, audit: BrowserAudit, setup_url: str, password: str) -> pyotp.TOTP:
    """Open a set-up link, create a password and enrol the authenticator; ends on Sign in."""
    open_page(page, audit, setup_url)
    expect_heading(page, "Create a password")
    page.get_by_label("Create a password", exact=True).fill(password)
    page.get_by_label("Confirm password", exact=True).fill(password)
    click_button(page, audit, "Continue")

    expect_heading(page, "Set up your authenticator app")
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "").strip()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    totp = pyotp.TOTP(secret)
    page.get_by_label("Enter the 6-digit code your app shows").fill(totp.now())
    click_button(page, audit, "Finish setting up")

    expect_heading(page, "Sign in")
    expect_success_banner(page, "Your account is ready")
    return totp


def sign_in(page: Page, audit: BrowserAudit, email: str, password: str, totp: pyotp.TOTP) -> None:
    page.get_by_label("Email address", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    click_button(page, audit, "Continue")
    expect_heading(page, "Enter the code from your authenticator app")
    # Each code works once and enrolment used the current step, so type the next step's code: it is
    # newer than the last one used and within the ±1 step the server accepts.
    page.get_by_label("Code from your authenticator app").fill(totp.at(time.time() + 30))
    click_button(page, audit, "Sign in")


def error_summary_items(page: Page) -> list[str]:
    return [t.strip() for t in page.locator(".govuk-error-summary__list li").all_inner_texts()]


def expect_error_state(page: Page, messages: list[str]) -> None:
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_be_visible()
    expect(summary.get_by_role("heading")).to_have_text("There is a problem")
    expect(summary).to_be_focused()  # GOV.UK Frontend moves focus to the summary
    assert error_summary_items(page) == messages
    assert page.title().startswith("Error: "), page.title()
    for message in messages:  # each message is also shown next to its field
        expect(page.locator(".govuk-error-message", has_text=message)).to_have_count(1)


def test_first_admin_invites_a_social_worker_who_signs_in(
        live_server: LiveServer, smtp_server: SmtpSink, chromium: Any, browser_audit: BrowserAudit) -> None:
    audit = browser_audit
    base = live_server.base_url

    # 2. The operator creates the first administrator and gets a one-time set-up link.
    created = live_server.cli("create-admin", ADMIN_EMAIL, "--name", "Alex Morgan")
    match = re.search(re.escape(base) + r"/setup/\S+", created.stdout)
    assert match, created.stdout
    admin_link = match.group(0)

    admin_context = chromium.new_context(ignore_https_errors=True, base_url=base)
    audit.watch(admin_context)
    try:
        page = admin_context.new_page()

        # 3. Set up and sign in as the administrator.
        admin_totp = set_up_account(page, audit, admin_link, ADMIN_PASSWORD)
        sign_in(page, audit, ADMIN_EMAIL, ADMIN_PASSWORD, admin_totp)
        expect_heading(page, "Welcome, Alex Morgan")
        (cookie,) = admin_context.cookies()
        assert (cookie["name"], cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == (
            "__Host-session", True, True, "Strict")

        # A team for the invitee.
        navigate(page, audit, lambda: page.get_by_role("link", name="Teams", exact=True).click())
        expect_heading(page, "Teams")
        page.get_by_label("Team name").fill(TEAM)
        click_button(page, audit, "Add team")
        expect_success_banner(page, f"Team {TEAM} added.")

        # 4. Users -> Invite a user: empty form, then a malformed email, then a correct one.
        navigate(page, audit, lambda: page.get_by_role("link", name="Users", exact=True).click())
        expect_heading(page, "Users")
        navigate(page, audit, lambda: page.get_by_role("button", name="Invite a user").click())
        expect_heading(page, "Invite a user")

        click_button(page, audit, "Send invitation")
        expect_error_state(page, ["Enter the person's full name", "Enter the person's work email address",
                                  "Select the person's role", "Select a team"])

        page.get_by_label("Full name").fill("Sam Okafor")
        page.get_by_label("Work email address").fill("sam.okafor@")
        page.get_by_label("Social worker", exact=True).check()
        page.get_by_label("Team", exact=True).select_option(label=TEAM)
        click_button(page, audit, "Send invitation")
        expect_error_state(page, ["Enter an email address in the correct format, like name@example.gov.uk"])
        expect(page.get_by_label("Full name")).to_have_value("Sam Okafor")
        expect(page.get_by_label("Work email address")).to_have_value("sam.okafor@")
        expect(page.get_by_label("Social worker", exact=True)).to_be_checked()
        expect(page.get_by_label("Team", exact=True).locator("option:checked")).to_have_text(TEAM)

        page.get_by_label("Work email address").fill(SAM_EMAIL)
        click_button(page, audit, "Send invitation")
        expect_heading(page, "Users")
        expect_success_banner(page, "Invitation queued for Sam Okafor")
        assert smtp_server.messages == []  # queued in the outbox, not sent from the request

        # 5. The periodic job delivers the invitation to the real SMTP server.
        ticked = live_server.cli("tick")
        assert "outbox: 1 sent" in ticked.stdout, ticked.stdout
        (message,) = smtp_server.wait_for(1)
        assert message["To"] == SAM_EMAIL
        text_part = message.get_body(preferencelist=("plain",))
        assert text_part is not None
        body = text_part.get_content()
        assert not re.search(r"\bchild", message["Subject"] + "\n" + body, re.IGNORECASE), body
        match = re.search(re.escape(base) + r"/setup/\S+", body)
        assert match, body
        sam_link = match.group(0)

        # 6. The administrator signs out with the header button (a POST form).
        click_button(page, audit, "Sign out")
        expect_heading(page, "Sign in")
        expect_success_banner(page, "You have signed out.")
        # The sign-in page starts a new anonymous session; the signed-in one is gone on the server.
        (after,) = admin_context.cookies()
        assert after["name"] == "__Host-session" and after["value"] != cookie["value"]
        status, headers = live_server.get("/", {"Cookie": f"__Host-session={cookie['value']}"})
        assert status == 302 and headers["Location"].startswith("/sign-in"), (status, headers)
    finally:
        admin_context.close()

    sam_context = chromium.new_context(ignore_https_errors=True, base_url=base)
    audit.watch(sam_context)
    try:
        page = sam_context.new_page()
        sam_totp = set_up_account(page, audit, sam_link, SAM_PASSWORD)
        sign_in(page, audit, SAM_EMAIL, SAM_PASSWORD, sam_totp)
        expect_heading(page, "Welcome, Sam Okafor")
        expect(page.locator("main")).to_contain_text(f"You are signed in as Social worker, {TEAM}.")
        expect(page.locator(".app-account-bar")).to_contain_text("Signed in as Sam Okafor (Social worker)")
        expect(page.get_by_role("link", name="Users", exact=True)).to_have_count(0)
    finally:
        sam_context.close()

    print("\naxe-core results per page:\n" + audit.summary())
    audit.assert_clean()
