"""Run every benchmark, print the ratio table and write bench/results/<UTC timestamp>.json.

    .venv/bin/python bench/run_all.py            # n=15 pairs after 2 warm-ups (about 2–3 minutes)
    .venv/bin/python bench/run_all.py --quick    # n=5 after 1 warm-up, for a smoke test
    .venv/bin/python bench/run_all.py --check    # also exit 1 if any ratio is past its alarm level

Results are advisory: on a shared, noisy machine only the paired ratios mean anything (performance.md §2).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import b_blob_crypto  # noqa: E402
import b_child_page  # noqa: E402
import b_follow_up  # noqa: E402
import b_http  # noqa: E402
import b_load  # noqa: E402
import b_login  # noqa: E402
import b_pack_build  # noqa: E402
import b_pack_memory  # noqa: E402
import b_pages  # noqa: E402
import b_pdf_render  # noqa: E402
import b_startup  # noqa: E402

RESULTS = REPO / "bench" / "results"


def _meta() -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=False).stdout.strip()
    except OSError:
        commit = ""
    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg(), "commit": commit}


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="n=5 pairs after 1 warm-up")
    parser.add_argument("--check", action="store_true", help="exit 1 if any ratio is past its alarm level")
    parser.add_argument("--http", action="store_true", help="also b_http.py: gunicorn + wrk, about 5 minutes")
    parser.add_argument("--load", action="store_true",
                        help="also b_load.py on SQLite: recipients and staff at once for 60 s (30 s with --quick)")
    parser.add_argument("--national", metavar="ENV_SH|SQLITE|URL",
                        help="also sign-in, audit-verify and pack build against a bench/national.py database")
    args = parser.parse_args()
    n, warmup = (5, 1) if args.quick else (15, 2)
    logging.getLogger("alembic").setLevel(logging.WARNING)

    meta = _meta()
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    results: dict[str, Any] = {}
    print(f"L9 startup (n={n}, warm-up {warmup}) ...", flush=True)
    results["L9_startup"] = b_startup.run(n=n, warmup=warmup)
    print(b_startup.report(results["L9_startup"]), flush=True)
    print(f"\nL8 sign-in (n={n}, warm-up {warmup}) ...", flush=True)
    results["L8_login"] = b_login.run(n=n, warmup=warmup)
    print(b_login.report(results["L8_login"]), flush=True)
    print(f"\nL2/L3 child page, {b_child_page.VERSIONS} versions ÷ 1 (n={n}, warm-up {warmup}) ...", flush=True)
    results["L2_child_page"] = b_child_page.run_page(n=n, warmup=warmup)
    print(b_child_page.report_page(results["L2_child_page"]), flush=True)
    print(f"\nphoto cleaning (n={n}, warm-up {warmup}) ...", flush=True)
    results["photo_clean"] = b_child_page.run_photo(n=n, warmup=warmup)
    print(b_child_page.report_photo(results["photo_clean"]), flush=True)
    print(f"\nL5 raw render, project ÷ default ReportLab install, {b_pdf_render.PAGES} pages "
          f"(n={n}, warm-up {warmup}) ...", flush=True)
    results["L5_pdf_render"] = b_pdf_render.run(n=n, warmup=warmup)
    print(b_pdf_render.report(results["L5_pdf_render"]), flush=True)
    print(f"\npack build ÷ raw render of the same story (n={n}, warm-up {warmup}) ...", flush=True)
    built = b_pack_build.run(n=n, warmup=warmup)
    print(b_pack_build.report(built), flush=True)
    results["pack_build"], results["pack_build_aes"] = built["pack_build"], built["pack_build_aes"]
    print(f"\ntick follow-up, steady state ÷ one query of the same packs (n={n}, warm-up {warmup}) ...", flush=True)
    followed = b_follow_up.run(n=n, warmup=warmup)
    print(b_follow_up.report(followed), flush=True)
    results["follow_up"] = followed["follow_up"]
    print(f"\nstaff pages ÷ reference pages, demo scale (n={n}, warm-up {warmup}) ...", flush=True)
    pages = b_pages.run(n=n, warmup=warmup)
    print(b_pages.report(pages), flush=True)
    results.update({f"pages {key}": value for key, value in pages.items()})
    sizes = "/".join(f"{s} MiB" for s in b_blob_crypto.SIZES_MIB)
    print(f"\nblob encryption, {sizes} (n={n}, warm-up {warmup}; memory: one fresh process per figure) ...", flush=True)
    blobs = b_blob_crypto.run(n=n, warmup=warmup)
    print(b_blob_crypto.report(blobs), flush=True)
    results.update(blobs)
    print("\npack issue with 20 MB of documents, peak memory (one fresh process per method) ...", flush=True)
    results["pack_memory"] = b_pack_memory.run()
    print(b_pack_memory.report(results["pack_memory"]), flush=True)
    if args.http:
        runs = 3 if args.quick else 5
        print(f"\nHTTP under wrk: dashboard national ÷ demo, landing ÷ hello ({runs} rounds of 10 s) ...", flush=True)
        http = b_http.run(runs=runs)
        print(b_http.report(http), flush=True)
        results["L10_landing"] = {**http["landing"], "http": {k: v for k, v in http.items() if k != "landing"}}
        if "dashboard" in http:
            results["L1_dashboard_p99"] = http["dashboard"]
    if args.national:
        print(f"\nthe same at national scale ({args.national}): audit-verify n=3, sign-in and pack build n={n} ...",
              flush=True)
        results["L9_startup_national"] = b_startup.run(n=3, warmup=1, national=args.national)
        print(b_startup.report(results["L9_startup_national"]), flush=True)
        results["L8_login_national"] = b_login.run(n=n, warmup=warmup, national=args.national)
        print(b_login.report(results["L8_login_national"]), flush=True)
        built = b_pack_build.run(n=n, warmup=warmup, national=args.national)
        print(b_pack_build.report(built), flush=True)
        results["pack_build_national"] = built["pack_build"]
        results["pack_build_aes_national"] = built["pack_build_aes"]
    if args.load:
        print(f"\nload: recipients verifying codes while staff edit ({30 if args.quick else 60} s) ...", flush=True)
        results["load"] = b_load.run(30 if args.quick else 60)
        print(b_load.report_figures(results["load"]), flush=True)
    meta.update(loadavg_end=os.getloadavg(), seconds=round(time.perf_counter() - t0, 1), quick=args.quick)

    print("\n| ratio | median [min–max] | n | A median | B median | goal | alarm | verdict |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results.values():
        if "ratio" not in r:
            continue
        q = r["ratio"]
        goal, alarm = ("≥", "<") if r.get("better") == "higher" else ("≤", ">")
        print(f"| {r['name']} | {q['median']:.3f} [{q['min']:.3f}–{q['max']:.3f}] | {r['n']} | "
              f"{_ms(r['a_med'])} | {_ms(r['b_med'])} | {goal} {r['target']} | {alarm} {r['alarm']} | {r['verdict']} |")
    for r in results.values():
        if "ratio" not in r:  # a single measured value, such as peak memory ÷ blob size
            print(f"{r['name']}: {r['value']:.3f}, goal ≤ {r['target']}, alarm > {r['alarm']} [{r['verdict']}]")
    for r in results.values():
        if "statements" in r:
            s = r["statements"]
            print(f"SQL statements per request, {r['name']}: {s['a']} ÷ {s['b']} = {s['ratio']:.3f} (must be 1.0)")
    print(f"(load average {meta['loadavg_start'][0]:.2f} → {meta['loadavg_end'][0]:.2f} on {meta['cpus']} CPUs; "
          "advisory figures, not a timed test)")

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{started:%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps({"started_utc": started.isoformat(), "meta": meta, "results": results},
                              indent=2, default=str))
    print(f"wrote {out.relative_to(REPO)}")
    if args.check and any(r["verdict"] == "ALARM" for r in results.values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
