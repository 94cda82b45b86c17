"""Start-up key check (R46, attack #54): a key id whose bytes are wrong is caught before the first read fails.

Each key (every KEK in TRANSITIONS_KEYRING by its id, the blind-index key and the audit key) has a fingerprint,
HMAC-SHA256(key, "cla-transitions key check v1"), stored the first time its id is seen. The fingerprint
proves nothing about the key to someone without it and cannot be reversed into it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from transitions.models import KeyCheck
from transitions.services.deps import ServiceDeps
from transitions.settings import SettingsError

CHECK_MESSAGE = b"cla-transitions key check v1"


class KeyMismatchError(SettingsError):
    """Names the key ids only."""

    def __init__(self, names: list[str]) -> None:
        super().__init__("Refusing to start: the key(s) " + ", ".join(names) + " are not the ones this database "
                         "was encrypted with (wrong value for that key id in the secret store?)")
        self.names = names


@dataclass(frozen=True)
class KeyCheckReport:
    checked: int
    recorded: int


def fingerprint(key: bytes) -> bytes:
    return hmac.new(key, CHECK_MESSAGE, hashlib.sha256).digest()


def _keys(deps: ServiceDeps) -> dict[tuple[str, str], bytes]:
    found = {("kek", key_id): key for key_id, key in deps.keyring.keys.items()}
    found[("blind_index", "-")] = deps.settings.secrets.blind_index_key
    found[("audit", "-")] = deps.settings.secrets.audit_key
    return found


def _name(purpose: str, key_id: str) -> str:
    return {"blind_index": "TRANSITIONS_BLIND_INDEX_KEY", "audit": "TRANSITIONS_AUDIT_KEY"}.get(
        purpose, f"keyring id {key_id!r}")


def check_keys(deps: ServiceDeps) -> KeyCheckReport:
    """Compare every configured key with its stored fingerprint; record those seen for the first time. Raises
    KeyMismatchError (nothing recorded) if any differ."""
    keys = _keys(deps)
    with deps.db.transaction() as session:
        stored = {(row.purpose, row.key_id): row.fingerprint for row in session.scalars(select(KeyCheck))}
        wrong = [_name(*ident) for ident, key in sorted(keys.items())
                 if ident in stored and not hmac.compare_digest(stored[ident], fingerprint(key))]
        if wrong:
            raise KeyMismatchError(wrong)
        new = [ident for ident in keys if ident not in stored]
        for purpose, key_id in new:
            try:
                with session.begin_nested():
                    session.add(KeyCheck(purpose=purpose, key_id=key_id, fingerprint=fingerprint(keys[(purpose,
                                                                                                   key_id)]),
                                         recorded_at=deps.clock.now()))
            except IntegrityError:  # another worker starting at the same moment recorded it first
                pass
    return KeyCheckReport(checked=len(keys) - len(new), recorded=len(new))


def check_at_start(deps: ServiceDeps) -> None:
    """From create_app: a database that cannot be reached (or not migrated yet) is not a key problem; the app
    starts and answers 503 until it is back, and the next start checks."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        check_keys(deps)
    except (OperationalError, ProgrammingError):
        return
