"""The audit viewer (issue 6 part 7) and the auditor's role (part 6): auditors read who saw or changed a child's
record, never the record; managers read their children's trails; recipients' actions come from the access log;
reading a trail is audited; administrators check the chain's integrity from a page and see its last result."""

from __future__ import annotations

import html
import json
import re
import uuid

import pytest
from sqlalchemy import select

from tests.conftest import csrf_from, make_staff, post_form
from tests.integration.test_audit import _raw as tamper
from tests.integration.test_packs import WARD_NURSE, link_for, send_emergency, verified_session
from transitions.models import AuditEvent, Child, CrisisFlag, Organisation, Pack, Transition, TransitionRecipient
from transitions.services import audit, audit_views, children, receipt
from transitions.services.access import Via, access_to
from transitions.services.errors import BreakGlassRequiredError, ForbiddenActionError


def rows_of(page: str) -> list[list[str]]:
    """The audit table's body rows as lists of cell texts (tags removed, spaces squeezed)."""
    body = page.split('<tbody class="govuk-table__body">', 1)[1].split("</tbody>", 1)[0]
    out = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, flags=re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)
        out.append([" ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split()) for c in cells])
    return out


def trail_events(deps, child_id: uuid.UUID) -> list[AuditEvent]:
    with deps.db.transaction() as session:
        found = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "audit.trail_viewed",
                                                              AuditEvent.object_id == str(child_id))
                                     .order_by(AuditEvent.seq)))
        session.expunge_all()
        return found


def recipient_journey(deps, world) -> tuple[uuid.UUID, Pack]:
    """Amira's emergency move sent; the receiving home opens, downloads and confirms its pack."""
    transition_id = send_emergency(deps, world)
    token, pack = link_for(deps, transition_id, "receiving_placement")
    receipt.landing(deps, token, WARD_NURSE)
    sid = verified_session(deps, token, pack.id)
    receipt.view(deps, sid, WARD_NURSE)
    receipt.download(deps, sid, WARD_NURSE)
    receipt.confirm(deps, sid, "Sam Okoro", "Registered manager", True, WARD_NURSE)
    return transition_id, pack


# ---- the auditor's role -----------------------------------------------------------------------------------


def test_an_auditor_gets_403_on_every_part_of_a_childs_record(deps, world, browser):
    transition_id = send_emergency(deps, world)
    amira = world.children["Amira"]
    with deps.db.transaction() as session:
        recipient = session.scalars(select(TransitionRecipient.id).where(
            TransitionRecipient.transition_id == transition_id)).first()
    auditor = browser(world.accounts["auditor"])
    for url in (f"/children/{amira}", f"/children/{amira}/sections/RISK", f"/children/{amira}/sections/RISK/history",
                f"/children/{amira}/profile/history", f"/transitions/{transition_id}",
                f"/transitions/{transition_id}/recipients/{recipient}/access-log",
                f"/children/{amira}/recipient-map", f"/children/{amira}/break-glass", "/children"):
        response = auditor.get(url)
        assert response.status_code == 403, url
        assert "Amira" not in response.get_data(as_text=True), url
    # ... and the services refuse too, whatever the route: no reading, no break-glass
    user = world.view(deps, "auditor")
    with pytest.raises(BreakGlassRequiredError) as refused:
        children.child_page(deps, amira, user, world.actor("auditor"))
    assert refused.value.allowed is False
    with pytest.raises(ForbiddenActionError):
        children.break_glass(deps, amira, "I need to check something for an audit", user, world.actor("auditor"))
    with deps.db.transaction() as session:
        access = access_to(session, user, session.get(Child, amira), deps.clock.now())
    assert access.via is Via.NONE and not access.can_read and not access.may_break_glass
    assert children.my_children(deps, user, world.actor("auditor")) == []


