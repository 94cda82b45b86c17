"""Reports for managers and auditors (issue 6 part 6): each figure on known data, who may see which team, the
period form, the charts and their tables, the CSV files (spreadsheet formulas neutralised), the audit trail and
the demo history that gives a fresh demo something to show."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from tests.conftest import make_staff, sign_in
from tests.integration.conftest import Demo, load_world, start
from tests.integration.test_packs import send_emergency
from transitions.clock import UK
from transitions.models import (
    AuditEvent,
    Escalation,
    InformationRequest,
    Pack,
    SectionOverride,
    SectionVersion,
    Team,
    Transition,
    TransitionRecipient,
)
from transitions.services import demo_history, reports
from transitions.services import transitions as service
from transitions.services.errors import ForbiddenActionError
from transitions.services.follow_up import confirmation_due_at
from transitions.web.reports import csv_text, neutralise

CHILD_SECRETS = ("Amira", "Hassan", "Mira", "LCS-099120", "9990001332", "Jade", "Carter", "Leo", "Fraser", "Tyler")


def report(deps, world: Demo, who: str = "senior_manager", team: uuid.UUID | str | None = "South",
           period: reports.Period | None = None) -> reports.Report:
    """The report for one team (by default the South team, where the tests' moves are: the demo's own sent moves
    are in the North team), or for all teams with team=None."""
    if isinstance(team, str):
        team = team_id(deps, f"Children in Care {team}")
    return reports.report(deps, world.view(deps, who), world.actor(who), period or reports.default_period(deps), team)


def rows(found: reports.Report, name: str) -> dict[str, tuple]:
    return {str(r[0]): r[1:] for r in found.table(name).rows}


def team_id(deps, name: str) -> uuid.UUID:
    with deps.db.transaction() as session:
        return session.scalars(select(Team.id).where(Team.name == name)).one()


def packs_of(deps, transition_id: uuid.UUID) -> dict[str, Pack]:
    with deps.db.transaction() as session:
        found = {p.recipient_type: p for p in session.scalars(select(Pack).where(Pack.transition_id == transition_id))}
        for p in found.values():
            session.expunge(p)
        return found


def confirm_after(deps, pack_id: uuid.UUID, hours: float) -> None:
    with deps.db.transaction() as session:
        pack = session.get(Pack, pack_id)
        pack.confirmed_at = pack.created_at + timedelta(hours=hours)


SENT_TYPES = {"receiving_placement", "host_la", "host_police", "iro", "cla_nurse"}


# ---- the figures ------------------------------------------------------------------------------------------


def test_median_and_90th_percentile_on_known_sets():
    assert reports.median([1, 2, 3, 4, 10]) == 3
    assert reports.median([1, 2, 3, 10]) == 2.5
    assert reports.percentile(list(range(1, 11)), 90) == 9  # nearest rank: 9 of the 10 are at or below 9
    assert reports.percentile(list(range(1, 12)), 90) == 10  # ceil(9.9) = the 10th value
    assert reports.percentile([7.5], 90) == 7.5
    assert reports.median([]) is None and reports.percentile([], 90) is None
    assert reports.percentile([10, 1, 5], 50) == 5  # order does not matter


def test_time_to_confirmation_by_recipient_type(deps, world):
    first = send_emergency(deps, world)
    sent = packs_of(deps, first)
    assert set(sent) == SENT_TYPES
    delays = {"receiving_placement": 1.0, "host_la": 30.0, "host_police": 5.0, "iro": 2.0}  # cla_nurse: never
    for rtype, hours in delays.items():
        confirm_after(deps, sent[rtype].id, hours)
    found = rows(report(deps, world), "confirmation")
    assert found["Receiving placement"] == (1, 1.0, 1.0)
    assert found["Local authority for the new area"] == (1, 30.0, 30.0)
    assert "Looked-after children's nurse" not in found  # nothing confirmed
    # All four: 1, 2, 5, 30 hours -> median 3.5, 90th percentile (nearest rank, the 4th) 30
    assert found[reports.ALL_RECIPIENTS] == (4, 3.5, 30.0)
    assert list(found)[-1] == reports.ALL_RECIPIENTS


def test_share_sent_by_the_due_time_counts_the_first_version_and_unsent_recipients_once_past_due(deps, world,
                                                                                              clock):
    transition_id = send_emergency(deps, world)
    sent = packs_of(deps, transition_id)
    with deps.db.transaction() as session:
        recipients = {r.recipient_type: r for r in session.scalars(select(TransitionRecipient).where(
            TransitionRecipient.transition_id == transition_id))}
        # the host police's pack went after its due time: late
        recipients["host_police"].due_at = sent["host_police"].created_at - timedelta(minutes=1)
        # the IRO's pack went exactly at its due time: on time
        recipients["iro"].due_at = sent["iro"].created_at
        # a removed recipient is not counted at all
        recipients["parents_pr"].removed_at = clock.now()
        # the previous placement (never sent) is due in the past: late; the GP and ICB not yet due
        recipients["previous_placement"].due_at = clock.now() - timedelta(hours=1)
        recipients["gp"].due_at = recipients["health_body"].due_at = clock.now() + timedelta(days=3)
    found = report(deps, world)
    table = rows(found, "on_time")
    # Recipients, on time, late, not sent past due, not sent not yet due, share on time
    assert table["Police force for the new area"] == (1, 0, 1, 0, 0, 0)
    assert table["Independent reviewing officer (IRO)"] == (1, 1, 0, 0, 0, 100)
    assert table["Previous placement"] == (1, 0, 0, 1, 0, 0)
    assert table["GP practice"] == (1, 0, 0, 0, 1, None)
    assert "Parents and people with parental responsibility" not in table
    # 8 counted (the removed one is not); 3 on time (placement, host LA, nurse) + the IRO = 4 of the 6 whose pack
    # was sent or whose due time has passed
    assert table[reports.ALL_RECIPIENTS] == (8, 4, 1, 1, 2, round(100 * 4 / 6))
    # A new version sent later does not change when the first one went
    with deps.db.transaction() as session:
        v1 = session.get(Pack, sent["receiving_placement"].id)
        session.add(Pack(**{c.key: getattr(v1, c.key) for c in Pack.__table__.columns if c.key not in (
            "id", "version", "token_hash", "created_at")}, id=uuid.uuid4(), version=2,
            token_hash=uuid.uuid4().bytes + uuid.uuid4().bytes, created_at=clock.now() + timedelta(days=9)))
    assert rows(report(deps, world), "on_time")["Receiving placement"] == (1, 1, 0, 0, 0, 100)
    # The outcome rule itself
    due = datetime(2026, 5, 1, 12, tzinfo=UK)
    assert reports.on_time_outcome(due, due, due + timedelta(days=1)) == "on_time"
    assert reports.on_time_outcome(due, due + timedelta(seconds=1), due) == "late"
    assert reports.on_time_outcome(due, None, due + timedelta(seconds=1)) == "not_sent"
    assert reports.on_time_outcome(due, None, due) == "not_yet_due"


def test_overdue_now_lists_live_latest_unconfirmed_packs_past_their_confirmation_due_time(deps, world, clock):
    transition_id = send_emergency(deps, world)
    assert report(deps, world).table("overdue").rows == ()  # nothing is due yet
    sent = packs_of(deps, transition_id)
    clock.advance(hours=40)  # past one working day (17:00 the next day): the police and the nurse are late
    with deps.db.transaction() as session:
        transition = session.get(Transition, transition_id)
        due = {}
        for rtype, pack in sent.items():
            recipient = session.get(TransitionRecipient, pack.recipient_id)
            due[rtype] = confirmation_due_at(deps, transition, recipient, session.get(Pack, pack.id))
        session.get(Pack, sent["receiving_placement"].id).confirmed_at = clock.now()  # confirmed: not overdue
        session.get(Pack, sent["iro"].id).revoked_at = clock.now()  # revoked: not overdue
        session.get(Pack, sent["host_la"].id).expires_at = clock.now()  # the link has run out: not overdue
    overdue_types = {t for t, at in due.items() if at < clock.now()} - {"receiving_placement", "iro", "host_la"}
    assert overdue_types == {"host_police", "cla_nurse"}, due
    assert due["host_police"] == due["cla_nurse"]  # then the references decide the order
    table = report(deps, world).table("overdue")
    assert [r[0] for r in table.rows] == sorted((sent[t].reference for t in overdue_types),
                                                key=lambda ref: (min(due.values()), ref))
    police = next(r for r in table.rows if r[0] == sent["host_police"].reference)
    assert police[1] == "Police force for the new area" and police[2] == "North Yorkshire Police"
    assert police[3] == due["host_police"]
    assert police[4] == round((clock.now() - due["host_police"]).total_seconds() / 3600, 1)
    assert table.transition_ids == (transition_id, transition_id)
    # Only the latest version counts: a newer version (just sent) replaces the police's overdue one
    with deps.db.transaction() as session:
        v1 = session.get(Pack, sent["host_police"].id)
        session.add(Pack(**{c.key: getattr(v1, c.key) for c in Pack.__table__.columns if c.key not in (
            "id", "version", "token_hash", "created_at")}, id=uuid.uuid4(), version=2,
            token_hash=uuid.uuid4().bytes + uuid.uuid4().bytes, created_at=clock.now()))
    assert [r[1] for r in report(deps, world).table("overdue").rows] == ["Looked-after children's nurse"]
    # Overdue now is about now: a period long ago still shows it
    old = reports.Period(date(2020, 1, 1), date(2020, 1, 31))
    assert len(report(deps, world, period=old).table("overdue").rows) == 1
    assert report(deps, world, period=old).table("kinds").rows == ()


def test_transitions_by_kind_in_the_period_and_the_childs_team(deps, world, clock):
    send_emergency(deps, world)  # Amira (South), starts in 2 hours
    start(deps, world, "social_worker_south", "Amira", "planned_move_at_distance", "SC900001",
          when=clock.now() + timedelta(days=3), distance="yes")  # a draft, starting in 3 days
    cancelled = start(deps, world, "social_worker_south", "Tyler", "temporary_move", "SC900001",
                      when=clock.now() - timedelta(days=2))
    service.change_status(deps, cancelled, "cancel", "Carers no longer available", None,
                          world.view(deps, "social_worker_south"), world.actor("social_worker_south"))
    start(deps, world, "social_worker", "Jade", "temporary_move", "SC900001", when=clock.now() - timedelta(days=45))
    table = rows(report(deps, world), "kinds")
    assert table == {"Emergency or unplanned move": (1, 1, 0),
                     "Temporary move (respite, short break or holiday)": (1, 0, 1)}  # Jade's is before the period
    today = clock.now().astimezone(UK).date()
    week = reports.Period(today, today + timedelta(days=7))
    assert rows(report(deps, world, period=week), "kinds") == {
        "Emergency or unplanned move": (1, 1, 0), "Planned move at a distance": (1, 0, 0)}
    north, south = team_id(deps, "Children in Care North"), team_id(deps, "Children in Care South")
    assert set(rows(report(deps, world, team=north), "kinds")) == {  # the demo's own, sent at the start
        "Emergency or unplanned move", "Hospital admission (A&E or children's ward)"}
    assert len(report(deps, world, team=None).table("kinds").rows) == 3
    # The North team manager sees the North team, whatever they ask for, and is refused the South
    mine = report(deps, world, "team_manager", team=None)
    assert mine.scope.team_id == north and mine.scope.team_name == "Children in Care North"
    assert mine.table("kinds").rows == report(deps, world, team=north).table("kinds").rows
    assert report(deps, world, "team_manager", team=north).scope.team_id == north
    with pytest.raises(ForbiddenActionError):
        report(deps, world, "team_manager", team=south)
    for who in ("social_worker", "cla_nurse"):
        with pytest.raises(ForbiddenActionError):
            report(deps, world, who)
    # The auditor may read any team's, or all
    assert report(deps, world, "auditor", team=south).scope.team_name == "Children in Care South"
    assert report(deps, world, "auditor", team=None).scope.team_name == "All teams"


def test_sections_missing_or_out_of_date_when_the_packs_were_sent(deps, world, clock):
    with deps.db.transaction() as session:
        session.execute(update(SectionVersion).where(  # saved only after the move below: missing then
            SectionVersion.child_id == world.children["Amira"], SectionVersion.section_code == "RISK")
            .values(created_at=clock.now() + timedelta(hours=1)))
        session.execute(update(SectionVersion).where(  # its review date had passed: out of date then
            SectionVersion.child_id == world.children["Amira"], SectionVersion.section_code == "HEALTH")
            .values(next_review_due=clock.now().date() - timedelta(days=1)))
    transition_id = start(deps, world, "social_worker_south", "Amira", "emergency_move", "SC900003",
                          when=clock.now() + timedelta(hours=2), urgency="emergency", distance="no",
                          emergency_reason="Carers asked for her to leave tonight after an assault")
    senior, senior_actor = world.view(deps, "senior_manager"), world.actor("senior_manager")
    for code in ("PHOTO", "HEALTH"):
        service.override_section(deps, transition_id, code, "Agreed with the home", senior, senior_actor)
    sw, sw_actor = world.view(deps, "social_worker_south"), world.actor("social_worker_south")
    service.change_status(deps, transition_id, "ready", "", None, sw, sw_actor)
    service.change_status(deps, transition_id, "sent", "", None, sw, sw_actor)
    clock.advance(hours=3)
    with deps.db.transaction() as session:  # a review after the move does not change what was sent
        session.execute(update(SectionVersion).where(
            SectionVersion.child_id == world.children["Amira"], SectionVersion.section_code == "HEALTH")
            .values(next_review_due=clock.now().date() + timedelta(days=90)))
    table = rows(report(deps, world), "sections")
    # Moves that needed it, missing, out of date. The photo is eight months old (older than the record allows).
    assert table == {"Photo and description": (1, 0, 1), "Risk summary and assessments": (1, 1, 0)}
    found = report(deps, world).table("sections")
    assert "Packs were sent for 1 move or admission in this period" in found.note
    # The rule on its own
    sent = datetime(2026, 3, 10, 12, tzinfo=UK)
    saved = [reports.SavedVersion(1, sent - timedelta(days=10), date(2026, 3, 9)),
             reports.SavedVersion(2, sent + timedelta(hours=1), date(2026, 9, 1))]
    assert reports.section_state_at(saved, sent) == "stale"
    assert reports.section_state_at(saved, sent + timedelta(hours=2)) == "current"
    assert reports.section_state_at(saved, sent - timedelta(days=11)) == "missing"
    assert reports.section_state_at([reports.SavedVersion(1, sent, date(2026, 3, 10))], sent) == "current"
    photo = reports.SavedVersion(1, sent, date(2027, 1, 1), photo_taken_on=date(2025, 9, 1))
    assert reports.section_state_at([photo], sent, photo_stale_days=182) == "stale"
    assert reports.section_state_at([photo], sent) == "current"


def test_overrides_are_listed_with_their_reasons_and_who_made_them(deps, world):
    send_emergency(deps, world)
    table = report(deps, world).table("overrides")
    assert len(table.rows) == 1
    section, kind, reason, role, when = table.rows[0]
    assert (section, kind, reason, role) == ("Photo and description", "Emergency or unplanned move",
                                             "New photo to be taken on arrival by the home", "Senior manager")
    assert isinstance(when, datetime)


def test_escalations_and_information_requests_with_their_times(deps, world, clock):
    transition_id = send_emergency(deps, world)
    sent = packs_of(deps, transition_id)
    south = team_id(deps, "Children in Care South")
    now = clock.now()
    with deps.db.transaction() as session:
        def escalation(pack: Pack, level: str, raised: float, acknowledged: float | None, resolved: bool) -> None:
            session.add(Escalation(
                id=uuid.uuid4(), child_id=pack.child_id, transition_id=transition_id, pack_id=pack.id, team_id=south,
                level=level, addressed_role=level, confirmation_due_at=now, raised_at=now + timedelta(hours=raised),
                status="resolved" if resolved else "acknowledged" if acknowledged is not None else "open",
                acknowledged_at=None if acknowledged is None else now + timedelta(hours=raised + acknowledged),
                resolved_at=now + timedelta(hours=raised + 10) if resolved else None,
                resolved_cause="confirmed" if resolved else None))

        escalation(sent["host_police"], "social_worker", 1, 1, True)
        escalation(sent["iro"], "social_worker", 1, 3, False)
        escalation(sent["cla_nurse"], "social_worker", 1, None, False)
        escalation(sent["host_police"], "team_manager", 5, 0.5, True)
        escalation(sent["host_la"], "senior_manager", -24 * 60, 1, True)  # raised before the period
        for pack, asked, answered in ((sent["receiving_placement"], 1, 2), (sent["host_la"], 2, 4),
                                      (sent["host_la"], 3, None)):
            request = InformationRequest(id=uuid.uuid4(), pack_id=pack.id, sections="HEALTH",
                                         requested_at=now + timedelta(hours=asked),
                                         answered_at=None if answered is None else now + timedelta(hours=asked +
                                                                                                   answered))
            session.add(request)
    clock.advance(hours=20)
    found = report(deps, world)
    # Raised, acknowledged, resolved, still open, median hours to acknowledge
    assert found.table("escalations").rows == (("Social worker", 3, 2, 1, 1, 2.0), ("Team manager", 1, 1, 1, 0, 0.5),
                                               ("Senior manager", 0, 0, 0, 0, None))
    assert rows(found, "requests") == {"Receiving placement": (1, 1, 0, 2.0),
                                       "Local authority for the new area": (2, 1, 1, 4.0),
                                       reports.ALL_RECIPIENTS: (3, 2, 1, 3.0)}
    north = team_id(deps, "Children in Care North")
    assert report(deps, world, team=north).table("escalations").rows == ()
    assert report(deps, world, team=north).table("requests").rows == ()


def test_viewing_and_exporting_are_in_the_audit_trail_without_personal_data(deps, world, client, clock):
    send_emergency(deps, world)
    sign_in(client, world.accounts["auditor"], clock)
    assert client.get("/reports").status_code == 200
    assert client.get("/reports/overdue.csv?from=2026-11-01&to=2026-11-25").status_code == 200
    with deps.db.transaction() as session:
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.action.like("report.%"))
                                      .order_by(AuditEvent.seq)))
        assert [(e.action, e.object_id, e.actor_id) for e in events] == [
            ("report.viewed", "all", str(world.accounts["auditor"].id)),
            ("report.exported", "overdue", str(world.accounts["auditor"].id))]
        details = json.loads(events[1].details)
        assert details["purpose"] == "2026-11-01/2026-11-25" and details["team_id"] == "all"
        text = repr([e.details for e in events])
    for secret in CHILD_SECRETS:
        assert secret not in text


# ---- the pages ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["social_worker", "cla_nurse", "admin"])
def test_other_roles_are_refused_the_reports_and_their_files(deps, client, clock, role):
    sign_in(client, make_staff(deps, role=role, team="Children in Care North"), clock)
    assert client.get("/reports").status_code == 403
    assert client.get("/reports/kinds.csv").status_code == 403


def test_a_team_manager_sees_their_own_team_only(deps, world, client, clock):
    sign_in(client, world.accounts["team_manager"], clock)
    north, south = team_id(deps, "Children in Care North"), team_id(deps, "Children in Care South")
    page = client.get("/reports").get_data(as_text=True)
    assert "Children in Care North:" in page
    assert "Children in Care South" not in page and "All teams" not in page
    assert client.get(f"/reports?team={north}").status_code == 200
    refused = client.get(f"/reports?team={south}")
    assert refused.status_code == 403
    assert "Children in Care South" not in refused.get_data(as_text=True)
    assert client.get(f"/reports/kinds.csv?from=2026-11-01&to=2026-11-25&team={south}").status_code == 403
    with deps.db.transaction() as session:
        denied = session.scalars(select(AuditEvent).where(AuditEvent.action == "access.denied")
                                 .order_by(AuditEvent.seq.desc())).first()
        assert denied is not None and json.loads(denied.details)["endpoint"] == "reports"


def test_the_period_form_keeps_what_was_typed_and_explains_what_is_wrong(deps, world, client, clock):
    sign_in(client, world.accounts["senior_manager"], clock)
    page = client.get("/reports").get_data(as_text=True)
    today = clock.now().astimezone(UK).date()
    begin = today - timedelta(days=29)
    assert re.search(r'name="from_date"[^>]*value="' + f"{begin.day:02d}", page), "default start not shown"
    assert f"{begin.day} {begin.strftime('%B')} {begin.year} to {today.day} {today.strftime('%B')}" in page

    response = client.get("/reports?from_date=31&from_date=2&from_date=2026&to_date=&to_date=&to_date=&team=")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "There is a problem" in page and page.count('govuk-error-message') == 2
    assert "The start date must be a real date" in page and "Enter the end date" in page
    assert 'href="#from_date-day"' in page and 'href="#to_date-day"' in page
    assert 'value="31"' in page  # what was typed is kept
    assert "<title>Error: Reports" in page
    assert 'role="img"' not in page  # no report for a period that is not one

    page = client.get("/reports?from_date=10&from_date=5&from_date=2026&to_date=9&to_date=5&to_date=2026"
                      ).get_data(as_text=True)
    assert "The end date must be the same as or after the start date" in page and 'value="10"' in page
    page = client.get("/reports?from_date=1&from_date=1&from_date=2020&to_date=1&to_date=1&to_date=2026"
                      ).get_data(as_text=True)
    assert "The period must be 3 years or shorter" in page
    page = client.get("/reports?team=not-a-team").get_data(as_text=True)
    assert "Select a team from the list" in page
    assert client.get(f"/reports?team={uuid.uuid4()}").status_code == 404
    assert client.get("/reports/kinds.csv?from=2026-13-01&to=2026-11-25").status_code == 400
    assert client.get("/reports/nothing.csv").status_code == 404

    page = client.get("/reports?from_date=1&from_date=5&from_date=2026&to_date=31&to_date=5&to_date=2026"
                      ).get_data(as_text=True)
    assert "1 May 2026 to 31 May 2026" in page and "There is a problem" not in page
    assert "/reports/kinds.csv?from=2026-05-01&amp;to=2026-05-31" in page


def test_each_chart_is_named_by_its_caption_and_followed_by_its_table(deps, world, client, clock):
    demo_history.load_demo_history(deps)
    sign_in(client, world.accounts["team_manager"], clock)
    page = client.get("/reports").get_data(as_text=True)
    charts = re.findall(r'<svg id="chart-([a-z_]+)" role="img" aria-labelledby="([^"]+)"', page)
    assert {name for name, _ in charts} == {"kinds", "on_time", "confirmation", "sections", "escalations",
                                            "requests"}
    for name, caption in charts:
        assert f'id="{caption}"' in page and f'<figcaption class="govuk-body govuk-!-font-weight-bold" ' \
                                            f'id="{caption}">Chart: ' in page
        after = page[page.index(f'<svg id="chart-{name}"'):]
        svg = after[:after.index("</svg>")]
        between = after[len(svg):after.index(f'id="table-{name}">')]
        assert re.fullmatch(r'</svg>\s*</figure>\s*</div>\s*</div>\s*<table class="govuk-table[^"]*"\s*', between), \
            between  # the table comes next
        assert "style=" not in svg and "<script" not in svg
        assert "#1d70b8" in svg
    for name in reports.TABLES:
        assert f'href="/reports/{name}.csv?from=' in page
    # The manager may open the transition of an overdue pack; there is no child's name anywhere
    assert re.search(r'href="/transitions/[0-9a-f-]{36}">Open the transition', page)
    for secret in CHILD_SECRETS:
        assert secret not in page, secret


def test_the_auditor_gets_no_links_into_transitions(deps, world, client, clock):
    demo_history.load_demo_history(deps)
    sign_in(client, world.accounts["auditor"], clock)
    page = client.get("/reports").get_data(as_text=True)
    assert "Confirmations overdue now" in page and "HP-" in page
    assert "/transitions/" not in page and "Open the transition" not in page
    for secret in CHILD_SECRETS:
        assert secret not in page, secret


def test_csv_files_are_attachments_with_spreadsheet_formulas_neutralised(deps, world, client, clock):
    transition_id = send_emergency(deps, world)
    with deps.db.transaction() as session:
        override = session.scalars(select(SectionOverride).where(
            SectionOverride.transition_id == transition_id)).one()
        override.reason = '=HYPERLINK("http://evil.example","Click"),+1,-2,@SUM(A1)'
        for code in ("HEALTH", "EDU"):
            session.add(SectionOverride(id=uuid.uuid4(), transition_id=transition_id, section_code=code,
                                        by_id=override.by_id, by_role="team_manager", created_at=clock.now()))
    with deps.db.transaction() as session:
        second = session.scalars(select(SectionOverride).where(SectionOverride.section_code == "HEALTH")).one()
        second.reason = "@cmd|' /C calc'!A0"
        third = session.scalars(select(SectionOverride).where(SectionOverride.section_code == "EDU")).one()
        third.reason = ' \uff1dHYPERLINK("http://evil.example")'  # a space, then a full-width equals sign
    sign_in(client, world.accounts["senior_manager"], clock)
    today = clock.now().astimezone(UK).date().isoformat()
    response = client.get(f"/reports/overrides.csv?from=2026-11-01&to={today}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="cla-transitions-overrides-2026-11-01-to-{today}.csv"')
    assert response.headers["Cache-Control"] == "no-store"
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(text[1:])))
    assert table[0] == ["Section", "Kind of transition", "Reason given", "Overridden by", "When (UK time)"]
    reasons = sorted(row[2] for row in table[1:])
    assert reasons == ["' \uff1dHYPERLINK(\"http://evil.example\")",
                       "'=HYPERLINK(\"http://evil.example\",\"Click\"),+1,-2,@SUM(A1)", "'@cmd|' /C calc'!A0"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", table[1][4])
    printable = ("=", "+", "-", "@", "|", "%", "\uff1d", "\uff0b", "\uff0d", "\uff20")
    for start_char in (*printable, "\t", "\r"):
        assert neutralise(start_char + "1") == "'" + start_char + "1", repr(start_char)
    # after leading white space (spaces, a tab, a newline, a no-break or ideographic space), kept as it was
    for start_char in printable:
        for space in (" ", "  ", "\t ", "\n", "\u00a0", "\u3000"):
            assert neutralise(space + start_char + "1") == "'" + space + start_char + "1", repr(space + start_char)
    for harmless in ("Photo and description", "", "   ", "a=1", "Reason: -2 days", "100%", "x|y", "1 + 1"):
        assert neutralise(harmless) == harmless, harmless
    # Every table has its file
    for name in reports.TABLES:
        response = client.get(f"/reports/{name}.csv?from=2026-11-01&to={today}")
        assert response.status_code == 200 and response.mimetype == "text/csv", name
        header = next(csv.reader(io.StringIO(response.get_data(as_text=True)[1:])))
        assert tuple(header) == report(deps, world).table(name).columns


def test_csv_text_writes_numbers_times_and_blanks_plainly():
    table = reports.Table(name="x", title="X", columns=("A", "-B"), empty="",
                          rows=(("=1+1", 2.25), (None, datetime(2026, 7, 1, 12, tzinfo=UK)), ("a", 3)))
    lines = csv_text(table)[1:].splitlines()
    assert lines == ["A,'-B", "'=1+1,2.2", ",2026-07-01 12:00", "a,3"]


# ---- the demo history -------------------------------------------------------------------------------------


def test_demo_history_fills_every_table_for_the_north_team_once(deps, world, clock):
    before = report(deps, world, "team_manager", team=None)
    assert before.table("confirmation").rows == () and before.table("escalations").rows == ()
    added = demo_history.load_demo_history(deps)
    assert len(added) == len(demo_history.MOVES)
    assert demo_history.load_demo_history(deps) == []  # idempotent
    found = report(deps, world, "team_manager", team=None)
    for table in found.tables:
        assert table.rows, table.name
    assert rows(found, "overrides")["Photo and description"][1].startswith("No photo on file yet")
    assert len(found.table("overdue").rows) == 1
    assert rows(found, "requests")[reports.ALL_RECIPIENTS] == (1, 1, 0, 3.5)
    confirmed = rows(found, "confirmation")[reports.ALL_RECIPIENTS]
    assert confirmed[0] >= 5 and confirmed[1] < confirmed[2]  # various delays: the 90th percentile is longer
    on_time = rows(found, "on_time")[reports.ALL_RECIPIENTS]
    assert on_time[2] >= 1 and on_time[1] >= 1  # some late, some on time
    everyone = report(deps, world, team=None)
    assert len(everyone.table("overrides").rows) == 3
    assert len(everyone.table("overdue").rows) == 2  # Jade's nurse and Tyler's school have not confirmed
    # It is consistent with the service's own rules: older sent moves were superseded, their open links revoked
    with deps.db.transaction() as session:
        jade_break = session.scalars(select(Transition).where(
            Transition.child_id == world.children["Jade"], Transition.kind == "temporary_move")).one()
        assert jade_break.status == "superseded" and jade_break.superseded_by_id is not None
        revoked = session.scalars(select(Pack).where(Pack.transition_id == jade_break.id,
                                                     Pack.revoked_at.is_not(None))).all()
        assert [p.revoked_cause for p in revoked] == ["superseded"]


def test_demo_history_is_not_loaded_with_the_demo_children(deps):
    """The world fixture (and every other test) sees the demo without it: only `cla-transitions demo` adds it."""
    world = load_world(deps)
    with deps.db.transaction() as session:
        assert session.scalars(select(AuditEvent).where(AuditEvent.action == demo_history.MARKER)).first() is None
    assert report(deps, world).table("overrides").rows == ()


def test_a_bar_chart_is_drawn_to_scale_with_each_value_written_and_each_series_patterned():
    from transitions.web.charts import WIDTH, Series, bar_chart

    svg = str(bar_chart("chart-x", "chart-x-caption", ["<b>One</b>", "Two"],
                        [Series("Median", (2.0, 4.0)), Series("90th percentile", (4.0, None))], unit=" hours"))
    assert svg.startswith('<svg id="chart-x" role="img" aria-labelledby="chart-x-caption"')
    assert "&lt;b&gt;One&lt;/b&gt;" in svg and "<b>" not in svg  # labels are escaped
    widths = [float(w) for w in re.findall(r'<rect x="0" y="\d+" width="([\d.]+)" height="20"', svg)]
    bar_area = WIDTH - 230
    assert widths == [bar_area / 2, bar_area, bar_area]  # 2, 4 (the longest), 4; no bar for no data
    for words in ("Median: 2 hours", "Median: 4 hours", "90th percentile: 4 hours", "90th percentile: no data"):
        assert f">{words}</text>" in svg
    assert 'fill="url(#chart-x-p1)"' in svg and '<pattern id="chart-x-p1"' in svg  # stripes, not colour alone
    assert "style" not in svg
    single = str(bar_chart("chart-y", "c", ["A"], [Series("Share", (1.0,))], unit=" hours", maximum=100))
    assert ">1 hour</text>" in single and "<pattern" not in single
    assert re.search(r'width="([\d.]+)" height="20"', single).group(1) == f"{(WIDTH - 100) / 100:.1f}"
