"""What every scenario measures: its result row, the server's memory, and an audit of the
database against what the server acknowledged."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actors.restore import restore_raid
from persistence.database import Database
from raid.codec import boss_from_dict, boss_to_dict, player_to_dict, result_from_dict
from raid.config import shipped_defaults
from raid.lifecycle import advance_status
from raid.models import RaidState
from raid.strike import apply_strike

STRIKE_ID_WINDOW = shipped_defaults().actors.strike_id_window
"""The servers here run with the shipped window: a replay keeps the same strike_ids."""


@dataclass
class ScenarioResult:
    """One row of docs/reliability.md."""

    name: str
    runs: int = 0  # server processes started
    operations: int = 0  # requests the server acknowledged
    faults: int = 0  # faults injected (kills, storage faults, hostile connections...)
    lost: int = 0  # acknowledged operations missing afterwards (must be 0)
    rss_before_kib: int = 0  # server RSS once loaded, before the faults
    rss_after_kib: int = 0  # server RSS after them
    notes: list[str] = field(default_factory=list)  # what else was checked or measured
    seconds: float = 0.0  # wall time of the scenario


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class Acknowledged:
    """Everything the server said it stored (a reply arrived)."""

    strikes: dict[tuple[str, str, str], tuple[int, int]] = field(default_factory=dict)
    """(raid, user, strike_id) -> (damage, analysis points)"""
    claims: set[tuple[str, str, str]] = field(default_factory=set)  # (raid, user, key)
    grants: dict[str, str] = field(default_factory=dict)  # character_id -> owner
    raids: set[str] = field(default_factory=set)  # created raids

    def __len__(self) -> int:
        return len(self.strikes) + len(self.claims) + len(self.grants) + len(self.raids)


async def audit(db_path: Path, acked: Acknowledged) -> int:
    """Check the database against ``acked``; returns how many acknowledged operations are
    missing. Raises ``AssertionError`` on any divergence: a strike stored twice, a hole in a
    raid's seqs, hp not equal to its total less the stored damage, or a raid whose restored
    state (snapshot + journal) differs from a replay of its whole journal."""
    lost = 0
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        raids = {
            row[0]: json.loads(row[1])
            for row in db.execute("SELECT raid_id, template FROM boss_raids")
        }
        owners = dict(db.execute("SELECT character_id, user_id FROM characters").fetchall())
        claimed = set(
            db.execute(
                "SELECT raid_id, user_id, key FROM raid_reward_claims WHERE rolled_back = 0"
            ).fetchall()
        )
        logs = {
            raid: db.execute(
                "SELECT seq, user_id, strike_id, damage, analysis_points, result "
                "FROM raid_strike_logs WHERE raid_id = ? AND rolled_back = 0 ORDER BY seq",
                (raid,),
            ).fetchall()
            for raid in raids
        }
    lost += len(acked.raids - raids.keys())
    lost += sum(1 for cid, owner in acked.grants.items() if owners.get(cid) != owner)
    lost += len(acked.claims - claimed)
    stored: dict[tuple[str, str, str], tuple[int, int]] = {}
    for raid, rows in logs.items():
        assert [r[0] for r in rows] == list(range(1, len(rows) + 1)), f"{raid}: seq holes"
        for _seq, user, strike_id, damage, points, _result in rows:
            key = (raid, user, strike_id)
            assert key not in stored, f"strike {key} stored twice"
            stored[key] = (damage, points)
    lost += sum(1 for key, value in acked.strikes.items() if stored.get(key) != value)
    database = await Database.open(db_path)
    try:
        now = time.time()
        for raid, template in raids.items():
            await _replays_equal(database, raid, template, logs[raid], now)
    finally:
        await database.close()
    return lost


async def _replays_equal(
    database: Database,
    raid: str,
    template: dict[str, object],
    rows: list[tuple[Any, ...]],
    now: float,
) -> None:
    scratch = RaidState(boss_from_dict(template))
    for row in rows:
        apply_strike(scratch, result_from_dict(json.loads(row[5])), None, STRIKE_ID_WINDOW)
    advance_status(scratch.boss, now)
    damage = sum(row[3] for row in rows)
    assert scratch.boss.current_hp == max(scratch.boss.total_hp - damage, 0), raid
    restored = await restore_raid(database, raid, now)
    assert restored is not None, f"raid {raid} cannot be restored"
    assert boss_to_dict(restored.state.boss) == boss_to_dict(scratch.boss), raid
    assert {u: player_to_dict(p) for u, p in restored.state.players.items()} == {
        u: player_to_dict(p) for u, p in scratch.players.items()
    }, raid