def test_the_auditor_navigates_to_audit_not_children(deps, world, browser):
    home = browser(world.accounts["auditor"]).get("/").get_data(as_text=True)
    nav = home.split('class="govuk-service-navigation__list"', 1)[1].split("</ul>", 1)[0]
    links = {href: " ".join(text.split()) for href, text in re.findall(r'href="([^"]+)">(.*?)</a>', nav, flags=re.S)}
    assert links.get("/audit") == "Audit"
    assert "/children" not in links and "Children" not in links.values()
    admin_nav = browser(world.accounts["admin"]).get("/").get_data(as_text=True)
    assert 'href="/admin/audit"' in admin_nav and 'href="/audit"' not in admin_nav
    manager_nav = browser(world.accounts["team_manager"]).get("/").get_data(as_text=True)
    assert 'href="/audit"' in manager_nav and 'href="/children"' in manager_nav
    worker_nav = browser(world.accounts["social_worker"]).get("/").get_data(as_text=True)
    assert 'href="/audit"' not in worker_nav


def test_an_auditor_reads_crisis_flags_and_break_glass_without_links_into_the_record(deps, world, browser):
    jade = world.children["Jade"]
    with deps.db.transaction() as session:
        session.add(CrisisFlag(id=uuid.uuid4(), child_id=jade, reason="many_transitions", count=4,
                               raised_at=deps.clock.now()))
    children.break_glass(deps, jade, "Jade reported missing, her team cannot be reached",
                         world.view(deps, "social_worker_south"), world.actor("social_worker_south"))
    auditor = browser(world.accounts["auditor"])
    log = auditor.get("/break-glass").get_data(as_text=True)
    assert "reported missing" in log
    assert f'href="/audit/children/{jade}"' in log and f'href="/children/{jade}"' not in log
    crisis = auditor.get("/crisis").get_data(as_text=True)
    assert "4 moves or admissions in a short period" in crisis and "Jade" not in crisis
    assert f'href="/audit/children/{jade}"' in crisis and f'href="/children/{jade}"' not in crisis
    manager = browser(world.accounts["team_manager"]).get("/crisis").get_data(as_text=True)
    assert f'href="/children/{jade}"' in manager


# ---- who reads a trail ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "jade", "amira"), [
    ("auditor", 200, 200),
    ("senior_manager", 200, 200),
    ("team_manager", 200, 403),  # North's manager: Jade is North's, Amira South's
    ("social_worker", 403, 403),
    ("cla_nurse", 403, 403),
    ("admin", 403, 403),
])
def test_auditors_and_managers_read_trails_and_nobody_else(deps, world, browser, who, jade, amira):
    client = browser(world.accounts[who])
    assert client.get(f"/audit/children/{world.children['Jade']}").status_code == jade
    response = client.get(f"/audit/children/{world.children['Amira']}")
    assert response.status_code == amira
    assert client.get(f"/audit/children/{uuid.uuid4()}").status_code in (403, 404)
    assert client.get("/audit").status_code == (200 if jade == 200 else 403)


def test_a_team_manager_is_refused_another_teams_trail_by_the_service_too(deps, world):
    with pytest.raises(ForbiddenActionError):
        audit_views.trail(deps, world.children["Amira"], world.view(deps, "team_manager"),
                          world.actor("team_manager"))
    with pytest.raises(ForbiddenActionError):
        audit_views.trail(deps, world.children["Jade"], world.view(deps, "social_worker"),
                          world.actor("social_worker"))
    assert audit_views.trail(deps, world.children["Jade"], world.view(deps, "team_manager"),
                             world.actor("team_manager")).total > 0


# ---- what a trail shows -----------------------------------------------------------------------------------


