"""Tasks: work someone must do by a time (the nurse's health plan update, a chase for a value "not known", a
senior manager's crisis planning, an answer to a recipient's request, a return home interview), and "my work".

A task is for a named person when one is known (the allocated worker answers a request), otherwise for a role,
within a team where the role works by team (team managers). Creating one is idempotent per subject: the same
open task is never made twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session, load_only

from transitions.clock import UK
from transitions.formdefs import SectionDef
from transitions.models import (
    AccountStatus,
    Child,
    InformationRequest,
    Organisation,
    OutboxMessage,
    Pack,
    Role,
    StaffUser,
    Task,
)
from transitions.services import audit, deadlines, outbox
from transitions.services.accounts import StaffView
from transitions.services.audit import Actor
from transitions.services.deps import ServiceDeps
from transitions.services.errors import ForbiddenActionError, NotFoundError, ServiceError
from transitions.services.values import is_not_known, typed_reason

#: kind -> what the task asks, in the words of the person who does it.
TASK_LABELS = {
    "health_plan_update": "Update the health plan: the child is moving or has been admitted",
    "chase_not_known": "Find out a value recorded as not known",
    "crisis_planning": "Hold a planning meeting: the child is in crisis",
    "information_request": "Answer a recipient's request for missing information",
    "return_interview": "Arrange the return home interview",
    "missing_reshare": "Update associates and places after the return, and share the pack again",
}
#: Roles that work by team: their tasks are for their team only.
TEAM_ROLES = frozenset({Role.SOCIAL_WORKER, Role.TEAM_MANAGER})
#: Tasks that close themselves when the work is recorded elsewhere (a new health plan, a filled-in value).
SELF_CLOSING = frozenset({"health_plan_update", "chase_not_known"})


def due_from(deps: ServiceDeps, rule_name: str, start: datetime) -> datetime:
    """The due time of a task whose rule is in forms/follow_up.toml [tasks]."""
    return deadlines.due_at(deps.definitions.rules.tasks[rule_name], start)


def open_task(session: Session, deps: ServiceDeps, *, child_id: uuid.UUID, kind: str, assigned_role: Role,
              due_at: datetime, transition_id: uuid.UUID | None = None, assigned_user_id: uuid.UUID | None = None,
              team_id: uuid.UUID | None = None, subject_id: uuid.UUID | None = None, field_ref: str | None = None,
              crisis_flag_id: uuid.UUID | None = None) -> Task:
    """Add the task unless the same one is already open; return whichever is open."""
    if kind not in TASK_LABELS:
        raise ValueError(f"unknown task kind {kind!r}")
    if assigned_user_id is None and team_id is None and assigned_role in TEAM_ROLES:
        assigned_role = Role.SENIOR_MANAGER  # nobody allocated and no team: a senior manager, not every worker
    existing = session.scalars(select(Task).where(
        Task.child_id == child_id, Task.kind == kind, Task.status == "open",
        Task.transition_id.is_(None) if transition_id is None else Task.transition_id == transition_id,
        Task.subject_id.is_(None) if subject_id is None else Task.subject_id == subject_id,
        Task.field_ref.is_(None) if field_ref is None else Task.field_ref == field_ref)).first()
    if existing is not None:
        return existing
    task = Task(id=uuid.uuid4(), child_id=child_id, kind=kind, assigned_role=assigned_role.value,
                assigned_user_id=assigned_user_id, team_id=team_id, transition_id=transition_id,
                subject_id=subject_id, field_ref=field_ref, crisis_flag_id=crisis_flag_id, due_at=due_at,
                created_at=deps.clock.now())
    session.add(task)
    session.flush()
    return task


def close_tasks(session: Session, deps: ServiceDeps, *, child_id: uuid.UUID, kind: str, status: str = "done",
                by: uuid.UUID | None = None, transition_id: uuid.UUID | None = None,
                subject_id: uuid.UUID | None = None, field_ref: str | None = None) -> int:
    """Close the open tasks of a kind for a child (narrowed by transition, subject or field when given)."""
    query = select(Task).where(Task.child_id == child_id, Task.kind == kind, Task.status == "open")
    if transition_id is not None:
        query = query.where(Task.transition_id == transition_id)
    if subject_id is not None:
        query = query.where(Task.subject_id == subject_id)
    if field_ref is not None:
        query = query.where(Task.field_ref == field_ref)
    closed = 0
    now = deps.clock.now()
    for task in session.scalars(query):
        task.status, task.done_at, task.done_by = status, now, by
        closed += 1
    return closed


def _mine(user: StaffView) -> ColumnElement[bool]:
    """Open tasks for this person: named to them, or for their role (in their team where the task has one).

    Each branch of the OR carries the status, so each is one index search (ix_task_open_user,
    ix_task_open_role_team) instead of a read of every open task in the service."""
    is_open = Task.status == "open"
    named = is_open & (Task.assigned_user_id == user.id)
    for_role = is_open & (Task.assigned_user_id.is_(None)) & (Task.assigned_role == user.role.value)
    if user.role in TEAM_ROLES:
        if user.team_id is None:
            return named
        for_role = for_role & (Task.team_id == user.team_id)
    return or_(named, for_role)


class AlreadyDoneError(ServiceError):
    """Someone else finished it first (two people at once): the page says so and keeps what was typed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class TaskRow:
    id: uuid.UUID
    kind: str
    child_id: uuid.UUID
    child_name: str
    transition_id: uuid.UUID | None
    subject_id: uuid.UUID | None
    field_ref: str | None
    field_label: str | None
    due_at: datetime
    overdue: bool
    closes_itself: bool

    @property
    def label(self) -> str:
        return TASK_LABELS[self.kind]


