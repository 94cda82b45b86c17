"""The child's record through the web: access, break-glass, sections and versions, uploads, search."""

from __future__ import annotations

import gc
import io
import json
import re
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from PIL import Image
from sqlalchemy import event, func, select

from tests.conftest import StaffAccount, csrf_from, make_staff, sign_in
from tests.unit.test_uploads import jpeg_with_metadata, one_page_pdf, pdf_bytes, png_header_only
from transitions.models import AuditEvent, Child, Organisation, OutboxMessage, SectionVersion, StoredBlob
from transitions.services import accounts, children, organisations
from transitions.services.audit import Actor


@dataclass
class Record:
    child_id: uuid.UUID
    worker: StaffAccount
    manager: StaffAccount
    outsider: StaffAccount
    nurse: StaffAccount
    team_id: uuid.UUID


def profile_input(deps, *, team_id, worker_id, name="Zoë Smith", nhs="9990000999", la_child_id="LCS-1"):
    with deps.db.transaction() as session:
        la = session.scalars(select(Organisation.id).where(Organisation.code == "E06000063")).one()
    return children.ProfileInput(
        legal_name=name, preferred_name=name.split()[0], aliases="Zed", date_of_birth=date(2011, 5, 14), sex="2",
        nhs_number=nhs, nhs_number_not_known=False, la_child_id=la_child_id, legal_status="C2",
        placement_type="K2", placement_started_on=None, responsible_la_id=la, current_placement_id=None,
        allocated_worker_id=worker_id, team_id=team_id)


@pytest.fixture
def record(deps) -> Record:
    organisations.seed_reference(deps, Actor.system("test"))
    worker = make_staff(deps, role="social_worker", team="North")
    manager = make_staff(deps, role="team_manager", team="North")
    outsider = make_staff(deps, role="social_worker", team="South")
    nurse = make_staff(deps, role="cla_nurse")
    view = accounts.get_user(deps, worker.id)
    assert view.team_id is not None
    child_id = children.create_child(deps, profile_input(deps, team_id=view.team_id, worker_id=worker.id), view,
                                     Actor("staff", str(worker.id)))
    return Record(child_id, worker, manager, outsider, nurse, view.team_id)


def events(deps, action: str) -> list[AuditEvent]:
    with deps.db.transaction() as session:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))
        session.expunge_all()
        return rows


def count(deps, model) -> int:
    with deps.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def submit(client, url: str, data: dict, *, page: str | None = None, files: dict | None = None):
    html = client.get(page or url).get_data(as_text=True)
    payload = {**data, "csrf_token": csrf_from(html)}
    for name, (content, filename) in (files or {}).items():
        payload[name] = (io.BytesIO(content), filename)
    return client.post(url, data=payload, content_type="multipart/form-data" if files else None)


