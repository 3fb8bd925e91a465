"""Storage faults under a running server (issue 9): a full disk, a database locked by
another process, the database file removed. Requests answer ``unavailable`` (never
``internal``) while the fault lasts, nothing acknowledged is lost or diverges, and the
server recovers by itself once the fault is gone (tests/soak/storage.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.soak.storage import FAULTS, storage_fault


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_a_storage_fault_answers_unavailable_loses_nothing_and_heals(
    tmp_path: Path, fault: str
) -> None:
    result = await storage_fault(tmp_path, FAULTS[fault](), players=5, rounds=3)
    assert result.faults == 1
    assert result.lost == 0
    assert "unavailable during the fault" in result.notes[0]
