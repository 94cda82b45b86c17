"""An emergency out-of-area move in headless Chromium against a real gunicorn process (issue 4, "Done when").

On the demo data, the South social worker opens Amira's record (her photo is 8 months old), starts an
"Emergency or unplanned move" to Moorview House, a children's home in North Yorkshire while Amira's responsible
authority is Cumberland, first with the time missing (the error summary), then complete. The checklist shows,
without anyone typing them, the host local authority and police force and the three required recipients; the
stale photo blocks "Mark as ready", and the social worker has no override form (and the server refuses one).
A senior manager overrides the photo with a reason; the social worker then marks the move ready and, as it is
an emergency with a recorded reason, sent, while the host area's approvals show as due afterwards.
axe-core runs on every page the browser shows; console errors and CSP violations fail.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.e2e.conftest import BrowserAudit, LiveServer, PageReport, skip_without_browser
from tests.e2e.test_accessibility_sweep import ACCOUNTS, SOUTH_WORKER, expect_errors, load_demo_records, sign_in
from tests.e2e.test_child_record_journey import field_group
from tests.e2e.test_first_admin_journey import (
    click_button,
    error_summary_items,
    expect_heading,
    expect_success_banner,
    navigate,
    open_page,
)
from transitions.web.timefmt import UK, date_time

pytestmark = [pytest.mark.e2e, skip_without_browser]

# The rule is "a team manager or above" (services.transitions.MANAGERS). The demo team manager manages the
# North team and Amira is a South child, so the senior manager, who is above every team, overrides: no
# demo data is added for this test.
MANAGER = ACCOUNTS["senior.manager@example-council.test"]

CHILD = "Amira"
CHILD_H1 = "Amira (Amira Noor Hassan)"
KIND = "Emergency or unplanned move"
HOME = "Moorview House (demo children's home)"
HOST_LA = "North Yorkshire Council"
HOST_POLICE = "North Yorkshire Police"
PHOTO = "Photo and description"
EMERGENCY_REASON = "Carers asked for her to leave tonight after an assault; the home has a bed tonight."
OVERRIDE_REASON = "New photo to be taken on arrival by the home and added tomorrow; description is current."


#: Every id used more than once in the document. axe-core's duplicate-id rules are deprecated (WCAG 4.1.1 is
#: obsolete) and outside AXE_TAGS, but a label's `for` still reaches only the first element with the id.
DUPLICATE_IDS = """() => {
  const seen = {};
  for (const el of document.querySelectorAll('[id]')) seen[el.id] = (seen[el.id] || 0) + 1;
  return Object.entries(seen).filter(([, n]) => n > 1).map(([id, n]) => `${id} x${n}`);
}"""


@dataclass
class TransitionAudit(BrowserAudit):
    """BrowserAudit that also requires unique ids on every page it audits."""

    duplicate_ids: list[str] = field(default_factory=list)

    def check(self, page: Any) -> PageReport:
        report = super().check(page)
        self.duplicate_ids += [f"{page.url}: {d}" for d in page.evaluate(DUPLICATE_IDS)]
        return report


def audit_with_details_open(page: Page, audit: BrowserAudit) -> None:
    """Open every <details> on the page (the add-recipient and cancel forms) and audit the page again."""
    closed = page.locator("main details:not([open]) > summary")
    assert closed.count() > 0, "nothing to open"
    while closed.count():
        closed.first.click()
    audit.check(page)


def expect_checklist(page: Page, status: str) -> None:
    """The transition's checklist page: its <h1> is the kind and a status tag."""
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{KIND} {status}")


def summary_value(page: Page, key: str) -> Locator:
    row = page.locator(".govuk-summary-list__row").filter(
        has=page.locator(".govuk-summary-list__key", has_text=re.compile(f"^{re.escape(key)}$")))
    return row.locator(".govuk-summary-list__value")


def section_row(page: Page, title: str) -> Locator:
    table = page.get_by_role("table", name="Sections this transition needs and their state")
    return table.locator("tbody tr").filter(has=page.get_by_role("link", name=title, exact=True))


def recipient_row(page: Page, recipient_type: str) -> Locator:
    table = page.get_by_role("table", name="Recipients, what each receives and when it is due")
    return table.locator("tbody tr").filter(has=page.locator("td:first-child > strong:first-child",
                                                             has_text=re.compile(f"^{re.escape(recipient_type)}$")))


def expect_important(page: Page, text: str) -> None:
    banner = page.get_by_role("region", name="Important")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(text)


# ---- the South social worker starts the move ----------------------------------------------------------------