def my_work(deps: ServiceDeps, user: StaffView, actor: Actor, *, counting: bool = False) -> list[TaskRow]:
    """The open tasks a person should do, soonest due first (overdue at the top). `counting` (the home page's
    "3 open tasks") shows no child and is not recorded as a view."""
    if user.role in (Role.ADMIN, Role.AUDITOR):
        return []
    now = deps.clock.now()
    with deps.db.transaction() as session:
        mine, order = _mine(user), (Task.due_at, Task.created_at)
        rows: list[tuple[Task, Child | None]]
        if counting:  # no child is shown: no child row is read or decrypted
            rows = [(task, None) for task in session.scalars(select(Task).where(mine).order_by(*order))]
        else:
            rows = [(task, child) for task, child in session.execute(
                select(Task, Child).join(Child, Child.id == Task.child_id)
                .options(load_only(Child.preferred_name_enc, Child.legal_name_enc, raiseload=True))
                .where(mine).order_by(*order))]
        out = []
        for task, child in rows:
            out.append(TaskRow(id=task.id, kind=task.kind, child_id=task.child_id,
                               child_name=(child.preferred_name or child.legal_name or "") if child else "",
                               transition_id=task.transition_id, subject_id=task.subject_id, field_ref=task.field_ref,
                               field_label=_field_label(deps, task.field_ref), due_at=task.due_at,
                               overdue=task.due_at <= now, closes_itself=task.kind in SELF_CLOSING))
        if not counting:
            audit.record(session, deps.audit_chain, deps.clock, actor, "tasks.viewed", details={"count": len(out)})
        return out


def _field_label(deps: ServiceDeps, field_ref: str | None) -> str | None:
    if not field_ref:
        return None
    section_code, _, field_id = field_ref.partition(".")
    section = deps.definitions.sections.get(section_code)
    if section is None:
        return field_ref
    for f in section.all_fields:
        if f.id == field_id:
            return f"{section.title}: {f.label}"
    return section.title


