"""Handover packs by secure link (issue 5) in headless Chromium against a real gunicorn process and SMTP sink.

1. The South social worker sends the packs of Amira's emergency move to Moorview House (a senior manager
   overrides the stale photo first). `cla-transitions tick` delivers the link emails to the SMTP sink. In a
   browser context with no staff cookies, the home's manager opens the link, asks for a code, types a wrong one
   (the error summary), then the emailed one (an email with no link), reads the PDF password, downloads the
   PDF (it opens with the password, names Amira and holds her photo), submits the confirmation empty (the
   errors), then confirms receipt; asks for missing information (the form's errors) and closes the secure
   information. The social worker's board then shows "v1 confirmed".
2. A "clicking bot" (a mail scanner that follows links and presses buttons) opens the host police's link,
   presses its first button (one code is emailed), then every button and link on the page that leads to:
   nobody is verified, nothing is confirmed, the board says "v1 awaiting confirmation", and the codes stay
   within the per-link send limit. Ten plain HTTP fetches change nothing in the pack tables. Such a visit
   emails at most one code (a second press within a minute sends nothing), and a fetch of the link stores no
   server-side session.

axe-core runs on every page the browser shows (staff and recipient); console errors and CSP violations fail.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect
from pypdf import PdfReader
from sqlalchemy import create_engine, func, select

from tests.conftest import SmtpSink, StaffAccount
from tests.e2e.conftest import (
    BrowserAudit,
    LiveServer,
    skip_without_browser,
)
from tests.e2e.test_accessibility_sweep import ACCOUNTS, SOUTH_WORKER, expect_errors, load_demo_records, sign_in
from tests.e2e.test_first_admin_journey import (
    click_button,
    error_summary_items,
    expect_heading,
    expect_success_banner,
    navigate,
    open_page,
)
from tests.e2e.test_transition_journey import (
    HOME,
    HOST_POLICE,
    MANAGER,
    TransitionAudit,
    expect_checklist,
    manager_overrides_the_photo,
    start_the_move,
)
from tests.integration.conftest import Demo
from tests.integration.test_packs import send_emergency
from transitions.clock import UK, SystemClock
from transitions.models import Child, Organisation, OutboxMessage, Pack, PackCode, RecipientSession, StaffSession
from transitions.services import accounts
from transitions.services.demo import DEMO_ACCOUNTS
from transitions.services.deps import build_deps
from transitions.settings import load_settings

pytestmark = [pytest.mark.e2e, skip_without_browser]

HOME_MAILBOX = "moorview.house@example-provider.test"
CODE_SUBJECT = "Your code from "
LINK_SUBJECT = "Secure information from "
CONFIRMED_BY = ("Sam Okoro", "Registered manager")
CHILD_SECRETS = ("Amira", "Hassan", "Mira", "2009", "LCS-099120", "9990001332")


# ---- helpers ------------------------------------------------------------------------------------------------


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, message
    return str(part.get_content())


def delivered(server: LiveServer, smtp: SmtpSink) -> list[EmailMessage]:
    """Run the operator's `tick`: the outbox goes to the SMTP sink. Returns the messages it delivered (each is
    in the sink before the SMTP client hears "250", so before `tick` exits)."""
    already = len(smtp.messages)
    server.cli("tick")
    return smtp.messages[already:]


def to(messages: list[EmailMessage], address: str, subject: str) -> list[EmailMessage]:
    return [m for m in messages if m["To"] == address and str(m["Subject"]).startswith(subject)]


def link_in(server: LiveServer, message: EmailMessage) -> str:
    match = re.search(re.escape(server.base_url) + r"/r/[A-Za-z0-9_\-]{40,}", body_of(message))
    assert match, body_of(message)
    return match.group(0)


def without(text: str, secret: str) -> str:
    """The text without a random secret (a token or code), before looking for the child's details in it."""
    assert secret in text
    return text.replace(secret, "")


def assert_nothing_about_the_child(text: str) -> None:
    for secret in CHILD_SECRETS:
        assert secret not in text, secret


