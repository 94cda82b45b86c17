"""Follow-up in `tick`, steady state ÷ the one query it cannot do without (issue 6).

A = `follow_up.run`: every minute, read the unconfirmed packs still followed and their claimed slots, work out
    each one's confirmation due time and slots, and find nothing new to send (the common case: every due slot
    is claimed, so no pack gets a transaction of its own), then settle escalations and withdraw queued emails
    of settled packs.
B = a single SELECT of the same packs joined to their recipients and transitions (what any follow-up must read).
The ratio is the price of the rules and the bookkeeping queries. Goal ≤ 4 (alarm > 10). (Before packs with
nothing due were skipped without a transaction each, it was 13.6.)

Four children's emergency moves are sent (about 40 packs), an hour passes and one run claims what is due.

    .venv/bin/python bench/b_follow_up.py [--n 15] [--warmup 2]
"""

from __future__ import annotations

import argparse
import logging
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

TARGET, ALARM = 4.0, 10.0
MOVES = (("Amira", "social_worker_south"), ("Tyler", "social_worker_south"), ("Jade", "social_worker"),
         ("Leo", "social_worker"))


def run(n: int = 15, warmup: int = 2) -> dict[str, Any]:
    from sqlalchemy import select

    from tests.conftest import migrate, test_environ
    from tests.integration.conftest import load_world, start
    from transitions.app import create_app
    from transitions.clock import FrozenClock
    from transitions.models import Pack, Transition, TransitionRecipient
    from transitions.services import follow_up
    from transitions.services import transitions as service
    from transitions.settings import load_settings

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        settings = load_settings(test_environ(f"sqlite:///{tmp / 'bench.sqlite3'}", tmp / "instance"))
        clock = FrozenClock()
        app = create_app(settings, clock=clock)
        migrate(app)
        deps = app.extensions["transitions"]
        world = load_world(deps)
        for child, worker in MOVES:
            transition_id = start(deps, world, worker, child, "emergency_move", "SC900003",
                                  when=clock.now() + timedelta(hours=2), urgency="emergency", distance="no",
                                  emergency_reason="The placement ended tonight after an incident")
            service.override_section(deps, transition_id, "PHOTO", "New photo to be taken on arrival",
                                     world.view(deps, "senior_manager"), world.actor("senior_manager"))
            service.change_status(deps, transition_id, "ready", "", None, world.view(deps, worker),
                                  world.actor(worker))
            service.change_status(deps, transition_id, "sent", "", None, world.view(deps, worker),
                                  world.actor(worker))
        clock.advance(hours=1)
        first = follow_up.run(deps)
        followed = follow_up.followed_count(deps)

        def steady() -> object:
            report = follow_up.run(deps)
            assert report.reminders == report.escalations == 0
            return report

        def one_query() -> object:
            with deps.db.transaction() as session:
                return session.execute(
                    select(Pack, TransitionRecipient, Transition)
                    .join(TransitionRecipient, TransitionRecipient.id == Pack.recipient_id)
                    .join(Transition, Transition.id == Pack.transition_id)
                    .where(Pack.confirmed_at.is_(None), Pack.revoked_at.is_(None))).all()

        started = time.perf_counter()
        a, b = interleaved([steady, one_query], n, warmup)
        elapsed = time.perf_counter() - started
        deps.db.dispose()
    result = ratios(a, b)
    result.update(name="tick follow-up (nothing new due) ÷ one query of the same packs", target=TARGET,
                  alarm=ALARM, verdict=verdict(result["ratio"]["median"], TARGET, ALARM), unit="s")
    return {"follow_up": result, "packs": followed, "first_run": {"reminders": first.reminders,
                                                                   "escalations": first.escalations},
            "seconds": elapsed}


def report(results: dict[str, Any]) -> str:
    r = results["follow_up"]
    return (f"tick follow-up ÷ one query: {fmt_ratio(r)}  goal ≤ {TARGET} (alarm > {ALARM})  [{r['verdict']}]\n"
            f"  medians: follow-up {r['a_med'] * 1e3:.1f} ms for {results['packs']} packs "
            f"({r['a_med'] * 1e3 / max(results['packs'], 1):.2f} ms a pack), one query {r['b_med'] * 1e3:.1f} ms; "
            f"the first run sent {results['first_run']['reminders']} reminders")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    print(report(run(n=args.n, warmup=args.warmup)))
