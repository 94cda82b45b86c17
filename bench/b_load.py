"""Load: recipients verifying codes while staff edit records, for longer than the CI test (issue 7 item 6).

The scenario is tests/security/load_scenario.py, the same code tests/security/test_load.py asserts in CI:
a real `gunicorn -k sync -w 2` over TLS on loopback, the real aiosmtpd SMTP sink, the demo world plus
Amira's emergency move (14 secure links), and at once:
- 12 recipients, one thread and cookie jar each: landing page, "Send me a code", the code from the emailed
  message, the pack, the PDF, "Confirm receipt" (some mistype the code, some double-click the confirmation),
  then `--readers` tabs re-reading the pack every `--think` seconds until the time is up;
- a guesser (5 wrong codes at once, three times; a 4th code refused; 4 tabs of wrong codes until the link's
  entry limit) and a presser (5 "Send me a code" presses at once, three rounds; the 4th refused) on two links;
- staff signed in with password and authenticator code: two saving the same child's "All about me" at the same
  moment over and over (one must be told of the other's save), three more each saving their own child's;
- two tabs hammering one account's sign-in with a wrong password; three other accounts sign in once it is locked.

It prints requests by route and status with p50/p99, throughput, the 429s by link and account, and the problems
`check` finds (5xx, a limit that leaked to another link or account, a lost save or confirmation, a code emailed
twice or not at all). Exit status 1 if there is any problem. Absolute figures depend on the machine's load:
read them as orientation (the other benchmarks' ratio method does not apply to a pass/fail scenario).

    .venv/bin/python bench/b_load.py [--seconds 60] [--workers 2] [--readers 1] [--think 0] [--pairs 1]
                                     [--solos 3] [--postgres] [--json out.json]

--postgres uses a fresh database on the server in TRANSITIONS_TEST_POSTGRES_URL (as the tests do), else SQLite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def run(seconds: float = 60, *, workers: int = 2, readers: int = 1, think: float = 0.0, pairs: int = 1,
        solos: int = 3, postgres: bool = False) -> dict[str, Any]:
    from tests import conftest
    from tests.security.load_scenario import check, figures, load_server, prepare, report, run_load, smtp_sink

    if postgres and not conftest.POSTGRES_URL:
        raise SystemExit("--postgres needs TRANSITIONS_TEST_POSTGRES_URL (an admin URL, as for the tests)")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, smtp_sink() as sink, contextlib.ExitStack() as stack:
        tmp = Path(folder)
        url = (stack.enter_context(conftest.postgres_database()) if postgres
               else f"sqlite:///{tmp / 'load.sqlite3'}")
        with load_server(tmp, url, sink, workers=workers) as server:
            world = prepare(server, sink, pairs=pairs, solos=solos)
            server.wait_ready()
            setup = time.perf_counter() - started
            result = run_load(server, sink, world, seconds=seconds, think=think, readers=readers)
            problems = check(result)
    out = figures(result)
    out.update(name="load: problems (5xx, leaked limits, lost data)", value=len(problems), target=0, alarm=0,
               verdict="ALARM" if problems else "OK", problems=problems, text=report(result),
               setup_seconds=round(setup, 1), database="postgresql" if postgres else "sqlite",
               options={"seconds": seconds, "workers": workers, "readers": readers, "think": think,
                        "pairs": pairs, "solos": solos})
    return out


def report_figures(out: dict[str, Any]) -> str:
    problems = "\n".join(f"  PROBLEM: {p}" for p in out["problems"]) or "  no problems found"
    return (f"{out['database']}, {out['options']}, set-up {out['setup_seconds']} s\n{out['text']}\n{problems}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="how long staff edit and recipients re-read")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (production: 2)")
    parser.add_argument("--readers", type=int, default=1, help="tabs re-reading each confirmed pack")
    parser.add_argument("--think", type=float, default=0.0, help="seconds between a reader's requests")
    parser.add_argument("--pairs", type=int, default=1, help="records two staff save at the same moment (≤ 4)")
    parser.add_argument("--solos", type=int, default=3, help="records one member of staff saves (pairs + solos ≤ 4)")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL (TRANSITIONS_TEST_POSTGRES_URL)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    out = run(args.seconds, workers=args.workers, readers=args.readers, think=args.think, pairs=args.pairs,
              solos=args.solos, postgres=args.postgres)
    print(report_figures(out))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    return 1 if out["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
