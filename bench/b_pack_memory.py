"""Peak memory of issuing one pack whose recipient receives 20 MB of attached PDFs (issue 7; goal ≤ 150 MB).

Set-up (this process, untimed): a migrated SQLite file in a temporary folder with the demo world (test settings), and
Amira's emergency move to a children's home. The documents the receiving placement is sent (its need-to-know
profile picks them) are replaced by large PDFs that together make 20 MB (`--mb`), each no bigger than the
document upload limit (config `record.document_max_bytes`) and each accepted by the real upload check
(`transitions.uploads.check_pdf`). Each is stored through `storage.store_blob`, exactly as an upload is, and the
attachment row points at the new blob.

Measurement (one fresh subprocess per method, so no earlier peak or allocator state counts): the child builds the
app, warms every code path up by issuing the same pack once with one small document (imports, fonts, ReportLab,
pikepdf, the SQLAlchemy mappers), rolls that back, then measures one real `packs.issue` for the receiving
placement (build → materialise (decrypt the photo and documents) → render → AES-256 PDF with the documents appended
→ envelope-encrypt and store the PDF and the snapshot → queue the link email → commit):

* **VmHWM − VmRSS** (`/proc/self/status`) after `/proc/self/clear_refs` has reset the peak: the whole process,
  qpdf's and OpenSSL's C heaps included, in whole pages. Also reported: the absolute VmHWM (the worker's peak).
* **tracemalloc** peak minus what was traced at the start: every Python allocation (bytes objects), not C heaps.

The figure for the goal is the larger of the two "extra" figures; the absolute peak is printed beside it (a gunicorn
worker starts from roughly the RSS before the operation).

    .venv/bin/python bench/b_pack_memory.py [--mb 20]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from b_blob_crypto import _reset_peak_rss, _status_kib  # noqa: E402  # the same VmHWM method and caveats

TARGET_MB, ALARM_MB = 150.0, 250.0
MB = 1_000_000
METHODS = ("rss", "tracemalloc")
RECIPIENT = "receiving_placement"


def noise_pdf(size: int, title: str) -> bytes:
    """A valid one-page PDF of about ``size`` bytes: an uncompressed RGB image of random pixels (incompressible,
    like a scan), drawn across the page."""
    import io

    import pikepdf

    side = max(16, int((size / 3) ** 0.5))
    pdf = pikepdf.new()
    image = pikepdf.Stream(pdf, os.urandom(side * side * 3))
    image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    image.Width, image.Height, image.BitsPerComponent = side, side, 8
    image.ColorSpace = pikepdf.Name.DeviceRGB
    page = pikepdf.Page(pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=[0, 0, 595, 842]))
    pdf.pages.append(page)
    page = pdf.pages[0]
    page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
    page.Contents = pikepdf.Stream(pdf, b"q 595 0 0 842 0 0 cm /Im0 Do Q")
    pdf.docinfo["/Title"] = title
    out = io.BytesIO()
    pdf.save(out, compress_streams=False)
    return out.getvalue()


def _environ(tmp: Path) -> dict[str, str]:
    from tests.conftest import test_environ

    return test_environ(f"sqlite:///{tmp / 'bench.sqlite3'}", tmp / "instance")


def _ids(deps: Any, transition_id: Any) -> Any:
    from sqlalchemy import select

    from transitions.models import TransitionRecipient

    with deps.db.transaction() as session:
        return session.scalars(select(TransitionRecipient.id).where(
            TransitionRecipient.transition_id == transition_id,
            TransitionRecipient.recipient_type == RECIPIENT)).one()


def _documents(deps: Any, session: Any, transition_id: Any, recipient_id: Any) -> Any:
    """The (label, attachment id) pairs this recipient's pack appends."""
    from transitions.models import Child, Organisation, Transition, TransitionRecipient
    from transitions.services import packs

    transition = session.get(Transition, transition_id)
    recipient = session.get(TransitionRecipient, recipient_id)
    child = session.get(Child, transition.child_id)
    org = session.get(Organisation, recipient.organisation_id)
    return packs.build(deps, session, child, transition, recipient, org, version=1, reference="HP-BENCH1").documents


