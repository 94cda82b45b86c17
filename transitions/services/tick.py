"""`cla-transitions tick`: all periodic work. Idempotent; run it every minute from cron or a timer."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from transitions.services import outbox, sections, sessions, transitions
from transitions.services.deps import ServiceDeps

log = logging.getLogger("transitions.tick")


@dataclass
class TickReport:
    delivery: outbox.DeliveryReport | None = None
    sessions_purged: int = 0
    uploads_purged: int = 0
    crisis_flags: int = 0
    failed_jobs: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        d = self.delivery
        out = []
        if d is not None:
            out.append(f"outbox: {d.sent} sent, {d.retrying} to retry, {d.failed} failed")
        out.append(f"sessions: {self.sessions_purged} expired sessions removed")
        out.append(f"uploads: {self.uploads_purged} unused uploads removed")
        out.append(f"crisis: {self.crisis_flags} children flagged with no onward placement")
        out += [f"FAILED: {job} (see the log)" for job in self.failed_jobs]
        return out


def run(deps: ServiceDeps, transport: outbox.Transport | None = None) -> TickReport:
    """Each job runs even if an earlier one failed; failures are logged and reported, never hidden."""
    report = TickReport()
    try:
        report.delivery = outbox.deliver_due(deps, transport)
    except Exception:
        log.exception("tick: outbox delivery failed")
        report.failed_jobs.append("outbox delivery")
    try:
        report.sessions_purged = sessions.purge_expired(deps)
    except Exception:
        log.exception("tick: session purge failed")
        report.failed_jobs.append("session purge")
    try:
        report.uploads_purged = sections.purge_unused_uploads(deps)
    except Exception:
        log.exception("tick: upload purge failed")
        report.failed_jobs.append("upload purge")
    try:
        report.crisis_flags = transitions.check_onward_placements(deps)
    except Exception:
        log.exception("tick: onward placement check failed")
        report.failed_jobs.append("onward placement check")
    return report
