"""Crash safety (issue 9, chaos): a server under load is SIGKILLed at random moments and
during a snapshot, a raid creation, a restore and a grant, and restarted each time. After
every kill each acknowledged strike, claim, grant and raid is stored exactly once, hp equals
the total less the stored damage, and every raid's restored state equals a replay of its
journal (tests/soak/chaos.py; ``make soak`` runs it with 20 kills and 200 players)."""

from __future__ import annotations

from pathlib import Path

from tests.soak.chaos import chaos


async def test_sigkill_at_chosen_and_random_moments_loses_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    result = await chaos(tmp_path, kills=4, clients=20)
    assert result.runs == result.faults == 4
    assert result.lost == 0
    assert result.operations > 20 * 20  # the roster grants alone are 400
