"""The child's record in headless Chromium against a real gunicorn process.

A social worker finds their child by name and completes every Recommendation 7 section they may edit (RISK,
PLAN, PHOTO with a GPS-tagged JPEG, CONTACTS with a restricted contact, MISSING); a CLA nurse completes HEALTH
with a PDF health plan, changes it with a new one, is refused RISK, and reads HEALTH's history and comparison.
axe-core runs on every page the browser shows, error pages included; console errors and CSP violations fail.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from PIL import Image
from playwright.sync_api import Locator, Page, expect

from tests.conftest import StaffAccount, make_staff
from tests.e2e.conftest import BrowserAudit, LiveServer, skip_without_browser
from tests.e2e.test_first_admin_journey import (
    click_button,
    error_summary_items,
    expect_error_state,
    expect_heading,
    expect_success_banner,
    navigate,
    open_page,
)
from tests.integration.test_child_record import profile_input
from tests.unit.test_uploads import jpeg_with_metadata, one_page_pdf, pdf_bytes
from transitions.clock import SystemClock
from transitions.services import accounts, children, organisations
from transitions.services.audit import Actor
from transitions.services.deps import build_deps
from transitions.settings import load_settings

pytestmark = [pytest.mark.e2e, skip_without_browser]

CHILD_NAME = "Zoë Smith"
CHILD = "Zoë"  # the name the child likes to be called: links, captions and the page's h1
CONTACT = "Darren Fraser"


@dataclass
class Cast:
    child_id: uuid.UUID
    worker: StaffAccount
    nurse: StaffAccount


def set_up_record(server: LiveServer) -> Cast:
    """Staff and the child, written to the server's database with the server's own settings and keys."""
    deps = build_deps(load_settings(server.env), SystemClock())
    try:
        organisations.seed_reference(deps, Actor.system("e2e"))
        worker = make_staff(deps, role="social_worker", team="North")
        nurse = make_staff(deps, role="cla_nurse")
        view = accounts.get_user(deps, worker.id)
        assert view.team_id is not None
        child_id = children.create_child(
            deps, profile_input(deps, team_id=view.team_id, worker_id=worker.id, name=CHILD_NAME), view,
            Actor("staff", str(worker.id)))
    finally:
        deps.db.dispose()
    return Cast(child_id, worker, nurse)


# ---- filling the generated section forms ----------------------------------------------------------------


def field_group(page: Page, legend: str) -> Locator:
    return page.get_by_role("group", name=legend, exact=True)


def fill(page: Page, label: str, value: str) -> None:
    page.get_by_label(label, exact=True).fill(value)


def choose(page: Page, legend: str, *options: str) -> None:
    """Tick radios or checkboxes by their labels inside the fieldset with this legend."""
    for option in options:
        field_group(page, legend).get_by_label(option, exact=True).check()


def fill_date(page: Page, legend: str, day: dt.date) -> None:
    group = field_group(page, legend)
    group.get_by_label("Day", exact=True).fill(str(day.day))
    group.get_by_label("Month", exact=True).fill(str(day.month))
    group.get_by_label("Year", exact=True).fill(str(day.year))


def not_known(page: Page, field_id: str) -> None:
    """Tick the field's own "Not known – to be obtained" box (every such box has the same label)."""
    box = page.locator(f"input[type=checkbox][name='{field_id}__not_known']")
    expect(box).to_have_accessible_name("Not known – to be obtained")
    box.check()


def open_section(page: Page, audit: BrowserAudit, title: str) -> None:
    """From the child's page: the section's page, then its form."""
    navigate(page, audit, lambda: page.get_by_role("link", name=title, exact=True).click())
    expect_heading(page, title)
    action = "Change" if page.get_by_text("This section has not been completed yet.").count() == 0 else "Complete"
    navigate(page, audit, lambda: page.get_by_role("button", name=f"{action} this section").click())
    expect_heading(page, title)
    expect(page.locator(".govuk-caption-l")).to_contain_text(CHILD)


def save_section(page: Page, audit: BrowserAudit, title: str) -> None:
    click_button(page, audit, "Save")
    assert not error_summary_items(page), error_summary_items(page)
    expect_heading(page, f"{CHILD} ({CHILD_NAME})")
    expect_success_banner(page, f"{title} saved.")
    row = page.locator("tr", has=page.get_by_role("link", name=title, exact=True))
    expect(row.locator(".govuk-tag")).to_have_text("Complete")