def code_in(message: EmailMessage) -> str:
    body = body_of(message)
    assert "http" not in body, body  # the code email holds no link
    match = re.search(r"Your code is (\d{6})\b", body)
    assert match, body
    assert_nothing_about_the_child(without(body, match.group(1)))
    return match.group(1)


def board_row(page: Page, recipient_title: str) -> Locator:
    rows = page.locator("#pack-board tbody tr").filter(
        has=page.locator("td:first-child > strong", has_text=re.compile(f"^{re.escape(recipient_title)}$")))
    expect(rows).to_have_count(1)
    return rows


def image_xobjects(reader: PdfReader) -> int:
    """Image XObjects on the pages, including those inside form XObjects."""
    found = 0

    def walk(resources: Any) -> None:
        nonlocal found
        xobjects = resources.get("/XObject") if resources else None
        for ref in (xobjects.get_object() if xobjects else {}).values():
            obj = ref.get_object()
            if obj.get("/Subtype") == "/Image":
                found += 1
            elif obj.get("/Subtype") == "/Form":
                walk(obj.get("/Resources"))

    for page in reader.pages:
        walk(page.get("/Resources"))
    return found


@contextmanager
def browser_contexts(chromium: Any, server: LiveServer, audit: BrowserAudit) -> Iterator[Any]:
    contexts: list[BrowserContext] = []

    def new() -> BrowserContext:
        context: BrowserContext = chromium.new_context(ignore_https_errors=True, base_url=server.base_url,
                                                       accept_downloads=True)
        contexts.append(context)
        audit.watch(context)
        return context

    try:
        yield new
    finally:
        for context in contexts:
            context.close()


def finish(audit: TransitionAudit, allowed_error_documents: set[str]) -> None:
    print(f"\naxe-core results per page ({len(audit.reports)} pages):\n" + audit.summary())
    assert audit.error_documents <= allowed_error_documents, audit.error_documents
    assert not audit.duplicate_ids, "ids used more than once:\n  " + "\n  ".join(audit.duplicate_ids)
    audit.assert_clean()


# ---- 1. the receiving placement opens, downloads and confirms --------------------------------------------


def worker_sends_the_packs(page: Page, audit: BrowserAudit, path: str) -> None:
    open_page(page, audit, path)
    expect_checklist(page, "Draft")
    click_button(page, audit, "Mark as ready")
    expect_checklist(page, "Ready")
    expect(page.locator("#pack-board")).to_have_count(0)  # nothing sent yet
    click_button(page, audit, "Send the packs")
    expect_checklist(page, "Sent")
    expect_success_banner(page, "The transition is now sent.")
    row = board_row(page, "Receiving placement")
    expect(row.locator(".app-board-summary")).to_have_text("v1 awaiting confirmation")
    expect(row).to_contain_text(HOME)


def recipient_opens_the_link(page: Page, audit: BrowserAudit, link: str) -> None:
    response = page.goto(link)
    assert response is not None and response.status == 200, response and response.status
    audit.check(page)
    expect_heading(page, "You have been sent secure information")
    assert_nothing_about_the_child(without(page.content(), urlsplit(link).path.rsplit("/", 1)[1]))
    expect(page.locator("main")).to_contain_text(HOME)
    click_button(page, audit, "Send me a code")
    expect_heading(page, "Enter the code we emailed")
    assert urlsplit(page.url).path.endswith("/enter-code"), page.url


def recipient_enters_the_code(page: Page, audit: BrowserAudit, code: str) -> None:
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    page.get_by_label("Code", exact=True).fill(wrong)
    click_button(page, audit, "Continue")
    expect_heading(page, "Enter the code we emailed")
    message = "That code is wrong. You can try 4 more times before it stops working."
    expect_errors(page, message)
    assert error_summary_items(page) == [message], error_summary_items(page)
    expect(page.locator(".govuk-error-summary")).to_be_focused()
    expect(page.locator(".govuk-error-message", has_text=message)).to_have_count(1)

    page.get_by_label("Code", exact=True).fill(code)
    click_button(page, audit, "Continue")
    expect_heading(page, "Handover pack: Amira")
    assert urlsplit(page.url).path == "/recipient/pack", page.url
    assert "/r/" not in page.url


