"""Envelope-encrypted file storage shared by uploads and packs: one place that makes a stored blob."""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import update
from sqlalchemy.orm import Session

from transitions.models import StoredBlob
from transitions.services.deps import ServiceDeps

#: The purpose a blob row takes when its content is purged (R79): the row stays, as a tombstone that rows
#: referring to it can still point at; its ciphertext, size and digest are gone.
PURGED = "purged"


def store_blob(deps: ServiceDeps, session: Session, purpose: str, content_type: str, data: bytes) -> StoredBlob:
    """Encrypt ``data`` under a fresh data key bound to the new row's id and purpose, and add the row."""
    blob = StoredBlob(id=uuid.uuid4(), purpose=purpose, content_type=content_type, size=len(data),
                      sha256=hashlib.sha256(data).digest(), ciphertext=b"", created_at=deps.clock.now())
    blob.ciphertext = deps.blob_cipher.encrypt(data, context=blob.context)
    session.add(blob)
    return blob


def purge_blobs(session: Session, blob_ids: list[uuid.UUID]) -> int:
    """Empty these blobs in place; the number emptied now (a blob already purged is not counted again)."""
    if not blob_ids:
        return 0
    done = session.execute(update(StoredBlob).where(StoredBlob.id.in_(blob_ids), StoredBlob.purpose != PURGED)
                           .values(purpose=PURGED, ciphertext=b"", size=0, sha256=bytes(32))
                           .execution_options(synchronize_session=False))
    return int(done.rowcount)  # type: ignore[attr-defined]
