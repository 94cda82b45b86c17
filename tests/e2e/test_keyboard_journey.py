"""The main journey by keyboard alone (WCAG 2.1.1 Keyboard, 2.4.1 Bypass blocks, 2.4.3 Focus order, 2.4.7 and
2.4.11 Focus visible / not obscured, 3.3.1 Error identification), in headless Chromium against a real gunicorn.

Jade's North social worker signs in (password, then the authenticator code), opens Jade's record, starts a
hospital admission to the demo ward (first without the time: the error summary takes focus and its link takes
focus to the field), adds a recipient, marks the admission ready and sends the packs. The ward opens its link,
asks for a code, enters the emailed code, reads the pack and confirms receipt (first with nothing filled in).

Only the keyboard moves: `page.keyboard` presses Tab, Shift+Tab, Enter, Space and arrow keys and types into the
focused element; nothing is clicked or filled through a locator (a `goto` opens the sign-in page and the emailed
link, as a person would from a bookmark or an email). After every key that moves focus the focused element must
be one a person expects (checked by name) and must look different when focused (its outline, box shadow, colours
or underline, or for a GOV.UK radio or checkbox its label's box, change between blurred and focused), and must
not be hidden. On every page the first Tab reaches the skip link, which is then visible and moves focus to <main>.
axe-core runs on every page as in the other browser tests.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.conftest import SmtpSink
from tests.e2e.conftest import BrowserAudit, LiveServer, skip_without_browser
from tests.e2e.test_accessibility_sweep import NORTH_WORKER, load_demo_records
from tests.e2e.test_first_admin_journey import expect_heading, expect_success_banner
from tests.e2e.test_pack_journey import browser_contexts, code_in, delivered, finish, link_in, to
from tests.e2e.test_transition_journey import TransitionAudit
from transitions.clock import UK
from transitions.crypto import current_code

pytestmark = [pytest.mark.e2e, skip_without_browser]

WARD = "Ward 7 Children's (demo)"
WARD_MAILBOX = "ward7@example-nhs.test"
KIND = "Hospital admission (A&E or children's ward)"
REASON = "Asthma attack at school; ambulance to A&E"

#: How the focused element looks, and whether it is visible in the viewport. For a GOV.UK radio or checkbox the
#: <input> is transparent and its label's ::before box shows the focus, so that is compared too.
LOOK = """(el) => {
  const pick = (s) => [s.outlineStyle, s.outlineWidth, s.outlineColor, s.boxShadow, s.backgroundColor, s.color,
                       s.textDecorationLine, s.textDecorationThickness, s.borderColor].join('|');
  const label = el.matches('.govuk-radios__input, .govuk-checkboxes__input') ? el.nextElementSibling : null;
  const look = pick(getComputedStyle(el)) + (label ? '|' + pick(getComputedStyle(label, '::before')) : '');
  const box = (label || el).getBoundingClientRect();
  const inView = box.width > 0 && box.height > 0 && box.bottom > 0 && box.top < innerHeight;
  return {look, inView};
}"""

#: The focused element: its tag, accessible-ish name, and whether it looks different focused than blurred.
FOCUSED = """(look) => {
  const el = document.activeElement;
  if (!el || el === document.body) return {name: '(nothing)', changes: false, inView: false};
  const measure = new Function('return ' + look)();
  const focused = measure(el);
  el.blur();
  const blurred = measure(el);
  el.focus({preventScroll: true});
  const labels = el.labels && el.labels.length ? el.labels[0].innerText : '';
  const name = (el.getAttribute('aria-label') || labels || el.innerText || el.value || el.id || '').trim();
  return {tag: el.tagName.toLowerCase(), name: name.split('\\n')[0].slice(0, 80), id: el.id,
          changes: focused.look !== blurred.look, inView: focused.inView};
}"""


class Keyboard:
    """Moves through a page by keyboard only, checking the focus indicator after every move."""

    def __init__(self, page: Page, audit: BrowserAudit) -> None:
        self.page, self.audit = page, audit
        self.steps: list[str] = []

    def focused(self) -> dict[str, Any]:
        found: dict[str, Any] = self.page.evaluate(FOCUSED, LOOK)
        self.steps.append(f"{found.get('tag', '')} {found['name']!r}")
        return found

    def press(self, key: str) -> dict[str, Any]:
        self.page.keyboard.press(key)
        found = self.focused()
        assert found["changes"], f"no visible focus indicator on {found} after {key} ({self.page.url})"
        assert found["inView"], f"the focused element {found} is off screen after {key} ({self.page.url})"
        return found

    def tab_to(self, target: Locator, *, limit: int = 60, backwards: bool = False) -> list[str]:
        """Tab (or Shift+Tab) until `target` has focus; returns the names of what was focused on the way."""
        passed: list[str] = []
        for _ in range(limit):
            found = self.press("Shift+Tab" if backwards else "Tab")
            if target.evaluate("el => el === document.activeElement"):
                return passed
            passed.append(found["name"])
        raise AssertionError(f"{limit} Tabs did not reach {target} on {self.page.url}; passed: {passed}")

    def type(self, text: str) -> None:
        self.page.keyboard.type(text)

    def activate(self, key: str = "Enter") -> None:
        """Press Enter (or Space) on the focused control, which loads a new page; audit it."""
        with self.page.expect_event("load"):
            self.page.keyboard.press(key)
        self.audit.check(self.page)

    def open(self, url: str) -> None:
        """Open a page by its address, then check the skip link: first Tab, visible, Enter moves focus to <main>."""
        response = self.page.goto(url)
        assert response is not None and response.status == 200, (url, response and response.status)
        self.audit.check(self.page)
        self.skip_to_main()

    def skip_to_main(self) -> None:
        """Just after a page loads: the first Tab focuses the skip link, which shows, and Enter moves focus to
        <main>. Unless GOV.UK Frontend has already moved focus to a success banner (the user carries on from it)."""
        if self.page.evaluate("document.activeElement.matches('.govuk-notification-banner--success')"):
            self.steps.append("(success banner has focus)")
            return
        assert self.page.evaluate("document.activeElement === document.body"), self.focused()
        self.page.keyboard.press("Tab")
        skip = self.page.locator(".govuk-skip-link")
        expect(skip).to_be_focused()
        assert self.focused()["changes"]
        box = skip.bounding_box()
        assert box is not None and box["width"] > 10 and box["height"] > 10, box  # shown when focused
        self.page.keyboard.press("Enter")
        expect(self.page.locator("main#main-content")).to_be_focused()

    def expect_error_summary_focused(self, first_error: str) -> None:
        """The error summary has focus; Tab reaches its first link; Enter on it focuses the field."""
        summary = self.page.locator(".govuk-error-summary")
        expect(summary).to_be_focused()
        link = summary.get_by_role("link", name=first_error)
        self.tab_to(link, limit=3)
        self.page.keyboard.press("Enter")
        field_id = (link.get_attribute("href") or "#").split("#", 1)[1]
        focused = self.focused()
        assert focused["id"] == field_id or self.page.evaluate(
            "(id) => { const t = document.getElementById(id); return !!t && t.contains(document.activeElement); }",
            field_id), (focused, field_id)


def main(page: Page) -> Locator:
    return page.locator("main")


# ---- the social worker ---------------------------------------------------------------------------------------


def sign_in_by_keyboard(keys: Keyboard) -> None:
    page = keys.page
    keys.open("/sign-in")
    expect_heading(page, "Sign in")
    order = keys.tab_to(page.get_by_role("button", name="Continue"))
    assert order == ["Email address", "Password", "Show password"], order  # in the order they are shown
    keys.activate()  # nothing typed: the error summary
    keys.expect_error_summary_focused("Enter your email address")
    keys.type(NORTH_WORKER.email)
    keys.press("Tab")
    keys.type(NORTH_WORKER.password)
    keys.tab_to(page.get_by_role("button", name="Continue"), limit=3)
    keys.activate()
    expect_heading(page, "Enter the code from your authenticator app")
    keys.skip_to_main()
    keys.tab_to(page.get_by_label("Code from your authenticator app"))
    keys.type(current_code(NORTH_WORKER.totp_secret, dt.datetime.now(dt.UTC)))
    keys.tab_to(page.get_by_role("button", name="Sign in"), limit=3)
    keys.activate()
    expect_heading(page, f"Welcome, {NORTH_WORKER.name}")


def choose_radio(keys: Keyboard, group: Locator, label: str, *, limit: int = 15) -> None:
    """From the group's first radio, arrow down until `label` is focused (arrows check as they go)."""
    target = group.get_by_label(label, exact=True)
    for _ in range(limit):
        if target.evaluate("el => el === document.activeElement"):
            break
        keys.press("ArrowDown")
    else:
        raise AssertionError(f"arrow keys did not reach {label!r}")
    expect(target).to_be_checked()


