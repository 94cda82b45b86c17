"""L5: the project's raw render of a 20-page pack ÷ a default ReportLab install's render of the same story.

A = ``transitions.pdf.render_pack(doc, fonts)``: the project's configuration (``harden_reportlab``: binary streams,
    ``useA85 = 0``, page compression on) with the ``rl_accel`` C extension from ``reportlab[accel]``.
B = the identical story (``build_story``, ``page_furniture``, ``pack_canvas``, ``template_kwargs``) built with a
    bare ``SimpleDocTemplate.build`` on a **default install**: ``rl_config`` untouched (``useA85 = 1``) and the
    accelerator blocked with ``sys.modules["_rl_accel"] = None`` before ReportLab is imported, which is how
    reportlab/lib/rl_accel.py falls back to its pure-Python functions.

Each side runs in a fresh subprocess (so the two configurations never meet in one interpreter). Inside it the
fixture is built and the fonts registered untimed, one untimed render warms up, then ``--renders`` renders are
timed with ``perf_counter`` around the render call only; the process's sample is their median. Processes
alternate A, B, A, B ...; the figure is the median of the per-pair ratios A/B, with its min–max and a
distribution-free 95% confidence interval for that median (order statistics of the binomial). The first (cold)
render of each process is reported too, for orientation.

The fixture is tests/unit/test_pdf.py's ``sample_document`` with 107 care-plan answers: exactly 20 A4 pages with
the first page, a summary section, the MISSING section on its own page, a restricted contact and documents.
``--photo stored`` (the default) is what the app stores: ``clean_photo`` of a 12-megapixel phone-like JPEG
(bench/b_child_page.py ``phone_photo``), 2000×1500 at quality 85; ``small`` is a flat 600×800 JPEG; ``none``
has no photo. Goal ≤ 0.45 (alarm > 0.8): performance.md §3 L5.

    .venv/bin/python bench/b_pdf_render.py [--n 15] [--warmup 2] [--renders 3] [--photo stored|small|none]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ratio import ratios, verdict  # noqa: E402

TARGET, ALARM = 0.45, 0.8
PAGES = 20
CARE_ITEMS = 107  # sample_document(care_items=107) is exactly 20 pages
PHOTOS = ("stored", "small", "none")


# ---- inside a subprocess: one side --------------------------------------------------------------------------


def child(side: str, photo_path: str, renders: int) -> None:
    """Time `renders` renders of the 20-page pack on one side; print one JSON line."""
    if side == "default":
        # Before any ReportLab import: reportlab/lib/rl_accel.py then falls back to its pure-Python functions.
        sys.modules["_rl_accel"] = None
    import io

    from reportlab import rl_config
    from reportlab.lib import rl_accel
    from reportlab.platypus import SimpleDocTemplate

    from tests.unit.test_pdf import sample_document
    from transitions.paths import PDF_FONTS_DIR
    from transitions.pdf import build_story, load_fonts, pack_canvas, page_furniture, render_pack, template_kwargs

    photo = Path(photo_path).read_bytes() if photo_path else None
    doc = sample_document(photo=photo, care_items=CARE_ITEMS)
    fonts = load_fonts(PDF_FONTS_DIR)

    def project() -> bytes:
        return render_pack(doc, fonts)

    def default() -> bytes:
        out = io.BytesIO()
        furniture = page_furniture(doc, fonts)
        SimpleDocTemplate(out, **template_kwargs(doc, fonts)).build(
            build_story(doc, fonts), onFirstPage=furniture, onLaterPages=furniture,
            canvasmaker=pack_canvas(doc, fonts))
        return out.getvalue()

    render = project if side == "project" else default
    times = []
    for _ in range(renders + 1):
        t0 = time.perf_counter()
        pdf = render()
        times.append(time.perf_counter() - t0)
    accelerated = rl_accel.fp_str.__module__ == "_rl_accel"
    pages = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))
    print(json.dumps({"side": side, "first": times[0], "times": times[1:], "bytes": len(pdf), "pages": pages,
                      "useA85": rl_config.useA85, "accel": accelerated, "ascii85": b"ASCII85Decode" in pdf}))


# ---- the parent: interleave processes -----------------------------------------------------------------------


def _photo_bytes(kind: str) -> bytes | None:
    if kind == "none":
        return None
    if kind == "small":
        from tests.unit.test_pdf import sample_photo

        return sample_photo()
    from b_child_page import phone_photo

    from transitions.uploads import clean_photo

    return clean_photo(phone_photo()).data


def _run_side(side: str, photo_path: str, renders: int) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", side, "--photo-path",
                           photo_path, "--renders", str(renders)], cwd=REPO, capture_output=True, text=True,
                          check=False, env={**os.environ, "PYTHONHASHSEED": "0"})
    if proc.returncode != 0:
        raise RuntimeError(f"{side} render failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def median_ci(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval for the median: the order statistics (k, n+1-k) with the largest
    k whose binomial(n, 1/2) coverage is still at least `confidence`. With n < 6 it is the whole range."""
    data = sorted(values)
    n = len(data)
    best = 1
    for k in range(1, n // 2 + 1):
        coverage = 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2**n
        if coverage >= confidence:
            best = k
    return data[best - 1], data[n - best]


def run(n: int = 15, warmup: int = 2, renders: int = 3, photo: str = "stored") -> dict[str, Any]:
    data = _photo_bytes(photo)
    with tempfile.TemporaryDirectory(prefix="bench-pdf-render-") as tmp:
        photo_path = ""
        if data is not None:
            photo_path = str(Path(tmp) / "photo.jpg")
            Path(photo_path).write_bytes(data)
        rounds: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for i in range(warmup + n):
            a = _run_side("project", photo_path, renders)
            b = _run_side("default", photo_path, renders)
            if i >= warmup:
                rounds.append((a, b))
    projects, defaults = [a for a, _ in rounds], [b for _, b in rounds]
    for a in projects:
        assert a["accel"] and a["useA85"] == 0 and not a["ascii85"], a
    for b in defaults:
        assert not b["accel"] and b["useA85"] == 1 and b["ascii85"], b
    assert {r["pages"] for r in projects + defaults} == {PAGES}, {r["pages"] for r in projects + defaults}
    a_samples = [statistics.median(a["times"]) for a in projects]
    b_samples = [statistics.median(b["times"]) for b in defaults]
    result = ratios(a_samples, b_samples)
    per_pair = [p["ratio"] for p in result["pairs"]]
    med = result["ratio"]["median"]
    result.update(
        name=f"L5 raw render, project ÷ default install, {PAGES} pages ({photo} photo)",
        target=TARGET,
        alarm=ALARM,
        verdict=verdict(med, TARGET, ALARM),
        ci95=median_ci(per_pair),
        first={"a": statistics.median(a["first"] for a in projects),
               "b": statistics.median(b["first"] for b in defaults)},
        pdf_bytes={"a": statistics.median(a["bytes"] for a in projects),
                   "b": statistics.median(b["bytes"] for b in defaults)},
        photo={"kind": photo, "bytes": len(data) if data else 0},
        renders_per_process=renders,
        pages=PAGES,
        unit="s",
    )
    return result


def report(result: dict[str, Any]) -> str:
    q, ci = result["ratio"], result["ci95"]
    size, first = result["pdf_bytes"], result["first"]
    return (f"{result['name']}: median {q['median']:.3f} [{q['min']:.3f}–{q['max']:.3f}], 95% CI of the median "
            f"[{ci[0]:.3f}–{ci[1]:.3f}] (n={result['n']})  goal ≤ {TARGET} (alarm > {ALARM})  "
            f"[{result['verdict']}]\n"
            f"  render median {result['a_med'] * 1e3:.1f} ms (project) vs {result['b_med'] * 1e3:.1f} ms (default), "
            f"first render in each process {first['a'] * 1e3:.0f} ms vs {first['b'] * 1e3:.0f} ms\n"
            f"  PDF {size['a'] / 1e3:.0f} KB (project) vs {size['b'] / 1e3:.0f} KB (default); photo "
            f"{result['photo']['bytes'] / 1e3:.0f} KB JPEG")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--renders", type=int, default=3, help="timed renders per process (after 1 untimed)")
    parser.add_argument("--photo", choices=PHOTOS, default="stored")
    parser.add_argument("--child", choices=("project", "default"), help=argparse.SUPPRESS)
    parser.add_argument("--photo-path", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.photo_path, args.renders)
        return
    os.chdir(REPO)
    print(report(run(args.n, args.warmup, args.renders, args.photo)))


if __name__ == "__main__":
    main()
