"""What clients see: the protocol's reply fields and events, built from state and results.

Exact values are sent as floats for display only (PROTOCOL.md, "Types").
"""

from __future__ import annotations

from typing import Any

from raid.codec import character_to_dict
from raid.config import Rules
from raid.leaderboard import Leaderboards
from raid.lifecycle import status_at
from raid.models import PlayerRaidState, RaidState, RaidStatus, Roster
from raid.scoring import ScoringContext
from raid.strike import StrikeResult


def strike_report(result: StrikeResult) -> dict[str, Any]:
    """The after-action report of PROTOCOL.md (``strike.ok`` fields)."""
    multiplier = result.multiplier
    team = list(result.team)
    return {
        "strike_id": result.strike_id,
        "action": result.action.value,
        "team": team,
        # float(Fraction(n, d)) is n / d: int true division rounds correctly, reduced or not.
        "base": result.base_num / result.base_den,
        "multiplier": multiplier.numerator / multiplier.denominator,
        "score": result.score,
        "damage": result.damage,
        "analysis_points": result.analysis_points,
        "boss_hp": result.boss_hp,
        "analysis_total": result.analysis_total,
        "strike_count": result.seq,
        "breakthroughs": [{"index": b.index, "weakness": b.weakness} for b in result.breakthroughs],
        "retaliations": [{"curse": r.curse, "replaced": r.replaced} for r in result.retaliations],
        "victory": result.victory,
        "rewards": [{"key": result.reward_key, "bundle": dict(result.reward)}],
        "cooldown_until": result.cooldown_until,
        "exhausted": team.copy(),
        "exhausted_until": result.rest_until,
    }


def strike_events(rules: Rules, result: StrikeResult) -> list[dict[str, Any]]:
    """The non-hp events a committed strike causes, in order, each followed by its text."""
    events: list[dict[str, Any]] = []

    def announce(text: str) -> None:
        events.append({"type": "announcement", "text": text})

    for found in result.breakthroughs:
        events.append({"type": "breakthrough", "index": found.index, "weakness": found.weakness})
        if found.weakness is None:
            announce(f"Breakthrough {found.index}! No new weakness was found.")
        else:
            announce(f"Breakthrough {found.index}! The boss is now weak to {found.weakness}.")
    for hit in result.retaliations:
        events.append({"type": "retaliation", "curse": hit.curse, "replaced": hit.replaced})
        name = rules.curses[hit.curse].name if hit.curse in rules.curses else hit.curse
        announce(f"The boss retaliates: {name}!")
    for pct in result.hp_milestones:
        events.append({"type": "milestone", "hp_pct": pct})
        announce(f"The boss is down to {pct}% hp.")
    if result.victory:
        events.append({"type": "victory", "final_blow_user": result.user_id})
        announce(f"Victory! {result.user_id} dealt the final blow.")
        events.append({"type": "raid_ended", "status": "defeated"})
    return events


ANNOUNCEMENTS = {
    RaidStatus.ENDED: "The raid has ended.",
    RaidStatus.EXPIRED: "Time is up!",
}
"""What players are told when a raid ends without a victory (a victory has its own events)."""


def status_events(status: RaidStatus) -> list[dict[str, Any]]:
    """The events announcing a raid's new status (none for statuses not announced)."""
    text = ANNOUNCEMENTS.get(status)
    if text is None:
        return []
    return [
        {"type": "raid_ended", "status": status.value},
        {"type": "announcement", "text": text},
    ]


def curse_view(rules: Rules, curse_id: str) -> dict[str, Any]:
    curse = rules.curses.get(curse_id)
    if curse is None:
        return {"id": curse_id, "name": curse_id, "kind": None, "params": {}}
    return {"id": curse_id, "name": curse.name, "kind": curse.kind.value, "params": curse.params()}