def start_the_admission(keys: Keyboard, when: dt.datetime) -> str:
    page = keys.page
    keys.skip_to_main()
    nav = page.locator(".govuk-service-navigation__list").get_by_role("link", name="Children", exact=True)
    keys.tab_to(nav, backwards=True)  # the header comes before <main>: Shift+Tab from main goes back to it
    keys.activate()
    expect_heading(page, "Children")
    keys.skip_to_main()
    keys.tab_to(main(page).get_by_role("link", name="Jade", exact=True))
    keys.activate()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Jade")
    keys.skip_to_main()
    keys.tab_to(page.get_by_role("button", name="Start a move or admission"), limit=80)
    keys.activate()
    expect_heading(page, "Start a transition")
    keys.skip_to_main()

    kinds = page.get_by_role("group", name="What is happening?")
    keys.tab_to(kinds.get_by_role("radio").first)
    choose_radio(keys, kinds, KIND)
    keys.tab_to(page.get_by_label("Where is the child going?", exact=True))
    keys.type(WARD)  # a closed <select> selects the option its text starts with
    selected = page.get_by_label("Where is the child going?", exact=True).evaluate(
        "el => el.options[el.selectedIndex].text")
    assert selected.startswith(WARD), selected
    date = page.get_by_role("group", name="Date of the move or admission")
    for label, value in (("Day", when.day), ("Month", when.month), ("Year", when.year)):
        keys.tab_to(date.get_by_label(label, exact=True), limit=3)
        keys.type(str(value))
    urgency = page.get_by_role("group", name="Is it planned or an emergency?")
    keys.tab_to(urgency.get_by_role("radio").first, limit=6)  # past the time: left empty on purpose
    choose_radio(keys, urgency, "Emergency or unplanned")
    keys.tab_to(page.get_by_label("Why can it not wait? (emergencies only)", exact=True), limit=6)
    keys.type(REASON)
    keys.tab_to(page.get_by_role("button", name="Start the transition"), limit=20)
    keys.activate()
    expect_heading(page, "Start a transition")
    keys.expect_error_summary_focused("Enter the time, like 14:30 or 2:30pm")
    keys.type(when.strftime("%H:%M"))
    keys.tab_to(page.get_by_role("button", name="Start the transition"), limit=20)
    keys.activate()
    expect_success_banner(page, "Transition started.")
    expect(page.get_by_role("heading", level=1)).to_contain_text(KIND)
    return urlsplit(page.url).path


