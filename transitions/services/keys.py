"""Key rotation: re-encrypt every encrypted field and re-wrap every blob key under the active key (R44).

Batches commit one at a time, so the job can be stopped at any point and run again: every row stays
readable throughout (old keys remain in the keyring), and a second run finds nothing left to do.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select, update

from transitions.models import Base, StoredBlob
from transitions.services import audit
from transitions.services.audit import Actor
from transitions.services.deps import ServiceDeps
from transitions.services.storage import PURGED


@dataclass
class RotationReport:
    active_key: str
    fields_reencrypted: int = 0
    blobs_rewrapped: int = 0
    remaining_by_key: Counter[str] = field(default_factory=Counter)


def key_census(deps: ServiceDeps) -> Counter[str]:
    """How many values each key encrypts (fields and blob keys): a key can go when its count is 0."""
    counts: Counter[str] = Counter()
    with deps.db.transaction() as session:
        for model, attr in Base.encrypted_attributes:
            column = getattr(model, attr.column)
            for blob in session.scalars(select(column).where(column.is_not(None))):
                counts[deps.field_cipher.key_id_of(blob)] += 1
        for blob in session.scalars(select(StoredBlob.ciphertext).where(StoredBlob.purpose != PURGED)):
            counts[deps.blob_cipher.key_id_of(blob)] += 1
    return counts


def _aad_row_id(value: object) -> str:
    """The row id as the field cipher binds it into the associated data (as EncryptedText does)."""
    return value.hex() if isinstance(value, bytes) else str(value)


def rotate(deps: ServiceDeps, actor: Actor, *, batch_size: int = 500) -> RotationReport:
    """Rows are read and rewritten column by column with plain UPDATEs while the app serves (R44):

    - each batch locks its rows (FOR UPDATE on PostgreSQL; SQLite's write lock is taken at BEGIN), so a request
      that changes a row at the same moment is neither overwritten nor lost;
    - only the ciphertext columns are written, so the optimistic-lock counters (child profile, account,
      transition) do not move and a form opened before the rotation still saves without a false "someone
      else changed this".
    """
    report = RotationReport(active_key=deps.keyring.active_id)
    cipher = deps.field_cipher
    models = {model for model, _ in Base.encrypted_attributes}
    for model in sorted(models, key=lambda m: m.__name__):
        table = model.__table__
        columns = [table.c[a.column] for m, a in Base.encrypted_attributes if m is model]
        pk = model.__mapper__.primary_key[0]
        last = None
        while True:
            with deps.db.transaction() as session:
                query = select(pk, *columns).order_by(pk).limit(batch_size).with_for_update()
                if last is not None:
                    query = query.where(pk > last)
                rows = session.execute(query).all()
                if not rows:
                    break
                for row in rows:
                    key, values = row[0], row[1:]
                    changes = {column.key: cipher.reencrypt(blob, table=table.name, column=column.key,
                                                            row_id=_aad_row_id(key))
                               for column, blob in zip(columns, values, strict=True)
                               if blob is not None and cipher.needs_rotation(blob)}
                    if changes:
                        session.execute(update(table).where(pk == key).values(changes))
                        report.fields_reencrypted += len(changes)
                last = rows[-1][0]
    last_blob = None
    while True:
        with deps.db.transaction() as session:
            # a purged pack file (retention) is an empty tombstone: nothing to re-wrap
            query = (select(StoredBlob).where(StoredBlob.purpose != PURGED).order_by(StoredBlob.id)
                     .limit(batch_size))
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
    report.remaining_by_key = key_census(deps)
    with deps.db.transaction() as session:
        audit.record(session, deps.audit_chain, deps.clock, actor, "keys.rotated",
                     details={"key_id": report.active_key, "rows": report.fields_reencrypted,
                              "blobs": report.blobs_rewrapped})
    return report
