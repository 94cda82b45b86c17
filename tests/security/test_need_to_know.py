"""Property: whatever a child's record holds, a recipient's artefacts (the stored pack document, the PDF, the
recipient's page, the link email) contain a field's value only if forms/recipients.toml entitles that recipient
type to the field. In particular a type that is never to learn where the child lives (parents, the previous
placement) never sees an identity-protected field, such as the placement's address (security.md C7; issue 5).

Every text value is a unique canary word; hypothesis chooses which fields hold one, which entries exist and
whether each contact is restricted. The check runs for every recipient type on every example.
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from flask import render_template
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from sqlalchemy import select

from tests.integration.conftest import load_world, start
from transitions.models import Child, Organisation, SectionVersion, Transition, TransitionRecipient
from transitions.paths import PDF_FONTS_DIR
from transitions.pdf import load_fonts, render_pack
from transitions.pdf.document import to_json
from transitions.services import packs
from transitions.services.receipt import RecipientView

pytestmark = pytest.mark.security

CANARY_TYPES = ("text", "textarea", "phone", "email", "postcode", "choice", "choices", "document")


def entitled(rtype, section: str, f) -> bool:
    """The rule of forms/recipients.toml, written out again here so that a fault in the service's is caught."""
    level = rtype.sections.get(section, "none")
    if level not in ("full", "summary") or (level == "summary" and not f.in_summary):
        return False
    if f"{section}.{f.id}" in rtype.exclude_fields:
        return False
    return not (rtype.never_identity_protected and f.sensitivity == "identity_protected")


def canary(n: int) -> str:
    return f"Qz{n:05d}kx"


@pytest.fixture
def amira(deps):
    world = load_world(deps)
    transition_id = start(deps, world, "social_worker_south", "Amira", "emergency_move", "SC900003",
                          when=deps.clock.now() + timedelta(hours=2), urgency="emergency", distance="no",
                          emergency_reason="Carers asked for her to leave tonight")
    return world.children["Amira"], transition_id


def _fill(deps, session, child_id: uuid.UUID, present: dict[str, bool], entries: list[tuple[bool, bool]]
          ) -> dict[str, tuple[str, str]]:
    """Write canaries into the current versions; return canary -> (section code, field id)."""
    placed: dict[str, tuple[str, str]] = {}
    n = 0
    for row in session.scalars(select(SectionVersion).where(SectionVersion.child_id == child_id,
                                                            SectionVersion.is_current.is_(True))):
        section = deps.definitions.sections[row.section_code]
        content = json.loads(row.content or "{}")

        def put(target: dict, f, key: str, code: str = section.code) -> None:
            nonlocal n
            if f.type not in CANARY_TYPES:
                return
            if not present.get(key, True):
                target.pop(f.id, None)
                return
            n += 1
            word = canary(n)
            placed[word] = (code, f.id)
            if f.type == "choices":
                target[f.id] = [word]
            elif f.type == "document":
                target[f.id] = {"attachment": str(uuid.uuid4()), "name": word}
            else:
                target[f.id] = word

        for f in section.fields:
            put(content, f, f"{section.code}.{f.id}")
        if section.entry is not None:
            rows = []
            for restricted, knows_address in entries:
                entry: dict = {"id": uuid.uuid4().hex,
                               "contact_status": "no_contact_court_order" if restricted else "approved_unsupervised",
                               "must_not_know_placement_address": "yes" if knows_address else "no",
                               "may_collect_from_school": "no", "is_associate_of_concern": "no"}
                for f in section.entry.fields:
                    if f.id not in entry:
                        put(entry, f, f"{section.code}.{f.id}")
                rows.append(entry)
            content["entries"] = rows
        row.content = json.dumps(content)
    return placed


