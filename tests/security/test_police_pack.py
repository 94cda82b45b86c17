"""Issue 6, done when: "the police pack for a demo child contains Part 1 and the photo, and nothing the police
profile is not entitled to" (domain.md §3.3 row 10, §3.5; SC-3; security.md C7).

Every text field of a demo child's record holds a unique canary word. The child is reported missing, and the
police pack is both sent by secure link and printed. For each artefact (the stored snapshot the recipient's page
shows, that page, the sent PDF and the printed PDF, both opened with their passwords), a canary appears if and only
if forms/recipients.toml entitles ``missing_police`` to its field, under the rule written out again here. The
police pack's entitlements never exceed those of the host police force, and Part 2 goes only with MISSING in full.
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from flask import render_template
from pypdf import PdfReader
from sqlalchemy import select

from tests.e2e.test_pack_journey import image_xobjects
from tests.integration.conftest import load_world
from transitions.models import Child, MissingEpisode, Organisation, Pack, SectionVersion, StoredBlob
from transitions.pdf.document import from_json
from transitions.services import missing
from transitions.services.receipt import RecipientView

pytestmark = pytest.mark.security

TEXT_TYPES = ("text", "textarea", "phone", "email", "postcode", "choices")
POLICE = "missing_police"


def entitled(rtype, section: str, f) -> bool:
    """forms/recipients.toml's rule, written again so that a fault in the service's is caught."""
    level = rtype.sections.get(section, "none")
    if level not in ("full", "summary") or (level == "summary" and not f.in_summary):
        return False
    if f"{section}.{f.id}" in rtype.exclude_fields:
        return False
    return not (rtype.never_identity_protected and f.sensitivity == "identity_protected")


def _canaries(deps, child_id: uuid.UUID) -> dict[str, tuple[str, str]]:
    """A unique word in every text field of the current versions (and of two contacts, one restricted)."""
    placed: dict[str, tuple[str, str]] = {}
    with deps.db.transaction() as session:
        for row in session.scalars(select(SectionVersion).where(SectionVersion.child_id == child_id,
                                                                SectionVersion.is_current.is_(True))):
            section = deps.definitions.sections[row.section_code]
            content = json.loads(row.content or "{}")

            def put(target: dict, f, code: str = section.code) -> None:
                if f.type not in TEXT_TYPES:
                    return
                word = f"Qp{len(placed) + 1:05d}zv"
                placed[word] = (code, f.id)
                target[f.id] = [word] if f.type == "choices" else word

            for f in section.fields:
                put(content, f)
            if section.entry is not None:
                content["entries"] = []
                for restricted in (True, False):
                    entry = {"id": uuid.uuid4().hex,
                             "contact_status": "no_contact_court_order" if restricted else "approved_unsupervised",
                             "must_not_know_placement_address": "yes" if restricted else "no",
                             "may_collect_from_school": "no", "is_associate_of_concern": "yes"}
                    for f in section.entry.fields:
                        if f.id not in entry:
                            put(entry, f)
                    content["entries"].append(entry)
            row.content = json.dumps(content)
        child = session.get(Child, child_id)
        child.legal_name, child.preferred_name = "Jadeqq Legalname", "Jadeqq"
        placement = session.get(Organisation, child.current_placement_id)
        placement.address = "PLACEADDRqq"
    return placed


def _pdf_text(data: bytes, password: str) -> tuple[str, PdfReader]:
    reader = PdfReader(io.BytesIO(data))
    assert reader.is_encrypted and reader.decrypt(password)
    return " ".join(page.extract_text() for page in reader.pages), reader


@pytest.fixture
def police_pack(app, deps):
    """Jade (a demo child) reported missing; the police pack sent and printed. Its artefacts' texts."""
    world = load_world(deps)
    child_id = world.children["Jade"]
    placed = _canaries(deps, child_id)
    sw, who = world.view(deps, "social_worker"), world.actor("social_worker")
    now = deps.clock.now()
    with deps.db.transaction() as session:
        force = missing.force_for_placement(session, session.get(Child, child_id).current_placement_id)
        force_id = force.id
    episode_id = missing.report_missing(deps, child_id, missing.ReportInput(
        code="M", started_at=now - timedelta(hours=1), reported_at=now, police_reference="PARTTWOREFqq",
        police_force_id=force_id, part2=missing.Part2Input(last_seen_place="PARTTWOPLACEqq",
                                                            clothing="PARTTWOCLOTHESqq")), sw, who)
    missing.send_police_pack(deps, child_id, episode_id, sw, who)
    printed = missing.print_police_pack(deps, child_id, episode_id, "7kqm-x3vd-9trp-wh4c-b2ne", sw, who)
    with deps.db.transaction() as session:
        pack = session.scalars(select(Pack).where(Pack.episode_id == episode_id)).one()
        snapshot_blob, pdf_blob = session.get(StoredBlob, pack.snapshot_blob_id), session.get(StoredBlob,
                                                                                               pack.pdf_blob_id)
        snapshot = deps.blob_cipher.decrypt(snapshot_blob.ciphertext, context=snapshot_blob.context)
        sent_pdf = deps.blob_cipher.decrypt(pdf_blob.ciphertext, context=pdf_blob.context)
        password = pack.password
    document = from_json(snapshot)
    view = RecipientView(document=document, password="p", organisation=force.name, expires_at=now,
                         confirmed_at=None, confirmed_name="", confirmed_role="", file_name="x.pdf",
                         session_ends_at=now, section_choices=[])
    with app.test_request_context("/recipient/pack", base_url="https://localhost"):
        from transitions.web.recipient_forms import ReceiptForm

        page = render_template("recipient/pack.html", view=view, doc=document, form=ReceiptForm())
    sent_text, sent_reader = _pdf_text(sent_pdf, password)
    printed_text, printed_reader = _pdf_text(printed.data, "7kqm-x3vd-9trp-wh4c-b2ne")
    return {"placed": placed, "document": document, "snapshot": snapshot.decode(), "page": page,
            "sent": sent_text, "printed": printed_text, "readers": (sent_reader, printed_reader),
            "episode_id": episode_id, "child_id": child_id, "world": world}


