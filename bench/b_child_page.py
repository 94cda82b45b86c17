"""L2/L3: the child's page with 50 versions of every section ÷ the same page with 1; photo cleaning ÷ Pillow floor.

1. L2/L3 child page (same app, same signed-in social worker, interleaved):
   A = test-client GET /children/<id> for a child whose 14 sections each have 50 versions;
   B = the same GET for a child with 1 version per section.
   Each timed sample is 10 GETs in a row (one GET is only about 10 ms); A and B samples alternate.
   Both children get the same demo content (transitions/services/demo_children.py `_fill_sections`, including a
   photo, documents and a restricted contact). The extra 49 versions per section are written with
   `sections.add_version`, with dates from `_content` shifted day by day; the 50th equals the 1st, so both pages
   show the same thing. Time ratio goal <= 1.1 (alarm > 1.5). SQL statements per GET are counted with a
   `before_cursor_execute` listener on `deps.db.engine`: their ratio must be exactly 1.0 (any growth = ALARM).
2. Photo cleaning:
   A = transitions.uploads.clean_photo(data) on a 3000×4000 JPEG (about 3 MB, EXIF with orientation 6 and GPS);
   B = the unavoidable work: Image.open(data).load() + ImageOps.exif_transpose + thumbnail((2000, 2000)) + save
       as JPEG quality 85, on the same bytes. Goal <= 1.3 (alarm > 2.0).

The app runs with TRANSITIONS_ENV=test settings and a FrozenClock (never advanced past the session idle time),
against a migrated SQLite file in a temporary folder.

    .venv/bin/python bench/b_child_page.py [--n 15] [--warmup 2] [--only page|photo]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ratio import fmt_ratio, paired, verdict  # noqa: E402

TARGET, ALARM = 1.1, 1.5  # child page: 50 versions ÷ 1 version per section (time)
PHOTO_TARGET, PHOTO_ALARM = 1.3, 2.0  # clean_photo ÷ Pillow floor
VERSIONS = 50
GETS_PER_SAMPLE = 10  # one GET is about 10 ms: each timed sample is 10 GETs in a row, to damp single-call noise
PHOTO_SIZE = (3000, 4000)  # width × height as stored; EXIF orientation 6 turns it upright to 4000 × 3000


# ---- 1. the child's page ----------------------------------------------------------------------------------


def _make_child(deps: Any, worker: Any, nurse: Any, actor: Any, *, name: str, nhs: str, la_child_id: str,
                versions: int) -> Any:
    """A child with the demo content in every section, then versions 2..`versions` of every section."""
    from sqlalchemy import select

    from tests.integration.test_child_record import profile_input
    from transitions.models import Child, SectionVersion
    from transitions.services import children
    from transitions.services.demo_children import CHILDREN, _content, _fill_sections
    from transitions.services.sections import add_version

    child_id = children.create_child(deps, profile_input(deps, team_id=worker.team_id, worker_id=worker.id, name=name,
                                                         nhs=nhs, la_child_id=la_child_id), worker, actor)
    today = deps.clock.now().date()
    spec = dict(CHILDREN[0], restricted=True)  # full record, CAMHS open, a current photo, a restricted contact
    with deps.db.transaction() as session:
        _fill_sections(deps, session, session.get(Child, child_id), spec, 0, worker, nurse, actor, today)
    with deps.db.transaction() as session:
        first = {v.section_code: json.loads(v.content or "{}") for v in session.scalars(select(SectionVersion).where(
            SectionVersion.child_id == child_id, SectionVersion.is_current.is_(True)))}
    for n in range(2, versions + 1):
        with deps.db.transaction() as session:
            child = session.get(Child, child_id)
            current = {v.section_code: v for v in session.scalars(select(SectionVersion).where(
                SectionVersion.child_id == child_id, SectionVersion.is_current.is_(True)))}
            for section in deps.definitions.ordered():
                # In between: the first version with every demo field re-dated; the last one equals the first.
                content = first[section.code] if n == versions else {
                    **first[section.code], **_content(section, today - timedelta(days=versions - n), False)}
                author = nurse if "cla_nurse" in section.edited_by else worker
                add_version(deps, session, child, section, json.loads(json.dumps(content)), current[section.code],
                             "edit", author, actor)
    return child_id


def _version_counts(deps: Any, child_id: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    from transitions.models import SectionVersion

    with deps.db.transaction() as session:
        rows = session.execute(select(SectionVersion.section_code, func.count()).where(
            SectionVersion.child_id == child_id).group_by(SectionVersion.section_code)).all()
    return {code: int(count) for code, count in rows}


def run_page(n: int = 15, warmup: int = 2) -> dict[str, Any]:
    from tests.conftest import Browser, make_staff, migrate, sign_in, test_environ
    from transitions.app import create_app
    from transitions.clock import FrozenClock
    from transitions.services import accounts, organisations
    from transitions.services.audit import Actor
    from transitions.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="bench-child-page-") as tmp:
        tmp_path = Path(tmp)
        settings = load_settings(test_environ(f"sqlite:///{tmp_path / 'bench.sqlite3'}", tmp_path / "instance"))
        assert settings.env == "test"
        clock = FrozenClock()
        app = create_app(settings, clock=clock)
        migrate(app)
        deps = app.extensions["transitions"]
        try:
            organisations.seed_reference(deps, Actor.system("bench"))
            worker_account = make_staff(deps, role="social_worker", team="North")
            nurse_account = make_staff(deps, role="cla_nurse")
            worker = accounts.get_user(deps, worker_account.id)
            nurse = accounts.get_user(deps, nurse_account.id)
            actor = Actor("staff", str(worker.id))
            many = _make_child(deps, worker, nurse, actor, name="Jade Many", nhs="9990000999", la_child_id="LCS-A",
                               versions=VERSIONS)
            one = _make_child(deps, worker, nurse, actor, name="Leo One", nhs="9990001073", la_child_id="LCS-B",
                              versions=1)
            counts_many, counts_one = _version_counts(deps, many), _version_counts(deps, one)
            sections = len(deps.definitions.ordered())
            assert len(counts_many) == len(counts_one) == sections, (counts_many, counts_one)
            assert set(counts_many.values()) == {VERSIONS} and set(counts_one.values()) == {1}

            app.test_client_class = Browser
            client = app.test_client()
            sign_in(client, worker_account, clock)  # advances the frozen clock 30 s; it never moves again
            url_many, url_one = f"/children/{many}", f"/children/{one}"
            client.get(url_one)  # the first page after signing in also refreshes the session: not counted
            pages = {url_many: client.get(url_many).get_data(as_text=True),
                     url_one: client.get(url_one).get_data(as_text=True)}
            for url, name in ((url_many, "Jade"), (url_one, "Leo")):
                html = pages[url]
                assert name in html, url
                assert "Restricted contacts" in html and "app-child-photo" in html, url

            def get(url: str, times: int = 1) -> Any:
                def gets() -> None:
                    for _ in range(times):
                        response = client.get(url)
                        assert response.status_code == 200, (url, response.status_code)
                return gets

            statements = {"a": _count_statements(deps, get(url_many)), "b": _count_statements(deps, get(url_one))}
            result = paired(get(url_many, GETS_PER_SAMPLE), get(url_one, GETS_PER_SAMPLE), n=n, warmup=warmup)
            after = {"a": _count_statements(deps, get(url_many)), "b": _count_statements(deps, get(url_one))}
            assert after == statements, f"statement counts moved during the run: {statements} then {after}"
        finally:
            deps.db.dispose()

    statements["ratio"] = statements["a"] / statements["b"]
    result["a_med"] /= GETS_PER_SAMPLE  # per GET, for the table; the ratios are unchanged
    result["b_med"] /= GETS_PER_SAMPLE
    med = result["ratio"]["median"]
    result.update(
        name=f"L2/L3 child page, {VERSIONS} versions ÷ 1 version per section",
        target=TARGET,
        alarm=ALARM,
        verdict="ALARM" if statements["ratio"] != 1.0 else verdict(med, TARGET, ALARM),
        statements=statements,
        sections=sections,
        versions={"a": VERSIONS, "b": 1},
        gets_per_sample=GETS_PER_SAMPLE,
        pairs_unit=f"s per {GETS_PER_SAMPLE} GETs (a_med and b_med are per GET)",
        html_bytes={"a": len(pages[url_many].encode()), "b": len(pages[url_one].encode())},
        unit="s",
    )
    return result


def _count_statements(deps: Any, fn: Any) -> int:
    from sqlalchemy import event

    seen: list[str] = []

    def count_statement(*args: Any, **kwargs: Any) -> None:
        seen.append(args[2])

    event.listen(deps.db.engine, "before_cursor_execute", count_statement)
    try:
        fn()
    finally:
        event.remove(deps.db.engine, "before_cursor_execute", count_statement)
    return len(seen)


# ---- 2. photo cleaning ------------------------------------------------------------------------------------


def phone_photo(size: tuple[int, int] = PHOTO_SIZE, quality: int = 90) -> bytes:
    """A 12-megapixel JPEG that compresses like a photo (gradients + noise, about 3 MB), with phone-like EXIF:
    orientation 6 (rotate 90°), make, model, date taken and GPS position."""
    from PIL import Image

    width, height = size
    channels = []
    gradients = (Image.linear_gradient("L"), Image.radial_gradient("L"),
                 Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90))
    for gradient in gradients:
        channels.append(Image.blend(gradient.resize(size), Image.effect_noise(size, 25), 0.3))
    image = Image.merge("RGB", channels)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to view
    exif[0x010F] = "DemoPhone"
    exif[0x0110] = "DemoPhone 12"
    exif[0x0132] = "2026:11:25 09:00:00"
    exif.get_ifd(0x8769)[0x9003] = "2026:11:25 09:00:00"  # DateTimeOriginal
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (54.0, 53.0, 30.5), 3: "W", 4: (2.0, 56.0, 1.2)})
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, exif=exif.tobytes())
    assert (width, height) == image.size
    return out.getvalue()


def pillow_floor(data: bytes) -> bytes:
    """The work any photo clean-up must do: decode, turn upright, scale to 2000 px, encode JPEG q85."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as img:
        img.load()
        upright = ImageOps.exif_transpose(img)
        upright.thumbnail((2000, 2000))
        out = io.BytesIO()
        upright.save(out, "JPEG", quality=85)
    return out.getvalue()