def complete(deps: ServiceDeps, task_id: uuid.UUID, note: str, user: StaffView, actor: Actor) -> None:
    """Mark a task done with a note saying what was done (the person it is for, or a manager of the team)."""
    text = typed_reason(note, asking="what was done")
    with deps.db.transaction() as session:
        task = session.get(Task, task_id)
        if task is None:
            raise NotFoundError("task")
        if task.status != "open":
            raise AlreadyDoneError("This task has already been closed")
        if not _may_do(user, task):
            raise ForbiddenActionError("This task is not yours")
        now = deps.clock.now()
        task.status, task.done_at, task.done_by, task.note = "done", now, user.id, text
        audit.record(session, deps.audit_chain, deps.clock, actor, "task.done", object_type="child",
                     object_id=task.child_id, details={"task_id": task.id, "kind": task.kind})


def _may_do(user: StaffView, task: Task) -> bool:
    if task.assigned_user_id == user.id:
        return True
    if task.assigned_user_id is None and task.assigned_role == user.role.value:
        return user.role not in TEAM_ROLES or (task.team_id is not None and task.team_id == user.team_id)
    if user.role is Role.TEAM_MANAGER and task.team_id is not None and task.team_id == user.team_id:
        return True
    return user.role is Role.SENIOR_MANAGER


OVERDUE_EMAIL = """A task in CLA Transitions is overdue: {label}.

It was due on {due}. Sign in to see it in your work: {url}
"""


def _people_for(session: Session, task: Task) -> list[StaffUser]:
    if task.assigned_user_id is not None:
        person = session.get(StaffUser, task.assigned_user_id)
        if person is not None and person.status == AccountStatus.ACTIVE.value:
            return [person]
    query = select(StaffUser).where(StaffUser.role == task.assigned_role,
                                    StaffUser.status == AccountStatus.ACTIVE.value)
    if task.assigned_role in {r.value for r in TEAM_ROLES}:
        if task.team_id is None:
            return []
        query = query.where(StaffUser.team_id == task.team_id)
    return list(session.scalars(query))


def notify_overdue(deps: ServiceDeps) -> int:
    """Tell the people a task is for, once, when it passes its due time (tick). Returns the emails queued."""
    now = deps.clock.now()
    queued = 0
    with deps.db.transaction() as session:
        for task in session.scalars(select(Task).where(Task.status == "open", Task.due_at <= now)):
            for person in _people_for(session, task):
                key = f"task-overdue-{task.id}-{person.id}"
                if not person.email or session.scalars(select(OutboxMessage.id).where(
                        OutboxMessage.idempotency_key == key)).first() is not None:
                    continue
                local = task.due_at.astimezone(UK)
                outbox.enqueue(session, now, to=person.email, subject="A task is overdue", body=OVERDUE_EMAIL.format(
                    label=TASK_LABELS.get(task.kind, task.kind), due=f"{local:%d %B %Y at %H:%M}",
                    url=deps.settings.app.public_base_url.rstrip("/") + "/my-work"),
                    purpose="task_overdue", idempotency_key=key)
                queued += 1
    return queued


def after_section_saved(session: Session, deps: ServiceDeps, child: Child, section: SectionDef,
                        content: dict[str, object], user: StaffView) -> None:
    """A value recorded as "not known - to be obtained" gets a chase task; one filled in closes it. A new health
    plan closes the nurse's "update the health plan" tasks (Lesson CH1.1)."""
    nurse_owned = "cla_nurse" in section.edited_by and "social_worker" not in section.edited_by
    for f in section.fields:
        ref = f"{section.code}.{f.id}"
        if is_not_known(content.get(f.id)):
            open_task(session, deps, child_id=child.id, kind="chase_not_known",
                      assigned_role=Role.CLA_NURSE if nurse_owned else Role.SOCIAL_WORKER,
                      assigned_user_id=None if nurse_owned else child.allocated_worker_id,
                      team_id=None if nurse_owned else child.team_id, field_ref=ref,
                      due_at=due_from(deps, "chase_not_known", deps.clock.now()))
        else:
            close_tasks(session, deps, child_id=child.id, kind="chase_not_known", field_ref=ref, by=user.id)
    if section.code == "HEALTH":
        close_tasks(session, deps, child_id=child.id, kind="health_plan_update", by=user.id)