def sign_in(page: Page, audit: BrowserAudit, account: StaffAccount) -> None:
    open_page(page, audit, "/sign-in")
    expect_heading(page, "Sign in")
    page.get_by_label("Email address", exact=True).fill(account.email)
    page.get_by_label("Password", exact=True).fill(account.password)
    click_button(page, audit, "Continue")
    expect_heading(page, "Enter the code from your authenticator app")
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(account.totp_secret).now())
    click_button(page, audit, "Sign in")


def health_plan_pdf(directory: Path, name: str, pages: int) -> Path:
    pdf = one_page_pdf()
    for _ in range(pages - 1):
        pdf.add_blank_page(page_size=(595, 842))
    path = directory / name
    path.write_bytes(pdf_bytes(pdf))
    return path


# ---- the social worker ----------------------------------------------------------------------------------


def complete_risk(page: Page, audit: BrowserAudit) -> None:
    title = "Risk summary and assessments"
    open_section(page, audit, title)
    # Saving the empty form shows every mandatory field's message (and axe checks the error state).
    click_button(page, audit, "Save")
    expect_error_state(page, ["Select the headline risks", "Enter the risk level for each headline risk",
                              "Select the overall risk level", "Enter the multi-agency risk summary",
                              "Select the agencies that contributed to this assessment"])
    assert page.title() == f"Error: {title} – child's record LCS-1 – CLA Transitions – Example Council", page.title()
    choose(page, "Headline risks", "Self-harm", "Going missing")
    fill(page, "Risk level for each headline risk", "Self-harm: high\nGoing missing: medium")
    choose(page, "Overall risk level", "High")
    fill(page, "Multi-agency risk summary",
         "Zoë has self-harmed when anxious about moves. Police and CAMHS agree the risk is high at night.")
    choose(page, "Agencies that contributed to this assessment", "Police", "Health",
           "CAMHS (child and adolescent mental health services)")
    save_section(page, audit, title)


def complete_plan(page: Page, audit: BrowserAudit, today: dt.date) -> None:
    title = "Care plan and placement plan"
    open_section(page, audit, title)
    fill(page, "Care plan summary", "Long-term foster care; keep her at the same school.")
    fill_date(page, "Date the care plan was last updated", today - dt.timedelta(days=20))
    not_known(page, "placement_plan_doc")  # the signed placement plan is still to come
    fill(page, "Purpose of the placement and how long it is expected to last", "Long-term, until 18.")
    save_section(page, audit, title)
    # Saved as a gap, not as a file: the child's page names it.
    row = page.locator("tr", has=page.get_by_role("link", name=title, exact=True))
    expect(row.locator(".app-gaps")).to_have_text("1 gap: Placement plan")


def complete_photo(page: Page, audit: BrowserAudit, today: dt.date, tmp_path: Path) -> None:
    title = "Photo and description"
    jpeg = tmp_path / "IMG_0042.jpg"
    jpeg.write_bytes(jpeg_with_metadata())
    open_section(page, audit, title)
    page.get_by_label("Photo of the child", exact=True).set_input_files(str(jpeg))
    fill_date(page, "Date the photo was taken", today)
    fill(page, "Height", "150cm")
    fill(page, "Build", "Slim")
    fill(page, "Hair colour and style", "Brown, long, usually tied back")
    not_known(page, "eyes")
    save_section(page, audit, title)
    expect(page.locator("main")).to_contain_text("Photo up to date")

    photo = page.locator("img.app-child-photo")
    expect(photo).to_be_visible()
    expect(photo).to_have_attribute("alt", f"Photo of {CHILD}, taken {today.day} {today:%B %Y}")
    src = photo.get_attribute("src")
    assert src and src.startswith("/children/"), src
    served = page.context.request.get(src)
    assert served.status == 200, served.status
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["cache-control"] == "no-store"
    data = served.body()
    assert b"Exif" not in data and b"GPS" not in data
    with Image.open(io.BytesIO(data)) as image:
        assert not image.getexif(), dict(image.getexif())
        assert image.size == (200, 300)  # EXIF Orientation 6 applied before the tag was dropped


