"""Missing from care (issue 6 part 4; SC-3) in headless Chromium against a real gunicorn process and SMTP sink.

Jade's North social worker sees the count on her page (the demo: three episodes in the last 30 days), reports her
missing (Part 2 submitted without what she wore, where she was last seen or the time: the error summary, with
everything typed kept; then saved), sends the police pack by secure link to Cumbria Constabulary, whose missing
persons unit opens it with the emailed code, reads Part 1 and Part 2 and confirms receipt; the worker prints the
pack (the downloaded PDF opens with the password on the page, holds the photo and both parts), revokes the link
(a reason too short first: the error summary, the text kept; then the police's link answers 410), records the
return (its errors first) and sees the count, the prompt to update associates and places and reshare, and the
history.
axe-core runs on every page the browser shows; console errors and CSP violations fail.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from tests.conftest import SmtpSink
from tests.e2e.conftest import BrowserAudit, LiveServer, skip_without_browser
from tests.e2e.test_accessibility_sweep import (
    ACCOUNTS,
    CHILD_H1,
    NORTH_WORKER,
    expect_errors,
    load_demo_records,
    sign_in,
)
from tests.e2e.test_child_record_journey import field_group
from tests.e2e.test_first_admin_journey import (
    click_button,
    error_summary_items,
    expect_heading,
    expect_success_banner,
    navigate,
)
from tests.e2e.test_pack_journey import (
    body_of,
    browser_contexts,
    delivered,
    finish,
    image_xobjects,
    link_in,
    to,
)
from tests.e2e.test_transition_journey import TransitionAudit
from transitions.clock import UK

pytestmark = [pytest.mark.e2e, skip_without_browser]

FORCE = "Cumbria Constabulary"
FORCE_MAILBOX = "missing.persons@cumbria-constabulary.example-police.test"
LAST_SEEN = "Leaving the bowling alley on Mill Road with another resident"
WITH_WHOM = "Kayla, another resident of the home"
CLOTHING = "Red hoodie, blue jeans, white trainers"
SIGHTING = "Seen at Carlisle station by a friend at 10pm"
WHERE_FOUND = "Found by police at a flat in Workington and brought back"


def fill_date(page: Page, legend: str, when: dt.datetime) -> None:
    group = field_group(page, legend)
    group.get_by_label("Day", exact=True).fill(str(when.day))
    group.get_by_label("Month", exact=True).fill(str(when.month))
    group.get_by_label("Year", exact=True).fill(str(when.year))


def count_banner(page: Page) -> Any:
    return page.get_by_role("region", name="Missing from care")


def worker_reports_jade_missing(page: Page, audit: BrowserAudit, left: dt.datetime) -> str:
    navigate(page, audit, lambda: page.get_by_role("link", name="Children", exact=True).click())
    navigate(page, audit, lambda: page.locator("main").get_by_role("link", name="Jade", exact=True).click())
    expect_heading(page, CHILD_H1)
    expect(count_banner(page)).to_contain_text(
        "3 missing episodes in the last 30 days (2 missing, 1 away without authorisation)")
    navigate(page, audit, lambda: page.get_by_role("button", name="Report missing").click())
    expect_heading(page, "Report Jade missing")
    expect(page.get_by_label("Police force", exact=True).locator("option:checked")).to_have_text(FORCE)

    # Submitted without the time, where she was last seen or what she wore: every problem, nothing typed lost.
    fill_date(page, "When did the child leave or was last seen?", left)
    page.get_by_label("Who were they with? (optional)", exact=True).fill(WITH_WHOM)
    click_button(page, audit, "Record the missing episode")
    expect_heading(page, "Report Jade missing")
    expected = ["Enter the time the child left or was last seen", "Enter where the child was last seen",
                "Enter what the child was wearing, or 'not known'"]
    expect_errors(page, *expected)
    assert error_summary_items(page) == expected, error_summary_items(page)
    expect(page.locator(".govuk-error-summary")).to_be_focused()
    expect(page.get_by_label("Who were they with? (optional)", exact=True)).to_have_value(WITH_WHOM)
    expect(field_group(page, "When did the child leave or was last seen?").get_by_label("Day", exact=True)
           ).to_have_value(str(left.day))

    page.get_by_label("Time they left or were last seen", exact=True).fill(left.strftime("%H:%M"))
    page.get_by_label("Where was the child last seen?", exact=True).fill(LAST_SEEN)
    page.get_by_label("What were they wearing?", exact=True).fill(CLOTHING)
    click_button(page, audit, "Record the missing episode")
    assert not error_summary_items(page), error_summary_items(page)
    expect_heading(page, "Missing episode Open")
    expect_success_banner(page, "Missing episode recorded.")
    expect(page.locator("#episode-summary")).to_contain_text(FORCE)
    expect(page.locator("main")).to_contain_text(CLOTHING)
    return urlsplit(page.url).path


def police_open_and_confirm(server: LiveServer, smtp: SmtpSink, chromium_context: Any, audit: BrowserAudit,
                            link: str) -> None:
    page = chromium_context.new_page()
    response = page.goto(link)
    assert response is not None and response.status == 200
    audit.check(page)
    expect_heading(page, "You have been sent secure information")
    expect(page.locator("main")).to_contain_text(FORCE)
    assert "Jade" not in page.content()  # the link's page says nothing about the child
    click_button(page, audit, "Send me a code")
    expect_heading(page, "Enter the code we emailed")
    codes = to(delivered(server, smtp), FORCE_MAILBOX, "Your code from ")
    assert len(codes) == 1
    code = body_of(codes[0]).split("Your code is ", 1)[1][:6]
    page.get_by_label("Code", exact=True).fill(code)
    click_button(page, audit, "Continue")
    expect_heading(page, "Handover pack: Jade")
    main = page.locator("main")
    expect(page.get_by_role("heading", name="Missing from care – Philomena Protocol Part 2")).to_be_visible()
    for text in (LAST_SEEN, CLOTHING, WITH_WHOM, "Phone numbers the child uses"):
        expect(main).to_contain_text(text)
    expect(main).not_to_contain_text("NHS number")
    page.get_by_label("Your full name", exact=True).fill("PC Jo Bell")
    page.get_by_label("Your role", exact=True).fill("Missing persons coordinator")
    page.get_by_label("I have read this pack", exact=False).check()
    click_button(page, audit, "Confirm receipt")
    expect_heading(page, "Receipt confirmed")


def worker_prints_the_pack(page: Page, audit: BrowserAudit) -> None:
    navigate(page, audit, lambda: page.get_by_role("link", name="Print the police pack").click())
    expect_heading(page, "Print the police pack")
    password = page.locator("#print-password").inner_text().strip()
    assert len(password) >= 20, password
    with page.expect_download() as info:
        page.get_by_role("link", name="Download the police pack (PDF)").click()
    download = info.value
    assert download.failure() is None, download.failure()
    assert download.suggested_filename.startswith("police-pack-HP-"), download.suggested_filename
    reader = PdfReader(io.BytesIO(download.path().read_bytes()))
    assert reader.is_encrypted and reader.decrypt(password)
    text = "".join(p.extract_text() for p in reader.pages)
    for expected in ("OFFICIAL-SENSITIVE", "Missing from care: police pack", "Philomena Protocol Part 1",
                     "Philomena Protocol Part 2", "Jade", CLOTHING):
        assert expected in text, expected
    assert image_xobjects(reader) >= 1, "no photo in the printed pack"
    navigate(page, audit, lambda: page.get_by_role("link", name="Back", exact=True).click())
    expect_heading(page, "Missing episode Open")


def worker_adds_to_part2(page: Page, audit: BrowserAudit) -> None:
    navigate(page, audit, lambda: page.get_by_role("button", name="Add to Part 2").click())
    expect_heading(page, "Add to Part 2")
    click_button(page, audit, "Add to Part 2")
    expect_errors(page, "Enter what has been learned: where the child was seen, who with, or more")
    page.get_by_label("Where was the child seen? (optional)", exact=True).fill(SIGHTING)
    click_button(page, audit, "Add to Part 2")
    expect_heading(page, "Missing episode Open")
    expect_success_banner(page, "Added to Part 2")
    expect(page.locator("main")).to_contain_text(SIGHTING)


REVOKE_REASON = "Reported to the wrong force: she is now in Dumfries and Galloway"
REVOKE_LABEL = "Why are you stopping the police's access to this pack?"


def worker_revokes_the_link(page: Page, audit: BrowserAudit, police_context: Any, link: str) -> None:
    """R18: the police's link is stopped with a reason (too short first: the error, the text kept); it then
    answers 410 and says only that it no longer works."""
    page.get_by_label(REVOKE_LABEL, exact=True).fill("Wrong")
    revoke = f"Revoke access to version 1 sent to {FORCE}"
    click_button(page, audit, revoke)
    expected = ["Enter why you are stopping the police's access (at least 10 characters)"]
    expect_errors(page, *expected)
    assert error_summary_items(page) == expected, error_summary_items(page)
    expect(page.locator(".govuk-error-summary")).to_be_focused()
    expect(page.get_by_label(REVOKE_LABEL, exact=True)).to_have_value("Wrong")
    page.get_by_label(REVOKE_LABEL, exact=True).fill(REVOKE_REASON)
    click_button(page, audit, revoke)
    expect_heading(page, "Missing episode Open")
    expect_success_banner(page, "Access revoked.")
    expect(page.locator("#police-links")).to_contain_text(re.compile(r"· Revoked \d{1,2} \w+ \d{4}, .*: "
                                                                     + re.escape(REVOKE_REASON)))
    expect(page.get_by_role("button", name=revoke)).to_have_count(0)
    police = police_context.new_page()
    response = police.goto(link)
    assert response is not None and response.status == 410, response and response.status
    audit.check(police)
    expect_heading(police, "This link no longer works")
    assert "Jade" not in police.content()


def worker_records_the_return(page: Page, audit: BrowserAudit, back: dt.datetime) -> None:
    navigate(page, audit, lambda: page.get_by_role("button", name="Record the return").click())
    expect_heading(page, "Record Jade's return")
    click_button(page, audit, "Record the return")
    expected = ["Enter the date and time the child came back or was found",
                "Enter where the child was found and how they came back"]
    expect_errors(page, *expected)
    assert error_summary_items(page) == expected, error_summary_items(page)
    fill_date(page, "When did the child come back or was found?", back)
    page.get_by_label("Time they came back or were found", exact=True).fill(back.strftime("%H:%M"))
    page.get_by_label("Where was the child found, and how did they come back?", exact=True).fill(WHERE_FOUND)
    click_button(page, audit, "Record the return")
    expect_heading(page, CHILD_H1)
    expect_success_banner(page, "Return recorded. A return home interview is due within 72 hours")
    expect(count_banner(page)).to_contain_text(
        "4 missing episodes in the last 30 days (3 missing, 1 away without authorisation)")
    prompt = page.locator(".app-missing-prompt")
    expect(prompt).to_contain_text("Jade came back on")
    expect(prompt.get_by_role("link", name="Update the missing-from-care plan (friends, associates and places)")
           ).to_be_visible()
    navigate(page, audit, lambda: page.get_by_role("link", name="See the missing history").click())
    expect_heading(page, "Missing history")
    expect(page.locator("#missing-episodes tbody tr")).to_have_count(5)
    navigate(page, audit, lambda: page.locator("#missing-episodes tbody tr").first.get_by_role("link").click())
    expect_heading(page, "Missing episode Ended")
    expect(page.locator("#episode-summary")).to_contain_text(WHERE_FOUND)
    expect(page.locator("#police-links")).to_contain_text("Confirmed by PC Jo Bell (Missing persons coordinator)")


def test_a_worker_reports_a_child_missing_gives_the_police_the_pack_and_records_the_return(
        live_server: LiveServer, smtp_server: SmtpSink, chromium: Any) -> None:
    audit = TransitionAudit()
    load_demo_records(live_server)
    delivered(live_server, smtp_server)  # the demo's own packs
    now = dt.datetime.now(UK).replace(second=0, microsecond=0)
    left = now - dt.timedelta(hours=3)

    with browser_contexts(chromium, live_server, audit) as new_context:
        worker = sign_in(new_context(), audit, ACCOUNTS[NORTH_WORKER.email])
        episode_path = worker_reports_jade_missing(worker, audit, left)

        click_button(worker, audit, f"Send the police pack to {FORCE}")
        expect_success_banner(worker, f"Police pack sent by secure link to {FORCE}.")
        links = to(delivered(live_server, smtp_server), FORCE_MAILBOX, "Secure information from ")
        assert len(links) == 1
        assert "Jade" not in body_of(links[0]) and "Carter" not in body_of(links[0])
        link = link_in(live_server, links[0])
        police_open_and_confirm(live_server, smtp_server, new_context(), audit, link)

        worker_adds_to_part2(worker, audit)
        worker_prints_the_pack(worker, audit)
        assert urlsplit(worker.url).path == episode_path
        worker_revokes_the_link(worker, audit, new_context(), link)
        worker_records_the_return(worker, audit, now - dt.timedelta(minutes=10))

    finish(audit, {link})


# ---- an "away" episode becomes "missing"; an out-of-hours worker (break-glass) prints the pack -------------


def away_by_services(server: LiveServer) -> None:
    """Leo has been away without permission (at a friend's, known) for two hours: recorded through the service."""
    from sqlalchemy import select

    from transitions.clock import SystemClock
    from transitions.models import Child
    from transitions.services import accounts, missing
    from transitions.services.audit import Actor
    from transitions.services.deps import build_deps
    from transitions.settings import load_settings

    deps = build_deps(load_settings(server.env), SystemClock())
    try:
        with deps.db.transaction() as session:
            leo = next(c for c in session.scalars(select(Child)) if c.preferred_name == "Leo")
            child_id, worker_id, placement = leo.id, leo.allocated_worker_id, leo.current_placement_id
            force = missing.force_for_placement(session, placement)
            assert worker_id is not None and force is not None
            force_id = force.id
        now = deps.clock.now()
        missing.report_missing(deps, child_id, missing.ReportInput(
            code="A", started_at=now - dt.timedelta(hours=2), reported_at=None, police_reference="",
            police_force_id=force_id, part2=missing.Part2Input(last_seen_place=AWAY_AT, clothing="Not known")),
            accounts.get_user(deps, worker_id), Actor("staff", str(worker_id)))
    finally:
        deps.db.dispose()


AWAY_AT = "At a friend's flat in Whitehaven: he texted staff"


def test_an_away_episode_becomes_missing_and_a_break_glass_reader_prints_the_pack(
        live_server: LiveServer, chromium: Any) -> None:
    audit = TransitionAudit()
    load_demo_records(live_server)
    away_by_services(live_server)
    now = dt.datetime.now(UK).replace(second=0, microsecond=0)

    with browser_contexts(chromium, live_server, audit) as new_context:
        worker = sign_in(new_context(), audit, ACCOUNTS[NORTH_WORKER.email])
        navigate(worker, audit, lambda: worker.get_by_role("link", name="Children", exact=True).click())
        navigate(worker, audit, lambda: worker.locator("main").get_by_role("link", name="Leo", exact=True).click())
        expect(count_banner(worker)).to_contain_text("Leo is away without permission: since")
        navigate(worker, audit, lambda: worker.get_by_role("link", name="Open the missing episode").click())
        expect_heading(worker, "Missing episode Open")
        navigate(worker, audit,
                 lambda: worker.get_by_role("button", name="Now missing (whereabouts not known)").click())
        expect_heading(worker, "Leo is now missing")
        click_button(worker, audit, "Record as missing")
        expect_errors(worker, "Enter the date and time nobody has known where the child is")
        fill_date(worker, "Since when has nobody known where the child is?", now)
        worker.get_by_label("Time since nobody has known", exact=True).fill(now.strftime("%H:%M"))
        click_button(worker, audit, "Record as missing")
        expect_heading(worker, "Missing episode Open")
        expect_success_banner(worker, "Recorded as missing")
        expect(worker.locator("#episode-summary")).to_contain_text("Missing: whereabouts not known")
        expect(worker.locator("main")).to_contain_text(AWAY_AT)  # Part 2 so far goes with the new episode
        expect(worker.locator("main")).to_contain_text("(while away without permission)")
        leo_path = urlsplit(worker.url).path.split("/missing/")[0]

        # Out of hours: the South worker is not allocated, breaks the glass (read-only) and prints the pack.
        south = sign_in(new_context(), audit, ACCOUNTS["social.worker.south@example-council.test"])
        response = south.goto(leo_path)
        assert response is not None and response.status == 403
        audit.check(south)
        navigate(south, audit, lambda: south.get_by_role("button", name="Give a reason to open the record").click())
        south.get_by_label("Why do you need to see this record now?", exact=True).fill(
            "Leo has been reported missing tonight and his team cannot be reached")
        click_button(south, audit, "Open the record")
        expect(count_banner(south)).to_contain_text("Leo is missing: since")
        expect(south.get_by_role("button", name="Report missing")).to_have_count(0)  # read-only
        navigate(south, audit, lambda: south.locator("main").get_by_role("link", name="Print the police pack").click())
        expect_heading(south, "Print the police pack")
        password = south.locator("#print-password").inner_text().strip()
        with south.expect_download() as info:
            south.get_by_role("link", name="Download the police pack (PDF)").click()
        reader = PdfReader(io.BytesIO(info.value.path().read_bytes()))
        assert reader.decrypt(password)
        text = "".join(p.extract_text() for p in reader.pages)
        assert "Philomena Protocol Part 2" in text and AWAY_AT in text
        navigate(south, audit, lambda: south.get_by_role("link", name="Back", exact=True).click())
        expect_heading(south, "Missing episode Open")
        expect(south.get_by_role("button", name="Record the return")).to_have_count(0)

    finish(audit, {live_server.base_url + leo_path})
