"""Fictional children for the demo: full records across two teams, one with a stale photo, one with a
restricted parent, one open to CAMHS, one only half complete. NHS numbers are in the 999 test range;
phone numbers in Ofcom's drama ranges; every name and place is invented."""

from __future__ import annotations

import io
import json
import uuid
from datetime import date, timedelta
from typing import Any

from PIL import Image, ImageDraw
from sqlalchemy import select
from sqlalchemy.orm import Session

from transitions.formdefs import FieldDef, SectionDef
from transitions.models import Child, Organisation, Role, SectionVersion, StaffUser, Team
from transitions.services import organisations
from transitions.services.accounts import _view
from transitions.services.audit import Actor
from transitions.services.children import ProfileInput, apply_profile, save_profile_version
from transitions.services.deps import ServiceDeps
from transitions.services.errors import TransitionStepError
from transitions.services.sections import add_version, store_attachment
from transitions.uploads import clean_photo

DEMO_ORGANISATIONS = (
    # kind, name, code, local authority ONS code, phone, mailbox
    ("childrens_home", "Fellside House (demo children's home)", "SC900001", "E06000063", "01632 960 101",
     "fellside.house@example-provider.test"),
    ("childrens_home", "Riverside Lodge (demo children's home)", "SC900002", "E08000003", "0161 496 0102",
     "riverside.lodge@example-provider.test"),
    ("childrens_home", "Moorview House (demo children's home)", "SC900003", "E06000065", "01632 960 105",
     "moorview.house@example-provider.test"),
    ("ward", "Ward 7 Children's (demo)", "RZZ07", None, "01632 960 207", "ward7@example-nhs.test"),
    ("placement", "Fostering household FH-0123 (demo)", None, "E06000064", "01632 960 103", None),
    ("placement", "Fostering household FH-0456 (demo)", None, "E10000017", "01632 960 104", None),
    ("hospital", "Cumberland General Hospital (demo)", "RZZ01", "E06000063", "01632 960 200", None),
    ("camhs", "North Cumbria CAMHS (demo)", None, "E06000063", "01632 960 300", "camhs.north@example-nhs.test"),
    ("school", "Fellside Academy (demo)", "999001", "E06000063", "01632 960 400", "office@fellside.example.test"),
    ("gp_practice", "Riverbank Surgery (demo)", "Z99001", "E06000063", "01632 960 500", None),
)

CHILDREN: tuple[dict[str, Any], ...] = (
    {"legal_name": "Jade Louise Carter", "preferred_name": "Jade", "aliases": "JJ\njadec_2011",
     "dob": date(2011, 5, 14), "sex": "2", "nhs": "9990000999", "local_id": "LCS-104233", "ls": "C2",
     "place": "K2", "placement": "SC900001", "team": "Children in Care North",
     "worker": "social.worker@example-council.test", "camhs": True, "photo_age": 20, "restricted": False},
    {"legal_name": "Leo James Fraser", "preferred_name": "Leo", "aliases": "", "dob": date(2013, 9, 2), "sex": "1",
     "nhs": "9990001073", "local_id": "LCS-104871", "ls": "C1", "place": "U6", "placement": "Fostering household",
     "team": "Children in Care North", "worker": "social.worker@example-council.test", "camhs": False,
     "photo_age": 45, "restricted": True},
    {"legal_name": "Amira Noor Hassan", "preferred_name": "Amira", "aliases": "Mira", "dob": date(2009, 1, 23),
     "sex": "2", "nhs": "9990001332", "local_id": "LCS-099120", "ls": "V2", "place": "K2", "placement": "SC900002",
     "team": "Children in Care South", "worker": "social.worker.south@example-council.test", "camhs": False,
     "photo_age": 240, "restricted": False},
    {"legal_name": "Tyler Brooks", "preferred_name": "Tyler", "aliases": "", "dob": date(2012, 11, 8), "sex": "1",
     "nhs": "", "local_id": "LCS-105502", "ls": "V2", "place": "U4", "placement": "Fostering household FH-0456",
     "team": "Children in Care South", "worker": "social.worker.south@example-council.test", "camhs": False,
     "photo_age": None, "restricted": False, "partial": True},
)