def raid_view(rules: Rules, state: RaidState, now: float) -> dict[str, Any]:
    """Every raid-state field except the pools (PROTOCOL.md, ``raid.hub``)."""
    boss = state.boss
    thresholds = boss.analysis_thresholds
    index = boss.analysis_breakthroughs
    return {
        "raid_id": boss.raid_id,
        "boss_id": boss.boss_id,
        "name": boss.name,
        "total_hp": boss.total_hp,
        "current_hp": boss.current_hp,
        "dominant_stats": list(boss.dominant_stats),
        "weaknesses": list(boss.weaknesses),
        "resistances": list(boss.resistances),
        "active_curses": [curse_view(rules, c) for c in boss.active_curses],
        "curse_limit": boss.curse_limit,
        "analysis_thresholds": list(thresholds),
        "analysis_points": boss.analysis_points,
        "analysis_breakthroughs": index,
        "analysis_reward_pool": [dict(b) for b in boss.analysis_reward_pool],
        "next_analysis_threshold": thresholds[index] if index < len(thresholds) else None,
        "event_start": boss.event_start,
        "event_end": boss.event_end,
        "strike_count": boss.strike_count,
        "status": status_at(boss, now).value,
        "final_blow_user": boss.final_blow_user,
    }


def player_view(
    player: PlayerRaidState, boards: Leaderboards, claimed: list[str]
) -> dict[str, Any]:
    rank_damage, rank_analysis = boards.ranks(player)
    return {
        "user_id": player.user_id,
        "raid_id": player.raid_id,
        "last_strike_time": player.last_strike_time,
        "cooldown_until": player.cooldown_until,
        "exhausted_characters": {
            c: ("event" if until is None else until) for c, until in player.exhausted.items()
        },
        "personal_damage": player.personal_damage,
        "personal_analysis": player.personal_analysis,
        "strikes": player.strikes,
        "rewards_claimed": claimed,
        "rank_damage": rank_damage,
        "rank_analysis": rank_analysis,
    }


def hub_view(
    rules: Rules, state: RaidState, boards: Leaderboards, user_id: str, now: float
) -> dict[str, Any]:
    """The ``raid.hub`` reply: raid, me and leaderboards."""
    player = state.players.get(user_id) or PlayerRaidState(user_id, state.boss.raid_id)
    claimed = sorted(player.claimed) + [f"strike:{s}" for s in player.strike_ids]
    size = state.boss.settings.leaderboard_size
    return {
        "raid": raid_view(rules, state, now),
        "me": player_view(player, boards, claimed),
        "leaderboard": {
            "damage": [{"user_id": e.user_id, "value": e.value} for e in boards.damage.top(size)],
            "analysis": [
                {"user_id": e.user_id, "value": e.value} for e in boards.analysis.top(size)
            ],
        },
    }


def team_options_view(
    state: RaidState, context: ScoringContext, roster: Roster, user_id: str, now: float
) -> dict[str, Any]:
    """The ``team.options`` reply: every owned character with its contribution now."""
    player = state.players.get(user_id)
    den = context.stat_den * context.tag_den
    characters = []
    for character in sorted(roster.values(), key=lambda c: c.character_id):
        num, weak, resisted = context.member_terms(character)  # cached per context
        view = character_to_dict(character)
        view["exhausted"] = player is not None and player.is_exhausted(character.character_id, now)
        view["contribution"] = num / den  # int / int rounds exactly like float(Fraction)
        view["contribution_num"] = str(num)
        view["weak"] = weak
        view["resisted"] = resisted
        characters.append(view)
    return {
        "max_team_size": context.max_team_size,
        "characters": characters,
        "scoring": scoring_terms_view(context),
    }


def scoring_terms_view(context: ScoringContext) -> dict[str, Any]:
    """The exact terms of ``ScoringContext.score`` and ``outcome`` under the current curses.

    With them a client previews any team's score, damage and analysis points exactly as the
    server will compute them (docs/protocol.md, ``team.options``). ``base_den`` and each
    character's ``contribution_num`` are decimal strings: they can pass 2**53.
    """
    size = context.max_team_size
    multipliers = [
        [[m.numerator, m.denominator] for m in (context.multiplier(w, r) for r in range(size + 1))]
        for w in range(size + 1)
    ]
    return {
        "base_den": str(context.stat_den * context.tag_den),
        "multipliers": multipliers,
        "fortify": {a.value: [f.numerator, f.denominator] for a, f in context.fortify.items()},
        "divisors": {a.value: d for a, d in context.divisors.items()},
    }