def test_allocated_worker_sees_the_record_and_the_view_is_audited(client, deps, clock, record):
    sign_in(client, record.worker, clock)
    response = client.get(f"/children/{record.child_id}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Zoë" in page and "999 000 0999" in page
    assert "Missing" in page  # no section completed yet
    viewed = events(deps, "child.viewed")
    assert len(viewed) == 1 and json.loads(viewed[0].details or "{}")["via"] == "allocated"
    assert "Zo" not in (viewed[0].details or "")


def test_outsider_gets_403_then_break_glass_with_a_reason_is_audited_and_expires(client, deps, clock, record):
    sign_in(client, record.outsider, clock)
    url = f"/children/{record.child_id}"
    response = client.get(url)
    assert response.status_code == 403
    assert "Zoë" not in response.get_data(as_text=True)
    assert len(events(deps, "child.access_denied")) == 1

    too_short = submit(client, f"{url}/break-glass", {"reason": "need it"})
    assert too_short.status_code == 200 and "at least 10 characters" in too_short.get_data(as_text=True)
    assert client.get(url).status_code == 403

    granted = submit(client, f"{url}/break-glass", {"reason": "Child reported missing, duty team needs photo"})
    assert granted.status_code == 302
    page = client.get(url)
    assert page.status_code == 200 and "Break-glass access" in page.get_data(as_text=True)
    flagged = events(deps, "child.break_glass")
    assert len(flagged) == 1 and json.loads(flagged[0].details or "{}")["via"] == "break_glass"
    with deps.db.transaction() as session:
        mails = list(session.scalars(select(OutboxMessage).where(OutboxMessage.purpose == "break_glass")))
        assert len(mails) == 1
        assert mails[0].to_address == record.manager.email
        assert "Zo" not in (mails[0].body or "") and "Smith" not in (mails[0].body or "")
    # read-only: no editing with break-glass
    assert client.get(f"{url}/sections/RISK/edit").status_code == 403
    clock.advance(minutes=61)
    sign_in(client, record.outsider, clock)
    assert client.get(url).status_code == 403


def test_manager_sees_break_glass_reasons_for_their_team(client, deps, clock, record):
    view = accounts.get_user(deps, record.outsider.id)
    children.break_glass(deps, record.child_id, "Out of hours: police asked for the photo", view,
                         Actor("staff", str(record.outsider.id)))
    sign_in(client, record.manager, clock)
    page = client.get("/break-glass").get_data(as_text=True)
    assert "Out of hours: police asked for the photo" in page


def test_administrator_cannot_open_a_child(client, deps, clock, record):
    sign_in(client, make_staff(deps, role="admin"), clock)
    assert client.get(f"/children/{record.child_id}").status_code == 403


def test_invalid_nhs_number_is_refused_and_nothing_is_created(client, deps, clock, record):
    sign_in(client, record.worker, clock)
    before = count(deps, Child)
    with deps.db.transaction() as session:
        la = str(session.scalars(select(Organisation.id).where(Organisation.code == "E06000063")).one())
    response = submit(client, "/children/new", {
        "legal_name": "Test Child", "preferred_name": "Test", "date_of_birth": ["1", "2", "2012"], "sex": "1",
        "nhs_number": "999 000 0998", "la_child_id": "LCS-9", "legal_status": "C2", "placement_type": "K2",
        "responsible_la_id": la, "team_id": str(record.team_id)})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Enter a valid NHS number" in page
    assert 'value="Test Child"' in page  # nothing typed is lost
    assert count(deps, Child) == before


def test_section_saves_make_versions_and_history_shows_what_changed(client, deps, clock, record):
    sign_in(client, record.worker, clock)
    base = f"/children/{record.child_id}/sections/VOICE"
    data = {"about_me_text": "I like drawing.", "my_views_on_this_move": "I want to stay near school.",
            "source": "direct"}
    assert submit(client, f"{base}/edit", data).status_code == 302
    data["about_me_text"] = "I like drawing and football."
    assert submit(client, f"{base}/edit", data).status_code == 302
    history = client.get(f"{base}/history").get_data(as_text=True)
    assert "I like drawing and football." in history and "I like drawing." in history
    with deps.db.transaction() as session:
        versions = list(session.scalars(select(SectionVersion).where(SectionVersion.section_code == "VOICE")
                                        .order_by(SectionVersion.version)))
        assert [v.version for v in versions] == [1, 2]
        assert [v.is_current for v in versions] == [False, True]
        assert json.loads(versions[0].content or "{}")["about_me_text"] == "I like drawing."  # nothing overwritten
    # "reviewed, no change" makes version 3 with the same answers and a fresh review date
    clock.advance(days=10)
    sign_in(client, record.worker, clock)
    assert submit(client, f"{base}/review", {"base_version": "2"}, page=base).status_code == 302
    with deps.db.transaction() as session:
        latest = session.scalars(select(SectionVersion).where(SectionVersion.is_current.is_(True),
                                                              SectionVersion.section_code == "VOICE")).one()
        assert latest.version == 3 and latest.change == "review"
        assert latest.reviewed_on == clock.now().date()


def test_mandatory_field_errors_keep_what_was_typed(client, clock, record):
    sign_in(client, record.worker, clock)
    response = submit(client, f"/children/{record.child_id}/sections/VOICE/edit",
                      {"about_me_text": "", "my_views_on_this_move": "Kept answer", "source": "direct"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "There is a problem" in page and "Kept answer" in page


def test_a_stale_edit_is_refused_without_losing_the_answers(client, deps, clock, record):
    sign_in(client, record.worker, clock)
    url = f"/children/{record.child_id}/sections/VOICE/edit"
    stale_page = client.get(url).get_data(as_text=True)
    data = {"about_me_text": "First.", "my_views_on_this_move": "x", "source": "direct"}
    assert submit(client, url, data).status_code == 302
    response = client.post(url, data={**data, "about_me_text": "Second, from an old page.", "base_version": "",
                                      "csrf_token": csrf_from(stale_page)})
    page = response.get_data(as_text=True)
    assert "Someone else saved this section" in page and "Second, from an old page." in page


def test_nurse_cannot_edit_risk_but_attaches_a_health_plan(client, deps, clock, record):
    sign_in(client, record.nurse, clock)
    assert client.get(f"/children/{record.child_id}/sections/RISK/edit").status_code == 403
    assert client.get(f"/children/{record.child_id}/sections/HEALTH/edit").status_code == 200


def _photo_fields(taken: date) -> dict:
    return {"taken_on": [str(taken.day), str(taken.month), str(taken.year)], "height": "150cm", "build": "Slim",
            "hair": "Brown, long", "eyes": "Green"}


def test_photo_with_gps_is_stored_and_served_without_any_metadata(client, deps, clock, record):
    sign_in(client, record.worker, clock)
    url = f"/children/{record.child_id}/sections/PHOTO/edit"
    response = submit(client, url, _photo_fields(clock.now().date()),
                      files={"photo": (jpeg_with_metadata(), "IMG.jpg")})
    assert response.status_code == 302, response.get_data(as_text=True)
    page = client.get(f"/children/{record.child_id}").get_data(as_text=True)
    src = re.search(r'<img class="app-child-photo" src="([^"]+)"', page)
    assert src and "Photo up to date" in page
    served = client.get(src.group(1))
    assert served.status_code == 200
    assert served.headers["Cache-Control"] == "no-store"
    assert served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Content-Security-Policy"].startswith("sandbox")
    assert served.headers["Content-Disposition"].startswith("inline")
    download = client.get(src.group(1) + "?download=1")
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert b"Exif" not in served.data and b"GPS" not in served.data and b"http://ns.adobe.com" not in served.data
    image = Image.open(io.BytesIO(served.data))
    assert not image.getexif() and "exif" not in image.info
    with deps.db.transaction() as session:
        blob = session.scalars(select(StoredBlob).where(StoredBlob.purpose == "attachment-photo")).one()
        assert b"JFIF" not in blob.ciphertext  # encrypted at rest
    assert len(events(deps, "attachment.viewed")) == 2  # the inline view and the download


@pytest.mark.parametrize(("content", "filename", "message"), [
    (b"%PDF-1.7\n" + b"0" * 200, "photo.jpg", "must be a JPG or PNG"),
    (png_header_only(20000, 20000), "huge.png", "megapixels"),
])
def test_fake_or_huge_images_are_refused_and_nothing_is_stored(client, deps, clock, record, content, filename,
                                                               message):
    sign_in(client, record.worker, clock)
    blobs = count(deps, StoredBlob)
    response = submit(client, f"/children/{record.child_id}/sections/PHOTO/edit", _photo_fields(clock.now().date()),
                      files={"photo": (content, filename)})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and message in page
    assert 'value="150cm"' in page  # the other answers are kept
    assert count(deps, StoredBlob) == blobs
    assert count(deps, SectionVersion) == 0


def test_a_checked_photo_is_kept_when_another_answer_is_wrong(client, deps, clock, record):
    sign_in(client, record.worker, clock)
    url = f"/children/{record.child_id}/sections/PHOTO/edit"
    fields = {**_photo_fields(clock.now().date()), "hair": ""}
    response = submit(client, url, fields, files={"photo": (jpeg_with_metadata(), "IMG.jpg")})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "already checked and kept" in page
    kept = re.search(r'name="photo__kept"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="photo__kept"', page)
    assert kept
    again = client.post(url, data={**_photo_fields(clock.now().date()), "photo__kept": kept.group(1),
                                   "csrf_token": csrf_from(page), "base_version": ""})
    assert again.status_code == 302


def test_pdf_documents_must_really_be_pdfs(client, deps, clock, record):
    sign_in(client, record.nurse, clock)
    url = f"/children/{record.child_id}/sections/HEALTH/edit"
    response = submit(client, url, {}, files={"health_plan_doc": (jpeg_with_metadata(), "plan.pdf")})
    assert "must be a PDF" in response.get_data(as_text=True)
    response = submit(client, url, {}, files={"health_plan_doc": (pdf_bytes(one_page_pdf()), "plan.pdf")})
    assert "must be a PDF" not in response.get_data(as_text=True)


def test_restricted_contact_is_shown_at_the_top_of_the_childs_page(client, clock, record):
    sign_in(client, record.worker, clock)
    response = submit(client, f"/children/{record.child_id}/sections/CONTACTS/entries/new", {
        "name": "Darren Fraser", "relationship": "Father", "contact_status": "no_contact_court_order",
        "order_reference": "s34(4) order", "reason_no_contact": "Risk of abduction",
        "must_not_know_placement_address": "yes",
        "may_collect_from_school": "no", "is_associate_of_concern": "no"})
    assert response.status_code == 302, response.get_data(as_text=True)
    page = client.get(f"/children/{record.child_id}").get_data(as_text=True)
    assert "Restricted contacts" in page
    assert page.index("Darren Fraser") < page.index("<h1")


def test_search_finds_by_name_and_nhs_number_and_hides_unallocated_records(client, deps, clock, record):
    sign_in(client, record.worker, clock)
    for query in ("  zoë SMITH ", "999 000 0999", "Zed", "LCS-1"):
        page = submit(client, "/children/search", {"query": query}, page="/children").get_data(as_text=True)
        assert f"/children/{record.child_id}" in page, query
    sign_in(client, record.outsider, clock)
    page = submit(client, "/children/search", {"query": "Zoë Smith"}, page="/children").get_data(as_text=True)
    assert "Zoë" not in page.split("<h2", 1)[-1] or "not allocated to you" in page
    assert f"/children/{record.child_id}/break-glass" in page
    with deps.db.transaction() as session:
        assert session.scalars(select(AuditEvent).where(AuditEvent.action == "child.searched")).first() is not None
        assert all("Smith" not in (e.details or "") for e in session.scalars(select(AuditEvent)))


def test_nothing_personal_is_stored_in_plain_text(deps, record):
    with deps.db.engine.connect() as conn:
        dump = "\n".join(str(row) for table in ("child", "child_search_key", "section_version")
                         for row in conn.exec_driver_sql(f"SELECT * FROM {table}"))
    assert "Smith" not in dump and "9990000999" not in dump and "LCS-1" not in dump


def test_child_page_uses_the_same_number_of_queries_for_1_or_50_versions(client, deps, clock, record):
    from transitions.services import sections
    from transitions.services.values import FieldInput

    view = accounts.get_user(deps, record.worker.id)
    actor = Actor("staff", str(record.worker.id))

    def save(n: int) -> None:
        for code in ("VOICE", "RISK"):
            section = deps.definitions.section(code)
            with deps.db.transaction() as session:
                current = children.current_versions(session, record.child_id).get(code)
            given = {f.id: FieldInput(value=f"answer {n}" if f.type in ("text", "textarea") else None)
                     for f in section.fields}
            if code == "VOICE":
                given["source"] = FieldInput(value="direct")
            if code == "RISK":
                given["headline_risks"] = FieldInput(value=["self_harm"])
                given["overall_risk_level"] = FieldInput(value="high")
                given["multi_agency_contributors"] = FieldInput(value=["police"])
            sections.save_section(deps, record.child_id, code, given, {}, {}, current.version if current else None,
                                  view, actor)

    def statements_for_page() -> int:
        seen: list[str] = []

        def count_statement(*args, **kwargs):
            seen.append(args[2])

        event.listen(deps.db.engine, "before_cursor_execute", count_statement)
        try:
            assert client.get(f"/children/{record.child_id}").status_code == 200
        finally:
            event.remove(deps.db.engine, "before_cursor_execute", count_statement)
        return len(seen)

    sign_in(client, record.worker, clock)
    save(0)
    statements_for_page()  # the first page after signing in also refreshes the session
    one = statements_for_page()
    for n in range(1, 50):
        save(n)
    with deps.db.transaction() as session:
        assert session.scalar(select(func.max(SectionVersion.version))) == 50
    assert statements_for_page() == one


def test_photo_age_shows_as_stale_after_six_months(client, deps, clock, record):
    sign_in(client, record.worker, clock)
    taken = clock.now().date() - timedelta(days=200)
    response = submit(client, f"/children/{record.child_id}/sections/PHOTO/edit", _photo_fields(taken),
                      files={"photo": (jpeg_with_metadata(), "IMG.jpg")})
    assert response.status_code == 302
    assert "Photo out of date" in client.get(f"/children/{record.child_id}").get_data(as_text=True)


@pytest.mark.parametrize(("role", "team", "read", "edit_risk"), [
    ("auditor", None, 403, 403),  # auditors see reports and the audit trail, never the record
    ("senior_manager", None, 200, 200),
    ("team_manager", "North", 200, 200),
    ("team_manager", "South", 403, 403),
    ("social_worker", "North", 200, 200),  # same team, not the allocated worker
    ("cla_nurse", None, 200, 403),
    ("admin", None, 403, 403),
])
def test_access_follows_allocation_and_role(client, deps, clock, record, role, team, read, edit_risk):
    sign_in(client, make_staff(deps, role=role, team=team), clock)
    assert client.get(f"/children/{record.child_id}").status_code == read
    assert client.get(f"/children/{record.child_id}/sections/RISK/edit").status_code == edit_risk
    assert client.get(f"/children/{uuid.uuid4()}").status_code in (403, 404)


def test_every_change_and_view_is_audited_without_personal_data(client, deps, clock, record):
    sign_in(client, record.worker, clock)
    submit(client, f"/children/{record.child_id}/sections/VOICE/edit",
           {"about_me_text": "Secret words", "my_views_on_this_move": "x", "source": "direct"})
    saved = events(deps, "section.saved")
    assert len(saved) == 1 and saved[0].object_id == str(record.child_id)
    details = json.loads(saved[0].details or "{}")
    assert details["purpose"] == "VOICE" and "about_me_text" in details["fields"]
    with deps.db.transaction() as session:
        assert all("Secret words" not in (e.details or "") for e in session.scalars(select(AuditEvent)))


def test_changes_to_the_childs_details_keep_their_history(client, deps, clock, record):
    sign_in(client, record.worker, clock)
    url = f"/children/{record.child_id}/profile"
    page = client.get(url).get_data(as_text=True)
    form = {name: value for name, value in re.findall(r'name="([a-z_]+)"[^>]*value="([^"]*)"', page)}
    with deps.db.transaction() as session:
        la = str(session.scalars(select(Organisation.id).where(Organisation.code == "E06000063")).one())
    response = client.post(url, data={
        **form, "legal_name": "Zoë Smith", "preferred_name": "Zoë", "date_of_birth": ["14", "5", "2011"], "sex": "2",
        "nhs_number": "999 000 0999", "la_child_id": "LCS-1", "legal_status": "C1", "placement_type": "T1",
        "responsible_la_id": la, "team_id": str(record.team_id), "allocated_worker_id": str(record.worker.id),
        "csrf_token": csrf_from(page)})
    assert response.status_code == 302, response.get_data(as_text=True)
    history = client.get(f"{url}/history").get_data(as_text=True)
    assert "Version 2" in history and "Version 1" in history
    assert "C2 – Full care order" in history and "C1 – Interim care order" in history
    assert "T1 – " in history and "K2 – " in history


def test_demo_children_render_on_every_page(client, deps, clock):
    from tests.conftest import StaffAccount
    from transitions.services import demo, demo_children

    demo.load_demo(deps)
    assert demo_children.load_demo_children(deps)
    assert demo_children.load_demo_children(deps) == []  # idempotent
    account = next(a for a in demo.DEMO_ACCOUNTS if a.role.value == "senior_manager")
    with deps.db.transaction() as session:
        user = accounts.find_by_email(deps, session, account.email)
        assert user is not None
        user_id = user.id
    sign_in(client, StaffAccount(user_id, account.email, account.password, account.totp_secret), clock)
    listing = client.get("/children").get_data(as_text=True)
    child_ids = set(re.findall(r'href="/children/([0-9a-f-]{36})"', listing))
    assert len(child_ids) == 4
    pages = 0
    for child_id in child_ids:
        page = client.get(f"/children/{child_id}")
        assert page.status_code == 200
        text = page.get_data(as_text=True)
        for link in sorted(set(re.findall(rf'href="(/children/{child_id}/[^"?]+)"', text))):
            assert client.get(link).status_code == 200, link
            pages += 1
        assert client.get(f"/children/{child_id}/sections/CONTACTS/history").status_code == 200
    assert pages > 40
    shown = [client.get(f"/children/{cid}").get_data(as_text=True) for cid in child_ids]
    assert sum("Photo out of date" in page for page in shown) == 1
    assert sum("Restricted contacts" in page for page in shown) == 1


def test_any_two_versions_can_be_compared(client, deps, clock, record):
    sign_in(client, record.worker, clock)
    base = f"/children/{record.child_id}/sections/VOICE"
    for text in ("One.", "Two.", "Three."):
        assert submit(client, f"{base}/edit", {"about_me_text": text, "my_views_on_this_move": "x",
                                               "source": "direct"}).status_code == 302
    page = client.get(f"{base}/history?from=1&to=3").get_data(as_text=True)
    assert "What changed from version 1 to version 3" in page and "One." in page and "Three." in page
    assert client.get(f"{base}/history?from=1&to=9").status_code == 404


def test_associates_of_concern_in_contacts_show_on_the_exploitation_plan(client, clock, record):
    sign_in(client, record.worker, clock)
    response = submit(client, f"/children/{record.child_id}/sections/CONTACTS/entries/new", {
        "name": "Kyle 'K' Dent", "relationship": "Older friend", "contact_status": "unknown",
        "must_not_know_placement_address": "yes", "may_collect_from_school": "no", "is_associate_of_concern": "yes"})
    assert response.status_code == 302, response.get_data(as_text=True)
    page = client.get(f"/children/{record.child_id}/sections/EXPL").get_data(as_text=True)
    assert "Associates of concern" in page and "Kyle &#39;K&#39; Dent (Older friend)" in page


@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_photo_over_the_photo_limit_is_refused_with_its_size(client, deps, clock, record):
    """(Werkzeug's test client spools a body this large to a temporary file it never closes: collected here.)"""
    sign_in(client, record.worker, clock)
    big = b"\xff\xd8\xff\xe0" + b"\0" * (11 * 1024 * 1024)
    response = submit(client, f"/children/{record.child_id}/sections/PHOTO/edit", _photo_fields(clock.now().date()),
                      files={"photo": (big, "big.jpg")})
    assert response.status_code == 200 and "smaller than 10 MB" in response.get_data(as_text=True)
    assert count(deps, StoredBlob) == 0
    del response
    gc.collect()


def test_a_refused_edit_is_audited_as_a_denial(client, deps, clock, record):
    sign_in(client, record.nurse, clock)
    assert client.get(f"/children/{record.child_id}/sections/RISK/edit").status_code == 403
    denied = events(deps, "child.access_denied")
    assert len(denied) == 1 and denied[0].object_id == str(record.child_id) and denied[0].outcome == "denied"


def _profile_form(client, deps, url: str) -> tuple[dict, str]:
    page = client.get(url).get_data(as_text=True)
    form = {name: value for name, value in re.findall(r'name="([a-z_]+)"[^>]*value="([^"]*)"', page)}
    form.update({"legal_name": "Zoë Smith", "preferred_name": "Zoë", "date_of_birth": ["14", "5", "2011"], "sex": "2",
                 "legal_status": "C2", "placement_type": "K2"})
    with deps.db.transaction() as session:
        form["responsible_la_id"] = str(session.scalars(
            select(Organisation.id).where(Organisation.code == "E06000063")).one())
    return form, page


def test_saving_details_opened_before_someone_elses_change_is_refused(client, deps, clock, record):
    sign_in(client, record.worker, clock)
    url = f"/children/{record.child_id}/profile"
    stale, stale_page = _profile_form(client, deps, url)
    fresh, fresh_page = _profile_form(client, deps, url)
    first = client.post(url, data={**fresh, "legal_status": "C1", "csrf_token": csrf_from(fresh_page)})
    assert first.status_code == 302
    response = client.post(url, data={**stale, "la_child_id": "LCS-2", "csrf_token": csrf_from(stale_page)})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Someone else changed these details" in page
    assert 'value="LCS-2"' in page  # what was typed is kept
    with deps.db.transaction() as session:
        child = session.get(Child, record.child_id)
        assert child is not None and child.legal_status == "C1" and child.la_child_id == "LCS-1"


def test_a_social_worker_cannot_move_a_child_to_another_team(client, deps, clock, record):
    outsider = accounts.get_user(deps, record.outsider.id)
    sign_in(client, record.worker, clock)
    url = f"/children/{record.child_id}/profile"
    form, page = _profile_form(client, deps, url)
    response = client.post(url, data={**form, "team_id": str(outsider.team_id), "allocated_worker_id": "",
                                      "csrf_token": csrf_from(page)})
    assert response.status_code == 200 and "Only a team manager or senior manager" in response.get_data(as_text=True)
    with deps.db.transaction() as session:
        child = session.get(Child, record.child_id)
        assert child is not None and child.team_id == record.team_id


def test_a_photo_dated_in_the_future_is_refused(client, deps, clock, record):
    sign_in(client, record.worker, clock)
    response = submit(client, f"/children/{record.child_id}/sections/PHOTO/edit",
                      _photo_fields(clock.now().date() + timedelta(days=30)),
                      files={"photo": (jpeg_with_metadata(), "IMG.jpg")})
    assert "must be today or in the past" in response.get_data(as_text=True)


def test_a_kept_upload_is_only_the_uploaders_until_saved_and_is_purged_if_never_used(client, deps, clock, record):
    from transitions.models import Attachment
    from transitions.services import tick

    sign_in(client, record.worker, clock)
    response = submit(client, f"/children/{record.child_id}/sections/PHOTO/edit",
                      {**_photo_fields(clock.now().date()), "hair": ""},
                      files={"photo": (jpeg_with_metadata(), "IMG.jpg")})
    assert "already checked and kept" in response.get_data(as_text=True)
    with deps.db.transaction() as session:
        attachment_id = session.scalars(select(Attachment.id)).one()
    url = f"/children/{record.child_id}/files/{attachment_id}"
    assert client.get(url).status_code == 200  # the uploader, finishing the edit
    sign_in(client, record.manager, clock)
    assert client.get(url).status_code == 404  # nobody else, until a version uses it
    clock.advance(hours=13)
    assert tick.run(deps).uploads_purged == 1
    assert count(deps, Attachment) == 0 and count(deps, StoredBlob) == 0


def test_a_document_is_always_named_as_a_pdf(client, deps, clock, record):
    from transitions.models import Attachment

    sign_in(client, record.nurse, clock)
    submit(client, f"/children/{record.child_id}/sections/HEALTH/edit", {},
           files={"health_plan_doc": (pdf_bytes(one_page_pdf()), "plan.html")})
    with deps.db.transaction() as session:
        assert session.scalars(select(Attachment)).one().display_name == "plan.pdf"


def test_a_no_contact_order_needs_its_reference_and_reason(client, deps, clock, record):
    sign_in(client, record.worker, clock)
    response = submit(client, f"/children/{record.child_id}/sections/CONTACTS/entries/new", {
        "name": "Darren Fraser", "relationship": "Father", "contact_status": "no_contact_court_order",
        "must_not_know_placement_address": "yes", "may_collect_from_school": "no", "is_associate_of_concern": "no"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Enter the court order: its type, court and date" in page
    assert "Enter why contact is not allowed or is restricted" in page
    assert 'value="Darren Fraser"' in page



def test_uploads_are_held_in_memory_never_spooled_to_a_temp_file(app):
    """Werkzeug would put a file over 500 KB in the system temp folder (R62); ours keeps it in memory."""
    big = b"\xff\xd8\xff" + b"0" * 700_000
    body = (b'--XyZ\r\nContent-Disposition: form-data; name="photo"; filename="big.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + big + b"\r\n--XyZ--\r\n")
    with app.test_request_context("/", method="POST", input_stream=io.BytesIO(body),
                                  content_type="multipart/form-data; boundary=XyZ", content_length=len(body)):
        from flask import request

        stream = request.files["photo"].stream
        assert isinstance(stream, io.BytesIO) and stream.getvalue() == big
