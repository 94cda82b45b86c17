"""Follow-through in headless Chromium against gunicorn (issue 6): Jade's emergency move was sent eight hours
ago and the receiving home has not confirmed. The operator's `tick` raises the escalations that are due (the
social worker's, then the team manager's), emails them, and puts them on dashboards. The North team manager
sees it on the home page, opens it, submits without a note (the error, nothing lost), then acknowledges it with a
note: it leaves the waiting list and shows as acknowledged. The CLA nurse's "Your work" lists the health plan
task for the move. axe-core finds nothing on any page; console errors and CSP violations fail."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import SmtpSink
from tests.e2e.conftest import LiveServer, skip_without_browser
from tests.e2e.test_accessibility_sweep import ACCOUNTS, expect_errors, sign_in
from tests.e2e.test_first_admin_journey import click_button, expect_heading, expect_success_banner, navigate
from tests.e2e.test_pack_journey import browser_contexts, delivered, finish
from tests.e2e.test_transition_journey import TransitionAudit
from tests.integration.conftest import load_world
from tests.integration.test_follow_up import send_jade
from transitions.clock import FrozenClock
from transitions.services.deps import build_deps
from transitions.settings import load_settings

pytestmark = [pytest.mark.e2e, skip_without_browser]

TEAM_MANAGER = ACCOUNTS["team.manager@example-council.test"]
NURSE = ACCOUNTS["cla.nurse@example-council.test"]
HOME = "Moorview House (demo children's home)"


def jade_moved_eight_hours_ago(server: LiveServer) -> None:
    clock = FrozenClock(dt.datetime.now(dt.UTC) - dt.timedelta(hours=8))
    deps = build_deps(load_settings(server.env), clock)
    try:
        send_jade(deps, load_world(deps))
    finally:
        deps.db.dispose()


def test_a_team_manager_acknowledges_an_overdue_confirmation_from_the_dashboard(
        live_server: LiveServer, smtp_server: SmtpSink, chromium: Any) -> None:
    audit = TransitionAudit()
    jade_moved_eight_hours_ago(live_server)
    sent = delivered(live_server, smtp_server)
    alerts = [m for m in sent if str(m["Subject"]).startswith("Confirmation overdue")]
    assert any(m["To"] == TEAM_MANAGER.email for m in alerts), [(m["To"], m["Subject"]) for m in sent]
    assert not [m for m in alerts if "Jade" in str(m)]

    with browser_contexts(chromium, live_server, audit) as new_context:
        manager = sign_in(new_context(), audit, TEAM_MANAGER)
        waiting = manager.get_by_role("table", name="Escalations waiting for you to acknowledge them, the most "
                                                    "overdue first")
        row = waiting.get_by_role("row").filter(has_text="Jade").filter(has_text=HOME)
        expect(row).to_have_count(1)
        expect(row).to_contain_text("Team manager")
        navigate(manager, audit, lambda: row.get_by_role("link", name="Acknowledge").click())
        expect_heading(manager, f"Confirmation overdue: {HOME}")

        click_button(manager, audit, "Acknowledge")
        expect_errors(manager, "Enter what you are doing about it (at least 10 characters)")
        manager.get_by_label("What are you doing about it?").fill("Rang")
        click_button(manager, audit, "Acknowledge")
        expect(manager.get_by_label("What are you doing about it?")).to_have_value("Rang")
        manager.get_by_label("What are you doing about it?").fill("Rang the home: the manager confirms tonight")
        click_button(manager, audit, "Acknowledge")

        expect_success_banner(manager, "Escalation acknowledged.")
        expect(manager.get_by_role("table", name="Escalations waiting for you to acknowledge them, the most "
                                                 "overdue first").get_by_role("row").filter(has_text="Jade")
               ).to_have_count(0)
        acknowledged = manager.get_by_role("table", name="Escalations acknowledged and still unconfirmed")
        expect(acknowledged).to_contain_text("Rang the home: the manager confirms tonight")

        nurse = sign_in(new_context(), audit, NURSE)
        navigate(nurse, audit, lambda: nurse.get_by_role("link", name="Your work").first.click())
        expect_heading(nurse, "Your work")
        expect(nurse.get_by_role("row").filter(has_text="Update the health plan").filter(has_text="Jade").first
               ).to_be_visible()
    finish(audit, set())