def test_the_trail_shows_staff_and_recipients_with_readable_labels_in_uk_time(deps, world, browser, clock):
    _transition_id, pack = recipient_journey(deps, world)
    amira = world.children["Amira"]
    worker = browser(world.accounts["social_worker_south"])
    assert worker.get(f"/children/{amira}/sections/RISK").status_code == 200
    with deps.db.transaction() as session:
        audit.record(session, deps.audit_chain, deps.clock, world.actor("senior_manager"), "child.something_new",
                     object_type="child", object_id=amira)
    recorded_at = clock.now()
    page = browser(world.accounts["auditor"]).get(f"/audit/children/{amira}").get_data(as_text=True)
    rows = rows_of(page)
    who = {r[1] for r in rows}
    what = [r[2] for r in rows]
    # the receiving home is where Amira lives now: the auditor sees its kind, not its name
    recipient = f"Recipient: a children's home (pack {pack.reference})"
    assert recipient in who
    assert "Dana Price, Social worker" in who and "Chris Evans, Senior manager" in who
    # recipients' steps, each once (the audit copies of verified/downloaded/confirmed are not repeated)
    for label in ("Link fetched (may be automated)", "Code sent", "Recipient verified", "Pack viewed",
                  "PDF downloaded", "Receipt confirmed"):
        assert sum(1 for r in rows if r[1] == recipient and r[2] == label) == 1, label
    assert not any(r[1].startswith("Someone not signed in") for r in rows)
    # staff actions with their object, and an unknown code shown as the code
    assert any(r[1] == "Dana Price, Social worker" and r[2] == "Read a section"
               and r[3] == f"Section: {deps.definitions.sections['RISK'].title}" for r in rows), rows[:5]
    assert any(r[2].startswith("Sent a pack")
               and r[3] == f"Pack {pack.reference} version 1 for a children's home" for r in rows)
    assert any(r[2].startswith("Started a move or admission") for r in rows)
    assert "child.something_new" in what
    # newest first, in UK time
    assert rows[0][2] == "child.something_new"
    from transitions.web.timefmt import date_time

    assert rows[0][0] == date_time(recorded_at)
    # nothing from the record itself and no name on the audit page
    for secret in ("Amira", "Hassan", "Carers asked", "Moorview"):
        assert secret not in page
    assert "LCS-" in page


def _names_of_places(deps, transition_id: uuid.UUID) -> tuple[set[str], set[str]]:
    """The names of the placements, homes, hospitals and wards of a move (its destination and origin and every
    such recipient), and the names of the other organisations its packs went to."""
    with deps.db.transaction() as session:
        transition = session.get(Transition, transition_id)
        org_ids = set(session.scalars(select(Pack.organisation_id).where(Pack.transition_id == transition_id)))
        org_ids |= {transition.destination_id} | ({transition.origin_id} if transition.origin_id else set())
        orgs = session.scalars(select(Organisation).where(Organisation.id.in_(org_ids))).all()
    places = {o.name for o in orgs if o.kind in audit_views.PLACE_LABELS or o.id == transition.destination_id
              or o.id == transition.origin_id}
    return places, {o.name for o in orgs} - places


def test_an_auditor_sees_where_a_child_moved_by_kind_and_a_senior_manager_by_name(deps, world, browser):
    transition_id, pack = recipient_journey(deps, world)
    amira = world.children["Amira"]
    places, public_bodies = _names_of_places(deps, transition_id)
    with deps.db.transaction() as session:
        home = session.get(Organisation, pack.organisation_id)
        assert home.kind == "childrens_home" and home.name in places
        kinds = {o.kind for o in session.scalars(select(Organisation).where(Organisation.name.in_(public_bodies)))}
    assert kinds and kinds <= {"police_force", "local_authority", "camhs", "school", "gp_practice"}, kinds
    move = f"{deps.definitions.kinds['emergency_move'].title} to"
    # the auditor: no name of a place anywhere on the page (rows and filter), the kind instead
    page = html.unescape(browser(world.accounts["auditor"]).get(f"/audit/children/{amira}").get_data(as_text=True))
    for name in places:
        assert name not in page, name
    rows = rows_of(page)
    assert f"Recipient: a children's home (pack {pack.reference})" in {r[1] for r in rows}
    assert f"{move} a children's home" in {r[3] for r in rows}
    assert f'value="organisation:{home.id}">Recipient: a children\'s home (pack {pack.reference})</option>' in page
    assert "shown by their kind, not their name" in page
    # ... while police forces and local authorities, which are not where the child lives, keep their names
    for name in public_bodies:
        assert name in page, name
    # ... and the service itself hands out no place's name, whatever the filter
    user, actor = world.view(deps, "auditor"), world.actor("auditor")
    for flt in (audit_views.TrailFilter(), audit_views.TrailFilter("organisation", home.id)):
        found = audit_views.trail(deps, amira, user, actor, flt=flt)
        texts = [t for r in found.rows for t in (r.who, r.object, r.detail)] + [label for _v, label in found.choices]
        assert found.rows and not any(name in t for t in texts for name in places)
    # a senior manager, who may read Amira's record, sees the names
    manager = browser(world.accounts["senior_manager"]).get(f"/audit/children/{amira}").get_data(as_text=True)
    manager = html.unescape(manager)
    rows = rows_of(manager)
    assert f"Recipient: {home.name} (pack {pack.reference})" in {r[1] for r in rows}
    assert f"{move} {home.name}" in {r[3] for r in rows}
    assert f"Pack {pack.reference} version 1 for {home.name}" in {r[3] for r in rows}
    assert f'value="organisation:{home.id}">Recipient: {home.name}</option>' in manager
    assert "shown by their kind, not their name" not in manager


