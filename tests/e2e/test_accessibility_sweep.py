"""An axe-core sweep of the staff pages that test_child_record_journey.py does not reach, on the demo data.

The demo teams, accounts, organisations and four children with full records are written to the server's
database. Then, each in their own browser context: the North social worker opens the list, Add a child (and
its errors), a child's page, profile form and history, all 14 section pages, every section form they may edit
(one with an invalid date), a section's history and comparison and a contact's form; the South social worker
searches for a North child, is refused, and breaks the glass (with and without a reason); the team manager
reads the break-glass log; the administrator goes through the organisations register; the CLA nurse opens
HEALTH and MH. Every page must have the expected status and <h1> and no axe-core violations (AXE_TAGS).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.conftest import StaffAccount
from tests.e2e.conftest import BrowserAudit, LiveServer, skip_without_browser
from tests.e2e.test_child_record_journey import field_group
from tests.e2e.test_child_record_journey import sign_in as journey_sign_in
from tests.e2e.test_first_admin_journey import (
    click_button,
    error_summary_items,
    expect_heading,
    expect_success_banner,
    navigate,
    open_page,
)
from transitions.clock import SystemClock
from transitions.services.demo import DEMO_ACCOUNTS, DemoAccount, load_demo
from transitions.services.demo_children import load_demo_children
from transitions.services.deps import build_deps
from transitions.settings import load_settings

pytestmark = [pytest.mark.e2e, skip_without_browser]

ACCOUNTS = {a.email: a for a in DEMO_ACCOUNTS}
NORTH_WORKER = ACCOUNTS["social.worker@example-council.test"]
SOUTH_WORKER = ACCOUNTS["social.worker.south@example-council.test"]
TEAM_MANAGER = ACCOUNTS["team.manager@example-council.test"]
ADMIN = ACCOUNTS["admin@example-council.test"]
NURSE = ACCOUNTS["cla.nurse@example-council.test"]

CHILD = "Jade"  # a North child in the demo data, allocated to the North social worker
CHILD_NAME = "Jade Louise Carter"
CHILD_H1 = f"{CHILD} ({CHILD_NAME})"


@dataclass(frozen=True)
class Section:
    code: str
    title: str
    edited_by: tuple[str, ...]
    date_field: tuple[str, str] | None  # (label, "invalid" error text) of its first date field


def load_demo_records(server: LiveServer) -> list[Section]:
    """The demo data, written to the server's database with the server's own settings and keys."""
    deps = build_deps(load_settings(server.env), SystemClock())
    try:
        load_demo(deps)
        load_demo_children(deps)
        found = []
        for d in deps.definitions.ordered():
            date = next((f for f in d.fields if f.type == "date"), None)
            found.append(Section(d.code, d.title, tuple(d.edited_by),
                                 (date.label, date.error("invalid")) if date else None))
    finally:
        deps.db.dispose()
    return found


def sign_in(context: BrowserContext, audit: BrowserAudit, account: DemoAccount) -> Page:
    page = context.new_page()
    journey_sign_in(page, audit, StaffAccount(uuid.uuid4(), account.email, account.password, account.totp_secret))
    expect_heading(page, f"Welcome, {account.name}")
    return page


def open_status(page: Page, audit: BrowserAudit, url: str, status: int) -> None:
    response = page.goto(url)
    assert response is not None and response.status == status, f"GET {url} -> {response and response.status}"
    audit.check(page)


def expect_errors(page: Page, *messages: str) -> None:
    """The error summary is shown and names (at least) these messages."""
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    assert page.title().startswith("Error: "), page.title()
    items = error_summary_items(page)
    assert items, "the error summary lists nothing"
    for message in messages:
        assert message in items, (message, items)


# ---- the North social worker ------------------------------------------------------------------------------


def north_social_worker(page: Page, audit: BrowserAudit, sections: list[Section]) -> str:
    """Every record page the allocated social worker sees; returns the child's URL."""
    navigate(page, audit, lambda: page.get_by_role("link", name="Children", exact=True).click())
    expect_heading(page, "Children")
    expect(page.locator("main").get_by_role("link", name=CHILD, exact=True)).to_be_visible()

    open_page(page, audit, "/children/new")
    expect_heading(page, "Add a child")
    click_button(page, audit, "Save")
    expect_heading(page, "Add a child")
    expect_errors(page)

    open_page(page, audit, "/children")
    navigate(page, audit, lambda: page.locator("main").get_by_role("link", name=CHILD, exact=True).click())
    expect_heading(page, CHILD_H1)
    child_url = urlsplit(page.url).path
    assert child_url.startswith("/children/"), child_url
    uuid.UUID(child_url.removeprefix("/children/"))

    open_page(page, audit, f"{child_url}/profile")
    expect_heading(page, "Change the child's details")
    expect(page.get_by_label("Legal name", exact=True)).to_have_value(CHILD_NAME)
    open_page(page, audit, f"{child_url}/profile/history")
    expect_heading(page, "History of the child's details")

    contact_url = ""
    for s in sections:
        open_page(page, audit, f"{child_url}/sections/{s.code}")
        expect_heading(page, s.title)
        if s.code == "CONTACTS":
            contact_url = page.get_by_role("link", name="Change Maria Carter (demo)").get_attribute("href") or ""
    editable = [s for s in sections if "social_worker" in s.edited_by]
    assert len(sections) == 14 and len(editable) == 12, (len(sections), [s.code for s in editable])
    for s in editable:
        open_page(page, audit, f"{child_url}/sections/{s.code}/edit")
        expect_heading(page, s.title)
        expect(page.get_by_role("button", name="Save", exact=True)).to_be_visible()

    # A real-looking but impossible date: the form comes back with the date's own message.
    plan = next(s for s in editable if s.code == "PLAN")
    assert plan.date_field is not None
    open_page(page, audit, f"{child_url}/sections/PLAN/edit")
    group = field_group(page, plan.date_field[0])
    group.get_by_label("Day", exact=True).fill("31")
    group.get_by_label("Month", exact=True).fill("2")
    group.get_by_label("Year", exact=True).fill("2025")
    click_button(page, audit, "Save")
    expect_heading(page, plan.title)
    expect_errors(page, plan.date_field[1])

    # A second version of VOICE, then its history and the comparison of the two versions.
    voice = next(s for s in editable if s.code == "VOICE")
    open_page(page, audit, f"{child_url}/sections/VOICE/edit")
    page.get_by_label("My views on this move", exact=True).fill("I want to stay near my school and my friends.")
    click_button(page, audit, "Save")
    assert not error_summary_items(page), error_summary_items(page)
    expect_heading(page, CHILD_H1)
    expect_success_banner(page, f"{voice.title} saved.")
    open_page(page, audit, f"{child_url}/sections/VOICE/history")
    expect_heading(page, f"History: {voice.title}")
    versions = page.get_by_role("table", name="Every saved version, newest first")
    expect(versions.locator("tbody tr td:first-child")).to_have_text(["2", "1"])
    page.get_by_label("From version", exact=True).select_option("1")
    page.get_by_label("To version", exact=True).select_option("2")
    click_button(page, audit, "Compare")
    expect_heading(page, f"History: {voice.title}")
    expect(page.get_by_role("heading", level=2, name="What changed from version 1 to version 2")).to_be_visible()
    expect(page.get_by_role("table", name="Changes between the two versions")).to_contain_text("my friends")

    assert contact_url.startswith(f"{child_url}/sections/CONTACTS/entries/"), contact_url
    open_page(page, audit, contact_url)
    expect_heading(page, "Change contact")
    expect(page.get_by_label("Full name", exact=True)).to_have_value("Maria Carter (demo)")
    return child_url


