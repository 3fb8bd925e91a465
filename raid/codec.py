"""Plain, JSON-safe forms of the state and of strike results, for journal and snapshots.

Exact values (``Fraction``) are written as ``"num/den"`` text; everything else is JSON native.
``*_from_dict`` is the exact inverse of ``*_to_dict``: a state written and read back is equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from raid.config import Action, BossTemplate, Bundle, RaidConfig
from raid.lifecycle import advance_status
from raid.models import (
    EVICTED_FILTER_BYTES,
    BossRaidState,
    Character,
    PlayerRaidState,
    RaidStatus,
)
from raid.strike import Breakthrough, Retaliation, StrikeResult


def fraction_text(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def parse_fraction(text: str) -> Fraction:
    num, _, den = text.partition("/")
    return Fraction(int(num), int(den or "1"))


def _bundle(raw: Mapping[str, int]) -> Bundle:
    return MappingProxyType(dict(raw))


def new_boss_state(
    template: BossTemplate, raid_id: str, start: float, end: float, now: float
) -> BossRaidState:
    """A fresh raid from a boss template."""
    boss = BossRaidState(
        raid_id=raid_id,
        boss_id=template.boss_id,
        name=template.name,
        total_hp=template.total_hp,
        current_hp=template.total_hp,
        dominant_stats=template.dominant_stats,
        weaknesses=template.weaknesses,
        resistances=template.resistances,
        weakness_pool=template.weakness_pool,
        curse_pool=template.curse_pool,
        active_curses=(),
        curse_limit=template.raid.curse_limit,
        analysis_thresholds=template.analysis_thresholds,
        analysis_points=0,
        analysis_breakthroughs=0,
        analysis_reward_pool=template.analysis_reward_pool,
        victory_cache=template.victory_cache,
        event_start=start,
        event_end=end,
        strike_count=0,
        status=RaidStatus.SCHEDULED,
        settings=template.raid,
    )
    advance_status(boss, now)
    return boss


def settings_to_dict(settings: RaidConfig) -> dict[str, Any]:
    return {
        "retaliation_every": settings.retaliation_every,
        "curse_limit": settings.curse_limit,
        "claim_grace_s": settings.claim_grace_s,
        "leaderboard_size": settings.leaderboard_size,
        "hp_events_per_s": settings.hp_events_per_s,
    }


def boss_to_dict(boss: BossRaidState) -> dict[str, Any]:
    return {
        "raid_id": boss.raid_id,
        "boss_id": boss.boss_id,
        "name": boss.name,
        "total_hp": boss.total_hp,
        "current_hp": boss.current_hp,
        "dominant_stats": list(boss.dominant_stats),
        "weaknesses": list(boss.weaknesses),
        "resistances": list(boss.resistances),
        "weakness_pool": list(boss.weakness_pool),
        "curse_pool": list(boss.curse_pool),
        "active_curses": list(boss.active_curses),
        "curse_limit": boss.curse_limit,
        "analysis_thresholds": list(boss.analysis_thresholds),
        "analysis_points": boss.analysis_points,
        "analysis_breakthroughs": boss.analysis_breakthroughs,
        "analysis_reward_pool": [dict(b) for b in boss.analysis_reward_pool],
        "victory_cache": dict(boss.victory_cache),
        "event_start": boss.event_start,
        "event_end": boss.event_end,
        "strike_count": boss.strike_count,
        "status": boss.status.value,
        "settings": settings_to_dict(boss.settings),
        "final_blow_user": boss.final_blow_user,
        "ended_at": boss.ended_at,
    }


def boss_from_dict(raw: Mapping[str, Any]) -> BossRaidState:
    settings = raw["settings"]
    return BossRaidState(
        raid_id=raw["raid_id"],
        boss_id=raw["boss_id"],
        name=raw["name"],
        total_hp=raw["total_hp"],
        current_hp=raw["current_hp"],
        dominant_stats=tuple(raw["dominant_stats"]),
        weaknesses=tuple(raw["weaknesses"]),
        resistances=tuple(raw["resistances"]),
        weakness_pool=tuple(raw["weakness_pool"]),
        curse_pool=tuple(raw["curse_pool"]),
        active_curses=tuple(raw["active_curses"]),
        curse_limit=raw["curse_limit"],
        analysis_thresholds=tuple(raw["analysis_thresholds"]),
        analysis_points=raw["analysis_points"],
        analysis_breakthroughs=raw["analysis_breakthroughs"],
        analysis_reward_pool=tuple(_bundle(b) for b in raw["analysis_reward_pool"]),
        victory_cache=_bundle(raw["victory_cache"]),
        event_start=raw["event_start"],
        event_end=raw["event_end"],
        strike_count=raw["strike_count"],
        status=RaidStatus(raw["status"]),
        settings=RaidConfig(
            retaliation_every=settings["retaliation_every"],
            curse_limit=settings["curse_limit"],
            claim_grace_s=settings["claim_grace_s"],
            leaderboard_size=settings["leaderboard_size"],
            hp_events_per_s=settings["hp_events_per_s"],
        ),
        final_blow_user=raw["final_blow_user"],
        ended_at=raw["ended_at"],
    )


def player_to_dict(player: PlayerRaidState) -> dict[str, Any]:
    """A player's state; claimed rewards are not included (the claims table holds them)."""
    return {
        "user_id": player.user_id,
        "raid_id": player.raid_id,
        "last_strike_time": player.last_strike_time,
        "cooldown_until": player.cooldown_until,
        "exhausted": dict(player.exhausted),
        "personal_damage": player.personal_damage,
        "personal_analysis": player.personal_analysis,
        "strikes": player.strikes,
        "damage_seq": player.damage_seq,
        "analysis_seq": player.analysis_seq,
        "strike_ids": dict(player.strike_ids),
        "evicted_ids": player.evicted_ids.hex() if any(player.evicted_ids) else "",
    }


