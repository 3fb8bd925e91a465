"""Operator restores: move a raid to any snapshot, back or forward, in one transaction.

A raid's history is a tree of timelines. The first timeline starts when the raid is created;
every restore starts a new one, forked from the restored snapshot's timeline at that
snapshot's ``seq``. Rows are never deleted: ``rolled_back`` only says whether a row is on
the raid's *current* timeline, and every restore recomputes it.

Which timeline a row belongs to needs no column on the hot journal path: ids only grow, so
each ``raid_restores`` row records the largest strike, claim and snapshot ids that existed when
it ran (its *marks*). A row inserted after restore R and before the raid's next restore
belongs to R's timeline; rows inserted before the raid's first restore belong to the first.

The rows on the timeline of snapshot K (seq S): walk from K's timeline up to the first,
taking from each timeline its rows with ``seq`` in (fork, upper] — upper is S for K's own
timeline and, for each parent, the fork seq of the child just left. Within one timeline the
journal is linear, so that gives exactly one strike per seq 1..S.

Raids rolled back by a version without restore history (schema 2) carry a ``legacy`` row
written by migration 3: for them a restore can only go back to a snapshot still on the
current timeline, marking what follows it, as before.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from persistence.errors import RestoreRefused, UnknownSnapshot
from persistence.records import RestoreResult

StatusOf = Callable[[str], tuple[str, float | None]]
"""The raid ``status`` and ``ended_at`` recorded in a snapshot's raid state JSON."""

_NO_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class _Restore:
    restore_id: int
    snapshot_id: int | None  # None: a legacy marker (rollback without history)
    seq: int
    parent: int | None  # the restore that started the restored snapshot's timeline
    strike_mark: int
    claim_mark: int
    snapshot_mark: int


@dataclass(frozen=True, slots=True)
class _Segment:
    """The rows one timeline contributes to the target timeline: ids and seqs in ranges."""

    strike_ids: tuple[int, int]  # (lo, hi]
    claim_ids: tuple[int, int]
    snapshot_ids: tuple[int, int]
    seqs: tuple[int, int]  # (fork, upper] for strikes and grants; [fork, upper] for snapshots


def restore(
    conn: sqlite3.Connection, raid_id: str, snapshot_id: int, at: float, status_of: StatusOf
) -> RestoreResult:
    """Make snapshot ``snapshot_id`` the raid's latest; runs inside the caller's transaction."""
    found = conn.execute(
        "SELECT seq, rolled_back, raid_state FROM raid_snapshots "
        "WHERE raid_id = ? AND snapshot_id = ?",
        (raid_id, snapshot_id),
    ).fetchone()
    if found is None:
        raise UnknownSnapshot(raid_id, snapshot_id)
    seq, rolled_forward, raid_state = int(found[0]), bool(found[1]), str(found[2])
    restores = _restores(conn, raid_id)
    if any(r.snapshot_id is None for r in restores):
        if rolled_forward:
            raise RestoreRefused(
                f"snapshot {snapshot_id} of raid {raid_id} was rolled back by an older server "
                "version that kept no restore history: it cannot be rolled forward"
            )
        counts = _legacy_rollback(conn, raid_id, snapshot_id, seq)
        restore_id = None
    else:
        counts = _apply(conn, raid_id, _segments(restores, snapshot_id, seq))
    live = conn.execute(
        "SELECT count(*), coalesce(max(seq), 0) FROM raid_strike_logs "
        "WHERE raid_id = ? AND rolled_back = 0",
        (raid_id,),
    ).fetchone()
    if (int(live[0]), int(live[1])) != (seq, seq):
        raise RestoreRefused(
            f"raid {raid_id}: the journal of snapshot {snapshot_id} is incomplete "
            f"({live[0]} strikes up to seq {live[1]}, expected {seq}); nothing was changed"
        )
    status, ended_at = status_of(raid_state)
    conn.execute(
        "UPDATE boss_raids SET status = ?, ended_at = ? WHERE raid_id = ?",
        (status, ended_at, raid_id),
    )
    if not any(r.snapshot_id is None for r in restores):
        parent = _timeline_of(restores, snapshot_id)
        restore_id = _record(conn, raid_id, snapshot_id, seq, parent, at, counts)
    return RestoreResult(restore_id, snapshot_id, seq, status, rolled_forward, *counts)


def _restores(conn: sqlite3.Connection, raid_id: str) -> list[_Restore]:
    found = conn.execute(
        "SELECT restore_id, snapshot_id, coalesce(seq, 0), parent_restore_id, strike_mark, "
        "claim_mark, snapshot_mark FROM raid_restores WHERE raid_id = ? ORDER BY restore_id",
        (raid_id,),
    ).fetchall()
    return [_Restore(*row) for row in found]


def _timeline_of(restores: list[_Restore], snapshot_id: int) -> int | None:
    """The restore whose timeline the snapshot was taken on (None: the first timeline)."""
    owner = None
    for restore_ in restores:
        if restore_.snapshot_mark < snapshot_id:
            owner = restore_.restore_id
    return owner