# ---- the South social worker ------------------------------------------------------------------------------


def south_social_worker(page: Page, audit: BrowserAudit, child_url: str, minutes: int) -> None:
    # Found by exact name, but only as "not allocated": no name, no link to the record itself.
    navigate(page, audit, lambda: page.get_by_role("link", name="Children", exact=True).click())
    expect_heading(page, "Children")
    page.get_by_label("Name, NHS number or local child ID", exact=True).fill(CHILD_NAME)
    click_button(page, audit, "Search")
    expect_heading(page, "Find a child")
    result = page.locator("main .govuk-inset-text")
    expect(result).to_contain_text("1 matching record is not allocated to you or your team.")
    expect(result.get_by_role("link")).to_have_text(["Request access to matching record 1 (break-glass)"])
    expect(page.locator("main").get_by_role("link", name=CHILD)).to_have_count(0)

    open_status(page, audit, child_url, 403)
    expect_heading(page, "You are not allocated to this child")
    navigate(page, audit, lambda: page.get_by_role("button", name="Give a reason to open the record").click())
    expect_heading(page, "Open a record that is not allocated to you")
    expect(page.locator(".govuk-warning-text")).to_contain_text(f"ends after {minutes} minutes")
    click_button(page, audit, "Open the record")
    expect_heading(page, "Open a record that is not allocated to you")
    expect_errors(page)
    page.get_by_label("Why do you need to see this record now?", exact=True).fill(
        "Jade has been reported missing and her team cannot be reached out of hours.")
    click_button(page, audit, "Open the record")
    expect_heading(page, CHILD_H1)
    expect(page.get_by_role("region", name="Break-glass access")).to_contain_text("read-only")