def test_the_filter_shows_staff_or_recipients_or_one_of_them(deps, world, browser):
    _transition_id, pack = recipient_journey(deps, world)
    amira = world.children["Amira"]
    auditor = browser(world.accounts["auditor"])
    page = auditor.get(f"/audit/children/{amira}").get_data(as_text=True)
    dana = world.accounts["social_worker_south"].id
    assert f'value="person:{dana}"' in page and f'value="organisation:{pack.organisation_id}"' in page
    staff_rows = rows_of(auditor.get(f"/audit/children/{amira}?who=staff").get_data(as_text=True))
    assert staff_rows and not any(r[1].startswith("Recipient:") for r in staff_rows)
    recipient_rows = rows_of(auditor.get(f"/audit/children/{amira}?who=recipients").get_data(as_text=True))
    assert recipient_rows and all(r[1].startswith("Recipient:") for r in recipient_rows)
    dana_rows = rows_of(auditor.get(f"/audit/children/{amira}?who=person:{dana}").get_data(as_text=True))
    assert dana_rows and {r[1] for r in dana_rows} == {"Dana Price, Social worker"}
    home_rows = rows_of(auditor.get(f"/audit/children/{amira}?who=organisation:{pack.organisation_id}")
                        .get_data(as_text=True))
    assert home_rows and all(f"(pack {pack.reference})" in r[1] for r in home_rows)
    assert "Nothing recorded for this choice" in auditor.get(
        f"/audit/children/{amira}?who=person:{uuid.uuid4()}").get_data(as_text=True)
    for bad in ("?who=everyone", "?who=person:not-a-uuid", "?who=staff:x", "?page=0", "?page=x"):
        assert auditor.get(f"/audit/children/{amira}{bad}").status_code == 400, bad
    # the filter is recorded with the reading
    assert [json.loads(e.details)["kind"] for e in trail_events(deps, amira)] == [
        "all", "staff", "recipients", "person", "organisation", "person"]


def test_the_trail_is_paginated_newest_first(deps, world, browser, clock):
    tyler = world.children["Tyler"]
    with deps.db.transaction() as session:
        for n in range(130):
            audit.record(session, deps.audit_chain, deps.clock, world.actor("senior_manager"), f"test.step_{n:03d}",
                         object_type="child", object_id=tyler)
            clock.advance(seconds=1)
    auditor = browser(world.accounts["auditor"])
    first = auditor.get(f"/audit/children/{tyler}").get_data(as_text=True)
    total = int(re.search(r"(\d+) events \(page 1 of 2\)", first).group(1))  # type: ignore[union-attr]
    assert total >= 130
    page_one = rows_of(first)
    assert len(page_one) == audit_views.PAGE_SIZE
    assert page_one[0][2] == "test.step_129" and page_one[99][2] == "test.step_030"
    assert f'href="/audit/children/{tyler}?who=all&amp;page=2"' in first
    # the first reading is now the newest event, so everything moved down by one
    page_two = rows_of(auditor.get(f"/audit/children/{tyler}?page=2").get_data(as_text=True))
    assert page_two[0][2] == "test.step_030" and len(page_two) == total + 1 - audit_views.PAGE_SIZE
    # a page past the end shows the last one
    assert f"{total + 2} events (page 2 of 2)" in auditor.get(f"/audit/children/{tyler}?page=9").get_data(as_text=True)