def start_the_move(page: Page, audit: BrowserAudit, when: dt.datetime) -> str:
    """From the child's list to the new transition's checklist; returns the checklist's path."""
    navigate(page, audit, lambda: page.get_by_role("link", name="Children", exact=True).click())
    expect_heading(page, "Children")
    navigate(page, audit, lambda: page.locator("main").get_by_role("link", name=CHILD, exact=True).click())
    expect_heading(page, CHILD_H1)
    navigate(page, audit, lambda: page.get_by_role("button", name="Start a move or admission").click())
    expect_heading(page, "Start a transition")

    field_group(page, "What is happening?").get_by_label(KIND, exact=True).check()
    destination = page.get_by_label("Where is the child going?", exact=True)
    option = destination.locator("option").filter(has_text=HOME)
    expect(option).to_have_count(1)
    destination.select_option(value=option.get_attribute("value"))
    date = field_group(page, "Date of the move or admission")
    date.get_by_label("Day", exact=True).fill(str(when.day))
    date.get_by_label("Month", exact=True).fill(str(when.month))
    date.get_by_label("Year", exact=True).fill(str(when.year))
    field_group(page, "Is it planned or an emergency?").get_by_label("Emergency or unplanned", exact=True).check()
    page.get_by_label("Why can it not wait? (emergencies only)", exact=True).fill(EMERGENCY_REASON)
    field_group(page, "If the child is moving out of area: is the new area next to the child's own local "
                      "authority?").get_by_label("Yes, it is next to it (adjoining)", exact=True).check()

    # The time is missing: the form comes back with the error summary and keeps everything typed.
    click_button(page, audit, "Start the transition")
    expect_heading(page, "Start a transition")
    expect_errors(page, "Enter the time, like 14:30 or 2:30pm")
    assert error_summary_items(page) == ["Enter the time, like 14:30 or 2:30pm"], error_summary_items(page)
    expect(page.get_by_label(KIND, exact=True)).to_be_checked()
    expect(page.get_by_label("Emergency or unplanned", exact=True)).to_be_checked()
    expect(page.get_by_label("Yes, it is next to it (adjoining)", exact=True)).to_be_checked()
    expect(page.get_by_label("Why can it not wait? (emergencies only)", exact=True)).to_have_value(EMERGENCY_REASON)
    expect(page.get_by_label("Where is the child going?", exact=True).locator("option:checked")).to_contain_text(HOME)

    page.get_by_label("Time", exact=True).fill(when.strftime("%H:%M"))
    click_button(page, audit, "Start the transition")
    assert not error_summary_items(page), error_summary_items(page)
    expect_checklist(page, "Draft")
    expect_success_banner(page, "Transition started.")
    path = urlsplit(page.url).path
    assert path.startswith("/transitions/"), path
    return path


def check_the_derived_facts(page: Page, when: dt.datetime) -> None:
    """What the service worked out from the destination: nobody typed the host area or its police."""
    expect(summary_value(page, "When")).to_have_text(f"{date_time(when)} – emergency")
    expect(summary_value(page, "Going to")).to_have_text(HOME)
    expect(summary_value(page, "Host local authority")).to_have_text(HOST_LA)
    expect(summary_value(page, "Host police force")).to_have_text(HOST_POLICE)
    expect(summary_value(page, "Out of area")).to_have_text("Yes")
    expect(summary_value(page, "At a distance (not adjoining)")).to_have_text("No")
    expect(summary_value(page, "Children's home")).to_have_text("Yes")
    expect(summary_value(page, "Why it could not wait")).to_have_text(EMERGENCY_REASON)

    for recipient_type, organisation in (("Local authority for the new area", HOST_LA),
                                         ("Police force for the new area", HOST_POLICE),
                                         ("Receiving placement", HOME)):
        row = recipient_row(page, recipient_type)
        expect(row).to_have_count(1)
        expect(row.locator("td").first).to_contain_text(organisation)
        expect(row.locator("td").first.locator(".govuk-tag")).to_have_text("Required")