def test_the_police_pack_holds_exactly_what_the_police_profile_is_entitled_to(deps, police_pack):
    rtype = deps.definitions.recipient_types[POLICE]
    placed = police_pack["placed"]
    assert len(placed) > 100  # the check covers the whole record
    shared = 0
    for word, (section, field_id) in placed.items():
        f = next(x for x in deps.definitions.sections[section].all_fields if x.id == field_id)
        for name in ("snapshot", "page", "sent", "printed"):
            if entitled(rtype, section, f):
                assert word in police_pack[name], f"the police pack ({name}) should have {section}.{field_id}"
            else:
                assert word not in police_pack[name], f"the police pack ({name}) must not have {section}.{field_id}"
        shared += entitled(rtype, section, f)
    assert 20 < shared < len(placed)  # some shared, some not: the check can fail both ways


def test_it_is_philomena_part_1_with_the_photo_then_part_2(deps, police_pack):
    document = police_pack["document"]
    codes = [s.code for s in document.sections]
    assert codes == ["ID", "PHOTO", "EXPL", "MISSING", "MISSING_PART2", "CONTACTS", "HEALTH"]
    assert document.first_page.photo is not None and document.first_page.photo.startswith(b"\xff\xd8")
    for reader in police_pack["readers"]:
        assert image_xobjects(reader) >= 1, "no photo in the PDF"
    for name in ("sent", "printed"):
        text = police_pack[name]
        for expected in ("OFFICIAL-SENSITIVE", "Missing from care: police pack", "Philomena Protocol Part 1",
                         "Philomena Protocol Part 2", "Jadeqq", "PLACEADDRqq", "PARTTWOPLACEqq",
                         "PARTTWOCLOTHESqq", "PARTTWOREFqq", "Phone numbers the child uses",
                         "Friends and associates", "Addresses and places the child goes to",
                         "Social media and messaging accounts", "Medical needs if the child goes missing",
                         "Earlier missing episodes recorded on this service"):
            assert expected in text, (name, expected)
        for never in ("999 000 0999", "9990000999", "NHS number"):  # police do not get the NHS number
            assert never not in text, (name, never)
    # The demo's earlier episodes (Part 1's previous history), with where the child was found
    missing_section = document.section("MISSING")
    assert len(missing_section.entries) == 4
    assert any(i.label == "Where found" for e in missing_section.entries for i in e.items)
    assert document.first_page.out_of_hours == ()  # NETWORK is not the police pack's


def test_the_police_pack_never_exceeds_the_host_police_forces_entitlements(deps):
    police, host = deps.definitions.recipient_types[POLICE], deps.definitions.recipient_types["host_police"]
    assert police.organisation_kinds == frozenset({"police_force"})
    for section in deps.definitions.ordered():
        for f in section.all_fields:
            if entitled(police, section.code, f):
                assert entitled(host, section.code, f), f"{section.code}.{f.id} is more than host_police gets"
    assert {"ID.nhs_number", "HEALTH.allergies", "HEALTH.sexual_health", "MH.diagnoses"} <= police.exclude_fields
    assert police.sections == {"ID": "full", "PHOTO": "full", "EXPL": "summary", "MISSING": "full",
                               "CONTACTS": "full", "HEALTH": "summary"}


def test_part_2_and_the_episodes_go_only_to_a_type_that_gets_missing_in_full(deps, police_pack, monkeypatch):
    types = deps.definitions.recipient_types
    monkeypatch.setitem(types, POLICE, replace(types[POLICE], sections={**types[POLICE].sections,
                                                                         "MISSING": "summary"}))
    with deps.db.transaction() as session:
        child = session.get(Child, police_pack["child_id"])
        episode = session.get(MissingEpisode, police_pack["episode_id"])
        built = missing.police_built(deps, session, child, episode, "Test force", version=1, reference="HP-X")
    codes = [s.code for s in built.document.sections]
    assert "MISSING" in codes and "MISSING_PART2" not in codes
    assert built.document.section("MISSING").entries == ()
    assert "PARTTWOCLOTHESqq" not in json.dumps([repr(s) for s in built.document.sections])
