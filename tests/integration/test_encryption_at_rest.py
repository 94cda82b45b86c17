"""Encrypted columns bind to their row and column; rotation leaves nothing unreadable; no plaintext on disk."""

from __future__ import annotations

import base64
import secrets
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, text

from tests.conftest import make_staff
from transitions.cli import main as cli
from transitions.crypto import DecryptionError, Keyring
from transitions.models import StaffUser, StoredBlob

CANARY_NAME = "Zoë Canary-Łukasz"


def _canary_user(deps):
    with deps.db.transaction() as session:
        user = StaffUser(id=uuid.uuid4(), role="social_worker", status="active", created_at=deps.clock.now())
        session.add(user)
        user.email = "canary.person@example-council.test"
        user.display_name = CANARY_NAME
        return user.id


def test_database_file_holds_no_plaintext_of_encrypted_fields(deps, settings):
    if deps.db.dialect != "sqlite":
        pytest.skip("reads the SQLite file itself; on PostgreSQL the same columns are checked in test below")
    _canary_user(deps)
    account = make_staff(deps)
    deps.db.dispose()
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    for plaintext in (CANARY_NAME, "canary.person", account.email, account.totp_secret):
        assert plaintext.encode() not in raw
        assert plaintext.encode("utf-16-le") not in raw


def test_no_plaintext_in_any_column(deps):
    _canary_user(deps)
    with deps.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM staff_user")).all()
    dump = b"".join(v if isinstance(v, bytes) else str(v).encode() for row in rows for v in row)
    assert CANARY_NAME.encode() not in dump and b"canary.person" not in dump


def test_ciphertext_copied_to_another_row_or_column_does_not_decrypt(app, deps):
    first = _canary_user(deps)
    other = make_staff(deps)
    with deps.db.engine.begin() as conn:
        stolen = conn.execute(text("SELECT display_name_enc FROM staff_user WHERE id = :i"),
                              {"i": first.hex if deps.db.dialect == "sqlite" else first}).scalar_one()
        conn.execute(text("UPDATE staff_user SET display_name_enc = :v WHERE id = :i"),
                     {"v": stolen, "i": other.id.hex if deps.db.dialect == "sqlite" else other.id})
        conn.execute(text("UPDATE staff_user SET email_enc = display_name_enc WHERE id = :i"),
                     {"i": first.hex if deps.db.dialect == "sqlite" else first})
    with deps.db.transaction() as session:
        moved = session.get(StaffUser, other.id)
        with pytest.raises(DecryptionError):
            _ = moved.display_name
        swapped = session.get(StaffUser, first)
        with pytest.raises(DecryptionError):
            _ = swapped.email


def test_undecryptable_record_shows_a_reference_not_a_traceback(app, client, deps, clock):
    from tests.conftest import sign_in

    admin = make_staff(deps, role="admin")
    victim = make_staff(deps)
    sign_in(client, admin, clock)
    with deps.db.engine.begin() as conn:
        conn.execute(text("UPDATE staff_user SET display_name_enc = email_enc WHERE id = :i"),
                     {"i": victim.id.hex if deps.db.dialect == "sqlite" else victim.id})
    response = client.get(f"/admin/users/{victim.id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "cannot be decrypted" in html and "Reference:" in html
    assert "Traceback" not in html and "InvalidTag" not in html


def _key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def test_rotate_keys_leaves_zero_rows_under_the_old_key(app, deps, settings, clock):
    from transitions.app import create_app

    _canary_user(deps)
    make_staff(deps)
    with deps.db.transaction() as session:
        blob = StoredBlob(id=uuid.uuid4(), purpose="test", content_type="application/pdf", size=5,
                          sha256=b"\0" * 32, ciphertext=b"", created_at=clock.now())
        blob.ciphertext = deps.blob_cipher.encrypt(b"%PDF-", context=blob.context)
        session.add(blob)
    old_key = deps.keyring.active_id
    new_spec = f"k2:{_key()} {settings.secrets.keyring}"
    rotated = create_app(settings.with_overrides(secrets=settings.secrets.__class__(
        secret_key=settings.secrets.secret_key, keyring=new_spec, blind_index_key=settings.secrets.blind_index_key,
        audit_key=settings.secrets.audit_key)), clock=clock)
    result = rotated.test_cli_runner().invoke(cli, ["rotate-keys"])
    assert result.exit_code == 0, result.output
    assert "key k2:" in result.output and f"key {old_key}:" not in result.output
    new_deps = rotated.extensions["transitions"]
    with new_deps.db.transaction() as session:
        names = sorted(u.display_name for u in session.scalars(select(StaffUser)))
        stored = session.scalars(select(StoredBlob)).one()
        assert new_deps.blob_cipher.decrypt(stored.ciphertext, context=stored.context) == b"%PDF-"
    assert CANARY_NAME in names
    # The old key can now be dropped: everything reads with k2 alone.
    k2_only = Keyring.parse(new_spec.split()[0])
    assert k2_only.active_id == "k2"
    again = rotated.test_cli_runner().invoke(cli, ["rotate-keys"])
    assert "0 field(s) re-encrypted, 0 blob key(s) re-wrapped" in again.output
    new_deps.db.dispose()


def test_email_lookup_uses_the_blind_index(deps):
    _canary_user(deps)
    index = deps.blind_index.digest("staff-email", "canary.person@example-council.test")
    with deps.db.transaction() as session:
        found = session.scalars(select(StaffUser).where(StaffUser.email_index == index)).one()
        assert found.display_name == CANARY_NAME
