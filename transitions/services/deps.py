"""The explicit dependencies every service function receives."""

from __future__ import annotations

from dataclasses import dataclass

from transitions.clock import Clock
from transitions.crypto import AuditChain, BlindIndex, BlobCipher, FieldCipher, Keyring, PasswordHasher
from transitions.formdefs import Definitions, load_definitions
from transitions.models import Database
from transitions.settings import Settings


@dataclass(frozen=True)
class ServiceDeps:
    settings: Settings
    db: Database
    clock: Clock
    keyring: Keyring
    field_cipher: FieldCipher
    blob_cipher: BlobCipher
    blind_index: BlindIndex
    audit_chain: AuditChain
    hasher: PasswordHasher
    #: The checklist definitions from forms/, validated at start-up (a broken file stops the service).
    definitions: Definitions


def build_deps(settings: Settings, clock: Clock) -> ServiceDeps:
    keyring = Keyring.parse(settings.secrets.keyring)
    field_cipher = FieldCipher(keyring)
    blind_index = BlindIndex(settings.secrets.blind_index_key)
    p = settings.passwords
    return ServiceDeps(
        settings=settings,
        db=Database(settings.database_url, field_cipher=field_cipher, blind_index=blind_index),
        clock=clock,
        keyring=keyring,
        field_cipher=field_cipher,
        blob_cipher=BlobCipher(keyring),
        blind_index=blind_index,
        audit_chain=AuditChain(settings.secrets.audit_key),
        hasher=PasswordHasher(time_cost=p.argon2_time_cost, memory_cost=p.argon2_memory_cost,
                              parallelism=p.argon2_parallelism),
        definitions=load_definitions(settings.forms_dir),
    )