def complete_contacts(page: Page, audit: BrowserAudit) -> None:
    title = "Family, associates and contact arrangements"
    open_section(page, audit, title)
    fill(page, "How changes to contact arrangements will be passed on",
         "The social worker will email the registered manager the same day.")
    save_section(page, audit, title)

    navigate(page, audit, lambda: page.get_by_role("link", name=title, exact=True).click())
    expect_heading(page, title)
    expect(page.locator("main")).to_contain_text("No contacts recorded.")
    navigate(page, audit, lambda: page.get_by_role("button", name="Add a contact").click())
    expect_heading(page, "Add a contact")
    fill(page, "Full name", CONTACT)
    fill(page, "Relationship to the child", "Father")
    choose(page, "Contact allowed", "No contact – court order")
    fill(page, "Court order about contact", "Section 34(4) order, Carlisle Family Court, 3 March 2025")
    fill(page, "Reason contact is not allowed or is restricted", "Court order after harm to Zoë.")
    choose(page, "Must this person be kept from knowing where the child lives?", "Yes")
    choose(page, "Can this person collect the child from school?", "No")
    choose(page, "Is this person a concern because of exploitation or other harm?", "No")
    click_button(page, audit, "Save contact")
    expect_heading(page, title)
    expect_success_banner(page, "Contact saved.")
    expect(page.locator(".govuk-summary-card__title")).to_have_text([CONTACT])

    navigate(page, audit, lambda: page.get_by_role("link", name=f"Back to {CHILD}'s record").click())
    expect_heading(page, f"{CHILD} ({CHILD_NAME})")
    banner = page.get_by_role("region", name="Restricted contacts")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(CONTACT)
    expect(banner).to_contain_text("Section 34(4) order")
    # The banner comes before the h1, so nobody reads on without seeing it.
    assert page.evaluate(
        """() => {
          const banner = document.querySelector('.app-restricted'), h1 = document.querySelector('h1');
          return Boolean(banner.compareDocumentPosition(h1) & Node.DOCUMENT_POSITION_FOLLOWING);
        }""")


def complete_missing(page: Page, audit: BrowserAudit) -> None:
    title = "Missing from care: Philomena Protocol Part 1"
    open_section(page, audit, title)
    fill(page, "Phone numbers the child uses", "07700 900982, pay as you go")
    not_known(page, "friends_associates")
    fill(page, "Addresses and places the child goes to", "Town centre bus station, CA1 1AA, to meet friends")
    fill(page, "Number of times missing in the last 12 months", "2")
    fill(page, "Vulnerabilities if the child goes missing", "Self-harm when distressed; age 13.")
    fill(page, "Medical needs if the child goes missing", "None")
    choose(page, "Does the child take any medicine that must not be missed?", "No")
    fill(page, "Checks before reporting the child missing", "Ring her phone, then her aunt.")
    fill(page, "When to report the child missing to police", "Straight away if not back by 9pm.")
    not_known(page, "form_owner")
    save_section(page, audit, title)


# ---- the CLA nurse --------------------------------------------------------------------------------------


def fill_health(page: Page, today: dt.date, plan: Path, medicines: str) -> None:
    page.get_by_label("Health plan", exact=True).set_input_files(str(plan))
    fill_date(page, "Date the health plan was last updated", today)
    choose(page, "Type of the last health assessment", "Review health assessment (RHA)")
    fill_date(page, "Date of the last health assessment", today - dt.timedelta(days=60))
    fill_date(page, "Date the next health assessment is due", today + dt.timedelta(days=300))
    fill(page, "Current medicines", medicines)
    fill(page, "Allergies", "No known drug allergies")
    fill(page, "Health conditions", "Asthma: blue inhaler when needed")
    fill(page, "GP practice", "Castle Street Surgery")
    fill(page, "GP practice phone number", "01632 960 001")
    not_known(page, "dentist")
    choose(page, "Are the child's immunisations up to date?", "Yes")
    fill(page, "Preferred hospital", "Cumberland Infirmary")
    fill(page, "Preferred hospital site and address", "Newtown Road, Carlisle CA2 7HY")
    fill(page, "What the placement should say when calling 111 or 999",
         "Ask for Zoë to go to the Cumberland Infirmary, where the paediatric team know her.")
    fill(page, "Consent to medical treatment", "The local authority under the care order; duty team out of hours.")
    fill(page, "CLA nurse's name", "Test Cla Nurse")
    fill(page, "CLA nurse's phone number", "07700 900 982")
    fill(page, "CLA nurse's team and NHS organisation", "CLA health team, North Cumbria ICB")