def add_a_recipient_and_send(keys: Keyboard) -> None:
    page = keys.page
    keys.skip_to_main()
    keys.tab_to(page.locator("summary", has_text="Add a recipient"), limit=120)
    keys.page.keyboard.press("Enter")  # opens the <details>
    expect(page.locator("details", has=page.locator("summary", has_text="Add a recipient"))).to_have_attribute(
        "open", "")
    kind = page.get_by_label("Type of recipient", exact=True)
    keys.tab_to(kind, limit=3)
    keys.press("ArrowDown")  # the first type of recipient offered
    chosen = kind.evaluate("el => el.options[el.selectedIndex].text")
    assert chosen.strip(), "no recipient type chosen"
    keys.tab_to(page.get_by_label("Why are you adding them?", exact=True), limit=3)
    keys.type("The child's school nurse asked to be told about admissions.")
    keys.tab_to(page.get_by_role("button", name="Add recipient"), limit=3)
    keys.activate()
    expect(page.locator(".govuk-notification-banner")).to_be_visible()

    keys.skip_to_main()
    keys.tab_to(page.get_by_role("button", name="Mark as ready"), limit=150)
    keys.activate()
    # No approval is needed for an emergency admission: it is approved as soon as it is ready.
    expect_success_banner(page, "The transition is now approved.")
    keys.skip_to_main()
    keys.tab_to(page.get_by_role("button", name="Send the packs"), limit=150)
    keys.activate()
    expect_success_banner(page, "The transition is now sent.")