def run_photo(n: int = 15, warmup: int = 2) -> dict[str, Any]:
    from PIL import Image

    from transitions.uploads import clean_photo

    data = phone_photo()
    with Image.open(io.BytesIO(data)) as probe:
        assert probe.size == PHOTO_SIZE and probe.getexif().get(0x0112) == 6
    cleaned = clean_photo(data)
    floor = pillow_floor(data)
    with Image.open(io.BytesIO(floor)) as img:
        floor_size = img.size
    assert (cleaned.width, cleaned.height) == floor_size == (2000, 1500), ((cleaned.width, cleaned.height),
                                                                          floor_size)

    def one_clean() -> None:
        assert clean_photo(data).width == 2000

    def one_floor() -> None:
        pillow_floor(data)

    result = paired(one_clean, one_floor, n=n, warmup=warmup)
    med = result["ratio"]["median"]
    result.update(
        name="photo cleaning: clean_photo ÷ Pillow decode+transpose+thumbnail+save",
        target=PHOTO_TARGET,
        alarm=PHOTO_ALARM,
        verdict=verdict(med, PHOTO_TARGET, PHOTO_ALARM),
        input_bytes=len(data),
        output_bytes={"a": len(cleaned.data), "b": len(floor)},
        pixels={"in": PHOTO_SIZE, "out": floor_size},
        unit="s",
    )
    return result