def player_from_dict(raw: Mapping[str, Any]) -> PlayerRaidState:
    return PlayerRaidState(
        user_id=raw["user_id"],
        raid_id=raw["raid_id"],
        last_strike_time=raw["last_strike_time"],
        cooldown_until=raw["cooldown_until"],
        exhausted=dict(raw["exhausted"]),
        personal_damage=raw["personal_damage"],
        personal_analysis=raw["personal_analysis"],
        strikes=raw["strikes"],
        damage_seq=raw["damage_seq"],
        analysis_seq=raw["analysis_seq"],
        strike_ids=dict(raw["strike_ids"]),
        evicted_ids=_evicted(raw.get("evicted_ids", "")),
    )


def _evicted(hex_bits: str) -> bytearray:
    """A player's filter of evicted strike_ids (empty in snapshots from before it existed)."""
    if not hex_bits:
        return bytearray(EVICTED_FILTER_BYTES)
    bits = bytearray.fromhex(hex_bits)
    if len(bits) != EVICTED_FILTER_BYTES:
        raise ValueError(f"evicted_ids must be {EVICTED_FILTER_BYTES} bytes, not {len(bits)}")
    return bits


def result_to_dict(result: StrikeResult) -> dict[str, Any]:
    return {
        "raid_id": result.raid_id,
        "seq": result.seq,
        "at": result.at,
        "user_id": result.user_id,
        "strike_id": result.strike_id,
        "action": result.action.value,
        "team": list(result.team),
        "base": f"{result.base_num}/{result.base_den}",
        "multiplier": fraction_text(result.multiplier),
        "score": result.score,
        "damage": result.damage,
        "analysis_points": result.analysis_points,
        "boss_hp": result.boss_hp,
        "analysis_total": result.analysis_total,
        "breakthroughs": [[b.index, b.weakness] for b in result.breakthroughs],
        "retaliations": [[r.curse, r.replaced] for r in result.retaliations],
        "hp_milestones": list(result.hp_milestones),
        "victory": result.victory,
        "cooldown_until": result.cooldown_until,
        "rest_until": result.rest_until,
        "reward": dict(result.reward),
    }


def draws_to_dict(result: StrikeResult) -> dict[str, Any]:
    """Just the random draws of a strike (for the journal's ``draws`` column)."""
    return {
        "weaknesses": [b.weakness for b in result.breakthroughs],
        "curses": [r.curse for r in result.retaliations],
    }


_ACTIONS = {action.value: action for action in Action}


def result_from_dict(raw: Mapping[str, Any]) -> StrikeResult:
    """The inverse of ``result_to_dict`` (start-up replay runs it once per journal entry)."""
    base_num, _, base_den = str(raw["base"]).partition("/")
    breakthroughs = raw["breakthroughs"]
    retaliations = raw["retaliations"]
    return StrikeResult(
        raid_id=raw["raid_id"],
        seq=raw["seq"],
        at=raw["at"],
        user_id=raw["user_id"],
        strike_id=raw["strike_id"],
        action=_ACTIONS[raw["action"]],
        team=tuple(raw["team"]),
        base_num=int(base_num),
        base_den=int(base_den),
        multiplier=parse_fraction(raw["multiplier"]),
        score=raw["score"],
        damage=raw["damage"],
        analysis_points=raw["analysis_points"],
        boss_hp=raw["boss_hp"],
        analysis_total=raw["analysis_total"],
        breakthroughs=tuple(Breakthrough(i, w) for i, w in breakthroughs) if breakthroughs else (),
        retaliations=tuple(Retaliation(c, r) for c, r in retaliations) if retaliations else (),
        hp_milestones=tuple(raw["hp_milestones"]),
        victory=raw["victory"],
        cooldown_until=raw["cooldown_until"],
        rest_until=raw["rest_until"],
        reward=_bundle(raw["reward"]),
    )


def character_to_dict(character: Character) -> dict[str, Any]:
    return {
        "character_id": character.character_id,
        "name": character.name,
        "rarity": character.rarity,
        "stats": dict(character.stats),
        "tags": sorted(character.tags),
    }