# ---- the team manager, the administrator, the CLA nurse ---------------------------------------------------


def team_manager(page: Page, audit: BrowserAudit) -> None:
    open_page(page, audit, "/break-glass")
    expect_heading(page, "Break-glass access")
    log = page.get_by_role("table", name="Break-glass access, newest first")
    expect(log).to_contain_text(SOUTH_WORKER.name)
    expect(log).to_contain_text("reported missing")


def administrator(page: Page, audit: BrowserAudit) -> None:
    open_page(page, audit, "/admin/organisations")
    expect_heading(page, "Organisations")
    open_page(page, audit, "/admin/organisations?kind=childrens_home")
    expect_heading(page, "Organisations")
    rows = page.get_by_role("table", name="Organisations").locator("tbody tr")
    expect(rows.filter(has_text="Fellside House (demo children's home)")).to_have_count(1)
    expect(rows.filter(has_text="Cumberland General Hospital")).to_have_count(0)

    open_page(page, audit, "/admin/organisations/new")
    expect_heading(page, "Add an organisation")
    click_button(page, audit, "Save")
    expect_heading(page, "Add an organisation")
    expect_errors(page)

    open_page(page, audit, "/admin/organisations?kind=childrens_home")
    expect_heading(page, "Organisations")
    navigate(page, audit, lambda: page.get_by_role("link", name="Fellside House (demo children's home)").click())
    expect_heading(page, "Change an organisation")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Fellside House (demo children's home)")


def cla_nurse(page: Page, audit: BrowserAudit, child_url: str, sections: list[Section]) -> None:
    nurse_sections = [s for s in sections if "cla_nurse" in s.edited_by]
    assert sorted(s.code for s in nurse_sections) == ["HEALTH", "MH"], [s.code for s in nurse_sections]
    for s in nurse_sections:
        open_page(page, audit, f"{child_url}/sections/{s.code}/edit")
        expect_heading(page, s.title)
        expect(page.get_by_role("button", name="Save", exact=True)).to_be_visible()


def test_every_other_staff_page_passes_axe(live_server: LiveServer, chromium: Any,
                                           browser_audit: BrowserAudit) -> None:
    audit = browser_audit
    sections = load_demo_records(live_server)
    minutes = load_settings(live_server.env).record.break_glass_minutes
    contexts: list[BrowserContext] = []

    def signed_in(account: DemoAccount) -> Page:
        """A fresh browser context (no shared cookies) signed in as this account."""
        context = chromium.new_context(ignore_https_errors=True, base_url=live_server.base_url)
        contexts.append(context)
        audit.watch(context)
        return sign_in(context, audit, account)

    try:
        child_url = north_social_worker(signed_in(NORTH_WORKER), audit, sections)
        south_social_worker(signed_in(SOUTH_WORKER), audit, child_url, minutes)
        team_manager(signed_in(TEAM_MANAGER), audit)
        administrator(signed_in(ADMIN), audit)
        cla_nurse(signed_in(NURSE), audit, child_url, sections)
    finally:
        for context in contexts:
            context.close()

    print("\naxe-core results per page:\n" + audit.summary())
    assert len(audit.reports) >= 70, len(audit.reports)
    # Pages reached by a click are checked by their <h1>; this checks their status: the only document that
    # answered 4xx or 5xx is the expected 403 for the South social worker.
    assert audit.error_documents == {live_server.base_url + child_url}, audit.error_documents
    audit.assert_clean()
