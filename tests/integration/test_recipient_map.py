"""The recipient map (issue 6 part 5, Finding CH3): every organisation, by area, that holds or held a version of a
child's pack, with each version's state over time; for whoever reads the child's record, and audited."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.integration.test_packs import WARD_NURSE, link_for, nurse_saves_health, send_emergency, verified_session
from transitions.models import AuditEvent, Pack
from transitions.services import audit_views, children, packs, receipt, recipient_map
from transitions.services.errors import BreakGlassRequiredError


def the_map(deps, world, child: str = "Amira", who: str = "social_worker_south") -> recipient_map.RecipientMap:
    return recipient_map.recipient_map(deps, world.children[child], world.view(deps, who), world.actor(who))


def states(found: recipient_map.RecipientMap) -> dict[tuple[str, str, int], str]:
    """(organisation, recipient type, version) -> state."""
    return {(h.name, v.recipient_title, v.version): v.state for a in found.areas for h in a.holders
            for v in h.versions}


def test_organisations_are_grouped_by_area_in_the_order_they_received_something(deps, world):
    send_emergency(deps, world)
    found = the_map(deps, world)
    areas = {a.name: a for a in found.areas}
    assert set(areas) == {"Cumberland Council", "North Yorkshire Council"}
    north_yorkshire = areas["North Yorkshire Council"]
    # the home is in the area, the host authority is the area, and the force covering it goes with it
    assert {h.name for h in north_yorkshire.holders} == {
        "Moorview House (demo children's home)", "North Yorkshire Council", "North Yorkshire Police"}
    assert north_yorkshire.region == "Yorkshire and The Humber" and north_yorkshire.police_force == \
        "North Yorkshire Police"
    home = next(h for h in north_yorkshire.holders if h.name.startswith("Moorview"))
    assert home.kind_label == "Children's home" and home.live == 1
    assert [v.recipient_title for v in home.versions] == ["Receiving placement"]
    version = home.versions[0]
    assert version.state == "active" and version.ended_at is None and version.sent_at == deps.clock.now()
    assert version.transition_title == "Emergency or unplanned move to Moorview House (demo children's home)"
    # the council's own services (IRO, nurse) are in the responsible authority's area
    assert "Cumberland Council" in {h.name for h in areas["Cumberland Council"].holders}
    assert found.organisations == sum(len(a.holders) for a in found.areas) and found.live == found.versions
    # Jade's admission: a ward is in its hospital's area
    jade = the_map(deps, world, "Jade", "social_worker")
    assert [(a.name, sorted(h.name for h in a.holders)) for a in jade.areas] == [
        ("Cumberland Council", ["Cumberland Council", "Ward 7 Children's (demo)"])]


def test_each_version_shows_confirmed_superseded_revoked_and_expired_over_time(deps, world, clock):
    transition_id = send_emergency(deps, world)
    sw, sw_actor = world.view(deps, "social_worker_south"), world.actor("social_worker_south")
    token, home_v1 = link_for(deps, transition_id, "receiving_placement")
    sid = verified_session(deps, token, home_v1.id)
    receipt.download(deps, sid, WARD_NURSE)
    receipt.confirm(deps, sid, "Sam Okoro", "Registered manager", True, WARD_NURSE)
    confirmed_at = clock.now()
    home = "Moorview House (demo children's home)"
    assert states(the_map(deps, world))[(home, "Receiving placement", 1)] == "confirmed"

    clock.advance(days=2)
    nurse_saves_health(deps, world, conditions="Asthma (new inhaler from 1 December)")
    packs.send_remaining(deps, transition_id, sw, sw_actor, only_stale=True)
    replaced_at = clock.now()
    _token, police = link_for(deps, transition_id, "host_police")  # the police are not told of conditions
    assert police.version == 1
    clock.advance(hours=1)
    packs.revoke(deps, transition_id, police.id, "Sent to the wrong mailbox", sw, sw_actor)
    revoked_at = clock.now()

    found = the_map(deps, world)
    now = states(found)
    assert now[(home, "Receiving placement", 1)] == "superseded"
    assert now[(home, "Receiving placement", 2)] == "active"
    assert now[("North Yorkshire Police", "Police force for the new area", 1)] == "revoked"
    assert now[("North Yorkshire Council", "Local authority for the new area", 2)] == "active"
    versions = {(h.name, v.version): v for a in found.areas for h in a.holders for v in h.versions
                if v.recipient_title in ("Receiving placement", "Police force for the new area")}
    v1 = versions[(home, 1)]
    assert v1.confirmed_at == confirmed_at and v1.confirmed_by == "Sam Okoro, Registered manager"
    assert v1.downloaded_at is not None and v1.ended_at == replaced_at and v1.ended_why == "Replaced by version 2"
    revoked = versions[("North Yorkshire Police", 1)]
    assert revoked.ended_at == revoked_at and revoked.ended_why == "Revoked"
    assert revoked.revoked_reason == "Sent to the wrong mailbox"

    clock.advance(days=deps.settings.packs.link_expiry_days + 1)
    later = states(the_map(deps, world))
    assert later[(home, "Receiving placement", 2)] == "expired"
    assert later[("North Yorkshire Council", "Local authority for the new area", 2)] == "expired"
    assert later[(home, "Receiving placement", 1)] == "superseded"  # what happened first stays
    assert later[("North Yorkshire Police", "Police force for the new area", 1)] == "revoked"
    assert the_map(deps, world).live == 0


def test_a_link_replaced_after_it_ran_out_reads_as_expired():
    sent = datetime(2026, 3, 1, 9, tzinfo=UTC)
    pack = Pack(version=1, created_at=sent, expires_at=sent + timedelta(days=14),
                revoked_at=sent + timedelta(days=20), revoked_cause="reissued")
    state, ended, why = recipient_map.state_of(pack, sent + timedelta(days=30))
    assert (state, ended) == ("expired", sent + timedelta(days=14))
    assert why == "The link ran out; version 2 was sent later"
    live = Pack(version=3, created_at=sent, expires_at=sent + timedelta(days=14), confirmed_at=sent)
    assert recipient_map.state_of(live, sent + timedelta(days=1)) == ("confirmed", None, "")


def test_the_page_shows_areas_organisations_and_versions(deps, world, browser):
    transition_id = send_emergency(deps, world)
    _token, police = link_for(deps, transition_id, "host_police")
    worker = browser(world.accounts["social_worker_south"])
    amira = world.children["Amira"]
    child_page = worker.get(f"/children/{amira}").get_data(as_text=True)
    assert f'href="/children/{amira}/recipient-map"' in child_page
    assert "/audit/children/" not in child_page  # the audit trail link is for managers
    senior_page = browser(world.accounts["senior_manager"]).get(f"/children/{amira}").get_data(as_text=True)
    assert f'href="/audit/children/{amira}"' in senior_page
    page = html.unescape(worker.get(f"/children/{amira}/recipient-map").get_data(as_text=True))
    assert "<h1 class=\"govuk-heading-l\">Where packs went</h1>" in page
    headings = re.findall(r'<h2 class="govuk-heading-m[^"]*">([^<]+)</h2>', page)
    assert sorted(headings) == ["Cumberland Council", "North Yorkshire Council"]
    assert "North Yorkshire Police <span" in page and f"{police.reference} version 1" in page
    assert "Active – awaiting confirmation" in page and "Link works until" in page
    assert f'href="/transitions/{transition_id}"' in page


@pytest.mark.parametrize(("who", "status"), [
    ("social_worker_south", 200),  # allocated
    ("senior_manager", 200),
    ("cla_nurse", 200),
    ("team_manager", 403),  # North's manager; Amira is South's
    ("social_worker", 403),
    ("auditor", 403),
    ("admin", 403),
])
def test_whoever_reads_the_record_reads_the_map(deps, world, browser, who, status):
    send_emergency(deps, world)
    response = browser(world.accounts[who]).get(f"/children/{world.children['Amira']}/recipient-map")
    assert response.status_code == status
    if status == 403:
        assert "Moorview" not in response.get_data(as_text=True)


def test_break_glass_opens_the_map_and_the_service_refuses_without_it(deps, world):
    with pytest.raises(BreakGlassRequiredError):
        the_map(deps, world, "Amira", "social_worker")
    children.break_glass(deps, world.children["Amira"], "Amira is missing and her team cannot be reached",
                         world.view(deps, "social_worker"), world.actor("social_worker"))
    assert the_map(deps, world, "Amira", "social_worker").child.id == world.children["Amira"]
    with pytest.raises(BreakGlassRequiredError) as auditor:
        the_map(deps, world, "Amira", "auditor")
    assert auditor.value.allowed is False
    assert the_map(deps, world, "Tyler").areas == []


def test_reading_the_map_is_audited_and_appears_in_the_childs_trail(deps, world, browser):
    send_emergency(deps, world)
    amira = world.children["Amira"]
    browser(world.accounts["senior_manager"]).get(f"/children/{amira}/recipient-map")
    with deps.db.transaction() as session:
        viewed = session.scalars(select(AuditEvent).where(AuditEvent.action == "recipient_map.viewed")).all()
        assert len(viewed) == 1 and viewed[0].object_type == "child" and viewed[0].object_id == str(amira)
        assert viewed[0].actor_id == str(world.accounts["senior_manager"].id)
        assert json.loads(viewed[0].details) == {"via": "senior_manager"}
    trail = audit_views.trail(deps, amira, world.view(deps, "auditor"), world.actor("auditor"))
    assert any(r.what == "Read the recipient map" and r.who == "Chris Evans, Senior manager" for r in trail.rows)
