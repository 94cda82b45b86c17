"""Attack #66 of security.md: a recipient's browser with JavaScript switched off (a locked-down ward PC, an old
browser, a corporate policy) must still get the whole way: open the link, ask for a code, enter it, read and
download the pack, confirm receipt; and a social worker must be able to sign in and read the board that shows it.

Chromium runs with JavaScript disabled for the whole context. GOV.UK Frontend marks `<body>` with
`govuk-frontend-supported` when its script runs, so the test also proves that no script ran on any page.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pyotp
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.conftest import SmtpSink
from tests.e2e.conftest import LiveServer, skip_without_browser
from tests.e2e.test_accessibility_sweep import ACCOUNTS, SOUTH_WORKER, load_demo_records
from tests.e2e.test_pack_journey import (
    CODE_SUBJECT,
    CONFIRMED_BY,
    HOME_MAILBOX,
    LINK_SUBJECT,
    board_row,
    code_in,
    delivered,
    link_in,
    send_by_services,
    to,
)

pytestmark = [pytest.mark.e2e, pytest.mark.security, skip_without_browser]


def no_script_context(chromium: Any, server: LiveServer) -> BrowserContext:
    context: BrowserContext = chromium.new_context(ignore_https_errors=True, base_url=server.base_url,
                                                   java_script_enabled=False, accept_downloads=True)
    return context


def expect_page(page: Page, status: int, heading: str) -> None:
    expect(page.locator("h1")).to_have_text(heading)
    assert "govuk-frontend-supported" not in (page.locator("body").get_attribute("class") or ""), \
        "a script ran although JavaScript is off"


def press(page: Page, name: str, heading: str) -> None:
    """Submit a form by its button and wait for the page the server answers with (a full page load, no script)."""
    with page.expect_navigation():
        page.get_by_role("button", name=name).click()
    expect_page(page, 200, heading)


def test_a_recipient_without_javascript_opens_the_pack_and_confirms_receipt(
        live_server: LiveServer, smtp_server: SmtpSink, chromium: Any) -> None:
    load_demo_records(live_server)
    delivered(live_server, smtp_server)  # the demo's own sends
    transition_id = send_by_services(live_server)
    [message] = to(delivered(live_server, smtp_server), HOME_MAILBOX, LINK_SUBJECT)
    link = link_in(live_server, message)

    recipient_context = no_script_context(chromium, live_server)
    try:
        page = recipient_context.new_page()
        response = page.goto(link)
        assert response is not None and response.status == 200
        expect_page(page, 200, "You have been sent secure information")
        press(page, "Send me a code", "Enter the code we emailed")
        [code_email] = to(delivered(live_server, smtp_server), HOME_MAILBOX, CODE_SUBJECT)
        page.get_by_label("Code", exact=True).fill(code_in(code_email))
        press(page, "Continue", "Handover pack: Amira")
        assert urlsplit(page.url).path == "/recipient/pack"

        with page.expect_download() as info:
            page.get_by_role("link", name=re.compile(r"^Download the handover pack \(PDF, ")).click()
        assert info.value.path().read_bytes().startswith(b"%PDF-")

        press(page, "Confirm receipt", "Handover pack: Amira")  # empty: the errors, without script
        expect(page.locator(".govuk-error-summary")).to_contain_text("Enter your full name")
        name, role = CONFIRMED_BY
        page.get_by_label("Your full name", exact=True).fill(name)
        page.get_by_label("Your role", exact=True).fill(role)
        page.get_by_label(re.compile(r"I have read this pack")).check()
        press(page, "Confirm receipt", "Receipt confirmed")
        expect(page.locator("main")).to_contain_text(f"Confirmed by {name} ({role})")
    finally:
        recipient_context.close()

    staff_context = no_script_context(chromium, live_server)
    try:
        page = staff_context.new_page()
        account = ACCOUNTS[SOUTH_WORKER.email]
        page.goto("/sign-in")
        expect_page(page, 200, "Sign in")
        page.get_by_label("Email address", exact=True).fill(account.email)
        page.get_by_label("Password", exact=True).fill(account.password)
        press(page, "Continue", "Enter the code from your authenticator app")
        page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(account.totp_secret).now())
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in").click()
        page.goto(f"/transitions/{transition_id}")
        assert "govuk-frontend-supported" not in (page.locator("body").get_attribute("class") or "")
        expect(board_row(page, "Receiving placement").locator(".app-board-summary")).to_have_text("v1 confirmed")
    finally:
        staff_context.close()