@dataclass(frozen=True)
class RequestView:
    id: uuid.UUID
    child_id: uuid.UUID
    child_name: str
    #: None for a pack sent for a missing episode rather than a move
    transition_id: uuid.UUID | None
    pack_reference: str
    pack_version: int
    organisation: str
    recipient_type: str
    sections: list[str]
    requested_by: str
    reason: str
    requested_at: datetime
    due_at: datetime | None
    answered_at: datetime | None
    answer: str | None


def _request_scope(deps: ServiceDeps, session: Session, request_id: uuid.UUID, user: StaffView, actor: Actor,
                   *, answering: bool = False) -> tuple[InformationRequest, Pack, Child]:
    from transitions.services.access import Via
    from transitions.services.children import open_child

    found = session.get(InformationRequest, request_id)
    pack = session.get(Pack, found.pack_id) if found is not None else None
    if found is None or pack is None:
        raise NotFoundError("request")
    child, access = open_child(deps, session, pack.child_id, user, actor, action=None)
    if answering and access.via is Via.BREAK_GLASS:  # break-glass reads; it never writes (R13)
        raise ForbiddenActionError("Break-glass access is read-only: the child's own team answers the request")
    return found, pack, child


def information_request(deps: ServiceDeps, request_id: uuid.UUID, user: StaffView, actor: Actor) -> RequestView:
    with deps.db.transaction() as session:
        found, pack, child = _request_scope(deps, session, request_id, user, actor)
        organisation = session.get(Organisation, pack.organisation_id)
        task = session.scalars(select(Task).where(Task.kind == "information_request",
                                                  Task.subject_id == found.id)).first()
        recipient_type = deps.definitions.recipient_types.get(pack.recipient_type)
        audit.record(session, deps.audit_chain, deps.clock, actor, "information_request.viewed",
                     object_type="child", object_id=child.id, details={"request_id": found.id})
        return RequestView(
            id=found.id, child_id=child.id, child_name=child.preferred_name or child.legal_name or "",
            transition_id=pack.transition_id, pack_reference=pack.reference, pack_version=pack.version,
            organisation=organisation.name if organisation else "",
            recipient_type=recipient_type.title if recipient_type else pack.recipient_type,
            sections=[deps.definitions.sections[c].title if c in deps.definitions.sections else c
                      for c in found.sections.split(",") if c],
            requested_by=found.requested_by or "", reason=found.reason or "", requested_at=found.requested_at,
            due_at=task.due_at if task else None, answered_at=found.answered_at, answer=found.answer)


def answer_request(deps: ServiceDeps, request_id: uuid.UUID, note: str, user: StaffView, actor: Actor) -> None:
    """Record how a recipient's request was answered (a new version sent, a call to the ward); closes its task."""
    text = typed_reason(note, asking="how you answered the request", max_length=2000)
    with deps.db.transaction() as session:
        found, _pack, child = _request_scope(deps, session, request_id, user, actor, answering=True)
        if user.role not in (Role.SOCIAL_WORKER, Role.TEAM_MANAGER, Role.SENIOR_MANAGER, Role.CLA_NURSE):
            raise ForbiddenActionError("Only social workers, nurses and managers answer requests")
        if found.answered_at is not None:
            raise AlreadyDoneError("Someone has already recorded an answer to this request")
        now = deps.clock.now()
        found.answered_at, found.answered_by, found.answer = now, user.id, text
        close_tasks(session, deps, child_id=child.id, kind="information_request", subject_id=found.id, by=user.id)
        audit.record(session, deps.audit_chain, deps.clock, actor, "information_request.answered",
                     object_type="child", object_id=child.id, details={"request_id": found.id})