def recipient_downloads_the_pdf(page: Page) -> None:
    password = page.locator("#pdf-password").inner_text().strip()
    assert len(password) >= 8, password
    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile(r"^Download the handover pack \(PDF, ")).click()
    download = info.value
    assert download.failure() is None, download.failure()
    assert download.suggested_filename.endswith("-v1.pdf"), download.suggested_filename
    data = download.path().read_bytes()
    assert data.startswith(b"%PDF-"), data[:16]
    reader = PdfReader(io.BytesIO(data))
    assert reader.is_encrypted
    assert reader.decrypt(password), "the password on the page does not open the PDF"
    text = "".join(p.extract_text() for p in reader.pages)
    assert "Amira" in text and "OFFICIAL-SENSITIVE" in text
    assert image_xobjects(reader) >= 1, "no image in the PDF (the child's photo)"


def recipient_confirms(page: Page, audit: BrowserAudit) -> None:
    # Submitted empty: the pack comes back with the three errors.
    click_button(page, audit, "Confirm receipt")
    expect_heading(page, "Handover pack: Amira")
    expected = ["Enter your full name", "Enter your role, like ward sister or registered manager",
                "Confirm that you have read the pack and it is available to the staff caring for the child"]
    expect_errors(page, *expected)
    assert error_summary_items(page) == expected, error_summary_items(page)
    expect(page.locator(".govuk-error-summary")).to_be_focused()

    name, role = CONFIRMED_BY
    page.get_by_label("Your full name", exact=True).fill(name)
    page.get_by_label("Your role", exact=True).fill(role)
    page.get_by_label(re.compile(r"I have read this pack")).check()
    click_button(page, audit, "Confirm receipt")
    expect_heading(page, "Receipt confirmed")
    assert urlsplit(page.url).path == "/recipient/confirmed", page.url
    expect(page.locator("main")).to_contain_text(f"Confirmed by {name} ({role})")


def recipient_asks_and_closes(page: Page, audit: BrowserAudit) -> None:
    navigate(page, audit, lambda: page.get_by_role("link", name="ask for missing information").click())
    expect_heading(page, "Ask for missing information")
    click_button(page, audit, "Send the request")
    expect_heading(page, "Ask for missing information")
    expect_errors(page, "Select the information that is missing", "Say what is missing and why you need it",
                  "Enter your name and role")
    navigate(page, audit, lambda: page.get_by_role("link", name="Back to the handover pack").click())
    expect_heading(page, "Handover pack: Amira")
    expect(page.locator(".govuk-inset-text")).to_contain_text("Receipt confirmed by Sam Okoro")
    expect(page.get_by_role("button", name="Confirm receipt")).to_have_count(0)
    click_button(page, audit, "Close the secure information")
    expect_heading(page, "You have closed the secure information")
    # The session is over: the pack's address now asks for the link again.
    response = page.goto("/recipient/pack")
    assert response is not None and response.status == 401, response and response.status
    audit.check(page)
    expect_heading(page, "Open the link in your email again")


def worker_sees_the_confirmation(page: Page, audit: BrowserAudit) -> None:
    with page.expect_event("load"):
        page.reload()
    audit.check(page)
    expect_checklist(page, "Sent")
    row = board_row(page, "Receiving placement")
    expect(row.locator(".app-board-summary")).to_have_text("v1 confirmed")
    expect(row).to_contain_text("Confirmed by Sam Okoro (Registered manager)")
    for step in ("Code sent", "Verified", "Viewed", "Downloaded"):
        expect(row).to_contain_text(step)
    # The others have not opened theirs.
    expect(board_row(page, "Police force for the new area").locator(".app-board-summary")).to_have_text(
        "v1 awaiting confirmation")
    navigate(page, audit, lambda: row.get_by_role("link", name=re.compile(r"^Access log")).click())
    expect_heading(page, "Access log: Receiving placement")
    for action in ("Link fetched (may be automated)", "Code sent", "Wrong code entered", "Recipient verified"):
        expect(page.locator("main td", has_text=action).first).to_be_visible()


