"""Raid status over time (RULES.md, "Raid state": scheduled, active, defeated, expired, ended)."""

from __future__ import annotations

from raid.models import BossRaidState, RaidStatus


def status_at(boss: BossRaidState, now: float) -> RaidStatus:
    """The status the raid has at ``now``: final statuses stick, the others follow the clock."""
    if boss.status.is_final:
        return boss.status
    if now < boss.event_start:
        return RaidStatus.SCHEDULED
    if now >= boss.event_end:
        return RaidStatus.EXPIRED
    return RaidStatus.ACTIVE


def advance_status(boss: BossRaidState, now: float) -> RaidStatus | None:
    """Move the raid to its status at ``now``; returns the new status if it changed."""
    new = status_at(boss, now)
    if new is boss.status:
        return None
    boss.status = new
    if new is RaidStatus.EXPIRED:
        boss.ended_at = boss.event_end
    return new


def end_raid(boss: BossRaidState, now: float) -> RaidStatus:
    """An operator closes the raid early; a raid already over keeps its final status."""
    if not boss.status.is_final:
        boss.status = RaidStatus.ENDED
        boss.ended_at = now
    return boss.status
