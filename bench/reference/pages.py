"""The yardstick for the staff pages (performance.md L2): a bare Flask app, SQLAlchemy Core and Jinja templates
that render the same rows and columns as the project's page, from the same database, with the same decrypted values.

What each reference page does, and nothing more (no session, no sign-in, no CSRF, no access policy, no audit
event, no GOV.UK macros; a plain HTML shell with a header, navigation links and a footer):

- ``/ref/home/<user>`` (the signed-in home page): one SELECT of the person and their team (display name
  decrypted); one SELECT of their open and acknowledged escalations joined to child, pack, organisation and the
  acknowledging person, in the same scope as the project (a social worker's allocated children at social-worker
  level, a team manager's team at team-manager level), decrypting the child's preferred name (the legal name
  when there is none), the acknowledger's name and note; one SELECT counting their open and overdue tasks.
- ``/ref/children/<user>`` (the child list): the person and team; one SELECT of the children they see (allocated
  to them or their team; every child for a senior manager or nurse), newest 500, LEFT JOIN placement and worker,
  decrypting legal name, preferred name, date of birth and each distinct worker's name once; sorted by name
  after decrypting; a plain search form (the same inputs, no token).
- ``/ref/my-work/<user>``: the person and team; one SELECT of their open tasks joined to the child (preferred
  name decrypted, legal name if none), soonest first; a form per row.
- ``/ref/child/<child>`` (the child's page): the child row, LEFT JOIN worker and team, decrypting all ten profile
  fields; one SELECT of the placement / responsible authority, their host authority and police force (aliased
  joins); one SELECT of the current version of every section with its author (contents decrypted and parsed as
  JSON, author names decrypted), section status from the review date, gap labels with ``values.gaps`` over the
  parsed form definitions (what any page listing gaps must compute); the restricted contacts (a loop over the
  CONTACTS entries); one SELECT of the last 50 moves with the destination's name; one of the open crisis flags;
  one counting missing episodes in the last 30 and 365 days by code; one of the open episode; one of an open
  "share again after a return" task.

Form definitions (section titles, recipient type titles, field labels) are read once when the app is built,
as the project does.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask, render_template
from sqlalchemy import Engine, and_, case, false, func, or_, select, true

from transitions.clock import UK
from transitions.crypto import FieldCipher
from transitions.formdefs import Definitions
from transitions.models import Base, Role
from transitions.models.staff import ROLE_LABELS
from transitions.services.values import ENTRIES, gaps

T = Base.metadata.tables
CHILD, ORG, STAFF, TEAM = T["child"], T["organisation"], T["staff_user"], T["team"]
TASK, ESC, PACK, SV = T["task"], T["escalation"], T["pack"], T["section_version"]
TRANSITION, FLAG, EPISODE = T["transition"], T["crisis_flag"], T["missing_episode"]
PROFILE_FIELDS = ("legal_name", "preferred_name", "aliases", "date_of_birth", "sex", "nhs_number", "la_child_id",
                  "legal_status", "placement_type", "placement_started_on")
RESTRICTED = frozenset({"no_contact_court_order", "no_contact_la_decision"})
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")


def _day(value: date | datetime) -> str:
    local = value.astimezone(UK) if isinstance(value, datetime) else value
    return f"{local.day} {MONTHS[local.month - 1]} {local.year}"


def _date_time(value: datetime) -> str:
    local = value.astimezone(UK)
    return f"{_day(local)}, {local.hour % 12 or 12}:{local.minute:02d}{'am' if local.hour < 12 else 'pm'}"


def create_reference_app(engine: Engine, cipher: FieldCipher, definitions: Definitions, now: datetime, *,
                         due_soon_days: int = 30) -> Flask:
    """`now` is the benchmark's frozen clock: overdue tasks and section statuses are worked out against it."""
    app = Flask("reference", template_folder=str(Path(__file__).parent / "templates"))
    app.jinja_env.filters["day"] = _day
    app.jinja_env.filters["date_time"] = _date_time
    recipient_titles = {code: r.title for code, r in definitions.recipient_types.items()}
    field_labels = {f"{s.code}.{f.id}": f"{s.title}: {f.label}" for s in definitions.sections.values()
                    for f in s.all_fields}
    sections = definitions.ordered()
    codes = definitions.code_lists
    contacts = definitions.sections.get("CONTACTS")
    status_labels = None
    if contacts is not None and contacts.entry is not None:
        status_labels = contacts.entry.field("contact_status").codes

    def dec(blob: bytes | None, table: str, column: str, row_id: Any) -> str:
        if blob is None:
            return ""
        return cipher.decrypt(blob, table=table, column=column, row_id=str(row_id))

    def person(conn: Any, user_id: uuid.UUID) -> dict[str, Any]:
        row = conn.execute(select(STAFF.c.id, STAFF.c.display_name_enc, STAFF.c.role, STAFF.c.team_id,
                                  TEAM.c.name.label("team_name"))
                           .select_from(STAFF.outerjoin(TEAM, TEAM.c.id == STAFF.c.team_id))
                           .where(STAFF.c.id == user_id)).one()
        return {"id": row.id, "name": dec(row.display_name_enc, "staff_user", "display_name_enc", row.id),
                "role": row.role, "role_label": ROLE_LABELS[Role(row.role)], "team_id": row.team_id,
                "team_name": row.team_name}

    def child_name(row: Any) -> str:
        return dec(row.preferred_name_enc, "child", "preferred_name_enc", row.child_id) or dec(
            row.legal_name_enc, "child", "legal_name_enc", row.child_id)

    def mine(user: dict[str, Any]) -> Any:
        """Open tasks named to the person or for their role (and team): each OR branch one index search."""
        is_open = TASK.c.status == "open"
        named = is_open & (TASK.c.assigned_user_id == user["id"])
        for_role = is_open & TASK.c.assigned_user_id.is_(None) & (TASK.c.assigned_role == user["role"])
        if user["role"] in ("social_worker", "team_manager"):
            if user["team_id"] is None:
                return named
            for_role = for_role & (TASK.c.team_id == user["team_id"])
        return or_(named, for_role)

    @app.get("/ref/home/<uuid:user_id>")
    def home(user_id: uuid.UUID) -> str:
        with engine.connect() as conn:
            user = person(conn, user_id)
            role = user["role"]
            scope: Any = false()
            if role == "senior_manager":
                scope = ESC.c.addressed_role == "senior_manager"
            elif role == "team_manager" and user["team_id"] is not None:
                scope = (ESC.c.addressed_role == "team_manager") & (CHILD.c.team_id == user["team_id"])
            elif role == "social_worker":
                scope = (ESC.c.addressed_role == "social_worker") & (CHILD.c.allocated_worker_id == user_id)
            ack = STAFF.alias("ack")
            rows = conn.execute(
                select(ESC.c.id, ESC.c.status, ESC.c.level, ESC.c.confirmation_due_at, ESC.c.raised_at,
                       ESC.c.acknowledged_at, ESC.c.acknowledged_note_enc, ESC.c.acknowledged_by,
                       CHILD.c.id.label("child_id"), CHILD.c.preferred_name_enc, CHILD.c.legal_name_enc,
                       PACK.c.reference, PACK.c.version, PACK.c.recipient_type, ORG.c.name.label("organisation"),
                       ack.c.display_name_enc.label("ack_name_enc"))
                .select_from(ESC.join(CHILD, CHILD.c.id == ESC.c.child_id).join(PACK, PACK.c.id == ESC.c.pack_id)
                             .join(ORG, ORG.c.id == PACK.c.organisation_id)
                             .outerjoin(ack, ack.c.id == ESC.c.acknowledged_by))
                .where(ESC.c.status != "resolved", scope)
                .order_by(ESC.c.confirmation_due_at, ESC.c.raised_at)).all() if role in (
                    "social_worker", "team_manager", "senior_manager") else []
            escalations = [{
                "id": r.id, "status": r.status, "child_name": child_name(r), "organisation": r.organisation,
                "recipient_title": recipient_titles.get(r.recipient_type, r.recipient_type),
                "reference": r.reference, "version": r.version, "due": r.confirmation_due_at, "raised": r.raised_at,
                "level": r.level.replace("_", " ").capitalize(), "acknowledged_at": r.acknowledged_at,
                "acknowledged_by": dec(r.ack_name_enc, "staff_user", "display_name_enc", r.acknowledged_by),
                "note": dec(r.acknowledged_note_enc, "escalation", "acknowledged_note_enc", r.id)} for r in rows]
            due, overdue = conn.execute(select(func.count(), func.coalesce(func.sum(case(
                (TASK.c.due_at <= now, 1),
                else_=0)), 0)).where(mine(user))).one()
        return render_template("ref_home.html", user=user, tasks_due=due, tasks_overdue=overdue,
                               open_rows=[e for e in escalations if e["status"] == "open"],
                               acknowledged=[e for e in escalations if e["status"] == "acknowledged"])

    @app.get("/ref/children/<uuid:user_id>")
    def children(user_id: uuid.UUID) -> str:
        worker = STAFF.alias("worker")
        with engine.connect() as conn:
            user = person(conn, user_id)
            query = (select(CHILD.c.id.label("child_id"), CHILD.c.legal_name_enc, CHILD.c.preferred_name_enc,
                            CHILD.c.date_of_birth_enc, ORG.c.name.label("placement"), CHILD.c.allocated_worker_id,
                            worker.c.display_name_enc.label("worker_name_enc"))
                     .select_from(CHILD.outerjoin(ORG, ORG.c.id == CHILD.c.current_placement_id)
                                  .outerjoin(worker, worker.c.id == CHILD.c.allocated_worker_id))
                     .order_by(CHILD.c.created_at.desc(), CHILD.c.id).limit(500))
            if user["role"] not in ("senior_manager", "cla_nurse"):
                conditions = [CHILD.c.allocated_worker_id == user_id] if user["role"] == "social_worker" else []
                if user["team_id"] is not None:
                    conditions.append(CHILD.c.team_id == user["team_id"])
                query = query.where(or_(*conditions) if conditions else false())
            rows = conn.execute(query).all()
        workers: dict[Any, str] = {}
        out = []
        for r in rows:
            if r.allocated_worker_id is not None and r.allocated_worker_id not in workers:
                workers[r.allocated_worker_id] = dec(r.worker_name_enc, "staff_user", "display_name_enc",
                                                     r.allocated_worker_id)
            legal = dec(r.legal_name_enc, "child", "legal_name_enc", r.child_id)
            preferred = dec(r.preferred_name_enc, "child", "preferred_name_enc", r.child_id)
            dob = dec(r.date_of_birth_enc, "child", "date_of_birth_enc", r.child_id)
            out.append({"id": r.child_id, "name": preferred or legal, "preferred": preferred, "legal": legal,
                        "dob": _day(date.fromisoformat(dob)) if dob else "", "placement": r.placement,
                        "worker": workers.get(r.allocated_worker_id)})
        out.sort(key=lambda c: (c["name"].casefold(), str(c["id"])))
        return render_template("ref_children.html", user=user, children=out)

    @app.get("/ref/my-work/<uuid:user_id>")
    def my_work(user_id: uuid.UUID) -> str:
        with engine.connect() as conn:
            user = person(conn, user_id)
            rows = conn.execute(
                select(TASK.c.id, TASK.c.kind, TASK.c.due_at, TASK.c.field_ref, TASK.c.transition_id,
                       TASK.c.subject_id, CHILD.c.id.label("child_id"), CHILD.c.preferred_name_enc,
                       CHILD.c.legal_name_enc)
                .select_from(TASK.join(CHILD, CHILD.c.id == TASK.c.child_id))
                .where(mine(user)).order_by(TASK.c.due_at, TASK.c.created_at)).all()
        tasks = [{"id": r.id, "kind": r.kind, "due": r.due_at, "child_id": r.child_id, "child_name": child_name(r),
                  "field_label": field_labels.get(r.field_ref or "", r.field_ref),
                  "transition_id": r.transition_id, "subject_id": r.subject_id,
                  "overdue": r.due_at <= now}
                 for r in rows]
        return render_template("ref_my_work.html", user=user, tasks=tasks)

    @app.get("/ref/child/<uuid:child_id>/<uuid:user_id>")
    def child(child_id: uuid.UUID, user_id: uuid.UUID) -> str:
        worker = STAFF.alias("worker")
        author = STAFF.alias("author")
        host, host_force, own_force = ORG.alias("host"), ORG.alias("host_force"), ORG.alias("own_force")
        dest = ORG.alias("dest")
        today = now.date()
        with engine.connect() as conn:
            user = person(conn, user_id)
            c = conn.execute(select(CHILD, worker.c.display_name_enc.label("worker_name_enc"),
                                    TEAM.c.name.label("team_name"))
                             .select_from(CHILD.outerjoin(worker, worker.c.id == CHILD.c.allocated_worker_id)
                                          .outerjoin(TEAM, TEAM.c.id == CHILD.c.team_id))
                             .where(CHILD.c.id == child_id)).one()
            profile = {name: dec(getattr(c, f"{name}_enc"), "child", f"{name}_enc", c.id) for name in PROFILE_FIELDS}
            orgs = {r.id: r for r in conn.execute(
                select(ORG.c.id, ORG.c.name, ORG.c.kind, host.c.name.label("host_name"),
                       host_force.c.name.label("host_force"), own_force.c.name.label("own_force"))
                .select_from(ORG.outerjoin(host, host.c.id == ORG.c.local_authority_id)
                             .outerjoin(host_force, host_force.c.id == host.c.police_force_id)
                             .outerjoin(own_force, own_force.c.id == ORG.c.police_force_id))
                .where(ORG.c.id.in_([i for i in (c.current_placement_id, c.responsible_la_id) if i])))}
            versions = conn.execute(
                select(SV.c.id, SV.c.section_code, SV.c.version, SV.c.content_enc, SV.c.reviewed_on,
                       SV.c.next_review_due, SV.c.author_role, SV.c.author_id,
                       author.c.display_name_enc.label("author_name_enc"))
                .select_from(SV.outerjoin(author, author.c.id == SV.c.author_id))
                .where(SV.c.child_id == child_id, SV.c.is_current == true())).all()
            moves = conn.execute(
                select(TRANSITION.c.id, TRANSITION.c.kind, TRANSITION.c.status, TRANSITION.c.starts_at,
                       dest.c.name.label("destination"))
                .select_from(TRANSITION.outerjoin(dest, dest.c.id == TRANSITION.c.destination_id))
                .where(TRANSITION.c.child_id == child_id).order_by(TRANSITION.c.starts_at.desc()).limit(50)).all()
            flags = conn.execute(select(FLAG.c.reason, FLAG.c.count).where(
                FLAG.c.child_id == child_id, FLAG.c.acknowledged_at.is_(None))).all()
            cut30, cut365 = now - timedelta(days=30), now - timedelta(days=365)
            is_recent = EPISODE.c.started_at >= cut30
            counts = conn.execute(select(EPISODE.c.code, is_recent, func.count())
                                  .where(EPISODE.c.child_id == child_id, EPISODE.c.started_at >= cut365)
                                  .group_by(EPISODE.c.code, is_recent)).all()
            open_episode = conn.execute(select(EPISODE.c.id, EPISODE.c.code, EPISODE.c.started_at).where(
                EPISODE.c.child_id == child_id, EPISODE.c.ended_at.is_(None))).first()
            prompt = conn.execute(select(TASK.c.id, TASK.c.due_at, TASK.c.subject_id).where(and_(
                TASK.c.child_id == child_id, TASK.c.kind == "missing_reshare", TASK.c.status == "open"))).first()
        by_code = {v.section_code: v for v in versions}
        contents = {code: json.loads(dec(v.content_enc, "section_version", "content_enc", v.id) or "{}")
                    for code, v in by_code.items()}
        authors: dict[Any, str] = {}
        rows = []
        for s in sections:
            v = by_code.get(s.code)
            if v is not None and v.author_id not in authors:
                authors[v.author_id] = dec(v.author_name_enc, "staff_user", "display_name_enc", v.author_id)
            due = v.next_review_due if v else None
            status = "Missing" if due is None else "Overdue" if due < today else "Due soon" if (
                due <= today + timedelta(days=due_soon_days)) else "Complete"
            rows.append({"code": s.code, "title": s.title, "core": s.core, "status": status,
                         "reviewed_on": v.reviewed_on if v else None, "next_review_due": due,
                         "gaps": gaps(s, contents[s.code]) if v else [],
                         "author": authors.get(v.author_id) if v else None,
                         "author_role": ROLE_LABELS[Role(v.author_role)] if v else None})
        restricted = []
        for entry in contents.get("CONTACTS", {}).get(ENTRIES, []) or []:
            reasons = []
            if entry.get("contact_status") in RESTRICTED and status_labels is not None:
                reasons.append(status_labels.label(entry["contact_status"]))
            if entry.get("must_not_know_placement_address") == "yes":
                reasons.append("Must not know the placement address")
            if entry.get("is_associate_of_concern") == "yes":
                reasons.append("Associate of concern (see the exploitation plan)")
            if reasons:
                restricted.append({"name": entry.get("name") or "", "relationship": entry.get("relationship") or "",
                                   "reasons": reasons, "order": entry.get("order_reference") or ""})
        recent = sum(n for _code, is_recent, n in counts if is_recent)
        year = sum(n for _code, _recent, n in counts)
        placement = orgs.get(c.current_placement_id)
        responsible = orgs.get(c.responsible_la_id)
        photo = contents.get("PHOTO", {})
        health = contents.get("HEALTH", {})
        dob = date.fromisoformat(profile["date_of_birth"]) if profile["date_of_birth"] else None
        return render_template(
            "ref_child.html", user=user, c=c, p=profile, dob=dob,
            age=(today.year - dob.year - ((today.month, today.day) < (dob.month, dob.day))) if dob else None,
            sex=codes["SEX"].label(profile["sex"]), ls=codes["LS"].label(profile["legal_status"]),
            place=codes["PLACE"].label(profile["placement_type"]), placement=placement, responsible=responsible,
            worker=dec(c.worker_name_enc, "staff_user", "display_name_enc", c.allocated_worker_id),
            sections=rows, restricted=restricted, moves=moves, flags=flags, recent=recent, year=year,
            open_episode=open_episode, prompt=prompt, photo=photo, health=health)

    return app