def test_the_receiving_home_opens_the_pack_by_secure_link_and_confirms_receipt(
        live_server: LiveServer, smtp_server: SmtpSink, chromium: Any) -> None:
    audit = TransitionAudit()
    load_demo_records(live_server)
    delivered(live_server, smtp_server)  # the demo's own transitions sent packs too (one to Moorview House)
    when = dt.datetime.now(UK).replace(hour=21, minute=30, second=0, microsecond=0)

    with browser_contexts(chromium, live_server, audit) as new_context:
        worker = sign_in(new_context(), audit, ACCOUNTS[SOUTH_WORKER.email])
        path = start_the_move(worker, audit, when)
        manager_overrides_the_photo(sign_in(new_context(), audit, MANAGER), audit, path)
        worker_sends_the_packs(worker, audit, path)

        sent = delivered(live_server, smtp_server)
        links = to(sent, HOME_MAILBOX, LINK_SUBJECT)
        assert len(links) == 1, [(m["To"], m["Subject"]) for m in sent]
        link = link_in(live_server, links[0])
        assert_nothing_about_the_child(without(body_of(links[0]), link) + str(links[0]["Subject"]))

        recipient_context = new_context()  # no staff cookies, as on a ward or home's own computer
        assert recipient_context.cookies() == []
        recipient = recipient_context.new_page()
        recipient_opens_the_link(recipient, audit, link)
        sent = delivered(live_server, smtp_server)
        codes = to(sent, HOME_MAILBOX, CODE_SUBJECT)
        assert len(codes) == 1, [(m["To"], m["Subject"]) for m in sent]
        recipient_enters_the_code(recipient, audit, code_in(codes[0]))
        cookie = next(c for c in recipient_context.cookies() if c["name"] == "__Host-recipient")
        assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
        recipient_downloads_the_pdf(recipient)
        recipient_confirms(recipient, audit)
        recipient_asks_and_closes(recipient, audit)

        worker_sees_the_confirmation(worker, audit)

    finish(audit, {live_server.base_url + "/recipient/pack"})


# ---- 2. a mail scanner that clicks ---------------------------------------------------------------------------


def send_by_services(server: LiveServer) -> str:
    """Amira's emergency move sent through the services (the browser journey is test 1): the transition's id."""
    deps = build_deps(load_settings(server.env), SystemClock())
    try:
        with deps.db.transaction() as session:
            kids = {c.preferred_name or "": c.id for c in session.scalars(select(Child))}
            orgs = {o.code or o.name: o.id for o in session.scalars(select(Organisation))}
            people = {}
            for account in DEMO_ACCOUNTS:
                user = accounts.find_by_email(deps, session, account.email)
                assert user is not None
                people[account.role.value + ("_south" if "south" in account.email else "")] = StaffAccount(
                    user.id, account.email, account.password, account.totp_secret)
        return str(send_emergency(deps, Demo(kids, orgs, people)))
    finally:
        deps.db.dispose()


