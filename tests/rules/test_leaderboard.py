"""RULES.md "Leaderboard" (raid/leaderboard.py): top N, own rank, ties, unranked players."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from raid.config import Action, Rules
from raid.leaderboard import Board, Entry, Leaderboards
from raid.models import PlayerRaidState, RaidState
from raid.scoring import ScoringContext
from raid.strike import apply_strike, decide_strike
from tests.rules.conftest import PROPERTY_SETTINGS, START, char, command, roster


def hit(
    rules: Rules,
    state: RaidState,
    boards: Leaderboards,
    user: str,
    amount: int,
    action: Action = Action.FIGHT,
) -> PlayerRaidState:
    """A strike by ``user`` worth exactly ``amount`` damage or analysis points."""
    team = roster(char(f"{user}-{state.boss.strike_count}", {"light"}, power=amount * 10))
    cmd = command(user, list(team), team, action=action)
    ctx = ScoringContext.build(rules, state.boss)
    result = decide_strike(rules, state, ctx, cmd, START, random.Random(0))
    assert result.damage + result.analysis_points == amount
    player = apply_strike(state, result, boards)
    player.cooldown_until = 0.0  # let the same user strike again at START
    return player


def values(entries: list[Entry]) -> list[tuple[str, int]]:
    return [(e.user_id, e.value) for e in entries]


def test_top_n_and_own_rank(rules: Rules, state: RaidState) -> None:
    boards = Leaderboards()
    for user, amount in (("u1", 5), ("u2", 9), ("u3", 7), ("u4", 3), ("u5", 8)):
        hit(rules, state, boards, user, amount)
    assert values(boards.damage.top(3)) == [("u2", 9), ("u5", 8), ("u3", 7)]
    assert values(boards.damage.top(10)) == [
        ("u2", 9),
        ("u5", 8),
        ("u3", 7),
        ("u1", 5),
        ("u4", 3),
    ]
    assert len(boards.damage) == 5
    ranks = {u: boards.ranks(p) for u, p in state.players.items()}
    assert ranks == {
        "u1": (4, None),
        "u2": (1, None),
        "u3": (3, None),
        "u4": (5, None),
        "u5": (2, None),
    }


def test_rank_moves_when_total_rises(rules: Rules, state: RaidState) -> None:
    boards = Leaderboards()
    hit(rules, state, boards, "u1", 5)
    hit(rules, state, boards, "u2", 9)
    p1 = hit(rules, state, boards, "u1", 6)  # 11
    assert values(boards.damage.top(2)) == [("u1", 11), ("u2", 9)]
    assert boards.ranks(p1) == (1, None)
    assert len(boards.damage) == 2  # moved, not duplicated


def test_ties_rank_by_who_reached_the_total_first(rules: Rules, state: RaidState) -> None:
    boards = Leaderboards()
    hit(rules, state, boards, "zed", 7)  # seq 1: zed reaches 7
    hit(rules, state, boards, "amy", 7)  # seq 2: amy reaches 7 later
    hit(rules, state, boards, "bob", 4)  # seq 3
    hit(rules, state, boards, "bob", 3)  # seq 4: bob reaches 7 last
    assert values(boards.damage.top(3)) == [("zed", 7), ("amy", 7), ("bob", 7)]
    assert [boards.ranks(state.players[u])[0] for u in ("zed", "amy", "bob")] == [1, 2, 3]


def test_ties_on_analysis(rules: Rules, state: RaidState) -> None:
    boards = Leaderboards()
    hit(rules, state, boards, "u2", 3, Action.ANALYZE)
    hit(rules, state, boards, "u1", 3, Action.ANALYZE)
    assert values(boards.analysis.top(5)) == [("u2", 3), ("u1", 3)]
    assert boards.ranks(state.players["u1"]) == (None, 2)


def test_unranked_players(rules: Rules, state: RaidState) -> None:
    boards = Leaderboards()
    hit(rules, state, boards, "fighter", 4)
    analyst = hit(rules, state, boards, "analyst", 2, Action.ANALYZE)
    zero = hit(rules, state, boards, "zero", 0)  # struck for 0 damage: still unranked
    assert boards.ranks(analyst) == (None, 1)
    assert boards.ranks(zero) == (None, None)
    assert boards.ranks(PlayerRaidState("ghost", "r1")) == (None, None)
    assert values(boards.damage.top(10)) == [("fighter", 4)]
    assert values(boards.analysis.top(10)) == [("analyst", 2)]


def test_rebuild_from_players_equals_incremental(rules: Rules, state: RaidState) -> None:
    boards = Leaderboards()
    for user, amount, action in (
        ("a", 5, Action.FIGHT),
        ("b", 5, Action.ANALYZE),
        ("c", 8, Action.FIGHT),
        ("a", 2, Action.ANALYZE),
        ("d", 5, Action.FIGHT),
    ):
        hit(rules, state, boards, user, amount, action)
    rebuilt = Leaderboards.of(state.players.values())
    for board, again in ((boards.damage, rebuilt.damage), (boards.analysis, rebuilt.analysis)):
        assert values(again.top(10)) == values(board.top(10))
    assert values(rebuilt.damage.top(10)) == [("c", 8), ("a", 5), ("d", 5)]
    for player in state.players.values():
        assert rebuilt.ranks(player) == boards.ranks(player)


def test_board_update_without_change_is_a_no_op() -> None:
    board = Board()
    board.update("u", (0, 0), (5, 1))
    board.update("u", (5, 1), (5, 1))
    assert values(board.top(5)) == [("u", 5)]
    board.update("u", (5, 1), (0, 0))  # back to zero: unranked
    assert len(board) == 0


@PROPERTY_SETTINGS
@given(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 5)), max_size=60), st.integers(1, 8))
def test_board_matches_a_sort(gains: list[tuple[int, int]], n: int) -> None:
    """Any sequence of gains: top(n) and ranks equal a brute-force sort by (-total, seq, user)."""
    board = Board()
    totals: dict[str, tuple[int, int]] = {}
    for seq, (who, gain) in enumerate(gains, start=1):
        user = f"u{who}"
        old = totals.get(user, (0, 0))
        new = (old[0] + gain, seq) if gain else old
        board.update(user, old, new)
        totals[user] = new
    expected = sorted(((-total, seq, user) for user, (total, seq) in totals.items() if total > 0))
    assert values(board.top(n)) == [(user, -neg) for neg, _, user in expected[:n]]
    for rank, (neg, seq, user) in enumerate(expected, start=1):
        assert board.rank(user, -neg, seq) == rank
    for user, (total, seq) in totals.items():
        if total == 0:
            assert board.rank(user, total, seq) is None
