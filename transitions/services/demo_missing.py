"""Fictional missing episodes for the demo: Jade has been away or missing three times in the last 30 days (one
"away" that became "missing", recorded as two episodes) and once before that, each with its Part 2 and its
return, so her page shows the count and her police pack has a history. Idempotent."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from sqlalchemy import select

from transitions.models import Child, MissingEpisode, MissingReportEntry
from transitions.services.deps import ServiceDeps
from transitions.services.missing import force_for_placement

#: (days ago it started, hours it lasted, code, Part 2, where found; None: it became the next episode)
EPISODES = (
    (41, 9, "M", {"last_seen_place": "(Demo) Leaving Fellside Academy at the end of the school day",
                  "clothing": "(Demo) School uniform, black puffer coat", "with_whom": "(Demo) Not known"},
     "(Demo) Found by police at Carlisle bus station at 1am and brought back"),
    (19, 2, "A", {"last_seen_place": "(Demo) At a friend's flat in Workington: she told staff by text",
                  "clothing": "(Demo) Grey tracksuit, white trainers"}, None),
    (19, 14, "M", {"last_seen_place": "(Demo) Left the friend's flat with two older males in a silver car",
                   "with_whom": "(Demo) Two males in their twenties, one known as 'Dee'",
                   "state_of_mind": "(Demo) Upset after a cancelled contact"},
     "(Demo) Came back by taxi at 9am; would not say where she had been"),
    (6, 5, "M", {"last_seen_place": "(Demo) Walked out of the home after an argument at 8pm",
                 "clothing": "(Demo) Red hoodie, blue jeans", "items_taken": "(Demo) Phone, about £20"},
     "(Demo) Returned by herself at 1am"),
)


def load_demo_missing(deps: ServiceDeps) -> int:
    """Add Jade's demo episodes unless she has episodes already. Returns how many were added."""
    now = deps.clock.now().replace(second=0, microsecond=0)
    with deps.db.transaction() as session:
        child = next((c for c in session.scalars(select(Child)) if c.preferred_name == "Jade"), None)
        if child is None or child.allocated_worker_id is None or session.scalars(
                select(MissingEpisode.id).where(MissingEpisode.child_id == child.id).limit(1)).first() is not None:
            return 0
        force = force_for_placement(session, child.current_placement_id)
        previous: MissingEpisode | None = None
        added = 0
        for days, hours, code, part2, found in EPISODES:
            starts = now - timedelta(days=days)
            if previous is not None and previous.end_cause == "now_missing" and previous.ended_at is not None:
                starts = previous.ended_at  # end of the A = start of the M
            ends = starts + timedelta(hours=hours)
            episode = MissingEpisode(
                id=uuid.uuid4(), child_id=child.id, code=code, started_at=starts,
                reported_at=starts + timedelta(minutes=40), police_force_id=force.id if force else None,
                placement_id=child.current_placement_id,
                previous_episode_id=previous.id if previous is not None and previous.end_cause == "now_missing"
                else None, recorded_by=child.allocated_worker_id, recorded_at=starts + timedelta(minutes=30),
                ended_at=ends, end_cause="returned" if found else "now_missing", ended_by=child.allocated_worker_id,
                updated_at=ends)
            episode.police_reference = f"DEMO-{1000 + days}"
            episode.where_found = found
            session.add(episode)
            session.flush()
            entry = MissingReportEntry(id=uuid.uuid4(), episode_id=episode.id, recorded_at=starts + timedelta(
                minutes=30), recorded_by=child.allocated_worker_id)
            entry.content = json.dumps(part2, ensure_ascii=False, sort_keys=True)
            session.add(entry)
            previous = episode
            added += 1
        return added