SPECIFIC: dict[str, dict[str, object]] = {
    "HEALTH": {"preferred_hospital_name": "Cumberland General Hospital (demo)",
               "emergency_instruction": "Tell the call handler she is a child in care and ask for her to be taken to "
                                        "Cumberland General, where the paediatric team knows her.",
               "allergies": "Penicillin – rash (moderate). No adrenaline auto-injector.",
               "current_medication": "Sertraline 50 mg, oral, once daily in the morning, prescribed by CAMHS."},
    "RISK": {"risk_narrative": "Risk of self-harm increases after contact is cancelled and at night. Agreed with "
                               "CAMHS and the home: room checks at 23:00 and 03:00; ligature points removed."},
    "VOICE": {"about_me_text": "I like drawing and football. I don't like being asked the same questions again. "
                               "Please knock before coming into my room.",
              "my_views_on_this_move": "I want to stay near my school."},
}


def _demo_value(f: FieldDef, today: date, n: int) -> object:
    if f.is_upload:
        return None
    if f.type == "date":
        return (today - timedelta(days=30 + n)).isoformat()
    if f.type == "choice" and f.codes:
        return f.codes.options[0][0]
    if f.type == "choices" and f.codes:
        return [code for code, _ in f.codes.options[:2]]
    if f.type == "yesno":
        return "no"
    if f.type == "phone":
        return f"01632 960 {600 + n:03d}"
    if f.type == "email":
        return f"demo.contact{n}@example.test"
    if f.type == "postcode":
        return "ZZ99 9ZZ"
    if f.type == "number":
        return str(12 + n)
    return f"(Demo) {f.label}"


def _content(section: SectionDef, today: date, partial: bool) -> dict[str, object]:
    content: dict[str, object] = {}
    for n, f in enumerate(section.fields):
        if partial and f.mandatory and f.not_known and n % 3 == 0:
            content[f.id] = {"not_known": True}
            continue
        value = SPECIFIC.get(section.code, {}).get(f.id) or _demo_value(f, today, n)
        if value is not None and (f.requirement != "optional" or n % 2 == 0):
            content[f.id] = value
    return content


def _photo_bytes(seed: int) -> bytes:
    """A plain drawn head-and-shoulders silhouette: a stand-in, never a real child's photo."""
    colours = [(94, 129, 172), (163, 190, 140), (208, 135, 112), (180, 142, 173)]
    image = Image.new("RGB", (360, 450), colours[seed % len(colours)])
    draw = ImageDraw.Draw(image)
    draw.ellipse((110, 70, 250, 230), fill=(235, 235, 235))
    draw.rounded_rectangle((60, 250, 300, 450), radius=80, fill=(235, 235, 235))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _pdf_bytes(title: str) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    page.setTitle(title)
    page.drawString(72, 770, f"{title} (fictional demo document)")
    page.showPage()
    page.save()
    return out.getvalue()


def _demo_mailboxes(session: Session, la_ids: set[uuid.UUID]) -> None:
    """Role mailboxes (MASH, missing persons unit) for the areas the demo placements are in, so packs to the host
    local authority and police can be sent. A council records the real ones in the organisations register."""
    for la in session.scalars(select(Organisation).where(Organisation.id.in_(la_ids))):
        slug = "".join(c for c in la.name.lower().replace(" ", "-") if c.isalnum() or c == "-")
        la.mailbox = la.mailbox or f"mash@{slug}.example-la.test"
        force = session.get(Organisation, la.police_force_id) if la.police_force_id else None
        if force is not None:
            force_slug = "".join(c for c in force.name.lower().replace(" ", "-") if c.isalnum() or c == "-")
            force.mailbox = force.mailbox or f"missing.persons@{force_slug}.example-police.test"