def test_reading_a_trail_is_audited_and_shows_in_the_trail(deps, world, browser):
    leo = world.children["Leo"]
    auditor = browser(world.accounts["auditor"])
    auditor.get(f"/audit/children/{leo}")
    viewed = trail_events(deps, leo)
    assert len(viewed) == 1 and viewed[0].actor_id == str(world.accounts["auditor"].id)
    assert viewed[0].object_type == "child" and json.loads(viewed[0].details)["kind"] == "all"
    rows = rows_of(auditor.get(f"/audit/children/{leo}").get_data(as_text=True))
    assert rows[0][1] == "Lee Harper, Auditor (read only)" and rows[0][2] == "Read this audit trail"
    # a refused reading is recorded as a refusal
    browser(world.accounts["team_manager"]).get(f"/audit/children/{world.children['Amira']}")
    with deps.db.transaction() as session:
        denied = session.scalars(select(AuditEvent).where(AuditEvent.action == "child.access_denied",
                                                          AuditEvent.object_id == str(world.children["Amira"]))
                                 ).all()
        assert any(json.loads(d.details)["endpoint"] == "audit.trail" for d in denied)


# ---- finding a child without their record -----------------------------------------------------------------


def test_the_audit_page_lists_children_by_local_id_and_birth_year_only(deps, world, browser):
    page = browser(world.accounts["auditor"]).get("/audit").get_data(as_text=True)
    for name in ("Amira", "Hassan", "Jade", "Carter", "Leo", "Tyler"):
        assert name not in page
    assert page.count('href="/audit/children/') == 4
    assert "LCS-099120" in page and "2009" in page  # Amira's local ID and year of birth
    north = browser(world.accounts["team_manager"]).get("/audit").get_data(as_text=True)
    assert north.count('href="/audit/children/') == 2 and "LCS-099120" not in north
    with deps.db.transaction() as session:
        listed = session.scalars(select(AuditEvent).where(AuditEvent.action == "audit.children_listed")).all()
        assert [json.loads(e.details)["count"] for e in listed] == [4, 2]


def test_searching_by_local_child_id_is_a_post_and_exact(deps, world, browser):
    auditor = browser(world.accounts["auditor"])
    found = post_form(auditor, "/audit/search", {"local_id": " lcs-099120 "}, page="/audit")
    text = found.get_data(as_text=True)
    assert found.status_code == 200 and f'href="/audit/children/{world.children["Amira"]}"' in text
    assert "Amira" not in text
    missing = post_form(auditor, "/audit/search", {"local_id": "LCS-0991"}, page="/audit").get_data(as_text=True)
    assert "No match" in missing and 'href="/audit/children/' not in missing
    empty = post_form(auditor, "/audit/search", {"local_id": ""}, page="/audit").get_data(as_text=True)
    assert "There is a problem" in empty and "Enter the local child ID" in empty
    # a team manager finds only their team's children
    north = browser(world.accounts["team_manager"])
    other = post_form(north, "/audit/search", {"local_id": "LCS-099120"}, page="/audit").get_data(as_text=True)
    assert "No match" in other
    worker = browser(world.accounts["social_worker"])
    token = csrf_from(worker.get("/").get_data(as_text=True))
    assert worker.post("/audit/search", data={"local_id": "LCS-099120", "csrf_token": token}).status_code == 403


# ---- the audit trail's integrity, for administrators ------------------------------------------------------


