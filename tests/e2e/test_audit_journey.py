"""The audit pages in headless Chromium on the demo data (issue 6 parts 5, 6 and 7), axe-core on every page.

The auditor's navigation has Audit and no Children; the Audit page lists children by local child ID and year of
birth; a search with nothing typed shows the error summary, then Leo's local child ID finds him; his audit trail
shows the demo move's staff events, filtered to staff and then to recipients; his record itself is refused (403).
The senior manager opens Leo's record, follows "Where packs went" to the recipient map (areas, organisations,
versions), then the audit trail link. The administrator opens "Audit trail check", enters a malformed checkpoint
(error summary, the text kept), then checks the trail: intact, with a checkpoint and the last check recorded.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.conftest import BrowserAudit, LiveServer, skip_without_browser
from tests.e2e.test_accessibility_sweep import ACCOUNTS, ADMIN, expect_errors, load_demo_records, open_status, sign_in
from tests.e2e.test_first_admin_journey import click_button, expect_heading, navigate, open_page
from transitions.services.demo import DemoAccount

pytestmark = [pytest.mark.e2e, skip_without_browser]

AUDITOR = ACCOUNTS["auditor@example-council.test"]
SENIOR = ACCOUNTS["senior.manager@example-council.test"]
LEO_LOCAL_ID = "LCS-104871"
LEO_H1 = "Leo (Leo James Fraser)"


def nav_links(page: Page) -> list[str]:
    return [" ".join(t.split()) for t in page.locator(".govuk-service-navigation__list a").all_inner_texts()]


def auditor(page: Page, audit: BrowserAudit) -> str:
    """Returns the path of Leo's record (which the auditor may not open)."""
    links = nav_links(page)
    assert "Audit" in links and "Children" not in links, links
    navigate(page, audit, lambda: page.locator(".govuk-service-navigation__list").get_by_role(
        "link", name="Audit", exact=True).click())
    expect_heading(page, "Audit")
    listing = page.get_by_role("table", name="Children, newest record first")
    expect(listing.locator("tbody tr")).to_have_count(4)
    expect(listing).to_contain_text(LEO_LOCAL_ID)
    expect(page.locator("main")).not_to_contain_text("Leo")

    click_button(page, audit, "Find")
    expect_heading(page, "Audit")
    expect_errors(page, "Enter the local child ID")
    page.get_by_label("Local child ID", exact=True).fill(LEO_LOCAL_ID.lower())
    click_button(page, audit, "Find")
    found = page.get_by_role("table", name="Matching children")
    expect(found.locator("tbody tr")).to_have_count(1)
    navigate(page, audit, lambda: found.get_by_role("link").click())
    expect_heading(page, "Audit trail")
    trail_url = page.url
    events = page.locator("main table tbody tr")
    expect(page.locator("main table")).to_contain_text("Started a move or admission")
    expect(page.locator("main table")).to_contain_text("Sent a pack")

    page.get_by_label("Show", exact=True).select_option(label="All staff")
    click_button(page, audit, "Show these events")
    expect_heading(page, "Audit trail")
    expect(page.locator("main table")).not_to_contain_text("Recipient:")
    page.get_by_label("Show", exact=True).select_option(label="All recipients")
    click_button(page, audit, "Show these events")
    expect(events).to_have_count(1)
    expect(events).to_contain_text("Nothing recorded for this choice")

    child_url = "/children/" + urlsplit(trail_url).path.rsplit("/", 1)[1]
    open_status(page, audit, child_url, 403)
    expect_heading(page, "You do not have permission to view this page")
    expect(page.locator("main")).not_to_contain_text("Leo")
    return child_url


def senior_manager(page: Page, audit: BrowserAudit, child_url: str) -> None:
    open_page(page, audit, child_url)
    expect_heading(page, LEO_H1)
    navigate(page, audit, lambda: page.get_by_role("link", name="Where packs went", exact=False).click())
    expect_heading(page, "Where packs went")
    main = page.locator("main")
    expect(main.get_by_role("heading", level=2, name="North Yorkshire Council")).to_be_visible()
    expect(main.get_by_role("table", name="Moorview House (demo children's home)", exact=False)).to_contain_text(
        "Active – awaiting confirmation")
    navigate(page, audit, lambda: page.get_by_role("link", name="Back to the child's record").click())
    expect_heading(page, LEO_H1)
    navigate(page, audit, lambda: page.get_by_role("link", name="Audit trail", exact=False).click())
    expect_heading(page, "Audit trail")
    expect(page.locator("main table")).to_contain_text("Read the recipient map")


def administrator(page: Page, audit: BrowserAudit) -> None:
    navigate(page, audit, lambda: page.get_by_role("link", name="Audit trail check", exact=True).click())
    expect_heading(page, "Audit trail check")
    expect(page.locator("main")).to_contain_text("has not been checked from this page yet")
    field = page.get_by_label("Checkpoint kept outside the database (optional)", exact=True)
    field.fill("12:not-hex")
    click_button(page, audit, "Check the audit trail now")
    expect_errors(page)
    expect(field).to_have_value("12:not-hex")
    field.fill("")
    click_button(page, audit, "Check the audit trail now")
    expect_heading(page, "Audit trail check")
    expect(page.locator(".govuk-panel")).to_contain_text("The audit trail is intact")
    checkpoint = page.locator("#checkpoint-value").inner_text()
    seq, _, digest = checkpoint.partition(":")
    assert seq.isdigit() and len(digest) == 64, checkpoint
    expect(page.locator("main .govuk-summary-list")).to_contain_text("Intact")
    expect(page.locator("main .govuk-summary-list")).to_contain_text(f"{ADMIN.name}, Administrator")


def test_auditor_manager_and_administrator_use_the_audit_pages(live_server: LiveServer, chromium: Any,
                                                              browser_audit: BrowserAudit) -> None:
    audit = browser_audit
    load_demo_records(live_server)
    contexts: list[BrowserContext] = []

    def signed_in(account: DemoAccount) -> Page:
        context = chromium.new_context(ignore_https_errors=True, base_url=live_server.base_url)
        contexts.append(context)
        audit.watch(context)
        return sign_in(context, audit, account)

    try:
        child_url = auditor(signed_in(AUDITOR), audit)
        senior_manager(signed_in(SENIOR), audit, child_url)
        administrator(signed_in(ADMIN), audit)
    finally:
        for context in contexts:
            context.close()

    print("\naxe-core results per page:\n" + audit.summary())
    assert len(audit.reports) >= 15, len(audit.reports)
    assert audit.error_documents == {live_server.base_url + child_url}, audit.error_documents
    audit.assert_clean()