def load_demo_children(deps: ServiceDeps) -> list[str]:
    """Add the demo organisations and children if they are not there yet (idempotent)."""
    actor = Actor.system("demo")
    organisations.seed_reference(deps, actor)
    created: list[str] = []
    today = deps.clock.now().date()
    with deps.db.transaction() as session:
        if session.scalars(select(Child.id).limit(1)).first() is not None:
            return created
        las = {o.code: o for o in session.scalars(select(Organisation).where(Organisation.kind == "local_authority"))}
        orgs: dict[str, Organisation] = {}
        for kind, name, code, la_code, phone, mailbox in DEMO_ORGANISATIONS:
            org = Organisation(id=uuid.uuid4(), kind=kind, name=name, code=code, phone=phone, mailbox=mailbox,
                               local_authority_id=las[la_code].id if la_code in las else None, active=True,
                               created_at=deps.clock.now(), updated_at=deps.clock.now())
            org.address = "1 Demo Street, Demotown"
            session.add(org)
            orgs[code or name] = org
        session.flush()
        orgs["RZZ07"].parent_id = orgs["RZZ01"].id  # the ward is in Cumberland General
        _demo_mailboxes(session, {o.local_authority_id for o in orgs.values() if o.local_authority_id})
        teams = {t.name: t for t in session.scalars(select(Team))}
        staff = {u.email: u for u in session.scalars(select(StaffUser))}
        nurse = next(u for u in staff.values() if u.role == "cla_nurse")
        responsible = las.get("E06000063")  # the demo council acts as Cumberland
        for i, spec in enumerate(CHILDREN):
            worker = staff[spec["worker"]]
            placement = orgs.get(spec["placement"]) or next(o for k, o in orgs.items() if k.startswith(
                str(spec["placement"])))
            child = Child(id=uuid.uuid4(), created_at=deps.clock.now(), updated_at=deps.clock.now())
            session.add(child)
            apply_profile(deps, session, child, ProfileInput(
                legal_name=spec["legal_name"], preferred_name=spec["preferred_name"], aliases=spec["aliases"],
                date_of_birth=spec["dob"], sex=spec["sex"], nhs_number=spec["nhs"],
                nhs_number_not_known=not spec["nhs"],
                la_child_id=spec["local_id"], legal_status=spec["ls"], placement_type=spec["place"],
                placement_started_on=today - timedelta(days=60 + 30 * i),
                responsible_la_id=responsible.id if responsible else None, current_placement_id=placement.id,
                allocated_worker_id=worker.id, team_id=teams[spec["team"]].id))
            session.flush()
            save_profile_version(deps, session, child, worker.id, Role.SOCIAL_WORKER)
            _fill_sections(deps, session, child, spec, i, _view(worker), _view(nurse), actor, today)
            created.append(f"child {spec['preferred_name']} ({spec['team']})")
    created += _demo_transitions(deps)
    from transitions.services.demo_missing import load_demo_missing  # Jade's missing episodes
    created += [f"{n} missing episodes for Jade"] if (n := load_demo_missing(deps)) else []
    return created


