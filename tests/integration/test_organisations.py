"""The organisations register: seeded authorities and forces, and what administrators add."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.conftest import csrf_from, make_staff, sign_in
from transitions.models import Organisation
from transitions.services import organisations
from transitions.services.audit import Actor


def test_seeding_adds_every_english_authority_with_its_force_once(deps):
    first = organisations.seed_reference(deps, Actor.system("test"))
    again = organisations.seed_reference(deps, Actor.system("test"))
    assert first == again and first.forces == 44 and 150 <= first.authorities <= 156
    with deps.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Organisation)) == first.forces + first.authorities
        forces = {o.id: o.name
                  for o in session.scalars(select(Organisation).where(Organisation.kind == "police_force"))}
        las = {o.name: o for o in session.scalars(select(Organisation).where(Organisation.kind == "local_authority"))}
        assert forces[las["Cumberland Council"].police_force_id] == "Cumbria Constabulary"
        assert all(la.police_force_id in forces for la in las.values())


def test_administrator_adds_a_childrens_home_and_a_bad_urn_is_explained(client, deps, clock):
    organisations.seed_reference(deps, Actor.system("test"))
    sign_in(client, make_staff(deps, role="admin"), clock)
    with deps.db.transaction() as session:
        la = str(session.scalars(select(Organisation.id).where(Organisation.code == "E06000063")).one())
    page = client.get("/admin/organisations/new").get_data(as_text=True)
    data = {"kind": "childrens_home", "name": "Hilltop House", "code": "12345", "local_authority_id": la,
            "address": "1 Hill Road", "phone": "01632 960 001", "mailbox": "hilltop@example.test",
            "csrf_token": csrf_from(page)}
    refused = client.post("/admin/organisations/new", data=data)
    assert refused.status_code == 200 and "Enter the Ofsted URN" in refused.get_data(as_text=True)
    assert 'value="Hilltop House"' in refused.get_data(as_text=True)
    saved = client.post("/admin/organisations/new", data={**data, "code": "sc123456"})
    assert saved.status_code == 302
    listing = client.get("/admin/organisations?kind=childrens_home").get_data(as_text=True)
    assert "Hilltop House" in listing and "SC123456" in listing and "Cumbria Constabulary" in listing
    with deps.db.transaction() as session:
        home = session.scalars(select(Organisation).where(Organisation.code == "SC123456")).one()
        assert home.address == "1 Hill Road" and b"Hill Road" not in (home.address_enc or b"")


def test_only_administrators_keep_the_register(client, deps, clock):
    sign_in(client, make_staff(deps, role="senior_manager"), clock)
    assert client.get("/admin/organisations").status_code == 403
