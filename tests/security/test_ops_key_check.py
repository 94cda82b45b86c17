"""Attack #54 / R46: a keyring entry with the right key id but the wrong bytes (or a wrong blind-index or audit
key) is refused at start-up, naming the key id only; an unreachable database does not stop the start."""

from __future__ import annotations

import base64
import secrets

import pytest
from sqlalchemy import select

from tests.conftest import test_environ
from transitions.app import create_app
from transitions.cli import main as cli
from transitions.models import KeyCheck
from transitions.services import key_check
from transitions.settings import load_settings

pytestmark = pytest.mark.security


def _other_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def test_a_wrong_key_for_a_known_key_id_refuses_to_start(app, deps, settings, tmp_path):
    app.test_cli_runner().invoke(cli, ["check-keys"])  # the first start after migrating records them
    result = app.test_cli_runner().invoke(cli, ["check-keys"])
    assert result.exit_code == 0 and "Keys match: 3 checked, 0 recorded" in result.output
    with deps.db.transaction() as session:
        rows = {(r.purpose, r.key_id): r.fingerprint for r in session.scalars(select(KeyCheck))}
    kek = deps.keyring.keys["k1"]
    assert rows[("kek", "k1")] == key_check.fingerprint(kek) and kek not in rows.values()

    environ = test_environ(settings.database_url, tmp_path / "instance2")
    environ["TRANSITIONS_BLIND_INDEX_KEY"] = base64.urlsafe_b64encode(
        settings.secrets.blind_index_key).decode().rstrip("=")
    environ["TRANSITIONS_AUDIT_KEY"] = base64.urlsafe_b64encode(settings.secrets.audit_key).decode().rstrip("=")
    wrong = environ["TRANSITIONS_KEYRING"]  # k1, other bytes
    with pytest.raises(key_check.KeyMismatchError) as refused:
        create_app(load_settings(environ))
    assert refused.value.names == ["keyring id 'k1'"] and wrong.split(":")[1] not in str(refused.value)

    # a new key id alongside the right one is recorded, not refused (adding a key before rotating)
    right = base64.urlsafe_b64encode(kek).decode().rstrip("=")
    environ["TRANSITIONS_KEYRING"] = f"k2:{_other_key()} k1:{right}"
    create_app(load_settings(environ)).extensions["transitions"].db.dispose()
    assert key_check.check_keys(deps).recorded == 0

    environ["TRANSITIONS_AUDIT_KEY"] = _other_key()
    with pytest.raises(key_check.KeyMismatchError, match="TRANSITIONS_AUDIT_KEY"):
        create_app(load_settings(environ))


def test_an_unreachable_database_does_not_stop_the_start(tmp_path):
    environ = test_environ("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1", tmp_path / "inst")
    started = create_app(load_settings(environ))
    assert started.extensions["transitions"] is not None
    started.extensions["transitions"].db.dispose()
