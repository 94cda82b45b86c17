"""Flask-free cryptography for CLA Transitions (security.md C6, Appendix B).

Nothing here may import Flask, Werkzeug or SQLAlchemy (import-linter contract): the same code runs in
the web app, the CLI rotation job and the backup verifier.
"""

from __future__ import annotations

from .blind_index import BlindIndex, normalise
from .blobs import BlobCipher
from .chain import AuditChain, canonical_json
from .errors import CryptoError, DecryptionError, KeyringError, UnknownKeyError
from .fields import FieldCipher
from .keyring import Keyring, format_key_spec, generate_key
from .passwords import PasswordHasher, PasswordPolicyError, check_password_policy
from .tokens import code_mac, equal, new_numeric_code, new_token, token_hash
from .totp import current_code, new_totp_secret, provisioning_uri, verify_totp

__all__ = [
    "AuditChain",
    "BlindIndex",
    "BlobCipher",
    "CryptoError",
    "DecryptionError",
    "FieldCipher",
    "Keyring",
    "KeyringError",
    "PasswordHasher",
    "PasswordPolicyError",
    "UnknownKeyError",
    "canonical_json",
    "check_password_policy",
    "code_mac",
    "current_code",
    "equal",
    "format_key_spec",
    "generate_key",
    "new_numeric_code",
    "new_token",
    "new_totp_secret",
    "normalise",
    "provisioning_uri",
    "token_hash",
    "verify_totp",
]
