"""L9: whole-process wall time of a CLI command that makes no PDF, divided by importing the stack.

A = .venv/bin/cla-transitions audit-verify   (test-mode env, migrated SQLite in a temp dir, a seeded audit
                                               chain of --events events, so the command does real work)
B = .venv/bin/python -c "import flask, sqlalchemy, reportlab, cryptography"   (the startup floor)
C = .venv/bin/python -c pass                  (interpreter start, for orientation only)

Interleaved A, B, C per round; 2 untimed warm-up rounds; ratio = median of per-round A/B. Goal <= 1.3
(alarm > 2.2). Then one `python -X importtime` run of the same command lists the heaviest imports.

    .venv/bin/python bench/b_startup.py [--n 15] [--warmup 2] [--events 500] [--top 12]
    .venv/bin/python bench/b_startup.py --national /tmp/national/env.sh [--n 5] [--warmup 1]

--national runs A against a database made by bench/national.py (an env.sh, a SQLite file or a URL, see
national.open_target) instead of a seeded 500-event one, so the chain is the national one (each run also adds the
check's own audit event, as in production); the import profile is skipped (it is the same as without).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ratio import fmt_ratio, interleaved, ratios, summarise, verdict  # noqa: E402

TARGET, ALARM = 1.3, 2.2
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")
CLI = str(VENV_BIN / "cla-transitions")
STACK = "import flask, sqlalchemy, reportlab, cryptography"
# Same entry point as the console script, so -X importtime sees exactly what `cla-transitions` imports.
CLI_AS_C = "import sys; from transitions.cli import main; sys.exit(main())"


def prepare(tmp_path: Path, events: int) -> dict[str, str]:
    """A migrated SQLite database with `events` audit events; returns the environment for the CLI."""
    from tests.conftest import migrate, test_environ
    from transitions.app import create_app
    from transitions.services import audit
    from transitions.settings import load_settings

    environ = test_environ(f"sqlite:///{tmp_path / 'bench.sqlite3'}", tmp_path / "instance")
    app = create_app(load_settings(environ))
    migrate(app)
    deps = app.extensions["transitions"]
    try:
        actor = audit.Actor.system("bench")
        with deps.db.transaction() as session:
            for i in range(events):
                audit.record(session, deps.audit_chain, deps.clock, actor, "bench.seed",
                             object_type="bench", object_id=i, details={"role": "bench"})
    finally:
        deps.db.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRANSITIONS_", "FLASK_"))}
    env.update(environ)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def _runner(argv: list[str], env: dict[str, str], cwd: str, expect: str | None = None) -> Any:
    def run() -> None:
        proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
        assert proc.returncode == 0, (argv, proc.returncode, proc.stderr[-2000:])
        if expect is not None:
            assert expect in proc.stdout, (argv, proc.stdout, proc.stderr[-2000:])
    return run


_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


def parse_importtime(stderr: str) -> list[dict[str, Any]]:
    """Parse -X importtime output into entries with self/cumulative µs, depth and the importing module.

    Lines come in post-order (children first, indented deeper), so a line's parent is the next line
    printed at a shallower depth.
    """
    rows = []
    for line in stderr.splitlines():
        m = _LINE.match(line)
        if m:
            rows.append({"self_us": int(m[1]), "cum_us": int(m[2]), "depth": (len(m[3]) - 1) // 2,
                         "module": m[4], "parent": None})
    pending: list[dict[str, Any]] = []  # children waiting for their parent, deepest last
    for row in rows:
        while pending and pending[-1]["depth"] > row["depth"]:
            pending.pop()["parent"] = row["module"]
        pending.append(row)
    return rows


def _importtime(code: str, args: list[str], env: dict[str, str], cwd: str, expect: str | None,
                runs: int = 3) -> list[dict[str, Any]]:
    """-X importtime `runs` times; each module's self and cumulative µs is the median over the runs."""
    samples: list[list[dict[str, Any]]] = []
    for _ in range(runs):
        proc = subprocess.run([PYTHON, "-X", "importtime", "-c", code, *args], env=env, cwd=cwd,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert expect is None or expect in proc.stdout, (proc.stdout, proc.stderr[-2000:])
        samples.append(parse_importtime(proc.stderr))
    seen: dict[str, list[dict[str, Any]]] = {}
    for rows in samples:
        for r in rows:
            seen.setdefault(r["module"], []).append(r)
    merged = []
    for r in samples[0]:
        rs = seen[r["module"]]
        merged.append({**r, "self_us": int(statistics.median(x["self_us"] for x in rs)),
                       "cum_us": int(statistics.median(x["cum_us"] for x in rs))})
    return merged


def excess_by_trigger(rows: list[dict[str, Any]], floor: set[str]) -> list[dict[str, Any]]:
    """Self time of modules the CLI imports but the stack import (B) does not, grouped by what triggered them.

    The trigger is the nearest transitions.* module on the import path together with the third-party
    module it imported; modules imported at run time outside any transitions import (e.g. Flask's
    plugin loader, which loads the flask.commands entry points such as flask_limiter.commands -> rich) are
    grouped under their outermost module as "<runtime>".
    """
    by_name = {r["module"]: r for r in rows}
    groups: dict[tuple[str, str], int] = {}
    for r in rows:
        if r["module"] in floor:
            continue
        if r["module"].startswith("transitions"):
            key = (r["module"], "(own module body)")
        else:
            child, node, key = r, by_name.get(r["parent"] or ""), None
            while node is not None:
                if node["module"].startswith("transitions"):
                    key = (node["module"], child["module"])
                    break
                child, node = node, by_name.get(node["parent"] or "")
            if key is None:
                key = ("<runtime>", child["module"])
        groups[key] = groups.get(key, 0) + r["self_us"]
    out = [{"importer": k[0], "module": k[1], "self_us": v} for k, v in groups.items()]
    return sorted(out, key=lambda g: g["self_us"], reverse=True)


def import_profile(env: dict[str, str], cwd: str, top: int, expect: str) -> dict[str, Any]:
    rows = _importtime(CLI_AS_C, ["audit-verify"], env, cwd, expect)
    floor_rows = _importtime(STACK, [], env, cwd, None)
    floor = {r["module"] for r in floor_rows}
    by_cum = sorted(rows, key=lambda r: r["cum_us"], reverse=True)
    # Third-party packages pulled in directly by one of our modules: these are the lazy-import candidates.
    edges = [r for r in rows if (r["parent"] or "").startswith("transitions")
             and not r["module"].startswith("transitions")]
    edges.sort(key=lambda r: r["cum_us"], reverse=True)
    total = sum(r["cum_us"] for r in rows if r["depth"] == 0)
    excess = excess_by_trigger(rows, floor)
    return {"total_import_us": total, "floor_import_us": sum(r["cum_us"] for r in floor_rows if r["depth"] == 0),
            "excess_import_us": sum(g["self_us"] for g in excess),
            "heaviest": by_cum[:top], "external_from_transitions": edges[:top], "excess_by_trigger": excess[:top]}


def _national_env(target: str) -> tuple[dict[str, str], int]:
    """The environment of a generated national database and how many audit events it holds now."""
    import national
    from sqlalchemy import create_engine, text

    environ = national.open_target(target).environ
    engine = create_engine(environ["TRANSITIONS_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            count = int(conn.execute(text("SELECT COUNT(*) FROM audit_event")).scalar() or 0)
    finally:
        engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRANSITIONS_", "FLASK_"))}
    env.update(environ)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env, count


def run(n: int = 15, warmup: int = 2, events: int = 500, top: int = 12, national: str | None = None
        ) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        # Each run records its own check (audit_views.record_check), so the count grows by one per run.
        expect = "Audit chain intact: "
        if national:
            env, events = _national_env(national)
        else:
            env = prepare(Path(tmp), events)
        a = _runner([CLI, "audit-verify"], env, tmp, expect)
        b = _runner([PYTHON, "-c", STACK], env, tmp)
        c = _runner([PYTHON, "-c", "pass"], env, tmp)
        sa, sb, sc = interleaved([a, b, c], n=n, warmup=warmup)
        profile = None if national else import_profile(env, tmp, top, expect)
    result = ratios(sa, sb)
    med = result["ratio"]["median"]
    result.update(
        name="L9 cla-transitions audit-verify ÷ import stack" + (" (national)" if national else ""),
        target=TARGET,
        alarm=ALARM,
        verdict=verdict(med, TARGET, ALARM),
        c_python_pass=summarise(sc),
        a_over_c=ratios(sa, sc)["ratio"],
        events=events,
        events_per_second=events / summarise(sa)["median"],
        database=env["TRANSITIONS_DATABASE_URL"].split(":", 1)[0] + (" national" if national else " seeded"),
        importtime=profile,
        unit="s",
    )
    return result


def report(result: dict[str, Any]) -> str:
    ms = 1e3
    prof = result["importtime"]
    lines = [
        f"audit-verify ÷ import stack ({result['database']}, {result['events']:,} events): {fmt_ratio(result)}  "
        f"goal ≤ {TARGET} (alarm > {ALARM})  [{result['verdict']}]",
        f"  A audit-verify {result['a_med'] * ms:.0f} ms | B import stack {result['b_med'] * ms:.0f} ms | "
        f"C python -c pass {result['c_python_pass']['median'] * ms:.0f} ms  "
        f"(A−B ≈ {(result['a_med'] - result['b_med']) * ms:.0f} ms; {result['events_per_second']:,.0f} events/s "
        f"over the whole command)",
    ]
    if prof is None:
        return "\n".join(lines)
    lines += [
        f"  -X importtime (median of 3 runs each, inflated by the profiler): "
        f"CLI {prof['total_import_us'] / 1e3:.0f} ms of imports, stack {prof['floor_import_us'] / 1e3:.0f} ms; "
        f"modules the stack does not load: "
        f"{prof['excess_import_us'] / 1e3:.0f} ms self time",
        f"  {len(prof['heaviest'])} heaviest cumulative imports:",
    ]
    for r in prof["heaviest"]:
        lines.append(f"    {r['cum_us'] / 1e3:7.1f} ms  {r['module']:<40} (imported by {r['parent'] or '-'})")
    lines.append("  heaviest third-party imports made directly by transitions.* modules:")
    for r in prof["external_from_transitions"]:
        lines.append(f"    {r['cum_us'] / 1e3:7.1f} ms  {r['module']:<40} ← {r['parent']}")
    lines.append("  imports the stack does not need, by trigger (self ms: importer → module):")
    for g in prof["excess_by_trigger"]:
        lines.append(f"    {g['self_us'] / 1e3:7.1f} ms  {g['importer']} → {g['module']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--national", metavar="ENV_SH|SQLITE|URL", help="a database made by bench/national.py")
    args = parser.parse_args()
    print(report(run(args.n, args.warmup, args.events, args.top, args.national)))


if __name__ == "__main__":
    main()
