"""Envelope-encrypted file storage shared by uploads and packs: one place that makes a stored blob."""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy.orm import Session

from transitions.models import StoredBlob
from transitions.services.deps import ServiceDeps


def store_blob(deps: ServiceDeps, session: Session, purpose: str, content_type: str, data: bytes) -> StoredBlob:
    """Encrypt ``data`` under a fresh data key bound to the new row's id and purpose, and add the row."""
    blob = StoredBlob(id=uuid.uuid4(), purpose=purpose, content_type=content_type, size=len(data),
                      sha256=hashlib.sha256(data).digest(), ciphertext=b"", created_at=deps.clock.now())
    blob.ciphertext = deps.blob_cipher.encrypt(data, context=blob.context)
    session.add(blob)
    return blob