def test_social_worker_completes_recommendation_7_and_nurse_keeps_the_health_plan(
        live_server: LiveServer, chromium: Any, browser_audit: BrowserAudit, tmp_path: Path) -> None:
    audit = browser_audit
    cast = set_up_record(live_server)
    child_url = f"/children/{cast.child_id}"
    today = dt.datetime.now(dt.UTC).date()

    context = chromium.new_context(ignore_https_errors=True, base_url=live_server.base_url)
    audit.watch(context)
    try:
        page = context.new_page()

        # 1. The allocated social worker signs in, finds the child by name (a POST search) and opens her page.
        sign_in(page, audit, cast.worker)
        expect_heading(page, "Welcome, Test Social Worker")
        navigate(page, audit, lambda: page.get_by_role("link", name="Children", exact=True).click())
        expect_heading(page, "Children")
        page.get_by_label("Name, NHS number or local child ID", exact=True).fill("  zoë SMITH ")
        with page.expect_request(lambda r: r.url.endswith("/children/search")) as searched:
            click_button(page, audit, "Search")
        assert searched.value.method == "POST" and "zo" not in searched.value.url.lower()
        expect_heading(page, "Find a child")
        results = page.locator("main ul.govuk-list").first
        expect(results.get_by_role("link")).to_have_text([CHILD])
        navigate(page, audit, lambda: results.get_by_role("link", name=CHILD, exact=True).click())
        assert page.url == live_server.base_url + child_url
        expect_heading(page, f"{CHILD} ({CHILD_NAME})")
        expect(page.locator("main")).to_contain_text("No photo")

        # 2. Every Recommendation 7 section a social worker may edit.
        complete_risk(page, audit)
        complete_plan(page, audit, today)
        complete_photo(page, audit, today, tmp_path)
        complete_contacts(page, audit)
        complete_missing(page, audit)

        click_button(page, audit, "Sign out")
        expect_heading(page, "Sign in")
        expect_success_banner(page, "You have signed out.")

        # 3. The CLA nurse completes HEALTH with a PDF health plan, then changes it with a new plan.
        sign_in(page, audit, cast.nurse)
        expect_heading(page, "Welcome, Test Cla Nurse")
        navigate(page, audit, lambda: page.get_by_role("link", name="Children", exact=True).click())
        expect_heading(page, "Children")
        navigate(page, audit, lambda: page.get_by_role("link", name=CHILD, exact=True).click())
        expect_heading(page, f"{CHILD} ({CHILD_NAME})")
        expect(page.get_by_role("region", name="Restricted contacts")).to_contain_text(CONTACT)

        health = "Health plan and emergency health information"
        open_section(page, audit, health)
        fill_health(page, today, health_plan_pdf(tmp_path, "health-plan-v1.pdf", pages=1), "Salbutamol inhaler")
        save_section(page, audit, health)
        expect(page.locator("main")).to_contain_text("Preferred hospital: Cumberland Infirmary")

        open_section(page, audit, health)
        expect(page.locator("main")).to_contain_text("Current file: health-plan-v1.pdf")
        expect(page.get_by_label("Current medicines", exact=True)).to_have_value("Salbutamol inhaler")
        page.get_by_label("Health plan", exact=True).set_input_files(
            str(health_plan_pdf(tmp_path, "health-plan-v2.pdf", pages=2)))
        fill(page, "Current medicines", "Salbutamol inhaler\nSertraline 50mg daily, prescribed by CAMHS")
        save_section(page, audit, health)

        # The nurse may not edit RISK: the edit URL itself answers 403.
        response = page.goto(f"{child_url}/sections/RISK/edit")
        assert response is not None and response.status == 403, response and response.status
        audit.check(page)
        expect_heading(page, "You cannot do this")
        expect(page.locator("form textarea, form input[type=checkbox]")).to_have_count(0)

        # 4. HEALTH's history: both versions, then what changed from 1 to 2.
        open_page(page, audit, f"{child_url}/sections/HEALTH/history")
        expect_heading(page, f"History: {health}")
        versions = page.get_by_role("table", name="Every saved version, newest first")
        expect(versions.locator("tbody tr td:first-child")).to_have_text(["2", "1"])
        expect(versions.locator("tbody tr").first).to_contain_text("Changed: ")
        navigate(page, audit, lambda: page.get_by_role("link", name="Compare with version 1").click())
        expect(page.get_by_role("heading", level=2, name="What changed from version 1 to version 2")).to_be_visible()
        changes = page.get_by_role("table", name="Changes between the two versions")
        plan_row = changes.locator("tr", has=page.get_by_role("rowheader", name="Health plan", exact=True))
        expect(plan_row).to_contain_text("health-plan-v1.pdf")
        expect(plan_row).to_contain_text("health-plan-v2.pdf")
        medicines_row = changes.locator("tr", has=page.get_by_role("rowheader", name="Current medicines"))
        expect(medicines_row.locator("td").nth(1)).to_contain_text("Sertraline 50mg daily")
        expect(medicines_row.locator("td").first).not_to_contain_text("Sertraline")
    finally:
        context.close()

    print("\naxe-core results per page:\n" + audit.summary())
    assert len(audit.reports) >= 30, len(audit.reports)
    audit.assert_clean()
