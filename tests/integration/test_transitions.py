"""Transitions: facts, recipients and deadlines from forms/, blocking gaps and overrides, approvals, lifecycle,
crisis flags."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.conftest import csrf_from, sign_in
from tests.integration.conftest import Demo, start
from transitions.models import CrisisFlag, Task, Transition, TransitionRecipient
from transitions.services import accounts
from transitions.services import transitions as service
from transitions.services.audit import Actor
from transitions.services.errors import BreakGlassRequiredError, ForbiddenActionError, TransitionStepError


def test_emergency_out_of_area_move_to_a_childrens_home_derives_the_host_area_recipients(deps, world):
    when = datetime(2026, 5, 22, 21, 30, tzinfo=UTC)  # a Friday evening before the Spring bank holiday
    transition_id = start(deps, world, "social_worker_south", "Amira", "emergency_move", "SC900003", when=when,
                          urgency="emergency", distance="no", reason="CREQB",
                          emergency_reason="Carers asked for her to leave tonight after an assault")
    check = service.checklist(deps, transition_id, world.view(deps, "social_worker_south"),
                              world.actor("social_worker_south"))
    assert check.out_of_area is True and check.childrens_home
    assert check.host_la == "North Yorkshire Council" and check.host_police == "North Yorkshire Police"
    required = {(r.type.code, r.organisation) for r in check.recipients if r.required}
    assert ("host_la", "North Yorkshire Council") in required
    assert ("host_police", "North Yorkshire Police") in required
    assert ("receiving_placement", "Moorview House (demo children's home)") in required
    host_la = next(r for r in check.recipients if r.type.code == "host_la")
    assert host_la.due_at == datetime(2026, 6, 1, 16, 0, tzinfo=UTC)  # 5 working days, bank holiday skipped
    # Amira's photo is 8 months old: it blocks
    assert [s.code for s in check.blocking] == ["PHOTO"]


def test_only_a_manager_can_override_a_blocking_gap_and_the_reason_is_kept(deps, world):
    transition_id = start(deps, world, "social_worker_south", "Amira", "emergency_move", "SC900003",
                          when=datetime(2026, 5, 22, 21, 30, tzinfo=UTC), urgency="emergency", distance="no",
                          emergency_reason="Placement ended tonight")
    with pytest.raises(ForbiddenActionError):
        service.override_section(deps, transition_id, "PHOTO", "The child refused a new photo tonight",
                                 world.view(deps, "social_worker_south"), world.actor("social_worker_south"))
    with pytest.raises(TransitionStepError, match="Photo"):
        service.change_status(deps, transition_id, "ready", "", None, world.view(deps, "social_worker_south"),
                              world.actor("social_worker_south"))
    service.override_section(deps, transition_id, "PHOTO", "New photo to be taken on arrival by the home",
                             world.view(deps, "senior_manager"), world.actor("senior_manager"))
    check = service.checklist(deps, transition_id, world.view(deps, "senior_manager"), world.actor("senior_manager"))
    photo = next(s for s in check.sections if s.code == "PHOTO")
    assert photo.override_reason == "New photo to be taken on arrival by the home" and not check.blocking
    assert service.change_status(deps, transition_id, "ready", "", None, world.view(deps, "social_worker_south"),
                                 world.actor("social_worker_south")) in ("ready", "approved")


def test_an_emergency_may_go_ahead_before_approvals_which_fall_due_afterwards(deps, world):
    transition_id = start(deps, world, "social_worker", "Jade", "emergency_move", "SC900002",
                          when=datetime(2026, 5, 22, 21, 30, tzinfo=UTC), urgency="emergency", distance="no",
                          emergency_reason="Allegation against the home tonight")
    sw = world.view(deps, "social_worker")
    service.change_status(deps, transition_id, "ready", "", None, sw, world.actor("social_worker"))
    check = service.checklist(deps, transition_id, sw, world.actor("social_worker"))
    assert check.approvals_outstanding and all(a.retrospective_due for a in check.approvals)
    assert service.change_status(deps, transition_id, "sent", "", None, sw, world.actor("social_worker")) == "sent"


def test_an_at_a_distance_move_cannot_be_sent_before_consultation_and_approval(deps, world):
    transition_id = start(deps, world, "social_worker", "Jade", "planned_move_at_distance", "SC900002",
                          when=datetime(2026, 7, 1, 10, 0, tzinfo=UTC))
    sw, sw_actor = world.view(deps, "social_worker"), world.actor("social_worker")
    assert service.change_status(deps, transition_id, "ready", "", None, sw, sw_actor) == "ready"
    with pytest.raises(TransitionStepError, match="Director"):
        service.change_status(deps, transition_id, "sent", "", None, sw, sw_actor)
    service.record_approval(deps, transition_id, "host_la_consulted", "consulted", "Duty manager, host LA",
                            "No concerns about the area; will share local intelligence", sw, sw_actor)
    with pytest.raises(ForbiddenActionError):
        service.record_approval(deps, transition_id, "dcs", "approved", "", "", sw, sw_actor)
    with pytest.raises(TransitionStepError):
        service.change_status(deps, transition_id, "sent", "", None, sw, sw_actor)
    check = service.checklist(deps, transition_id, sw, sw_actor)
    for approval in check.approvals_outstanding:
        if approval.decision:
            service.record_approval(deps, transition_id, approval.kind, "approved", "", "",
                                    world.view(deps, "senior_manager"), world.actor("senior_manager"))
        else:
            service.record_approval(deps, transition_id, approval.kind, "consulted" if "consult" in approval.kind
                                    else "notified", "Host duty manager", "Agreed", sw, sw_actor)
    assert service.change_status(deps, transition_id, "sent", "", None, sw, sw_actor) == "sent"


def send(deps, world: Demo, who: str, transition_id: uuid.UUID) -> None:
    for step in ("ready", "sent"):
        service.change_status(deps, transition_id, step, "", None, world.view(deps, who), world.actor(who))


def test_a_fourth_admission_in_30_days_raises_the_crisis_flag_and_a_planning_task(deps, world):
    first = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    # entered out of order, and one admission entered twice (the copy is cancelled): neither fools the count
    for days in (21, 0, 7):
        send(deps, world, "social_worker", start(deps, world, "social_worker", "Jade", "hospital_admission",
                                                 "RZZ01", when=first + timedelta(days=days), urgency="emergency",
                                                 emergency_reason="Overdose, taken to A&E by ambulance"))
    duplicate = start(deps, world, "social_worker", "Jade", "hospital_admission", "RZZ01",
                      when=first + timedelta(days=7), urgency="emergency", emergency_reason="Entered twice by mistake")
    service.change_status(deps, duplicate, "cancel", "Entered twice by mistake", None,
                          world.view(deps, "social_worker"), world.actor("social_worker"))
    with deps.db.transaction() as session:
        assert session.scalars(select(CrisisFlag)).first() is None
    send(deps, world, "social_worker", start(deps, world, "social_worker", "Jade", "hospital_admission", "RZZ07",
                                             when=first + timedelta(days=14), urgency="emergency",
                                             emergency_reason="Self-harm, admitted to the ward"))
    with deps.db.transaction() as session:
        flag = session.scalars(select(CrisisFlag)).one()
        assert flag.reason == "many_transitions" and flag.count == 4
        task = session.scalars(select(Task).where(Task.kind == "crisis_planning")).one()
        assert task.assigned_role == "senior_manager" and task.status == "open"
    flags = service.open_crisis_flags(deps, world.view(deps, "senior_manager"), world.actor("senior_manager"))
    assert len(flags) == 1
    service.acknowledge_flag(deps, flags[0].id, "Strategy meeting held; Tier 4 referral agreed",
                             world.view(deps, "senior_manager"), world.actor("senior_manager"))
    assert service.open_crisis_flags(deps, world.view(deps, "senior_manager"), world.actor("senior_manager")) == []


def test_every_transition_kind_produces_recipients_for_a_sample_child(deps, world):
    when = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
    by_kind = {"placement": "Fostering household FH-0123 (demo)", "childrens_home": "SC900003",
               "hospital": "RZZ01", "ward": "RZZ07"}
    for kind in deps.definitions.ordered_kinds():
        destination = next(by_kind[k] for k in ("childrens_home", "placement", "ward", "hospital")
                           if k in kind.destination_kinds)
        child = "Amira" if kind.min_age else "Jade"
        who = "social_worker_south" if child == "Amira" else "social_worker"
        transition_id = start(deps, world, who, child, kind.code, destination, when=when, urgency=kind.urgency,
                              distance="yes" if kind.code == "planned_move_at_distance" else "no",
                              emergency_reason="Emergency tonight" if kind.urgency == "emergency" else "")
        check = service.checklist(deps, transition_id, world.view(deps, who), world.actor(who))
        assert any(r.required for r in check.recipients), kind.code


def test_a_later_transition_supersedes_an_earlier_active_one(deps, world):
    first = start(deps, world, "social_worker", "Jade", "planned_move_same_la", "SC900001",
                  when=datetime(2026, 9, 1, 10, 0, tzinfo=UTC))
    later_plan = start(deps, world, "social_worker", "Jade", "planned_move_same_la", "SC900001",
                       when=datetime(2026, 10, 1, 10, 0, tzinfo=UTC))
    admission = start(deps, world, "social_worker", "Jade", "hospital_admission", "RZZ01",
                      when=datetime(2026, 9, 2, 3, 0, tzinfo=UTC), urgency="emergency",
                      emergency_reason="Overdose in the night")
    with deps.db.transaction() as session:
        assert session.get(Transition, first).status == "draft"  # a draft supersedes nothing
    send(deps, world, "social_worker", admission)
    with deps.db.transaction() as session:
        assert session.get(Transition, later_plan).status == "draft"  # next month's move is still planned
    with deps.db.transaction() as session:
        earlier = session.get(Transition, first)
        assert earlier is not None and earlier.status == "superseded"
        assert all(r.revoke_pending for r in session.scalars(
            select(TransitionRecipient).where(TransitionRecipient.transition_id == first)))


def test_the_checklist_page_and_starting_a_transition_through_the_web(client, deps, clock, world):
    sign_in(client, world.accounts["social_worker"], clock)
    url = f"/children/{world.children['Jade']}/transitions/new"
    page = client.get(url).get_data(as_text=True)
    response = client.post(url, data={
        "kind": "planned_move_adjoining", "destination_id": str(world.orgs["SC900002"]), "origin_id": "",
        "starts_on": ["1", "9", "2026"], "starts_at_time": "2:30pm", "urgency": "planned", "reason_code": "CARPL",
        "at_a_distance": "", "emergency_reason": "", "distance_miles": "", "csrf_token": csrf_from(page)})
    assert response.status_code == 302, response.get_data(as_text=True)
    checklist = client.get(response.headers["Location"])
    text = checklist.get_data(as_text=True)
    assert checklist.status_code == 200
    assert "Manchester City Council" in text and "Greater Manchester Police" in text
    assert "1 September 2026, 2:30pm" in text


def test_bad_input_on_the_new_transition_form_keeps_what_was_typed(client, deps, clock, world):
    sign_in(client, world.accounts["social_worker"], clock)
    url = f"/children/{world.children['Jade']}/transitions/new"
    page = client.get(url).get_data(as_text=True)
    response = client.post(url, data={
        "kind": "emergency_move", "destination_id": str(world.orgs["SC900002"]), "starts_on": ["31", "2", "2026"],
        "starts_at_time": "25:00", "urgency": "emergency", "emergency_reason": "", "csrf_token": csrf_from(page)})
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "There is a problem" in text
    assert "must be a real date" in text and "Enter the time" in text
    assert 'value="25:00"' in text


def test_a_tier4_admission_records_the_distance_and_the_preferred_hospital(deps, world):
    data = service.TransitionInput(kind="tier4_admission", destination_id=world.orgs["RZZ07"], origin_id=None,
                                   starts_at=datetime(2026, 9, 1, 10, 0, tzinfo=UTC), urgency="planned",
                                   reason_code="", at_a_distance="no", emergency_reason="", distance_miles="80")
    sw, actor = world.view(deps, "social_worker"), world.actor("social_worker")
    transition_id = service.create_transition(deps, world.children["Jade"], data, sw, actor)
    check = service.checklist(deps, transition_id, sw, actor)
    assert check.distance_miles == 80 and check.distance_flag  # over the 50-mile default (Lesson CH3.3)
    assert check.preferred_hospital == "Cumberland General Hospital (demo)"
    assert any(r.type.code == "tier4_unit" and r.organisation == "Ward 7 Children's (demo)" for r in check.recipients)


def test_the_childs_team_manager_can_override_and_another_teams_cannot(deps, world):
    from tests.conftest import make_staff

    south_manager = make_staff(deps, role="team_manager", team="Children in Care South")
    transition_id = start(deps, world, "social_worker_south", "Amira", "emergency_move", "SC900003",
                          when=datetime(2026, 5, 22, 21, 30, tzinfo=UTC), urgency="emergency", distance="no",
                          emergency_reason="Placement ended tonight")
    with pytest.raises(BreakGlassRequiredError):  # the North team's manager is not allocated to Amira
        service.override_section(deps, transition_id, "PHOTO", "Going ahead, photo on arrival",
                                 world.view(deps, "team_manager"), world.actor("team_manager"))
    manager = accounts.get_user(deps, south_manager.id)
    service.override_section(deps, transition_id, "PHOTO", "Going ahead, photo on arrival", manager,
                             Actor("staff", str(manager.id)))
    check = service.checklist(deps, transition_id, manager, Actor("staff", str(manager.id)))
    assert not check.blocking


def test_a_planned_kind_cannot_be_recorded_as_an_emergency_to_skip_approvals(deps, world):
    from transitions.services.errors import ChildInvalidError

    with pytest.raises(ChildInvalidError) as caught:
        start(deps, world, "social_worker", "Jade", "planned_move_at_distance", "SC900002",
              when=datetime(2026, 7, 1, 10, 0, tzinfo=UTC), urgency="emergency", distance="yes",
              emergency_reason="Want to skip the Director")
    assert "urgency" in caught.value.errors
    with pytest.raises(ChildInvalidError) as caught:
        start(deps, world, "social_worker", "Jade", "planned_move_adjoining", "SC900002",
              when=datetime(2026, 7, 1, 10, 0, tzinfo=UTC), distance="yes")
    assert "at a distance" in caught.value.errors["kind"]


def test_a_refusal_stops_even_an_emergency_and_the_director_waits_for_the_consultation(deps, world):
    sw, sw_actor = world.view(deps, "social_worker"), world.actor("social_worker")
    senior, senior_actor = world.view(deps, "senior_manager"), world.actor("senior_manager")
    emergency = start(deps, world, "social_worker", "Jade", "emergency_move", "SC900002",
                      when=datetime(2026, 5, 22, 21, 30, tzinfo=UTC), urgency="emergency", distance="no",
                      emergency_reason="Allegation against the home tonight")
    service.change_status(deps, emergency, "ready", "", None, sw, sw_actor)
    service.record_approval(deps, emergency, "nominated_officer", "refused", "", "", senior, senior_actor)
    with pytest.raises(TransitionStepError, match="refused"):
        service.change_status(deps, emergency, "sent", "", None, sw, sw_actor)
    planned = start(deps, world, "social_worker", "Jade", "planned_move_at_distance", "SC900002",
                    when=datetime(2026, 7, 1, 10, 0, tzinfo=UTC), distance="yes")
    with pytest.raises(TransitionStepError, match="before the approval"):
        service.record_approval(deps, planned, "dcs", "approved", "", "", senior, senior_actor)
    from transitions.services.errors import ChildInvalidError

    with pytest.raises(ChildInvalidError):  # a consultation is recorded as a consultation, not a notice
        service.record_approval(deps, planned, "host_la_consulted", "notified", "Duty manager", "Told them", sw,
                                sw_actor)


def test_criminal_exploitation_in_the_risk_section_needs_the_host_area_consulted(deps, world):
    from transitions.services.sections import save_section
    from transitions.services.values import FieldInput

    sw, sw_actor = world.view(deps, "social_worker"), world.actor("social_worker")
    risk = deps.definitions.section("RISK")
    with deps.db.transaction() as session:
        from transitions.services.children import current_versions

        version = current_versions(session, world.children["Leo"])["RISK"].version
    given = {f.id: FieldInput(value="Recorded risk" if f.type in ("text", "textarea") else None) for f in risk.fields}
    given |= {"headline_risks": FieldInput(value=["cce_county_lines"]), "overall_risk_level": FieldInput(value="high"),
              "multi_agency_contributors": FieldInput(value=["police"])}
    save_section(deps, world.children["Leo"], "RISK", given, {}, {}, version, sw, sw_actor)
    transition_id = start(deps, world, "social_worker", "Leo", "planned_move_adjoining", "SC900002",
                          when=datetime(2026, 7, 1, 10, 0, tzinfo=UTC), distance="no")
    check = service.checklist(deps, transition_id, sw, sw_actor)
    assert check.exploitation_risk
    assert "host_consulted_on_appropriateness" in {a.kind for a in check.approvals}


def test_school_age_runs_to_the_last_friday_of_june_of_year_11():
    from datetime import date

    dob = date(2010, 10, 3)  # turns 16 in October 2026, in Year 11 until June 2027
    assert service.is_school_age(dob, date(2026, 11, 1))
    assert service.is_school_age(dob, date(2027, 6, 25))  # the last Friday of June 2027
    assert not service.is_school_age(dob, date(2027, 6, 28))
    assert not service.is_school_age(date(2023, 1, 1), date(2026, 11, 1))  # 3 years old


def test_no_onward_placement_flags_once_and_not_again_after_acknowledgement(deps, world, clock):
    south, south_actor = world.view(deps, "social_worker_south"), world.actor("social_worker_south")
    for planned in service.for_child(deps, world.children["Tyler"], south, south_actor).transitions:
        service.change_status(deps, planned.id, "cancel", "Respite no longer needed", None, south, south_actor)
    admission = start(deps, world, "social_worker_south", "Tyler", "hospital_admission", "RZZ01",
                      when=clock.now() - timedelta(days=20), urgency="emergency",
                      emergency_reason="Broken arm, admitted overnight")
    senior = world.view(deps, "senior_manager")
    for gap in service.checklist(deps, admission, senior, world.actor("senior_manager")).blocking:
        service.override_section(deps, admission, gap.code, "Admitted in an emergency, no time to complete",
                                 senior, world.actor("senior_manager"))
    send(deps, world, "social_worker_south", admission)
    assert service.check_onward_placements(deps) == 1
    assert service.check_onward_placements(deps) == 0
    flag = service.open_crisis_flags(deps, world.view(deps, "senior_manager"), world.actor("senior_manager"))[0]
    service.acknowledge_flag(deps, flag.id, "Discharge planned home with the same carers",
                             world.view(deps, "senior_manager"), world.actor("senior_manager"))
    assert service.check_onward_placements(deps) == 0


def test_a_senior_manager_acknowledges_a_crisis_flag_on_its_page(client, deps, clock, world):
    first = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    for days in (0, 5, 10, 15):
        send(deps, world, "social_worker", start(deps, world, "social_worker", "Jade", "hospital_admission",
                                                 "RZZ01", when=first + timedelta(days=days), urgency="emergency",
                                                 emergency_reason="Overdose, taken to A&E by ambulance"))
    sign_in(client, world.accounts["senior_manager"], clock)
    page = client.get("/crisis").get_data(as_text=True)
    assert "4 moves or admissions in a short period" in page
    flag_id = service.open_crisis_flags(deps, world.view(deps, "senior_manager"), world.actor("senior_manager"))[0].id
    short = client.post(f"/crisis/{flag_id}/acknowledge", data={"reason": "Met", "csrf_token": csrf_from(page)})
    html = short.get_data(as_text=True)
    assert short.status_code == 200 and "There is a problem" in html and f'href="#ack-{flag_id}"' in html
    assert ">Met</textarea>" in html and "<title>Error: " in html  # the typed note is kept with its error
    response = client.post(f"/crisis/{flag_id}/acknowledge",
                           data={"reason": "Strategy meeting held today", "csrf_token": csrf_from(page)})
    assert response.status_code == 302
    assert "No open crisis flags" in client.get("/crisis").get_data(as_text=True)
