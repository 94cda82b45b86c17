"""Key rotation: re-encrypt every encrypted field and re-wrap every blob key under the active key (R44).

Batches commit one at a time, so the job can be stopped at any point and run again: every row stays
readable throughout (old keys remain in the keyring), and a second run finds nothing left to do.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select

from transitions.models import Base, StoredBlob
from transitions.services import audit
from transitions.services.audit import Actor
from transitions.services.deps import ServiceDeps


@dataclass
class RotationReport:
    active_key: str
    fields_reencrypted: int = 0
    blobs_rewrapped: int = 0
    remaining_by_key: Counter[str] = field(default_factory=Counter)


def _key_census(deps: ServiceDeps) -> Counter[str]:
    counts: Counter[str] = Counter()
    with deps.db.transaction() as session:
        for model, attr in Base.encrypted_attributes:
            column = getattr(model, attr.column)
            for blob in session.scalars(select(column).where(column.is_not(None))):
                counts[deps.field_cipher.key_id_of(blob)] += 1
        for blob in session.scalars(select(StoredBlob.ciphertext)):
            counts[deps.blob_cipher.key_id_of(blob)] += 1
    return counts


def rotate(deps: ServiceDeps, actor: Actor, *, batch_size: int = 500) -> RotationReport:
    report = RotationReport(active_key=deps.keyring.active_id)
    models = {model for model, _ in Base.encrypted_attributes}
    for model in sorted(models, key=lambda m: m.__name__):
        attrs = [a for m, a in Base.encrypted_attributes if m is model]
        pk = model.__mapper__.primary_key[0]
        last = None
        while True:
            with deps.db.transaction() as session:
                query = select(model).order_by(pk).limit(batch_size)
                if last is not None:
                    query = query.where(pk > last)
                rows = session.scalars(query).all()
                if not rows:
                    break
                for row in rows:
                    for attr in attrs:
                        if attr.reencrypt(session, row):
                            report.fields_reencrypted += 1
                last = getattr(rows[-1], pk.key)
    last_blob = None
    while True:
        with deps.db.transaction() as session:
            query = select(StoredBlob).order_by(StoredBlob.id).limit(batch_size)
            if last_blob is not None:
                query = query.where(StoredBlob.id > last_blob)
            blobs = session.scalars(query).all()
            if not blobs:
                break
            for blob in blobs:
                if deps.blob_cipher.needs_rotation(blob.ciphertext):
                    blob.ciphertext = deps.blob_cipher.rewrap(blob.ciphertext, context=blob.context)
                    report.blobs_rewrapped += 1
            last_blob = blobs[-1].id
    report.remaining_by_key = _key_census(deps)
    with deps.db.transaction() as session:
        audit.record(session, deps.audit_chain, deps.clock, actor, "keys.rotated",
                     details={"key_id": report.active_key, "rows": report.fields_reencrypted,
                              "blobs": report.blobs_rewrapped})
    return report