# ---- both -------------------------------------------------------------------------------------------------


def run(n: int = 15, warmup: int = 2, only: str | None = None) -> dict[str, Any]:
    """{"L2_child_page": ..., "photo_clean": ...}: each value has the shape run_all.py tabulates."""
    results: dict[str, Any] = {}
    if only in (None, "page"):
        results["L2_child_page"] = run_page(n, warmup)
    if only in (None, "photo"):
        results["photo_clean"] = run_photo(n, warmup)
    return results


def report_page(result: dict[str, Any]) -> str:
    s = result["statements"]
    return (f"child page {VERSIONS} versions ÷ 1 version per section: {fmt_ratio(result)}  goal ≤ {TARGET} "
            f"(alarm > {ALARM})  [{result['verdict']}]\n"
            f"  GET median {result['a_med'] * 1e3:.1f} ms ({VERSIONS} versions) vs {result['b_med'] * 1e3:.1f} ms "
            f"(1 version), {result['sections']} sections\n"
            f"  SQL statements per GET: {s['a']} ({VERSIONS} versions) vs {s['b']} (1 version), "
            f"ratio {s['ratio']:.3f} (must be 1.0)")


def report_photo(result: dict[str, Any]) -> str:
    out = result["output_bytes"]
    return (f"clean_photo ÷ Pillow floor: {fmt_ratio(result)}  goal ≤ {PHOTO_TARGET} (alarm > {PHOTO_ALARM})  "
            f"[{result['verdict']}]\n"
            f"  clean_photo median {result['a_med'] * 1e3:.0f} ms, floor median {result['b_med'] * 1e3:.0f} ms; "
            f"input {result['input_bytes'] / 1e6:.2f} MB {PHOTO_SIZE[0]}×{PHOTO_SIZE[1]}, output "
            f"{out['a'] / 1e3:.0f} KB vs {out['b'] / 1e3:.0f} KB at {result['pixels']['out'][0]}×"
            f"{result['pixels']['out'][1]}")


def report(results: dict[str, Any]) -> str:
    parts = []
    if "L2_child_page" in results:
        parts.append(report_page(results["L2_child_page"]))
    if "photo_clean" in results:
        parts.append(report_photo(results["photo_clean"]))
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--only", choices=("page", "photo"), default=None)
    args = parser.parse_args()
    os.chdir(REPO)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    print(report(run(args.n, args.warmup, args.only)))


if __name__ == "__main__":
    main()