def test_an_administrator_checks_the_chain_and_sees_the_last_result(deps, world, browser, clock):
    admin = browser(world.accounts["admin"])
    first = admin.get("/admin/audit").get_data(as_text=True)
    assert "has not been checked from this page yet" in first
    response = post_form(admin, "/admin/audit", {"checkpoint": ""})
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "The audit trail is intact" in text
    checkpoint = re.search(r'<code id="checkpoint-value">(\d+:[0-9a-f]{64})</code>', text).group(1)  # type: ignore[union-attr]
    checked = int(re.search(r"(\d+) events checked", text).group(1))  # type: ignore[union-attr]
    with deps.db.transaction() as session:
        expected = audit.verify(session, deps.audit_chain)
    assert checked == expected.checked - 1  # the check's own event is recorded after it
    later = admin.get("/admin/audit").get_data(as_text=True)
    assert "Intact" in later and f"<dd class=\"govuk-summary-list__value\">{checked}</dd>" in later
    assert "Alex Morgan, Administrator" in later
    # an earlier checkpoint still matches
    assert "The audit trail is intact" in post_form(admin, "/admin/audit", {"checkpoint": checkpoint}) \
        .get_data(as_text=True)
    bad = post_form(admin, "/admin/audit", {"checkpoint": "12:abc"}).get_data(as_text=True)
    assert "There is a problem" in bad and "12:abc" in bad
    # someone edits an event in the database: the check names it, and the page remembers
    with deps.db.transaction() as session:
        victim_seq = session.scalars(select(AuditEvent.seq).where(AuditEvent.action == "section.saved")).first()
    tamper(deps, "UPDATE audit_event SET actor_id = 'someone-else' WHERE seq = :seq", seq=victim_seq)
    broken = post_form(admin, "/admin/audit", {"checkpoint": ""}).get_data(as_text=True)
    assert "The audit trail is broken" in broken and f"event {victim_seq} was altered or moved" in broken.lower()
    assert f'<dd class="govuk-summary-list__value">{victim_seq}</dd>' in broken and "section.saved" in broken
    last = admin.get("/admin/audit").get_data(as_text=True)
    assert "Broken" in last and f"at event {victim_seq}" in last
    for name in ("Amira", "Jade", "LCS-"):
        assert name not in broken
    with deps.db.transaction() as session:
        kept = session.scalars(select(AuditEvent).where(AuditEvent.action == "audit.verified")
                               .order_by(AuditEvent.seq)).all()
        assert [json.loads(e.details)["ok"] for e in kept] == [True, True, False]
        assert json.loads(kept[-1].details)["first_broken_seq"] == victim_seq
    # nobody else may check
    for who in ("auditor", "senior_manager"):
        assert browser(world.accounts[who]).get("/admin/audit").status_code == 403


def test_the_check_is_refused_by_the_service_to_anyone_but_an_administrator(deps, world):
    with pytest.raises(ForbiddenActionError):
        audit_views.check_integrity(deps, world.view(deps, "auditor"), world.actor("auditor"))
    with pytest.raises(ForbiddenActionError):
        audit_views.last_check(deps, world.view(deps, "senior_manager"))


def test_events_of_a_childs_transitions_and_packs_are_in_the_childs_trail_only(deps, world):
    send_emergency(deps, world)
    leo = audit_views.trail(deps, world.children["Leo"], world.view(deps, "auditor"), world.actor("auditor"))
    amira = audit_views.trail(deps, world.children["Amira"], world.view(deps, "auditor"), world.actor("auditor"))
    with deps.db.transaction() as session:
        amira_refs = set(session.scalars(select(Pack.reference).where(Pack.child_id == world.children["Amira"])))
        leo_moves = session.scalars(select(Transition).where(Transition.child_id == world.children["Leo"])).all()
    assert amira_refs and any(any(ref in r.object for ref in amira_refs) for r in amira.rows)
    assert not any(any(ref in r.object for ref in amira_refs) for r in leo.rows)
    assert leo_moves and any(r.code == "transition.created" for r in leo.rows)
    assert any(r.code == "pack.issued" for r in amira.rows)
    assert leo.child.la_child_id and leo.child.birth_year == 2013


def test_unknown_staff_and_system_actors_are_named_plainly(deps, world):
    jade = world.children["Jade"]
    with deps.db.transaction() as session:
        audit.record(session, deps.audit_chain, deps.clock, audit.Actor("staff", str(uuid.uuid4())), "child.viewed",
                     object_type="child", object_id=jade)
        audit.record(session, deps.audit_chain, deps.clock, audit.Actor.system("tick"), "crisis.flagged",
                     object_type="child", object_id=jade)
    found = audit_views.trail(deps, jade, world.view(deps, "auditor"), world.actor("auditor"))
    assert found.rows[0].who == "The service (tick)" and found.rows[0].what == "Crisis flag raised"
    assert found.rows[1].who == "A member of staff (account not found)"
    staff = make_staff(deps, role="auditor")
    assert audit_views.trail(deps, jade, world.view(deps, "auditor"), world.actor("auditor"),
                             flt=audit_views.TrailFilter("person", staff.id)).rows == []