def _artefacts(app, deps, session, child: Child, transition: Transition, org: Organisation, rtype: str,
               with_pdf: bool) -> list[str]:
    recipient = TransitionRecipient(id=uuid.uuid4(), transition_id=transition.id, recipient_type=rtype,
                                    organisation_id=org.id, required=True, due_at=deps.clock.now(),
                                    condition="always")
    built = packs.build(deps, session, child, transition, recipient, org, version=1, reference="HP-TEST01")
    texts = [to_json(built.document).decode()]
    view = RecipientView(document=built.document, password="p", organisation=org.name, expires_at=deps.clock.now(),
                         confirmed_at=None, confirmed_name="", confirmed_role="", file_name="handover.pdf",
                         session_ends_at=deps.clock.now(), section_choices=[])
    with app.test_request_context("/recipient/pack", base_url="https://localhost"):
        from transitions.web.recipient_forms import ReceiptForm

        texts.append(render_template("recipient/pack.html", view=view, doc=built.document, form=ReceiptForm()))
    texts.append(packs.LINK_EMAIL.format(sender="S", organisation=org.name, url="u", expires="e",
                                         reference="HP-TEST01", version=1, contact="c"))
    if with_pdf:
        pdf = render_pack(replace(built.document), load_fonts(PDF_FONTS_DIR))
        texts.append(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages))
    return texts


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_a_recipient_sees_a_field_only_if_its_type_is_entitled_to_it(app, deps, amira, data):
    child_id, transition_id = amira
    keys = [f"{s.code}.{f.id}" for s in deps.definitions.ordered() for f in s.all_fields]
    present = data.draw(st.fixed_dictionaries({k: st.booleans() for k in keys}), label="present")
    entries = data.draw(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=3), label="entries")
    types = list(deps.definitions.recipient_types)
    pdf_types = set(data.draw(st.lists(st.sampled_from(types), min_size=1, max_size=3, unique=True), label="pdf"))
    pdf_types |= {"parents_pr", "previous_placement"}
    with pytest.raises(_Rollback), deps.db.transaction() as session:
        placed = _fill(deps, session, child_id, present, entries)
        child = session.get(Child, child_id)
        transition = session.get(Transition, transition_id)
        placement = session.get(Organisation, child.current_placement_id)
        destination = session.get(Organisation, transition.destination_id)
        placement.address = "PLACEADDRzz"
        destination.address = "DESTADDRzz"
        child.legal_name, child.preferred_name = "LEGALNAMEzz", "PREFNAMEzz"
        session.flush()
        for code in types:
            rtype = deps.definitions.recipient_types[code]
            texts = _artefacts(app, deps, session, child, transition, destination, code, code in pdf_types)
            for text in texts:
                for word, (section, field_id) in placed.items():
                    f = next(x for x in deps.definitions.sections[section].all_fields if x.id == field_id)
                    if not entitled(rtype, section, f):
                        assert word not in text, f"{code} must not receive {section}.{field_id}"
                    if rtype.never_identity_protected and f.sensitivity == "identity_protected":
                        assert word not in text, f"{code} must never see {section}.{field_id}"
                names_shared = rtype.sections.get("ID") is not None
                for word, field_id in (("LEGALNAMEzz", "legal_name"), ("PREFNAMEzz", "preferred_name")):
                    if not names_shared or f"ID.{field_id}" in rtype.exclude_fields:
                        assert word not in text, f"{code} must not be told the child's {field_id}"
                for word, field_id in (("PLACEADDRzz", "placement"), ("DESTADDRzz", "destination")):
                    if rtype.sections.get("ID") is None or rtype.never_identity_protected:
                        assert word not in text, f"{code} must not learn the {field_id} address"
            # and the check can fail: what a type is entitled to does arrive (in the stored document)
            document = texts[0]
            for word, (section, field_id) in placed.items():
                f = next(x for x in deps.definitions.sections[section].all_fields if x.id == field_id)
                if entitled(rtype, section, f):
                    assert word in document, f"{code} should receive {section}.{field_id}"
            if rtype.never_identity_protected:
                for text in texts:
                    assert "PLACEADDRzz" not in text and "DESTADDRzz" not in text
        raise _Rollback  # each example starts from the same record


class _Rollback(Exception):
    pass
