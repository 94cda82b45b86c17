"""Tasks (issue 6 part 3): the CLA nurse's health plan update on every move, chase tasks for values "not known -
to be obtained", answers to recipients' requests, overdue alerts once, "Your work" for each person."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import sign_in
from tests.integration.conftest import Demo, start
from tests.integration.test_follow_up import send_jade
from tests.integration.test_packs import WARD_NURSE, link_for, send_emergency, verified_session
from transitions.models import Child, InformationRequest, OutboxMessage, SectionVersion, Task
from transitions.services import receipt, tasks, tick
from transitions.services import transitions as service
from transitions.services.errors import ChildInvalidError, ForbiddenActionError
from transitions.services.sections import add_version
from transitions.services.values import NOT_KNOWN


def save(deps, world: Demo, child: str, code: str, who: str, **changes: object) -> None:
    user = world.view(deps, who)
    with deps.db.transaction() as session:
        found = session.get(Child, world.children[child])
        previous = session.scalars(select(SectionVersion).where(
            SectionVersion.section_code == code, SectionVersion.is_current.is_(True),
            SectionVersion.child_id == found.id)).one()
        content = {**json.loads(previous.content or "{}"), **changes}
        add_version(deps, session, found, deps.definitions.sections[code], content, previous, "edit", user,
                    world.actor(who))


def work(deps, world: Demo, who: str, kind: str, child: str = "") -> list[tasks.TaskRow]:
    return [t for t in tasks.my_work(deps, world.view(deps, who), world.actor(who))
            if t.kind == kind and (not child or t.child_name == child)]


def test_every_move_gives_the_cla_nurse_a_health_plan_task_that_a_new_health_plan_closes(deps, clock, world):
    transition_id = send_jade(deps, world)
    found = [t for t in work(deps, world, "cla_nurse", "health_plan_update", "Jade")
             if t.transition_id == transition_id]
    assert len(found) == 1 and found[0].due_at == clock.now() + timedelta(hours=2 + 24)
    assert not work(deps, world, "social_worker", "health_plan_update")  # the nurse's, not the worker's
    save(deps, world, "Jade", "HEALTH", "cla_nurse", allergies="Peanuts (adrenaline auto-injector)")
    assert not work(deps, world, "cla_nurse", "health_plan_update", "Jade")
    with deps.db.transaction() as session:
        task = session.get(Task, found[0].id)
        assert task.status == "done" and task.done_by == world.accounts["cla_nurse"].id


def test_a_cancelled_move_cancels_its_health_plan_task(deps, world):
    sw, actor = world.view(deps, "social_worker"), world.actor("social_worker")
    transition_id = start(deps, world, "social_worker", "Leo", "planned_move_same_la", "SC900003",
                          when=deps.clock.now() + timedelta(days=7), distance="no")
    service.change_status(deps, transition_id, "cancel", "The new placement withdrew its offer", None, sw, actor)
    with deps.db.transaction() as session:
        statuses = {t.status for t in session.scalars(select(Task).where(Task.transition_id == transition_id))}
    assert statuses == {"cancelled"}


def test_a_value_not_known_gets_one_chase_task_for_its_owner_until_it_is_filled_in(deps, clock, world):
    save(deps, world, "Jade", "RISK", "social_worker", risk_narrative=dict(NOT_KNOWN))
    save(deps, world, "Jade", "RISK", "social_worker", risk_narrative=dict(NOT_KNOWN))  # still one task
    chases = [t for t in work(deps, world, "social_worker", "chase_not_known", "Jade")
              if t.field_ref == "RISK.risk_narrative"]
    assert len(chases) == 1 and chases[0].field_label and chases[0].field_label.startswith("Risk")
    assert chases[0].due_at > clock.now() + timedelta(days=4)  # 5 working days
    assert not [t for t in work(deps, world, "social_worker_south", "chase_not_known", "Jade")]
    save(deps, world, "Jade", "HEALTH", "cla_nurse", gp_practice=dict(NOT_KNOWN))
    assert [t.field_ref for t in work(deps, world, "cla_nurse", "chase_not_known", "Jade")] == ["HEALTH.gp_practice"]
    save(deps, world, "Jade", "RISK", "social_worker", risk_narrative="Self-harm when anxious; see the plan")
    assert not [t for t in work(deps, world, "social_worker", "chase_not_known", "Jade")
                if t.field_ref == "RISK.risk_narrative"]


def test_a_recipients_request_is_a_task_for_the_allocated_worker_and_answering_it_closes_it(deps, clock, world):
    transition_id = send_emergency(deps, world)
    token, pack = link_for(deps, transition_id, "receiving_placement")
    sid = verified_session(deps, token, pack.id)
    receipt.request_information(deps, sid, ["MISSING"], "No phone numbers for her friends", "Sam, manager",
                                WARD_NURSE)
    mine = work(deps, world, "social_worker_south", "information_request", "Amira")
    assert len(mine) == 1 and mine[0].due_at == clock.now() + timedelta(hours=4)
    assert not work(deps, world, "social_worker", "information_request")
    sw, actor = world.view(deps, "social_worker_south"), world.actor("social_worker_south")
    view = tasks.information_request(deps, mine[0].subject_id, sw, actor)
    assert view.reason == "No phone numbers for her friends" and view.requested_by == "Sam, manager"
    with pytest.raises(ChildInvalidError):
        tasks.answer_request(deps, view.id, "done", sw, actor)
    tasks.answer_request(deps, view.id, "Phoned the home with the numbers and sent version 2", sw, actor)
    assert not work(deps, world, "social_worker_south", "information_request")
    with deps.db.transaction() as session:
        request = session.get(InformationRequest, view.id)
        assert request.answered_at == clock.now() and request.answer.startswith("Phoned the home")


def test_an_overdue_task_is_emailed_to_its_people_once(deps, clock, world):
    send_jade(deps, world)
    clock.advance(days=2)
    tick.run(deps)
    tick.run(deps)
    with deps.db.transaction() as session:
        keys = [m.idempotency_key for m in session.scalars(select(OutboxMessage).where(
            OutboxMessage.purpose == "task_overdue"))]
        nurse_mail = [m.body for m in session.scalars(select(OutboxMessage).where(
            OutboxMessage.purpose == "task_overdue")) if m.to_address == "cla.nurse@example-council.test"]
    assert keys and len(keys) == len(set(keys))
    assert nurse_mail and all("Jade" not in body for body in nurse_mail)


def test_only_the_person_a_task_is_for_or_a_manager_marks_it_done(deps, world):
    save(deps, world, "Jade", "RISK", "social_worker", risk_narrative=dict(NOT_KNOWN))
    chase = work(deps, world, "social_worker", "chase_not_known", "Jade")[0]
    with pytest.raises(ForbiddenActionError):
        tasks.complete(deps, chase.id, "Asked the previous carer", world.view(deps, "social_worker_south"),
                       world.actor("social_worker_south"))
    with pytest.raises(ChildInvalidError):
        tasks.complete(deps, chase.id, "ok", world.view(deps, "social_worker"), world.actor("social_worker"))
    tasks.complete(deps, chase.id, "Asked the previous carer; no risk summary exists yet",
                   world.view(deps, "team_manager"), world.actor("team_manager"))
    assert chase.id not in {t.id for t in work(deps, world, "social_worker", "chase_not_known")}


def test_your_work_page_lists_tasks_soonest_first_and_keeps_a_rejected_note(client, deps, clock, world):
    send_jade(deps, world)
    save(deps, world, "Jade", "RISK", "social_worker", risk_narrative=dict(NOT_KNOWN))
    sign_in(client, world.accounts["social_worker"], clock)
    page = client.get("/my-work")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Find out a value recorded as not known" in html and "Jade" in html
    chase = work(deps, world, "social_worker", "chase_not_known", "Jade")[0]
    from tests.conftest import post_form

    rejected = post_form(client, f"/tasks/{chase.id}/done", {"note": "tiny"}, page="/my-work")
    body = rejected.get_data(as_text=True)
    assert rejected.status_code == 200 and "There is a problem" in body, body
    assert ">tiny</textarea>" in body
    assert client.get("/my-work").status_code == 200


def test_the_transition_page_shows_its_escalations_and_links_each_request(client, deps, clock, world):
    transition_id = send_emergency(deps, world)
    token, pack = link_for(deps, transition_id, "receiving_placement")
    receipt.request_information(deps, verified_session(deps, token, pack.id), ["HEALTH"], "Which GP is she with?",
                                "Sam, manager", WARD_NURSE)
    clock.advance(hours=3)
    tick.run(deps)
    sign_in(client, world.accounts["social_worker_south"], clock)
    html = client.get(f"/transitions/{transition_id}").get_data(as_text=True)
    with deps.db.transaction() as session:
        request_id = session.scalars(select(InformationRequest.id)).one()
    assert f'href="/requests/{request_id}"' in html and "Waiting for an answer" in html
    assert "Confirmation overdue: social worker alerted" in html
    assert client.get(f"/requests/{request_id}").status_code == 200
    sign_in(client, world.accounts["social_worker"], clock)  # another team's worker, not allocated
    assert client.get(f"/requests/{request_id}").status_code in (403, 404)


def test_break_glass_reads_a_request_but_cannot_answer_it(deps, world):
    from transitions.services import children

    transition_id = send_emergency(deps, world)
    token, pack = link_for(deps, transition_id, "receiving_placement")
    receipt.request_information(deps, verified_session(deps, token, pack.id), ["HEALTH"], "Which GP is she with?",
                                "Sam, manager", WARD_NURSE)
    with deps.db.transaction() as session:
        request_id = session.scalars(select(InformationRequest.id)).one()
    other, other_actor = world.view(deps, "social_worker"), world.actor("social_worker")  # North, not allocated
    children.break_glass(deps, world.children["Amira"], "Emergency duty: the ward rang about her GP", other,
                         other_actor)
    assert tasks.information_request(deps, request_id, other, other_actor).reason == "Which GP is she with?"
    with pytest.raises(ForbiddenActionError):
        tasks.answer_request(deps, request_id, "Told the ward the GP's name on the phone", other, other_actor)
    with deps.db.transaction() as session:
        assert session.get(InformationRequest, request_id).answered_at is None


def test_a_task_with_nobody_allocated_and_no_team_goes_to_senior_managers_not_every_worker(deps, world):
    with deps.db.transaction() as session:
        child = session.get(Child, world.children["Jade"])
        child.allocated_worker_id, child.team_id = None, None
    save(deps, world, "Jade", "RISK", "senior_manager", risk_narrative=dict(NOT_KNOWN))
    assert not work(deps, world, "social_worker", "chase_not_known", "Jade")
    assert not work(deps, world, "social_worker_south", "chase_not_known", "Jade")
    assert [t.field_ref for t in work(deps, world, "senior_manager", "chase_not_known", "Jade")] == [
        "RISK.risk_narrative"]
