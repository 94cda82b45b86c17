"""Pack build ÷ a raw ReportLab render of the same story (issue 5).

A = what "Send the packs" does for one recipient, minus the email: read the child's current section versions
    and snapshot them through the receiving placement's need-to-know profile (`packs.build`), read and decrypt the
    photo and the attached documents (`packs.materialise`), render with the project's page furniture and
    "Page N of M" canvas (`render_pack`), envelope-encrypt and store the PDF and the snapshot as blobs, commit.
A+ = the same plus the AES-256 (R6) PDF with the documents appended and marked (`encrypt_pack` with
    `appendix_stamp`), as issued.
B = a bare `SimpleDocTemplate(...).build(build_story(doc))` of the identical story (no header/footer, no page
    numbers, no snapshot, no storage), with the project's fonts.
Goals: A ÷ B ≤ 1.2 and A+ ÷ B ≤ 1.4 (alarm 1.5 / 2.0). Interleaved A, A+, B; ratios per round.

The child is the demo's Amira (every section filled, a photo, documents), moving to a children's home; the app
runs with test settings against a migrated SQLite file in a temporary folder.

    .venv/bin/python bench/b_pack_build.py [--n 15] [--warmup 2] [--national /tmp/national/env.sh]

--national builds the pack of the typical worker's child in a database made by bench/national.py (an env.sh, a
SQLite file or a URL, see national.open_target), for the first recipient of that child's latest sent transition
(the receiving placement or ward when there is one); the blobs it stores are deleted again at the end.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ratio import fmt_ratio, interleaved, ratios, verdict  # noqa: E402

TARGET, ALARM = 1.2, 1.5
TARGET_AES, ALARM_AES = 1.4, 2.0


def _setup(tmp: Path) -> tuple[Any, Any, Any, Any]:
    from tests.conftest import migrate, test_environ
    from tests.integration.conftest import load_world, start
    from transitions.app import create_app
    from transitions.clock import FrozenClock
    from transitions.settings import load_settings

    settings = load_settings(test_environ(f"sqlite:///{tmp / 'bench.sqlite3'}", tmp / "instance"))
    clock = FrozenClock()
    app = create_app(settings, clock=clock)
    migrate(app)
    deps = app.extensions["transitions"]
    world = load_world(deps)
    transition_id = start(deps, world, "social_worker_south", "Amira", "emergency_move", "SC900003",
                          when=clock.now() + timedelta(hours=2), urgency="emergency", distance="no",
                          emergency_reason="Carers asked for her to leave tonight")
    return app, deps, world, transition_id


def _national_setup(target: str) -> tuple[Any, Any, Any, Any]:
    import national

    from transitions.app import create_app
    from transitions.settings import load_settings

    found = national.open_target(target)
    assert found.transition_id is not None, "the generated database names no transition with packs"
    app = create_app(load_settings(found.environ))
    return app, app.extensions["transitions"], None, found.transition_id


def run(n: int = 15, warmup: int = 2, national: str | None = None) -> dict[str, Any]:
    from reportlab.platypus import SimpleDocTemplate
    from sqlalchemy import select

    from transitions.models import Child, Organisation, Transition, TransitionRecipient
    from transitions.paths import PDF_FONTS_DIR
    from transitions.pdf import (
        appendix_stamp,
        build_story,
        encrypt_pack,
        load_fonts,
        new_pdf_password,
        render_pack,
        template_kwargs,
    )
    from transitions.pdf.document import to_json
    from transitions.services import packs, storage

    with tempfile.TemporaryDirectory() as folder:
        app, deps, _world, transition_id = _national_setup(national) if national else _setup(Path(folder))
        fonts = load_fonts(PDF_FONTS_DIR)
        stored: list[Any] = []
        with deps.db.transaction() as session:
            if national:
                first = ("receiving_placement", "hospital_ward", "tier4_unit")
                recipient_id = sorted(session.execute(select(TransitionRecipient.id, TransitionRecipient.recipient_type)
                                                      .where(TransitionRecipient.transition_id == transition_id,
                                                             TransitionRecipient.organisation_id.is_not(None))),
                                      key=lambda r: (r[1] not in first, r[1]))[0][0]
            else:
                recipient_id = session.scalars(select(TransitionRecipient.id).where(
                    TransitionRecipient.transition_id == transition_id,
                    TransitionRecipient.recipient_type == "receiving_placement")).one()

        def build_and_store(aes: bool) -> bytes:
            with deps.db.transaction() as session:
                transition = session.get(Transition, transition_id)
                recipient = session.get(TransitionRecipient, recipient_id)
                child = session.get(Child, transition.child_id)
                org = session.get(Organisation, recipient.organisation_id)
                built = packs.build(deps, session, child, transition, recipient, org, version=1,
                                    reference="HP-BENCH1")
                document = packs.materialise(deps, session, child, built)
                pdf = render_pack(document, fonts, max_pages=deps.settings.packs.max_pages)
                if aes:
                    pdf, _pages = encrypt_pack(pdf, new_pdf_password(), document.appendices,
                                               appendix_stamp(document, fonts))
                stored.append(storage.store_blob(deps, session, "pack-pdf", "application/pdf", pdf).id)
                stored.append(storage.store_blob(deps, session, "pack-snapshot", "application/json",
                                                 to_json(document)).id)
                return pdf

        with deps.db.transaction() as session:
            transition = session.get(Transition, transition_id)
            recipient = session.get(TransitionRecipient, recipient_id)
            child = session.get(Child, transition.child_id)
            org = session.get(Organisation, recipient.organisation_id)
            document = packs.materialise(deps, session, child, packs.build(
                deps, session, child, transition, recipient, org, version=1, reference="HP-BENCH1"))

        def raw() -> bytes:
            out = io.BytesIO()
            SimpleDocTemplate(out, **template_kwargs(document, fonts)).build(build_story(document, fonts))
            return out.getvalue()

        sizes = {"A": len(build_and_store(False)), "A+": len(build_and_store(True)), "B": len(raw())}
        started = time.perf_counter()
        a, a_aes, b = interleaved([lambda: build_and_store(False), lambda: build_and_store(True), raw], n, warmup)
        elapsed = time.perf_counter() - started
        if national:  # leave the shared database as it was
            from sqlalchemy import delete

            from transitions.models import StoredBlob

            with deps.db.transaction() as session:
                session.execute(delete(StoredBlob).where(StoredBlob.id.in_(stored)))
        app.extensions["transitions"].db.dispose()
    plain, aes = ratios(a, b), ratios(a_aes, b)
    suffix = " (national)" if national else ""
    plain.update(name="pack build ÷ raw ReportLab render" + suffix, target=TARGET, alarm=ALARM,
                 verdict=verdict(plain["ratio"]["median"], TARGET, ALARM), unit="s")
    aes.update(name="pack build with the AES-256 PDF ÷ raw ReportLab render" + suffix, target=TARGET_AES,
               alarm=ALARM_AES,
               verdict=verdict(aes["ratio"]["median"], TARGET_AES, ALARM_AES), unit="s")
    return {"pack_build": plain, "pack_build_aes": aes, "sizes": sizes, "seconds": elapsed,
            "database": deps.db.dialect + (" national" if national else " demo"),
            "appendices": len(document.appendices), "sections": len(document.sections)}


def report(results: dict[str, Any]) -> str:
    p, a, s = results["pack_build"], results["pack_build_aes"], results["sizes"]
    return (f"[{results['database']}] pack build ÷ raw render: {fmt_ratio(p)}  goal ≤ {TARGET} (alarm > {ALARM})  "
            f"[{p['verdict']}]\n"
            f"pack build + AES-256 PDF ÷ raw render: {fmt_ratio(a)}  goal ≤ {TARGET_AES} (alarm > {ALARM_AES})  "
            f"[{a['verdict']}]\n"
            f"  medians: build {p['a_med'] * 1e3:.0f} ms, build + AES {a['a_med'] * 1e3:.0f} ms, raw render "
            f"{p['b_med'] * 1e3:.0f} ms; {results['sections']} sections, {results['appendices']} documents appended "
            f"in the AES step; PDF bytes: A {s['A']}, A+ {s['A+']}, B {s['B']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--national", metavar="ENV_SH|SQLITE|URL", help="a database made by bench/national.py")
    args = parser.parse_args()
    os.chdir(REPO)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    print(report(run(args.n, args.warmup, args.national)))


if __name__ == "__main__":
    main()
