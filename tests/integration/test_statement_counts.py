"""SQL statements per staff page do not grow with the caseload (performance.md L3, issue 7).

A social worker with 10 children, then the same worker with 50 (each child with a sent move, a pack, an open
escalation to the worker, an acknowledged one to the team manager, an open task and two section versions): every
page the worker and their team manager live on issues the same statements for both, and exactly the number
below. The pages are also checked to show every row, so a page that stopped listing them cannot pass.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import event, select

from tests.conftest import make_staff
from transitions.models import (
    Child,
    Escalation,
    EscalationStatus,
    Organisation,
    Pack,
    SectionVersion,
    StaffUser,
    Task,
    Transition,
    TransitionRecipient,
)
from transitions.services import organisations, storage
from transitions.services.audit import Actor
from transitions.services.children import ProfileInput, apply_profile
from transitions.services.deps import ServiceDeps

#: Statements per GET once signed in, by dialect. SQLite also counts each transaction's BEGIN IMMEDIATE (the
#: engine takes the write lock when a transaction starts); PostgreSQL begins implicitly.
#: - every page: the staff session joined to the signed-in person and their team (1, its own transaction);
#: - the home pages: the escalations joined to child, pack, organisation and acknowledger (1), the audit event
#:   "escalations.viewed" (chain head read, head update, insert: 3), the open tasks counted (1, its own transaction);
#: - the child list: the children joined to placement and worker (1), the audit event (3);
#: - "Your work": the open tasks joined to their child (1), the audit event (3);
#: - the child's page, in three transactions: the child (1), the audit event (3), its organisations with their areas
#:   and police forces (1), workers with their team (1), current section versions with authors (1); the moves:
#:   the child (1), the moves with their destination (1), the crisis flags (1); the missing panel: the child (1),
#:   the open episode (1), the "share again" task (1), the episode counts (1).
EXPECTED = {
    "sqlite": {"sw_home": 9, "sw_children": 7, "sw_my_work": 7, "child": 19, "tm_home": 9},
    "postgresql": {"sw_home": 6, "sw_children": 5, "sw_my_work": 5, "child": 15, "tm_home": 6},
}


def add_caseload(deps: ServiceDeps, worker_id: uuid.UUID, count: int) -> list[uuid.UUID]:
    """`count` children allocated to the worker, in their team, written as rows (no PDF is built): each has a
    sent move to a placement with one recipient and its pack, an open escalation to the worker, one to the team
    manager acknowledged by them, an open task for the worker and two current section versions."""
    now = deps.clock.now()
    today = now.date()
    made = []
    with deps.db.transaction() as session:
        worker = session.get(StaffUser, worker_id)
        assert worker is not None and worker.team_id is not None
        manager_id = session.scalars(select(StaffUser.id).where(StaffUser.role == "team_manager",
                                                                 StaffUser.team_id == worker.team_id)).first()
        la = session.scalars(select(Organisation).where(Organisation.kind == "local_authority")
                             .order_by(Organisation.code)).first()
        assert la is not None, "seed the reference organisations first"
        placement = session.scalars(select(Organisation).where(Organisation.kind == "placement",
                                                               Organisation.code == "SC-BENCH")).first()
        if placement is None:
            placement = Organisation(id=uuid.uuid4(), kind="placement", name="Bench Lane Fostering", code="SC-BENCH",
                                     local_authority_id=la.id, mailbox="placements@bench.example-la.test",
                                     active=True, created_at=now, updated_at=now)
            session.add(placement)
        pdf = storage.store_blob(deps, session, "pack-pdf", "application/pdf", b"%PDF-1.7 bench")
        snapshot = storage.store_blob(deps, session, "pack-snapshot", "application/json", b"{}")
        session.flush()
        start = session.scalars(select(Child.id)).all()
        for i in range(len(start), len(start) + count):
            child = Child(id=uuid.uuid4(), created_at=now, updated_at=now)
            session.add(child)
            apply_profile(deps, session, child, ProfileInput(
                legal_name=f"Casey Bench{i:03d} Jones", preferred_name=f"Casey{i:03d}", aliases="",
                date_of_birth=date(2012, 1 + i % 12, 1 + i % 28), sex="1", nhs_number="", nhs_number_not_known=True,
                la_child_id=f"BENCH-{i:04d}", legal_status="C2", placement_type="U1",
                placement_started_on=today - timedelta(days=30), responsible_la_id=la.id,
                current_placement_id=placement.id, allocated_worker_id=worker.id, team_id=worker.team_id))
            for code in ("VOICE", "RISK"):
                version = SectionVersion(id=uuid.uuid4(), child_id=child.id, section_code=code, version=1,
                                         is_current=True, change="edit", reviewed_on=today,
                                         next_review_due=today + timedelta(days=90), author_id=worker.id,
                                         author_role="social_worker", created_at=now,
                                         definition_digest=deps.definitions.digest)
                session.add(version)
                version.content = json.dumps({"summary": f"Bench answer {i}"})
            transition = Transition(id=uuid.uuid4(), child_id=child.id, kind="emergency_move", status="sent",
                                    urgency="emergency", destination_id=placement.id, starts_at=now - timedelta(days=2),
                                    created_by=worker.id, created_at=now - timedelta(days=3), updated_at=now,
                                    sent_at=now - timedelta(days=2), definition_digest=deps.definitions.digest)
            recipient = TransitionRecipient(id=uuid.uuid4(), transition_id=transition.id, recipient_type="placement",
                                            organisation_id=placement.id, required=True, due_at=now - timedelta(days=1),
                                            condition="always", created_at=now - timedelta(days=3))
            pack = Pack(id=uuid.uuid4(), child_id=child.id, transition_id=transition.id, recipient_id=recipient.id,
                        version=1, reference=f"HP-B{i:05d}", recipient_type="placement",
                        organisation_id=placement.id, token_hash=uuid.uuid4().bytes * 2,
                        created_at=now - timedelta(days=2), created_by=worker.id, expires_at=now + timedelta(days=12),
                        pdf_blob_id=pdf.id, snapshot_blob_id=snapshot.id, section_versions="VOICE@1,RISK@1",
                        content_digest="0" * 64, definition_digest=deps.definitions.digest, page_count=2)
            for row in (transition, recipient, pack):
                session.add(row)
                session.flush()
            for level, acknowledged_by in (("social_worker", None), ("team_manager", manager_id)):
                escalation = Escalation(id=uuid.uuid4(), child_id=child.id, transition_id=transition.id,
                                        pack_id=pack.id, team_id=child.team_id, level=level, addressed_role=level,
                                        confirmation_due_at=now - timedelta(days=1),
                                        raised_at=now - timedelta(hours=20), status=EscalationStatus.OPEN)
                if acknowledged_by is not None:
                    escalation.status = EscalationStatus.ACKNOWLEDGED
                    escalation.acknowledged_at, escalation.acknowledged_by = now - timedelta(hours=2), acknowledged_by
                    escalation.acknowledged_note = "Phoned the placement: the manager is reading it"
                session.add(escalation)
            session.add(Task(id=uuid.uuid4(), child_id=child.id, transition_id=transition.id, kind="chase_not_known",
                             assigned_role="social_worker", assigned_user_id=worker.id, team_id=worker.team_id,
                             field_ref="HEALTH.gp_name", due_at=now + timedelta(days=i % 3 - 1), created_at=now))
            made.append(child.id)
    return made


def _statements(deps: ServiceDeps, client: Any, url: str) -> tuple[int, str]:
    seen: list[str] = []

    def on_execute(*args: Any, **kwargs: Any) -> None:
        seen.append(args[2])

    event.listen(deps.db.engine, "before_cursor_execute", on_execute)
    try:
        response = client.get(url)
    finally:
        event.remove(deps.db.engine, "before_cursor_execute", on_execute)
    assert response.status_code == 200, url
    return len(seen), response.get_data(as_text=True)


def test_staff_pages_issue_the_same_statements_for_10_or_50_children(deps, browser):
    organisations.seed_reference(deps, Actor.system("test"))
    worker = make_staff(deps, role="social_worker", team="North")
    manager = make_staff(deps, role="team_manager", team="North")
    first = add_caseload(deps, worker.id, 10)
    as_worker, as_manager = browser(worker), browser(manager)
    pages = {"sw_home": (as_worker, "/"), "sw_children": (as_worker, "/children"),
             "sw_my_work": (as_worker, "/my-work"), "child": (as_worker, f"/children/{first[0]}"),
             "tm_home": (as_manager, "/")}
    for client in (as_worker, as_manager):
        assert client.get("/").status_code == 200  # the first page after signing in also refreshes the session

    def counts(children: int) -> dict[str, int]:
        found = {}
        for name, (client, url) in pages.items():
            found[name], html = _statements(deps, client, url)
            shown = {"sw_children": r"Casey\d{3}", "sw_my_work": r"/tasks/[0-9a-f-]{36}/done",
                     "sw_home": r"HP-B\d{5}", "tm_home": r"HP-B\d{5}"}.get(name)
            if shown is not None:  # every child, task and escalated pack is on the page
                assert len(set(re.findall(shown, html))) == children, name
        return found

    ten = counts(10)
    add_caseload(deps, worker.id, 40)
    fifty = counts(50)
    assert fifty == ten, {"10 children": ten, "50 children": fifty}
    assert ten == EXPECTED[deps.db.dialect]