def setup(tmp: Path, total: int) -> dict[str, Any]:
    """The database with 20 MB of documents for the receiving placement; returns what the child needs."""
    from tests.conftest import migrate
    from tests.integration.conftest import load_world, start
    from transitions.app import create_app
    from transitions.clock import FrozenClock
    from transitions.models import Attachment
    from transitions.services import storage
    from transitions.settings import load_settings
    from transitions.uploads import check_pdf

    environ = _environ(tmp)
    settings = load_settings(environ)
    clock = FrozenClock()
    app = create_app(settings, clock=clock)
    migrate(app)
    deps = app.extensions["transitions"]
    try:
        world = load_world(deps)
        transition_id = start(deps, world, "social_worker_south", "Amira", "emergency_move", "SC900003",
                              when=clock.now() + timedelta(hours=2), urgency="emergency", distance="no",
                              emergency_reason="Carers asked for her to leave tonight")
        recipient_id = _ids(deps, transition_id)
        limit = settings.record.document_max_bytes
        with deps.db.transaction() as session:
            documents = _documents(deps, session, transition_id, recipient_id)
            assert documents, "the receiving placement gets no documents: nothing to measure"
            per_document = -(-total // len(documents))
            assert per_document <= limit, (per_document, limit)
            sizes = []
            for index, (_label, attachment_id) in enumerate(documents):
                data = noise_pdf(per_document, f"Bench document {index + 1}")
                checked = check_pdf(data, max_bytes=limit, timeout_seconds=60)
                assert checked.data == data
                attachment = session.get(Attachment, attachment_id)
                blob = storage.store_blob(deps, session, "attachment-document", "application/pdf", data)
                session.flush()
                attachment.blob_id, attachment.size = blob.id, len(data)
                sizes.append(len(data))
                del data, checked
        return {"environ": environ, "transition_id": str(transition_id), "recipient_id": str(recipient_id),
                "worker": str(world.accounts["social_worker_south"].id), "documents": sizes}
    finally:
        deps.db.dispose()


# ---- the measured child ---------------------------------------------------------------------------------------


def peak_of(method: str, operation: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    """Run ``operation`` once and measure its peak extra memory by one method (see the module docstring)."""
    import tracemalloc

    if method == "tracemalloc":
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        result = operation()
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return result, {"extra": top - base, "peak": top, "before": base, "reset": True, "slack": 0}
    reset = _reset_peak_rss()
    rss, hwm = _status_kib("VmRSS") * 1024, _status_kib("VmHWM") * 1024
    result = operation()
    top = _status_kib("VmHWM") * 1024
    # slack > 0 only if the peak could not be reset: the figure may then be low
    return result, {"extra": top - rss, "peak": top, "before": rss, "reset": reset, "slack": hwm - rss}


def _child(method: str, spec_path: Path) -> dict[str, Any]:
    """In a fresh interpreter: warm up, then issue the pack once and measure its peak by one method."""
    import gc
    import uuid
    from dataclasses import replace
    from unittest import mock

    spec = json.loads(spec_path.read_text())
    os.environ.update(spec["environ"])
    from sqlalchemy import func, select

    from transitions.app import create_app
    from transitions.clock import FrozenClock
    from transitions.models import Pack, StoredBlob, Transition, TransitionRecipient
    from transitions.services import accounts, packs
    from transitions.services.audit import Actor

    app = create_app(clock=FrozenClock(), web=False)
    deps = app.extensions["transitions"]
    transition_id, recipient_id = uuid.UUID(spec["transition_id"]), uuid.UUID(spec["recipient_id"])
    user = accounts.get_user(deps, uuid.UUID(spec["worker"]))
    actor = Actor("staff", spec["worker"])

    def issue() -> Any:
        with deps.db.transaction() as session:
            pack = packs.issue(deps, session, session.get(Transition, transition_id),
                               session.get(TransitionRecipient, recipient_id), user, actor)
            return pack.id, pack.page_count

    # Warm-up: the same issue with one small document, rolled back (nothing stored, no peak carried over).
    small = noise_pdf(64 * 1024, "Warm-up")
    real_materialise = packs.materialise

    def small_documents(*args: Any) -> Any:
        document = real_materialise(*args)
        first = document.appendices[:1]
        return replace(document, appendices=tuple((label, small) for label, _ in first))

    class RolledBack(Exception):
        pass

    with mock.patch.object(packs, "materialise", small_documents):
        try:
            with deps.db.transaction() as session:
                packs.issue(deps, session, session.get(Transition, transition_id),
                            session.get(TransitionRecipient, recipient_id), user, actor)
                raise RolledBack
        except RolledBack:
            pass
    gc.collect()

    (pack_id, pages), figure = peak_of(method, issue)
    with deps.db.transaction() as session:
        pack = session.get(Pack, pack_id)
        pdf_size = session.scalar(select(StoredBlob.size).where(StoredBlob.id == pack.pdf_blob_id))
        packs_stored = session.scalar(select(func.count()).select_from(Pack))
    deps.db.dispose()
    return {"method": method, **figure, "pages": pages, "pdf_bytes": pdf_size, "packs": packs_stored}


def _measure(method: str, spec_path: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", method, str(spec_path)],
                          cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child {method} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run(total_mb: float = 20.0) -> dict[str, Any]:
    from ratio import verdict

    total = int(total_mb * MB)
    with tempfile.TemporaryDirectory(prefix="bench-pack-memory-") as tmp:
        folder = Path(tmp)
        spec = setup(folder, total)
        spec_path = folder / "spec.json"
        spec_path.write_text(json.dumps(spec))
        # Each method measures its own fresh pack (version 2 after the first child's version 1, and so on): the
        # work is the same, and a reissue also revokes the previous version, as a real resend does.
        figures = {method: _measure(method, spec_path) for method in METHODS}
    extra = max(f["extra"] for f in figures.values())
    value = extra / MB
    return {"name": f"pack issue with {total_mb:g} MB of documents: peak extra memory (MB)", "value": value,
            "target": TARGET_MB, "alarm": ALARM_MB, "verdict": verdict(value, TARGET_MB, ALARM_MB),
            "documents": spec["documents"], "figures": figures, "unit": "MB (10^6 bytes)"}


def report(result: dict[str, Any]) -> str:
    rss, tm = result["figures"]["rss"], result["figures"]["tracemalloc"]
    docs = ", ".join(f"{d / MB:.1f}" for d in result["documents"])
    return (f"{result['name']}: {result['value']:.1f} MB, goal ≤ {TARGET_MB:g} (alarm > {ALARM_MB:g})  "
            f"[{result['verdict']}]\n"
            f"  VmHWM − VmRSS {rss['extra'] / MB:.1f} MB (absolute VmHWM {rss['peak'] / MB:.1f} MB from "
            f"{rss['before'] / MB:.1f} MB; peak reset: {rss['reset']}); tracemalloc {tm['extra'] / MB:.1f} MB\n"
            f"  documents (MB): {docs}; pack PDF {rss['pdf_bytes'] / MB:.1f} MB, {rss['pages']} pages")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(_child(sys.argv[2], Path(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=20.0, help="total size of the attached documents (MB)")
    args = parser.parse_args()
    os.chdir(REPO)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    result = run(args.mb)
    print(report(result))
    print(json.dumps({k: v for k, v in result.items() if k != "figures"} | {"figures": result["figures"]},
                     default=str))


if __name__ == "__main__":
    main()