# ---- the ward -------------------------------------------------------------------------------------------------


def ward_confirms_by_keyboard(keys: Keyboard, server: LiveServer, smtp: SmtpSink, link: str) -> None:
    page = keys.page
    keys.open(link)
    expect_heading(page, "You have been sent secure information")
    keys.tab_to(page.get_by_role("button", name="Send me a code"))
    keys.activate()
    expect_heading(page, "Enter the code we emailed")
    codes = to(delivered(server, smtp), WARD_MAILBOX, "Your code from ")
    assert len(codes) == 1, codes
    keys.skip_to_main()
    keys.tab_to(page.get_by_label("Code", exact=True))
    keys.type(code_in(codes[0]))
    keys.tab_to(page.get_by_role("button", name="Continue"), limit=3)
    keys.activate()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Handover pack: Jade")

    keys.skip_to_main()
    confirm = page.get_by_role("button", name="Confirm receipt")
    keys.tab_to(confirm, limit=200)
    keys.activate()  # nothing filled in: the error summary
    keys.expect_error_summary_focused("Enter your full name")
    keys.type("Sam Okoro")
    keys.tab_to(page.get_by_label("Your role", exact=True), limit=3)
    keys.type("Ward sister")
    box = page.get_by_label(re.compile(r"I have read this pack"))
    keys.tab_to(box, limit=3)
    keys.page.keyboard.press("Space")
    expect(box).to_be_checked()
    keys.tab_to(confirm, limit=3)
    keys.activate()
    expect_heading(page, "Receipt confirmed")
    expect(main(page)).to_contain_text("Confirmed by Sam Okoro (Ward sister)")


def test_a_worker_sends_a_pack_and_the_ward_confirms_it_by_keyboard_alone(
        live_server: LiveServer, smtp_server: SmtpSink, chromium: Any) -> None:
    audit = TransitionAudit()
    load_demo_records(live_server)
    delivered(live_server, smtp_server)  # the demo's own packs, so that only this journey's mail follows
    when = dt.datetime.now(UK).replace(second=0, microsecond=0)

    with browser_contexts(chromium, live_server, audit) as new_context:
        worker = Keyboard(new_context().new_page(), audit)
        sign_in_by_keyboard(worker)
        start_the_admission(worker, when)
        add_a_recipient_and_send(worker)

        links = to(delivered(live_server, smtp_server), WARD_MAILBOX, "Secure information from ")
        assert len(links) == 1, [(m["To"], m["Subject"]) for m in smtp_server.messages]
        ward = Keyboard(new_context().new_page(), audit)
        ward_confirms_by_keyboard(ward, live_server, smtp_server, link_in(live_server, links[0]))

    print(f"\nkeyboard steps: worker {len(worker.steps)}, ward {len(ward.steps)}")
    finish(audit, set())
