"""Response targets (SPEC §12): how soon a ticket's first staff reply is due, by priority and tier.

A pure rule, so the JSON, the queue table and (later) the escalation scheduler compute the same time.
The due time follows the ticket's current priority: raising a ticket to Urgent brings its target
forward, counted from when the ticket was opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.domain import Priority, Tier

ENTERPRISE_FACTOR = 0.5  # Enterprise customers are answered in half the time


@dataclass(frozen=True)
class ResponseTargets:
    """Minutes to a first staff reply per priority (`[response_targets]`; SPEC §12's defaults)."""

    urgent: int = 60
    high: int = 240
    medium: int = 1440
    low: int = 2880

    def minutes(self, priority: Priority | str, tier: Tier | str) -> float:
        by_priority = {
            Priority.URGENT: self.urgent,
            Priority.HIGH: self.high,
            Priority.MEDIUM: self.medium,
            Priority.LOW: self.low,
        }
        minutes = float(by_priority[Priority(priority)])
        return minutes * ENTERPRISE_FACTOR if Tier(tier) is Tier.ENTERPRISE else minutes

    def due(self, created_at: datetime, priority: Priority | str, tier: Tier | str) -> datetime:
        """When the first staff reply to a ticket opened at `created_at` is due."""
        return created_at + timedelta(minutes=self.minutes(priority, tier))


DEFAULT_TARGETS = ResponseTargets()
