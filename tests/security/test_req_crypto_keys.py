"""Keys and crypto failures seen from the running app (security.md C6: R46–R48; attacks #54, #55).

The crypto modules' own tests (tests/unit/test_crypto_*.py) flip every byte of a blob; these prove what a
person sees when that happens to one child's record, and what a wrong key does to the whole service.
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
import subprocess
import sys
import tomllib

import pytest
from sqlalchemy import text

from tests.conftest import Browser, post_form, sign_in
from tests.integration.test_child_record import profile_input, record  # noqa: F401 - `record` is a fixture
from transitions.crypto import current_code
from transitions.paths import REPO_ROOT
from transitions.services import accounts, children
from transitions.services.audit import Actor

pytestmark = pytest.mark.security


def _flip_last_byte(deps, table: str, column: str, row_id) -> None:
    key = row_id.hex if deps.db.dialect == "sqlite" else row_id
    with deps.db.engine.begin() as conn:
        blob = bytearray(conn.execute(text(f"SELECT {column} FROM {table} WHERE id = :i"), {"i": key}).scalar_one())
        blob[-1] ^= 0x01
        conn.execute(text(f"UPDATE {table} SET {column} = :b WHERE id = :i"), {"b": bytes(blob), "i": key})


def test_one_flipped_byte_fails_closed_for_that_child_only_with_a_reference_and_an_error_log(
        client, deps, clock, record, caplog):  # noqa: F811
    """R47 / #55: the tampered record's page is refused (never shown blank or partial), support gets an ERROR
    line with the page's reference, and the colleague record beside it still opens."""
    view = accounts.get_user(deps, record.worker.id)
    other = children.create_child(deps, profile_input(deps, team_id=record.team_id, worker_id=record.worker.id,
                                                      name="Kit Marlowe", nhs="9434765919", la_child_id="LCS-2"),
                                  view, Actor("staff", str(record.worker.id)))
    _flip_last_byte(deps, "child", "legal_name_enc", record.child_id)
    sign_in(client, record.worker, clock)
    caplog.set_level(logging.ERROR)
    refused = client.get(f"/children/{record.child_id}")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 500
    assert "cannot be decrypted" in html and "Reference:" in html
    for leak in ("Traceback", "InvalidTag", "Zoë", "legal_name"):
        assert leak not in html
    reference = html.split("Reference:", 1)[1].split("</strong>", 1)[0].split(">")[-1].strip()
    assert any("decryption failed" in r.getMessage() and reference in r.getMessage() for r in caplog.records)
    fine = client.get(f"/children/{other}")
    assert fine.status_code == 200 and "Kit" in fine.get_data(as_text=True)


def _other_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def test_a_wrong_key_under_the_right_id_never_shows_data_and_never_signs_anyone_in(app, deps, settings, clock,
                                                                                  record):  # noqa: F811
    """#54 as built: the service starts with a wrong key (no start-up canary check, a gap against R46/R47), but
    fails closed on the first read: the sign-in step that needs the account's encrypted TOTP secret ends on the
    "cannot be decrypted" page, and no staff session is created."""
    from transitions.app import create_app

    active = deps.keyring.active_id
    wrong = settings.with_overrides(secrets=settings.secrets.__class__(
        secret_key=settings.secrets.secret_key, keyring=f"{active}:{_other_key()}",
        blind_index_key=settings.secrets.blind_index_key, audit_key=settings.secrets.audit_key))
    impostor = create_app(wrong, clock=clock)
    try:
        impostor.test_client_class = Browser
        client = impostor.test_client()
        password_step = post_form(client, "/sign-in", {"email": record.worker.email,
                                                       "password": record.worker.password})
        code_step = post_form(client, "/sign-in/code", {"code": current_code(record.worker.totp_secret, clock.now())})
        assert password_step.status_code == 302  # the password hash and the e-mail's blind index need no key
        assert code_step.status_code == 500  # the TOTP secret does: refused, not skipped
        assert "cannot be decrypted" in code_step.get_data(as_text=True)
        page = client.get("/")
        assert page.status_code == 302 and page.headers["Location"].startswith("/sign-in")
        with impostor.extensions["transitions"].db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM staff_session WHERE user_id IS NOT NULL")).scalar() == 0
    finally:
        impostor.extensions["transitions"].db.dispose()


# ---- R48: randomness only from secrets / os.urandom -----------------------------------------------------------


def test_the_random_module_is_never_imported_by_the_service():
    pattern = re.compile(r"^\s*(?:import\s+random\b|from\s+random\s+import)", re.MULTILINE)
    offenders = [str(path.relative_to(REPO_ROOT)) for path in sorted((REPO_ROOT / "transitions").rglob("*.py"))
                 if pattern.search(path.read_text())]
    assert offenders == []


def test_ruff_s311_is_enforced_on_the_service_and_passes():
    """The lint rule itself (bandit S311: pseudo-random generators) is selected, not ignored for transitions/,
    and the package passes it."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "S" in config["select"] and "S311" not in config.get("ignore", [])
    for pattern, ignored in config.get("per-file-ignores", {}).items():
        if "S311" in ignored:
            assert not pattern.startswith("transitions"), pattern
    ruff = [sys.executable, "-m", "ruff", "check", "--select", "S311,S324,S501,S506", "--no-cache", "transitions"]
    result = subprocess.run(ruff, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
