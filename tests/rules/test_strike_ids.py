"""raid.strike_ids: a bounded window of strike_ids, older ones in a filter without false
negatives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from raid.models import PlayerRaidState
from raid.strike_ids import maybe_older_repeat, remember


def test_the_window_keeps_the_latest_ids_and_the_filter_the_others() -> None:
    player = PlayerRaidState("u", "r")
    for seq in range(1, 11):
        remember(player, f"s{seq}", seq, window=3)
    assert player.strike_ids == {"s8": 8, "s9": 9, "s10": 10}
    assert all(maybe_older_repeat(player, f"s{seq}") for seq in range(1, 8))
    assert not maybe_older_repeat(player, "s9")  # in the window: a known repeat, not "maybe"


def test_no_window_no_filter() -> None:
    player = PlayerRaidState("u", "r")
    for seq in range(1, 500):
        remember(player, f"s{seq}", seq, window=None)
    assert len(player.strike_ids) == 499
    assert not any(player.evicted_ids)
    assert not maybe_older_repeat(player, "new")


def test_few_new_ids_look_like_repeats() -> None:
    player = PlayerRaidState("u", "r")
    for seq in range(1, 301):
        remember(player, f"old-{seq}", seq, window=50)
    flagged = sum(maybe_older_repeat(player, f"new-{n}") for n in range(2000))
    assert flagged < 2000 * 0.05  # ~2 % expected with 250 ids in 2,048 bits


@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=200, unique=True))
def test_an_evicted_id_is_never_missed(ids: list[str]) -> None:
    player = PlayerRaidState("u", "r")
    for seq, strike_id in enumerate(ids, 1):
        remember(player, strike_id, seq, window=5)
    for strike_id in ids:
        assert strike_id in player.strike_ids or maybe_older_repeat(player, strike_id)