def _segments(restores: list[_Restore], snapshot_id: int, seq: int) -> list[_Segment]:
    by_id = {r.restore_id: r for r in restores}
    following = {a.restore_id: b for a, b in itertools.pairwise(restores)}
    segments: list[_Segment] = []
    timeline = _timeline_of(restores, snapshot_id)
    upper = seq
    while True:
        start = by_id[timeline] if timeline is not None else None
        if start is not None:
            end = following.get(start.restore_id)
        else:
            end = restores[0] if restores else None
        lo = (start.strike_mark, start.claim_mark, start.snapshot_mark) if start else (0, 0, 0)
        hi = (end.strike_mark, end.claim_mark, end.snapshot_mark) if end else (_NO_ID,) * 3
        fork = start.seq if start else 0
        snapshot_hi = min(hi[2], snapshot_id) if not segments else hi[2]
        segments.append(
            _Segment((lo[0], hi[0]), (lo[1], hi[1]), (lo[2], snapshot_hi), (fork, upper))
        )
        if start is None:
            return segments
        upper, timeline = fork, start.parent


def _where(
    segments: list[_Segment], kind: str, id_column: str, seq_column: str, inclusive: bool
) -> tuple[str, list[int]]:
    lower = ">=" if inclusive else ">"
    parts: list[str] = []
    params: list[int] = []
    for segment in segments:
        lo, hi = getattr(segment, kind)
        parts.append(
            f"({id_column} > ? AND {id_column} <= ? "
            f"AND {seq_column} {lower} ? AND {seq_column} <= ?)"
        )
        params += [lo, hi, *segment.seqs]
    return "(" + " OR ".join(parts) + ")", params


Counts = tuple[int, int, int, int, int, int, int]
"""strikes off, strikes on, grants off, grants on, delivered grants off, snapshots off, on."""


def _apply(conn: sqlite3.Connection, raid_id: str, segments: list[_Segment]) -> Counts:
    """Mark rows off the target timeline rolled back, then rows on it live again.

    Two statements per table in that order: the unique indexes over live rows are checked
    row by row, so the old rows must leave before the new ones arrive.
    """
    strikes = _where(segments, "strike_ids", "id", "seq", inclusive=False)
    grants = _where(segments, "claim_ids", "id", "strike_seq", inclusive=False)
    snaps = _where(segments, "snapshot_ids", "snapshot_id", "seq", inclusive=True)
    delivered = conn.execute(
        "SELECT count(*) FROM raid_reward_claims WHERE raid_id = ? AND rolled_back = 0 "
        f"AND strike_seq IS NOT NULL AND acked_at IS NOT NULL AND NOT {grants[0]}",
        (raid_id, *grants[1]),
    ).fetchone()[0]

    def flip(table: str, where: tuple[str, list[int]], extra: str = "") -> tuple[int, int]:
        off = conn.execute(
            f"UPDATE {table} SET rolled_back = 1 WHERE raid_id = ? AND rolled_back = 0 "
            f"{extra} AND NOT {where[0]}",
            (raid_id, *where[1]),
        ).rowcount
        on = conn.execute(
            f"UPDATE {table} SET rolled_back = 0 WHERE raid_id = ? AND rolled_back = 1 "
            f"{extra} AND {where[0]}",
            (raid_id, *where[1]),
        ).rowcount
        return off, on

    strikes_off, strikes_on = flip("raid_strike_logs", strikes)
    grants_off, grants_on = flip("raid_reward_claims", grants, "AND strike_seq IS NOT NULL")
    snaps_off, snaps_on = flip("raid_snapshots", snaps)
    return strikes_off, strikes_on, grants_off, grants_on, int(delivered), snaps_off, snaps_on


def _legacy_rollback(conn: sqlite3.Connection, raid_id: str, snapshot_id: int, seq: int) -> Counts:
    """Schema-2 behaviour: mark everything after the snapshot rolled back."""
    delivered = conn.execute(
        "SELECT count(*) FROM raid_reward_claims WHERE raid_id = ? AND rolled_back = 0 "
        "AND strike_seq > ? AND acked_at IS NOT NULL",
        (raid_id, seq),
    ).fetchone()[0]
    strikes = conn.execute(
        "UPDATE raid_strike_logs SET rolled_back = 1 "
        "WHERE raid_id = ? AND rolled_back = 0 AND seq > ?",
        (raid_id, seq),
    ).rowcount
    grants = conn.execute(
        "UPDATE raid_reward_claims SET rolled_back = 1 "
        "WHERE raid_id = ? AND rolled_back = 0 AND strike_seq > ?",
        (raid_id, seq),
    ).rowcount
    snapshots = conn.execute(
        "UPDATE raid_snapshots SET rolled_back = 1 "
        "WHERE raid_id = ? AND rolled_back = 0 AND snapshot_id > ?",
        (raid_id, snapshot_id),
    ).rowcount
    return strikes, 0, grants, 0, int(delivered), snapshots, 0


def _record(
    conn: sqlite3.Connection,
    raid_id: str,
    snapshot_id: int,
    seq: int,
    parent: int | None,
    at: float,
    counts: Counts,
) -> int:
    marks = conn.execute(
        "SELECT (SELECT coalesce(max(id), 0) FROM raid_strike_logs), "
        "(SELECT coalesce(max(id), 0) FROM raid_reward_claims), "
        "(SELECT coalesce(max(snapshot_id), 0) FROM raid_snapshots)"
    ).fetchone()
    cursor = conn.execute(
        "INSERT INTO raid_restores (raid_id, at, snapshot_id, seq, parent_restore_id, "
        "strike_mark, claim_mark, snapshot_mark, rolled_back_strikes, restored_strikes) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (raid_id, at, snapshot_id, seq, parent, *marks, counts[0], counts[1]),
    )
    if cursor.lastrowid is None:
        raise RuntimeError("sqlite3 gave no rowid for the inserted restore")
    return cursor.lastrowid