def _demo_transitions(deps: ServiceDeps) -> list[str]:
    """Transitions of several kinds in different states, made through the service like a worker would."""
    from transitions.services import transitions
    from transitions.services.accounts import get_user

    with deps.db.transaction() as session:
        kids = {c.preferred_name: (c.id, c.allocated_worker_id) for c in session.scalars(select(Child))}
        orgs = {o.code or o.name: o.id for o in session.scalars(select(Organisation))}
        senior = session.scalars(select(StaffUser.id).where(StaffUser.role == Role.SENIOR_MANAGER.value)).first()
    now = deps.clock.now().replace(minute=0, second=0, microsecond=0)
    plans = (
        # child, kind, destination, starts (hours from now), urgency, at a distance, emergency reason, steps
        ("Jade", "hospital_admission", "RZZ07", -240, "emergency", "", "Overdose at 01:30; ambulance to A&E",
         ("ready", "sent")),
        ("Jade", "planned_move_adjoining", "SC900002", 24 * 10, "planned", "no", "", ()),
        ("Leo", "emergency_move", "SC900003", -3, "emergency", "no",
         "Carers asked for him to leave tonight after an assault", ("ready", "sent")),
        ("Amira", "planned_move_at_distance", "SC900001", 24 * 21, "planned", "yes", "", ()),
        ("Tyler", "temporary_move", "Fostering household FH-0123 (demo)", 24 * 30, "planned", "no", "", ()),
    )
    made = []
    for child, kind, destination, hours, urgency, distance, reason, steps in plans:
        child_id, worker_id = kids[child]
        if worker_id is None:
            continue
        worker = get_user(deps, worker_id)
        actor = Actor("staff", str(worker.id))
        transition_id = transitions.create_transition(deps, child_id, transitions.TransitionInput(
            kind=kind, destination_id=orgs[destination], origin_id=None, starts_at=now + timedelta(hours=hours),
            urgency=urgency, reason_code="CREQB" if kind == "emergency_move" else "", at_a_distance=distance,
            emergency_reason=reason, distance_miles=""), worker, actor)
        for step in steps:
            try:
                transitions.change_status(deps, transition_id, step, "", None, worker, actor)
            except TransitionStepError:
                if senior is None:
                    break
                manager = get_user(deps, senior)
                for section in transitions.checklist(deps, transition_id, manager, actor).blocking:
                    transitions.override_section(deps, transition_id, section.code,
                                                 "Demo: agreed to go ahead, to be completed within 24 hours",
                                                 manager, Actor("staff", str(senior)))
                transitions.change_status(deps, transition_id, step, "", None, worker, actor)
        made.append(f"transition {kind} for {child}")
    return made


def _fill_sections(deps: ServiceDeps, session: Session, child: Child, spec: dict[str, Any], i: int,
                   worker: Any, nurse: Any, actor: Actor, today: date) -> None:
    partial = bool(spec.get("partial"))
    for section in deps.definitions.ordered():
        if partial and section.code in ("EXPL", "MH", "EDU", "LEGAL", "PHOTO"):
            continue  # left missing on purpose: the page shows them as gaps
        author = nurse if "cla_nurse" in section.edited_by else worker
        content = _content(section, today, partial)
        if section.code == "PHOTO" and spec["photo_age"] is not None:
            photo = clean_photo(_photo_bytes(i))
            content["photo"] = store_attachment(deps, session, child.id, section, section.field("photo"), photo.data,
                                      photo.media_type, "photo.png", worker, actor)
            content["taken_on"] = (today - timedelta(days=spec["photo_age"])).isoformat()
        for f in section.fields:
            if f.type == "document" and (f.mandatory or not partial):
                content[f.id] = store_attachment(deps, session, child.id, section, f, _pdf_bytes(f.label),
                                                 "application/pdf", f"{f.id}.pdf", author, actor)
        if section.code == "MH":
            content["camhs_open"] = "yes" if spec["camhs"] else "no"
        if section.entry is not None:
            content["entries"] = _contacts(spec)
        previous = session.scalars(select(SectionVersion).where(
            SectionVersion.child_id == child.id, SectionVersion.section_code == section.code,
            SectionVersion.is_current.is_(True))).first()
        add_version(deps, session, child, section, json.loads(json.dumps(content)), previous, "edit", author, actor)


def _contacts(spec: dict[str, Any]) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = [
        {"id": uuid.uuid4().hex, "name": "Maria Carter (demo)", "relationship": "Grandmother",
         "contact_status": "approved_unsupervised", "must_not_know_placement_address": "no",
         "may_collect_from_school": "yes", "is_associate_of_concern": "no", "phone": "01632 960 700"},
    ]
    if spec["restricted"]:
        entries.append({"id": uuid.uuid4().hex, "name": "Darren Fraser (demo)", "relationship": "Father",
                        "contact_status": "no_contact_court_order",
                        "order_reference": "s34(4) order, Family Court at Demotown, 3 March 2026",
                        "reason_no_contact": "Risk of abduction; history of violence.",
                        "must_not_know_placement_address": "yes", "may_collect_from_school": "no",
                        "is_associate_of_concern": "no"})
    return entries
