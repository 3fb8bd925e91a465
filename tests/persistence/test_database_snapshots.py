"""Incremental snapshots, versioned player states and operator rollback."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from persistence.database import Database
from persistence.errors import DuplicatePlayerState, UnknownRaid, UnknownSnapshot
from persistence.records import SnapshotInfo
from tests.persistence.helpers import ACTIVE, grant, strike


async def snapshot(
    db: Database, raid_id: str, seq: int, players: Sequence[tuple[str, str]]
) -> SnapshotInfo:
    return await db.save_snapshot(
        raid_id,
        seq=seq,
        taken_at=1000.0 + seq,
        current_hp=10_000 - seq,
        strike_count=seq,
        raid_state_json=f'{{"seq":{seq}}}',
        players=players,
    )


async def test_snapshots_are_incremental(db: Database, raid_id: str) -> None:
    first = await snapshot(db, raid_id, 0, [("a", "a0"), ("b", "b0"), ("c", "c0")])
    second = await snapshot(db, raid_id, 5, [("b", "b1")])
    third = await snapshot(db, raid_id, 9, [("a", "a2"), ("d", "d2")])

    assert await db.list_snapshots(raid_id) == [first, second, third]
    latest = await db.load_snapshot(raid_id)
    assert latest is not None
    assert latest.info == third
    assert latest.raid_state_json == '{"seq":9}'
    assert latest.players == [("a", "a2"), ("b", "b1"), ("c", "c0"), ("d", "d2")]

    earlier = await db.load_snapshot(raid_id, second.snapshot_id)
    assert earlier is not None
    assert earlier.info == second
    assert earlier.players == [("a", "a0"), ("b", "b1"), ("c", "c0")]


async def test_snapshot_info_fields(db: Database, raid_id: str) -> None:
    info = await snapshot(db, raid_id, 7, [])
    assert (info.raid_id, info.seq, info.taken_at, info.current_hp, info.strike_count) == (
        raid_id,
        7,
        1007.0,
        9993,
        7,
    )


async def test_no_snapshot_loads_as_none(db: Database, raid_id: str) -> None:
    assert await db.load_snapshot(raid_id) is None
    assert await db.list_snapshots(raid_id) == []
    other = await snapshot(db, raid_id, 1, [])
    assert await db.load_snapshot("another-raid", other.snapshot_id) is None


async def test_a_snapshot_of_an_unknown_raid_is_refused(db: Database) -> None:
    with pytest.raises(UnknownRaid, match="ghost"):
        await snapshot(db, "ghost", 0, [("a", "{}")])


async def test_a_snapshot_names_each_player_once(db: Database, raid_id: str) -> None:
    with pytest.raises(ValueError, match="at most once"):
        await snapshot(db, raid_id, 0, [("a", "1"), ("a", "2")])
    assert await db.list_snapshots(raid_id) == []


async def test_player_states_are_versioned_by_snapshot(db: Database, raid_id: str) -> None:
    first = await snapshot(db, raid_id, 0, [])
    second = await snapshot(db, raid_id, 3, [])
    await db.create_player_raid_state(raid_id, "u1", first.snapshot_id, '{"v":0}')
    with pytest.raises(DuplicatePlayerState, match="u1"):
        await db.create_player_raid_state(raid_id, "u1", first.snapshot_id, '{"v":9}')
    await db.update_player_raid_state(raid_id, "u1", second.snapshot_id, '{"v":1}')
    await db.update_player_raid_state(raid_id, "u1", second.snapshot_id, '{"v":2}')

    assert await db.get_player_raid_state(raid_id, "u1") == '{"v":2}'
    assert await db.get_player_raid_state(raid_id, "u1", first.snapshot_id) == '{"v":0}'
    assert await db.get_player_raid_state(raid_id, "u2") is None
    assert await db.get_player_raid_state(raid_id, "u1", first.snapshot_id - 1) is None


async def test_player_states_need_an_existing_snapshot_of_the_raid(
    db: Database, raid_id: str
) -> None:
    with pytest.raises(UnknownSnapshot, match="snapshot 12345"):
        await db.create_player_raid_state(raid_id, "u1", 12345, "{}")
    with pytest.raises(UnknownSnapshot):
        await db.update_player_raid_state(raid_id, "u1", 12345, "{}")


async def test_rollback_marks_later_history_and_frees_seqs(db: Database, raid_id: str) -> None:
    await db.add_raid_strike_logs([strike(raid_id, seq, user_id="u1") for seq in (1, 2)])
    kept = await snapshot(db, raid_id, 2, [("u1", "at-2")])
    await db.add_raid_strike_logs(
        [strike(raid_id, seq, user_id="u1") for seq in (3, 4, 5)],
        [grant(raid_id, "u1", "damage:100")],
    )
    later = await snapshot(db, raid_id, 5, [("u1", "at-5"), ("u2", "at-5")])
    pending = await db.pending_rewards()
    await db.ack_rewards([p.id for p in pending if p.key == "strike:s3"])

    result = await db.restore_to_snapshot(raid_id, kept.snapshot_id, at=1.0, status_of=ACTIVE)

    assert (
        result.rolled_back_strikes,
        result.rolled_back_grants,
        result.rolled_back_delivered_grants,
        result.rolled_back_snapshots,
    ) == (3, 3, 1, 1)
    assert [r.seq for r in await db.get_raid_strike_logs_by_raid(raid_id)] == [1, 2]
    assert await db.get_strike_log(raid_id, 3) is None
    assert await db.find_strike_ids(raid_id, [("u1", "s4")]) == {}  # rolled back: not a repeat
    assert [g.key for g in await db.list_player_rewards(raid_id, "u1")] == [
        "strike:s1",
        "strike:s2",
        "damage:100",  # a claim: left alone
    ]
    assert [p.key for p in await db.pending_rewards()] == [
        "strike:s1",
        "strike:s2",
        "damage:100",
    ]
    assert await db.list_snapshots(raid_id) == [kept]
    loaded = await db.load_snapshot(raid_id)
    assert loaded is not None
    assert loaded.info == kept
    assert loaded.players == [("u1", "at-2")]
    assert await db.load_snapshot(raid_id, later.snapshot_id) is None
    assert await db.get_player_raid_state(raid_id, "u1") == "at-2"
    assert await db.get_player_raid_state(raid_id, "u2") is None

    # The seqs and strike ids after the snapshot can be journaled again.
    replayed = [strike(raid_id, 3, user_id="u1", strike_id="s3"), strike(raid_id, 4)]
    await db.add_raid_strike_logs(replayed)
    assert await db.get_raid_strike_logs_by_raid(raid_id, after_seq=2) == replayed
    newer = await snapshot(db, raid_id, 4, [("u2", "new")])
    reloaded = await db.load_snapshot(raid_id)
    assert reloaded is not None
    assert reloaded.info == newer
    assert reloaded.players == [("u1", "at-2"), ("u2", "new")]


async def test_rollback_to_an_unknown_snapshot_is_refused(db: Database, raid_id: str) -> None:
    with pytest.raises(UnknownSnapshot, match="no snapshot 42"):
        await db.restore_to_snapshot(raid_id, 42, at=1.0, status_of=ACTIVE)
    mine = await snapshot(db, raid_id, 0, [])
    with pytest.raises(UnknownSnapshot):
        await db.restore_to_snapshot("another-raid", mine.snapshot_id, at=1.0, status_of=ACTIVE)


async def test_rollback_to_the_latest_snapshot_changes_nothing(db: Database, raid_id: str) -> None:
    await db.add_raid_strike_logs([strike(raid_id, 1)])
    latest = await snapshot(db, raid_id, 1, [])
    result = await db.restore_to_snapshot(raid_id, latest.snapshot_id, at=1.0, status_of=ACTIVE)
    assert (result.rolled_back_strikes, result.rolled_back_snapshots) == (0, 0)


async def live_journal(db: Database, raid_id: str) -> list[tuple[int, str]]:
    return [(r.seq, r.strike_id) for r in await db.get_raid_strike_logs_by_raid(raid_id)]


async def test_restore_rolls_forward_across_timelines(db: Database, raid_id: str) -> None:
    """s1 (seq 1) - s2 (seq 3) on the first timeline; back to s1; a second timeline up to
    s3 (seq 2); back to s1 again; then forward to s2, to s3, and to s2 once more."""
    await db.add_raid_strike_logs([strike(raid_id, 1, strike_id="a1")])
    s1 = await snapshot(db, raid_id, 1, [("u1", "a-1")])
    await db.add_raid_strike_logs([strike(raid_id, n, strike_id=f"a{n}") for n in (2, 3)])
    s2 = await snapshot(db, raid_id, 3, [("u1", "a-3")])
    first = [(1, "a1"), (2, "a2"), (3, "a3")]

    back = await db.restore_to_snapshot(raid_id, s1.snapshot_id, at=2.0, status_of=ACTIVE)
    assert (back.rolled_back_strikes, back.rolled_forward, back.rolled_back_snapshots) == (
        2,
        False,
        1,
    )
    await db.add_raid_strike_logs([strike(raid_id, 2, strike_id="b2")])
    s3 = await snapshot(db, raid_id, 2, [("u1", "b-2")])
    await db.restore_to_snapshot(raid_id, s1.snapshot_id, at=3.0, status_of=ACTIVE)
    assert await live_journal(db, raid_id) == [(1, "a1")]

    forward = await db.restore_to_snapshot(raid_id, s2.snapshot_id, at=4.0, status_of=ACTIVE)
    assert forward.rolled_forward
    assert (forward.restored_strikes, forward.restored_grants) == (2, 2)
    assert await live_journal(db, raid_id) == first
    assert [s.snapshot_id for s in await db.list_snapshots(raid_id)] == [
        s1.snapshot_id,
        s2.snapshot_id,
    ]
    loaded = await db.load_snapshot(raid_id)
    assert loaded is not None and loaded.info == s2 and loaded.players == [("u1", "a-3")]

    sideways = await db.restore_to_snapshot(raid_id, s3.snapshot_id, at=5.0, status_of=ACTIVE)
    assert (sideways.rolled_back_strikes, sideways.restored_strikes) == (2, 1)
    assert await live_journal(db, raid_id) == [(1, "a1"), (2, "b2")]
    assert [g.key for g in await db.list_player_rewards(raid_id, "user-1")] == [
        "strike:a1",
        "strike:b2",
    ]
    await db.restore_to_snapshot(raid_id, s2.snapshot_id, at=6.0, status_of=ACTIVE)
    assert await live_journal(db, raid_id) == first
    assert [r.snapshot_id for r in await db.list_restores(raid_id)] == [
        s1.snapshot_id,
        s1.snapshot_id,
        s2.snapshot_id,
        s3.snapshot_id,
        s2.snapshot_id,
    ]


async def test_a_hundred_thousand_players_save_and_load(db: Database, raid_id: str) -> None:
    """Correctness at scale; the time it takes is measured by ``bench.snapshot_restore``."""
    state = '{"personal_damage":123456,"personal_analysis":0,"strikes":12,"cooldown_until":0}'
    everyone = [(f"user-{n:06d}", state) for n in range(100_000)]
    await snapshot(db, raid_id, 1, everyone)
    await snapshot(db, raid_id, 2, everyone[::10])  # a tenth changed since
    changed = [(user, "changed") for user, _ in everyone[5::10]]
    latest = await snapshot(db, raid_id, 3, changed)

    loaded = await db.load_snapshot(raid_id)

    assert loaded is not None
    assert loaded.info == latest
    assert len(loaded.players) == 100_000
    assert loaded.players[5] == ("user-000005", "changed")
    assert loaded.players[6] == ("user-000006", state)


async def test_a_restore_that_fails_at_its_last_step_changes_nothing(
    db: Database, raid_id: str
) -> None:
    """Item 12: the CLI's restore wrote in three transactions; a failure after the first left
    the journal rolled back under a raid whose status and history said otherwise."""
    await db.add_raid_strike_logs([strike(raid_id, seq, user_id="u1") for seq in (1, 2)])
    kept = await snapshot(db, raid_id, 2, [("u1", "at-2")])
    await db.add_raid_strike_logs([strike(raid_id, seq, user_id="u1") for seq in (3, 4)])
    later = await snapshot(db, raid_id, 4, [("u1", "at-4")])
    raid_before = await db.get_boss_raid_by_id(raid_id)

    def failing_status(raid_state: str) -> tuple[str, float | None]:
        raise RuntimeError("disk gone after the journal was marked")

    with pytest.raises(RuntimeError, match="disk gone"):
        await db.restore_to_snapshot(raid_id, kept.snapshot_id, at=1.0, status_of=failing_status)
    assert [r.seq for r in await db.get_raid_strike_logs_by_raid(raid_id)] == [1, 2, 3, 4]
    assert await db.list_snapshots(raid_id) == [kept, later]
    assert await db.list_restores(raid_id) == []
    assert await db.get_boss_raid_by_id(raid_id) == raid_before
    assert await db.get_player_raid_state(raid_id, "u1") == "at-4"
