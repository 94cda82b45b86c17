"""The database on its own is worth nothing to a thief, and an edited ciphertext is caught (security.md C6;
attacks #55, #56 and #64 of table (d)). The whole database is read back as a thief would, after a recipient has
verified and a member of staff has signed in; then an application given that database without the keys tries to
read it; then single ciphertexts are flipped, swapped and transplanted and the pages that show them are opened."""

from __future__ import annotations

import base64
import logging
import re
import uuid

import pytest
from sqlalchemy import inspect, select, text

from tests.conftest import _key, sign_in
from tests.integration.test_packs import latest_code, link_for
from tests.security.test_req_links import sent  # noqa: F401  (a fixture)
from transitions.crypto import CryptoError, Keyring
from transitions.models import Child, Pack, SectionVersion, StoredBlob

pytestmark = pytest.mark.security

CHILD_SECRETS = ("Amira", "Noor Hassan", "LCS-099120", "9990001332", "2009-01-23")


def _dump(deps) -> bytes:
    """Every value of every table, as bytes (what a stolen copy or a backup holds)."""
    parts: list[bytes] = []
    with deps.db.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                parts += [v if isinstance(v, bytes | memoryview) else str(v).encode() for v in row]
    return b"\x00".join(bytes(p) for p in parts)


def _forms(secret: bytes) -> list[bytes]:
    return [secret, secret.hex().encode(), base64.urlsafe_b64encode(secret).rstrip(b"="),
            base64.b64encode(secret).rstrip(b"=")]


def _db_id(deps, value: uuid.UUID) -> object:
    return value.hex if deps.db.dialect == "sqlite" else value


def test_a_stolen_database_reads_as_nothing_and_tampered_ciphertext_is_caught(
        deps, sent, app, client, settings, clock, caplog):  # noqa: F811
    """Attack #56 (R17, R20, R41-R43): with a link fetched, a code sent and entered, a recipient and a member of
    staff signed in, the database holds no link token, no session id, no code, no key and no name of the child.
    An application given the same database and other keys decrypts nothing and finds nobody by blind index.

    Then attack #55: one byte flipped in a child's name, a name's ciphertext swapped from another child's row;
    attack #64: an insider with write access moves another child's risk section ciphertext onto this child's. Each
    page answers 500 "cannot be decrypted" with a reference (no traceback, nothing blank shown as real), an error
    is logged for the alert, and the other children's records are unaffected."""
    world, transition_id = sent
    token, pack = link_for(deps, transition_id, "receiving_placement")
    client.post(f"/r/{token}/code")
    code = latest_code(deps, pack.id)
    client.post(f"/r/{token}/enter-code", data={"code": code})
    recipient_sid = client.get_cookie(deps.settings.packs.session_cookie_name).value
    with deps.db.transaction() as session:
        pdf_password = session.get(Pack, pack.id).password
    staff = app.test_client()
    sign_in(staff, world.accounts["social_worker_south"], clock)
    staff_sid = staff.get_cookie(deps.settings.session.cookie_name).value

    dump = _dump(deps)
    for secret in (token, recipient_sid, staff_sid, f"Your code is {code}", pdf_password, *CHILD_SECRETS,
                   settings.secrets.secret_key, world.accounts["social_worker_south"].totp_secret):
        assert secret.encode() not in dump, secret[:12]
    keyring = Keyring.parse(settings.secrets.keyring)
    material = [keyring.key(keyring.active_id), settings.secrets.blind_index_key, settings.secrets.audit_key]
    for key in material:
        for form in _forms(key):
            assert form not in dump

    from transitions.app import create_app

    thief = create_app(settings.with_overrides(secrets=settings.secrets.__class__(
        secret_key=settings.secrets.secret_key, keyring=f"{keyring.active_id}:{_key()}",
        blind_index_key=base64.urlsafe_b64decode(_key() + "="), audit_key=base64.urlsafe_b64decode(_key() + "="))),
        clock=clock)
    stolen = thief.extensions["transitions"]
    try:
        with stolen.db.transaction() as session:
            child = session.get(Child, world.children["Amira"])
            for name in ("legal_name", "preferred_name", "nhs_number", "date_of_birth"):
                with pytest.raises(CryptoError):
                    getattr(child, name)
            with pytest.raises(CryptoError):
                _ = session.get(Pack, pack.id).password
            blob = session.scalars(select(StoredBlob)).first()
            with pytest.raises(CryptoError):
                stolen.blob_cipher.decrypt(blob.ciphertext, context=blob.context)
            index = stolen.blind_index.digest("staff-email", world.accounts["social_worker_south"].email)
            from transitions.models import StaffUser

            assert session.scalars(select(StaffUser).where(StaffUser.email_index == index)).first() is None
    finally:
        stolen.db.dispose()

    # Tampering, seen by a senior manager (who reads every child's record)
    sign_in(client, world.accounts["senior_manager"], clock)
    names = sorted(n for n in world.children if n != "Amira")
    flipped, swapped, transplanted, untouched = (world.children[n] for n in ("Amira", *names[:3]))
    source = untouched  # copied from, never changed
    for child in (flipped, swapped, transplanted, untouched):
        assert client.get(f"/children/{child}").status_code == 200
    with deps.db.engine.begin() as conn:
        raw = conn.execute(text("SELECT legal_name_enc FROM child WHERE id = :i"),
                           {"i": _db_id(deps, flipped)}).scalar_one()
        tampered = bytes(raw[:-1]) + bytes([raw[-1] ^ 1])
        conn.execute(text("UPDATE child SET legal_name_enc = :v WHERE id = :i"),
                     {"v": tampered, "i": _db_id(deps, flipped)})
        conn.execute(text("UPDATE child SET preferred_name_enc = (SELECT preferred_name_enc FROM child WHERE id = :s) "
                          "WHERE id = :i"), {"s": _db_id(deps, source), "i": _db_id(deps, swapped)})
    with deps.db.transaction() as session:
        def risk(child_id):
            return session.scalars(select(SectionVersion).where(
                SectionVersion.child_id == child_id, SectionVersion.section_code == "RISK",
                SectionVersion.is_current.is_(True))).one().id
        target, donor = risk(transplanted), risk(source)
    with deps.db.engine.begin() as conn:
        conn.execute(text("UPDATE section_version SET content_enc = (SELECT content_enc FROM section_version "
                          "WHERE id = :d) WHERE id = :t"), {"d": _db_id(deps, donor), "t": _db_id(deps, target)})

    caplog.set_level(logging.ERROR)
    for url in (f"/children/{flipped}", f"/children/{swapped}", f"/children/{transplanted}/sections/RISK"):
        response = client.get(url)
        html = response.get_data(as_text=True)
        assert response.status_code == 500, url
        assert "cannot be decrypted" in html and re.search(r"Reference: <strong>[0-9a-f]+</strong>", html), url
        for leak in ("Traceback", "InvalidTag", "DecryptionError", "legal_name_enc"):
            assert leak not in html, url
    alerts = [r for r in caplog.records if "decryption failed" in r.getMessage()]
    assert len(alerts) == 3 and all(r.levelno == logging.ERROR for r in alerts)
    page = client.get(f"/children/{untouched}")
    assert page.status_code == 200 and names[2] in page.get_data(as_text=True)
