"""Reports (issue 6 part 6) in headless Chromium against a real gunicorn, on the demo data as `make run` loads it
(`cla-transitions demo`, which adds the fictional history of past moves).

The North team manager opens Reports from the navigation: every chart is an image named by its visible caption
and is followed by its data table; the overdue confirmation links to its transition; no child's name is on the
page. They download one table as CSV, try a period that is not a real date (the error summary, what they typed
kept), then a real one, and are refused the South team's reports. The auditor sees the same reports without the
links into transitions. axe-core finds no violation on any page; no console error, no CSP violation.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import create_engine, text

from tests.e2e.conftest import BrowserAudit, LiveServer, skip_without_browser
from tests.e2e.test_accessibility_sweep import ACCOUNTS, TEAM_MANAGER, expect_errors, open_status, sign_in
from tests.e2e.test_first_admin_journey import click_button, expect_heading, navigate

pytestmark = [pytest.mark.e2e, skip_without_browser]

AUDITOR = ACCOUNTS["auditor@example-council.test"]
CHARTS = {  # chart -> its table's caption
    "kinds": "Table: transitions by kind",
    "on_time": "Table: packs sent by their due time",
    "confirmation": "Table: time from sending a pack to its confirmation",
    "sections": "Table: sections missing or out of date when the packs were sent",
    "escalations": "Table: escalations raised and resolved",
    "requests": "Table: requests for more information and the time to answer them",
}
CHILD_NAMES = ("Jade", "Carter", "Leo", "Fraser", "Amira", "Hassan", "Tyler", "Brooks")


def team_id(server: LiveServer, name: str) -> str:
    engine = create_engine(server.env["TRANSITIONS_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT id FROM team WHERE name = :n"), {"n": name}).scalar_one()
    finally:
        engine.dispose()
    value = str(found)
    return value if "-" in value else f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"


def expect_charts_with_their_tables(page: Page) -> None:
    for name, caption in CHARTS.items():
        chart = page.locator(f"svg#chart-{name}")
        expect(chart).to_have_attribute("role", "img")
        expect(page.get_by_role("img", name=re.compile(r"^Chart: "))).to_have_count(len(CHARTS))
        label = page.locator(f"#chart-{name}-caption")
        expect(label).to_be_visible()
        expect(chart).to_have_accessible_name(label.inner_text())
        # The element after the chart's block is its data table, with data in it
        table = page.locator(f"div.govuk-grid-row:has(svg#chart-{name}) + table.govuk-table")
        expect(table.locator("caption")).to_have_text(caption)
        assert table.locator("tbody tr").count() >= 1, name
        # Every bar is drawn with attributes only (the CSP allows no inline style)
        assert chart.evaluate("el => el.querySelectorAll('[style]').length") == 0
        assert chart.locator("rect").count() >= 1, name


def team_manager_reads_the_reports(page: Page, audit: BrowserAudit, server: LiveServer) -> None:
    navigate(page, audit, lambda: page.get_by_role("link", name="Reports", exact=True).click())
    expect_heading(page, "Reports")
    expect(page.locator("#report-scope")).to_contain_text("Children in Care North")
    expect_charts_with_their_tables(page)
    overdue = page.get_by_role("table", name="Table: confirmations overdue now")
    expect(overdue.locator("tbody tr")).to_have_count(1)
    expect(overdue).to_contain_text("Looked-after children's nurse")
    expect(overdue.get_by_role("link", name=re.compile(r"^Open the transition for pack HP-"))).to_have_count(1)
    overrides = page.get_by_role("table", name="Table: overrides used, with their reasons")
    expect(overrides).to_contain_text("No photo on file yet")
    main = page.locator("main").inner_text()
    for name in CHILD_NAMES:
        assert name not in main, name

    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile(r"^Download this table \(CSV\)\W+transitions by kind$")).click()
    download = info.value
    assert download.failure() is None, download.failure()
    assert re.fullmatch(r"cla-transitions-kinds-\d{4}-\d\d-\d\d-to-\d{4}-\d\d-\d\d\.csv",
                        download.suggested_filename), download.suggested_filename
    content = download.path().read_text(encoding="utf-8-sig")
    table = list(csv.reader(io.StringIO(content)))
    assert table[0] == ["Kind of transition", "Transitions", "Packs sent", "Cancelled"]
    kinds = {row[0]: int(row[1]) for row in table[1:]}
    assert kinds["Temporary move (respite, short break or holiday)"] == 2, kinds
    assert kinds["Hospital admission (A&E or children's ward)"] == 2, kinds

    page.get_by_role("group", name="From").get_by_label("Day").fill("31")
    page.get_by_role("group", name="From").get_by_label("Month").fill("2")
    page.get_by_role("group", name="From").get_by_label("Year").fill("2026")
    click_button(page, audit, "Show the reports")
    expect_heading(page, "Reports")
    expect_errors(page, "The start date must be a real date, like 1 4 2026")
    expect(page.get_by_role("group", name="From").get_by_label("Day")).to_have_value("31")
    expect(page.get_by_role("img")).to_have_count(0)

    page.get_by_role("group", name="From").get_by_label("Day").fill("1")
    click_button(page, audit, "Show the reports")
    expect(page.locator(".govuk-error-summary")).to_have_count(0)
    expect(page.locator("#report-scope")).to_contain_text("1 February 2026 to")

    open_status(page, audit, f"/reports?team={team_id(server, 'Children in Care South')}", 403)
    expect_heading(page, "You do not have permission to view this page")


def auditor_reads_the_reports(page: Page, audit: BrowserAudit) -> None:
    navigate(page, audit, lambda: page.get_by_role("link", name="Reports", exact=True).click())
    expect_heading(page, "Reports")
    expect(page.locator("#report-scope")).to_contain_text("All teams")
    expect_charts_with_their_tables(page)
    overdue = page.get_by_role("table", name="Table: confirmations overdue now")
    expect(overdue.locator("tbody tr")).to_have_count(2)
    expect(page.locator("main a[href^='/transitions/']")).to_have_count(0)


def test_managers_and_auditors_read_the_reports_on_the_demo_data(live_server: LiveServer, chromium: Any,
                                                                 browser_audit: BrowserAudit) -> None:
    audit = browser_audit
    assert "item(s) added" in live_server.cli("demo").stdout  # as `make run` loads it: with the history
    contexts: list[BrowserContext] = []

    def signed_in(account: Any) -> Page:
        context = chromium.new_context(ignore_https_errors=True, base_url=live_server.base_url,
                                       accept_downloads=True)
        contexts.append(context)
        audit.watch(context)
        return sign_in(context, audit, account)

    try:
        team_manager_reads_the_reports(signed_in(TEAM_MANAGER), audit, live_server)
        auditor_reads_the_reports(signed_in(AUDITOR), audit)
    finally:
        for context in contexts:
            context.close()
    print("\naxe-core results per page:\n" + audit.summary())
    assert len(audit.reports) >= 8, audit.summary()
    audit.assert_clean()
