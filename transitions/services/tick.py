"""`cla-transitions tick`: all periodic work. Idempotent; run it every minute from cron or a timer."""

from __future__ import annotations

from dataclasses import dataclass

from transitions.services import outbox, sessions
from transitions.services.deps import ServiceDeps


@dataclass(frozen=True)
class TickReport:
    delivery: outbox.DeliveryReport
    sessions_purged: int

    def lines(self) -> list[str]:
        d = self.delivery
        return [
            f"outbox: {d.sent} sent, {d.retrying} to retry, {d.failed} failed",
            f"sessions: {self.sessions_purged} expired sessions removed",
        ]


def run(deps: ServiceDeps, transport: outbox.Transport | None = None) -> TickReport:
    return TickReport(delivery=outbox.deliver_due(deps, transport), sessions_purged=sessions.purge_expired(deps))