def photo_blocks_and_worker_cannot_override(page: Page, audit: BrowserAudit) -> None:
    photo = section_row(page, PHOTO)
    expect(photo).to_have_count(1)
    expect(photo.locator("td").nth(1)).to_have_text("Blocking")
    expect(photo.locator("td").nth(2)).to_have_text("Out of date")
    expect(page.locator(".govuk-warning-text")).to_contain_text(f"1 blocking gap: {PHOTO}.")
    # The social worker is shown who can override, not a form to do it.
    expect(photo.locator("td").nth(3)).to_have_text("A team manager can override this with a reason")
    expect(page.locator("form[action$='/overrides']")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Override"))).to_have_count(0)

    # And the server refuses it even with a valid CSRF token (a hand-made POST, not a page the browser shows).
    token = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    response = page.request.post(page.url + "/overrides", headers={"Referer": page.url}, max_redirects=0,
                                 form={"csrf_token": token, "section": "PHOTO", "reason": OVERRIDE_REASON})
    assert response.status == 403, response.status

    click_button(page, audit, "Mark as ready")
    expect_checklist(page, "Draft")
    expect_important(page, f"Not ready: {PHOTO} must be completed or brought up to date first")


# ---- the manager overrides; the social worker carries on ----------------------------------------------------


def manager_overrides_the_photo(page: Page, audit: BrowserAudit, path: str) -> None:
    open_page(page, audit, path)
    expect_checklist(page, "Draft")
    photo = section_row(page, PHOTO)
    expect(photo.get_by_text("A team manager can override this with a reason")).to_have_count(0)
    audit_with_details_open(page, audit)  # the manager's page also has the approval decision forms
    for approval in ("nominated officer's approval (reg 11)",
                     "host local authority notified before approval (reg 11)"):
        expect(page.get_by_role("button", name=f"Record {approval}", exact=True)).to_have_count(1)
    photo.get_by_label(f"Reason to override {PHOTO.lower()}", exact=True).fill(OVERRIDE_REASON)
    navigate(page, audit, lambda: photo.get_by_role("button", name=f"Override {PHOTO.lower()}", exact=True).click())
    expect_checklist(page, "Draft")
    expect_success_banner(page, "Override recorded with your reason.")
    expect(section_row(page, PHOTO).locator("td").nth(2)).to_contain_text(
        f"Overridden by {MANAGER.name}: {OVERRIDE_REASON}")
    expect(page.locator(".govuk-warning-text")).to_have_count(0)


def worker_marks_it_ready_and_sent(page: Page, audit: BrowserAudit, path: str) -> None:
    open_page(page, audit, path)
    expect_checklist(page, "Draft")
    expect(section_row(page, PHOTO).locator("td").nth(2)).to_contain_text(
        f"Overridden by {MANAGER.name}: {OVERRIDE_REASON}")
    expect(section_row(page, PHOTO).locator("td").nth(3)).to_have_text("")

    click_button(page, audit, "Mark as ready")
    expect_checklist(page, "Ready")  # the host area's approvals are still outstanding
    expect_success_banner(page, "The transition is now ready.")

    # An emergency with a recorded reason goes ahead; its approvals fall due afterwards.
    click_button(page, audit, "Send the packs")
    expect_checklist(page, "Sent")
    expect_success_banner(page, "The transition is now sent.")
    for title in ("Nominated officer", "Host local authority notified"):
        card = page.locator(".govuk-summary-card").filter(
            has=page.locator(".govuk-summary-card__title", has_text=title))
        expect(card).to_have_count(1)
        expect(card).to_contain_text("Not yet recorded. Emergency: due by ")
    audit_with_details_open(page, audit)

    navigate(page, audit, lambda: page.get_by_role("link", name=f"Back to {CHILD}'s record").click())
    expect_heading(page, CHILD_H1)
    expect(page.locator("main").get_by_role("link", name=f"{KIND} – {HOME}")).to_be_visible()


def test_emergency_out_of_area_move_derives_recipients_and_only_a_manager_overrides_the_stale_photo(
        live_server: LiveServer, chromium: Any) -> None:
    audit = TransitionAudit()
    load_demo_records(live_server)
    # Tonight (UK time), on the hour: an emergency move is often already under way.
    when = dt.datetime.now(UK).replace(hour=21, minute=30, second=0, microsecond=0)
    contexts: list[BrowserContext] = []

    def signed_in(email: str) -> Page:
        context = chromium.new_context(ignore_https_errors=True, base_url=live_server.base_url)
        contexts.append(context)
        audit.watch(context)
        return sign_in(context, audit, ACCOUNTS[email])

    try:
        worker = signed_in(SOUTH_WORKER.email)
        path = start_the_move(worker, audit, when)
        check_the_derived_facts(worker, when)
        audit_with_details_open(worker, audit)
        photo_blocks_and_worker_cannot_override(worker, audit)
        manager_overrides_the_photo(signed_in(MANAGER.email), audit, path)
        worker_marks_it_ready_and_sent(worker, audit, path)
    finally:
        for context in contexts:
            context.close()

    print("\naxe-core results per page:\n" + audit.summary())
    assert audit.error_documents == set(), audit.error_documents
    assert not audit.duplicate_ids, "ids used more than once:\n  " + "\n  ".join(audit.duplicate_ids)
    audit.assert_clean()