def receipt_counts(server: LiveServer, *, staff_sessions: bool = False) -> dict[str, int]:
    """Counts only, read straight from the server's database."""
    engine = create_engine(server.env["TRANSITIONS_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            def count(query: Any) -> int:
                return int(conn.execute(query).scalar() or 0)

            if staff_sessions:  # the server-side (Flask) sessions, which an anonymous page's CSRF token makes
                return {"staff sessions": count(select(func.count()).select_from(StaffSession))}
            return {
                "codes": count(select(func.count()).select_from(PackCode)),
                "codes used": count(select(func.count()).select_from(PackCode).where(PackCode.used_at.is_not(None))),
                "sessions": count(select(func.count()).select_from(RecipientSession)),
                "confirmed": count(select(func.count()).select_from(Pack).where(Pack.confirmed_at.is_not(None))),
                "code emails": count(select(func.count()).select_from(OutboxMessage)
                                     .where(OutboxMessage.purpose == "pack_code")),
                "emails": count(select(func.count()).select_from(OutboxMessage)),
            }
    finally:
        engine.dispose()


#: What a clicking scanner can reach: every button, and every link to another page (not a #fragment).
CLICKABLE = "button, input[type=submit], a[href]:not([href^='#'])"


def label_of(target: Locator) -> str:
    return (target.inner_text() or target.get_attribute("value") or target.get_attribute("href") or "?").strip()


def bot_presses_the_first_button(page: Page, audit: BrowserAudit, link: str) -> str:
    response = page.goto(link)
    assert response is not None and response.status == 200
    audit.check(page)
    first = page.locator("button, input[type=submit]").first
    pressed = f"{label_of(first)} on {urlsplit(page.url).path}"
    navigate(page, audit, first.click)
    return pressed


def bot_presses_everything(page: Page, audit: BrowserAudit, limit: int = 12) -> list[str]:
    """Every button and link on the page shown (up to `limit`), each from a fresh load of that page, auditing
    each page it leads to. Returns what it pressed."""
    resulting = page.url
    here = urlsplit(resulting)
    pressed = []
    for i in range(min(page.locator(CLICKABLE).count(), limit)):
        if page.url != resulting:
            response = page.goto(resulting)
            assert response is not None
            audit.check(page)
        target = page.locator(CLICKABLE).nth(i)
        href = target.get_attribute("href")
        if href and urlsplit(href).netloc not in ("", here.netloc):
            continue  # another site (there are none today)
        pressed.append(f"{label_of(target)} on {here.path}")
        navigate(page, audit, partial(target.click, force=True))  # force: hidden ones too, as a bot would
    return pressed


@dataclass
class ScannerVisit:
    transition_id: str
    link: str
    before: dict[str, int]
    after_first: dict[str, int]
    after: dict[str, int]
    pressed: list[str]
    code_emails: int  # delivered to the police mailbox by `tick` after the visit
    bot: Page


def scanner_visit(server: LiveServer, smtp: SmtpSink, new_context: Any, audit: BrowserAudit,
                  before_the_bot: Any = None) -> ScannerVisit:
    """Amira's move sent (through the services); a scanner opens the host police's link and presses its button,
    then everything on the page that leads to."""
    load_demo_records(server)
    delivered(server, smtp)  # the demo's own transitions' packs (one to North Yorkshire Police)
    transition_id = send_by_services(server)
    police = [m for m in delivered(server, smtp)
              if str(m["Subject"]).startswith(LINK_SUBJECT) and HOST_POLICE in body_of(m)]
    assert len(police) == 1, [(m["To"], m["Subject"]) for m in smtp.messages]
    mailbox, link = police[0]["To"], link_in(server, police[0])
    if before_the_bot is not None:
        before_the_bot(link)
    before = receipt_counts(server)
    bot = new_context().new_page()
    pressed = [bot_presses_the_first_button(bot, audit, link)]
    after_first = receipt_counts(server)
    pressed += bot_presses_everything(bot, audit)
    after = receipt_counts(server)
    print("\nthe bot pressed:\n  " + "\n  ".join(pressed))
    codes = to(delivered(server, smtp), mailbox, CODE_SUBJECT)
    assert len(codes) == after["code emails"] - before["code emails"], (codes, before, after)
    for message in codes:
        code_in(message)  # no link, nothing about the child
    return ScannerVisit(transition_id, link, before, after_first, after, pressed, len(codes), bot)


def test_a_clicking_mail_scanner_neither_verifies_nor_confirms_and_plain_fetches_change_nothing(
        live_server: LiveServer, smtp_server: SmtpSink, chromium: Any) -> None:
    audit = TransitionAudit()

    def fetch_ten_times(link: str) -> None:
        """A plain HTTP client (a link previewer, a scanner that only fetches): nothing changes."""
        before = receipt_counts(live_server)
        for agent in ("Mozilla/5.0 (compatible; Microsoft Defender SafeLinks)", "python-urllib/3.11"):
            for _ in range(5):
                status, headers = live_server.get(urlsplit(link).path, {"User-Agent": agent})
                assert status == 200 and headers["Cache-Control"] == "no-store", (status, headers)
                assert "Set-Cookie" not in headers, headers  # no session of any kind for a fetch
        assert receipt_counts(live_server) == before, before

    with browser_contexts(chromium, live_server, audit) as new_context:
        visit = scanner_visit(live_server, smtp_server, new_context, audit, before_the_bot=fetch_ten_times)
        assert visit.before["sessions"] == 0 and visit.before["confirmed"] == 0, visit.before
        assert visit.pressed[0].startswith("Send me a code on /r/"), visit.pressed
        # Its first press emails one code (the most a pressed "Send me a code" can do) ...
        assert visit.after_first["code emails"] == visit.before["code emails"] + 1, visit.after_first
        assert any(p.startswith("Send a new code") for p in visit.pressed), visit.pressed
        assert any(p.startswith("Continue") for p in visit.pressed), visit.pressed
        # ... and pressing everything else verifies nobody, confirms nothing, and stays within the send limit.
        after = visit.after
        assert after["sessions"] == 0 and after["codes used"] == 0 and after["confirmed"] == 0, after
        limit = load_settings(live_server.env).packs.code_sends_per_hour
        assert 1 <= visit.code_emails <= min(limit, 1), (visit.code_emails, visit.pressed)
        assert not [c for c in visit.bot.context.cookies() if c["name"] == "__Host-recipient"]

        worker = sign_in(new_context(), audit, ACCOUNTS[SOUTH_WORKER.email])
        open_page(worker, audit, f"/transitions/{visit.transition_id}")
        row = board_row(worker, "Police force for the new area")
        expect(row.locator(".app-board-summary")).to_have_text("v1 awaiting confirmation")
        expect(row).to_contain_text("Link fetched (may be automated)")
        expect(row).to_contain_text("Code sent")
        for step in ("Verified", "Viewed", "Downloaded", "Confirmed by"):
            expect(row).not_to_contain_text(step)

    finish(audit, set())


def test_a_scanner_pressing_every_button_emails_at_most_one_code(
        live_server: LiveServer, smtp_server: SmtpSink, chromium: Any) -> None:
    """The same visit as above (whose pages it audits); only the number of codes is asserted here, so that this
    failure cannot hide another: a press within a minute of a send sends nothing."""
    audit = TransitionAudit()
    with browser_contexts(chromium, live_server, audit) as new_context:
        visit = scanner_visit(live_server, smtp_server, new_context, audit)
    assert visit.code_emails <= 1, f"{visit.code_emails} code emails from one scanner visit: {visit.pressed}"


def test_fetching_the_link_stores_no_session(live_server: LiveServer, smtp_server: SmtpSink) -> None:
    """A scanner fetching the link (ten times here, thousands in a day) should write nothing but the rate-limited
    "link fetched" lines: the link's forms carry no session token (they are checked by Origin)."""
    load_demo_records(live_server)
    send_by_services(live_server)
    police = [m for m in delivered(live_server, smtp_server)
              if str(m["Subject"]).startswith(LINK_SUBJECT) and HOST_POLICE in body_of(m)]
    assert police, [(m["To"], m["Subject"]) for m in smtp_server.messages]  # the demo's move's and Amira's
    path = urlsplit(link_in(live_server, police[0])).path
    before = receipt_counts(live_server, staff_sessions=True)
    for _ in range(10):
        assert live_server.get(path, {"User-Agent": "Mozilla/5.0 (compatible; Microsoft Defender SafeLinks)"})[0] == 200
    assert receipt_counts(live_server, staff_sessions=True) == before
