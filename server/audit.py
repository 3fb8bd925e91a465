"""``raid-server audit``: what the journal says about a player's strikes, for support tickets.

Reads only (safe while the server runs). Rolled-back strikes are shown and marked: "my strike
was lost" is often a strike an operator restore rolled back.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from persistence.records import AuditedClaim, AuditedStrike


def strike_dict(item: AuditedStrike, full: bool = False) -> dict[str, Any]:
    record = item.record
    grant = record.grant
    out: dict[str, Any] = {
        "seq": record.seq,
        "at": record.at,
        "time": _time(record.at),
        "user_id": record.user_id,
        "strike_id": record.strike_id,
        "action": record.action,
        "team": list(record.team),
        "damage": record.damage,
        "analysis_points": record.analysis_points,
        "score": record.score,
        "base": record.base,
        "multiplier": record.multiplier,
        "breakthrough": record.breakthrough,
        "retaliation": record.retaliation,
        "victory": record.victory,
        "draws": json.loads(record.draws_json),
        "reward": None
        if grant is None
        else {"key": grant.key, "bundle": dict(grant.bundle), "delivered": item.grant_acked_at},
        "rolled_back": item.rolled_back,
    }
    if full:
        out["result"] = json.loads(record.result_json)
    return out


def claim_dict(claim: AuditedClaim) -> dict[str, Any]:
    return {
        "key": claim.grant.key,
        "bundle": dict(claim.grant.bundle),
        "at": claim.grant.at,
        "time": _time(claim.grant.at),
        "kind": "granted with strike" if claim.strike_seq is not None else "claimed",
        "strike_seq": claim.strike_seq,
        "delivered": claim.acked_at,
        "rolled_back": claim.rolled_back,
    }


def render_player(
    raid_id: str, user_id: str, strikes: list[AuditedStrike], claims: list[AuditedClaim]
) -> str:
    rolled = sum(s.rolled_back for s in strikes)
    lines = [
        f"raid {raid_id}, player {user_id}: {len(strikes)} strikes"
        + (f" ({rolled} rolled back)" if rolled else "")
        + f", {len(claims)} rewards",
    ]
    if strikes:
        lines.append(
            f"  {'seq':>5}  {'time (UTC)':<19}  {'strike id':<16} {'action':<7} "
            f"{'damage':>8} {'analysis':>8}  team / draws / reward"
        )
    for item in strikes:
        r = item.record
        mark = "  ROLLED BACK" if item.rolled_back else ""
        lines.append(
            f"  {r.seq:>5}  {_time(r.at):<19}  {r.strike_id:<16} {r.action:<7} "
            f"{r.damage:>8} {r.analysis_points:>8}  {','.join(r.team)}{mark}"
        )
        lines.append(f"  {'':>5}  {'':<19}  draws {_compact(json.loads(r.draws_json))}")
        if r.grant is not None:
            lines.append(
                f"  {'':>5}  {'':<19}  reward {r.grant.key} {_compact(dict(r.grant.bundle))} "
                f"{_delivered(item.grant_acked_at)}"
            )
    if claims:
        lines.append("  rewards (oldest first):")
    for claim in claims:
        c = claim_dict(claim)
        mark = "  ROLLED BACK" if claim.rolled_back else ""
        lines.append(
            f"    {c['time']}  {c['key']:<24} {_compact(c['bundle']):<20} {c['kind']:<19} "
            f"{_delivered(claim.acked_at)}{mark}"
        )
    return "\n".join(lines)


def render_strike(raid_id: str, items: list[AuditedStrike]) -> str:
    blocks = []
    for item in items:
        data = strike_dict(item, full=True)
        head = f"raid {raid_id}, strike {data['strike_id']} of {data['user_id']}"
        head += ": ROLLED BACK by an operator restore" if item.rolled_back else ""
        body = [f"  {key}: {_compact(value)}" for key, value in data.items()]
        blocks.append("\n".join([head, *body]))
    return "\n\n".join(blocks)


def _time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _delivered(acked_at: float | None) -> str:
    return "pending" if acked_at is None else f"delivered {_time(acked_at)}"


def _compact(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
