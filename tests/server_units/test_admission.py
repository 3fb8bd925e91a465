"""Admission limits and the per-user connection cap, as plain objects (issue 9, defect 8)."""

from __future__ import annotations

import pytest

from raid.errors import ErrorCode, Overloaded
from server.admission import Admission, AdmissionLimits
from server.connection_limits import TooManyConnections, UserConnections


def test_the_server_limit_sheds_with_retry_after_and_a_release_admits_again() -> None:
    admission = Admission(AdmissionLimits(3, 10, 100, 0.25))
    places = [admission.enter("a"), admission.enter("b"), admission.enter(None)]
    with pytest.raises(Overloaded) as refused:
        admission.enter("c")
    assert refused.value.code is ErrorCode.UNAVAILABLE
    assert refused.value.to_reply(7)["retry_after"] == 0.25
    places[0].release()
    places[0].release()  # idempotent: a second release gives nothing back
    admission.enter("c")
    assert admission.in_flight == 3
    assert admission.shed == 1


def test_the_raid_limit_is_per_raid_and_leaves_no_empty_entries() -> None:
    admission = Admission(AdmissionLimits(100, 2, 100, 1.0))
    first = [admission.enter("busy"), admission.enter("busy")]
    with pytest.raises(Overloaded, match="raid busy is busy"):
        admission.enter("busy")
    admission.enter("quiet")  # another raid is not affected
    for place in first:
        place.release()
    assert "busy" not in admission.per_raid
    assert admission.per_raid["quiet"] == 1


def test_one_connection_cannot_take_its_raids_share_alone() -> None:
    shed: list[str] = []
    admission = Admission(AdmissionLimits(100, 100, 2, 1.0), shed.append)
    mine = [admission.enter("r", "conn-a"), admission.enter(None, "conn-a")]
    with pytest.raises(Overloaded, match="at most 2"):
        admission.enter("r", "conn-a")
    admission.enter("r", "conn-b")  # another connection still gets in
    mine[0].release()
    admission.enter("r", "conn-a")
    assert shed == ["max_in_flight_per_connection"]
    assert dict(admission.per_connection) == {"conn-a": 2, "conn-b": 1}


def test_connections_per_user_are_capped_and_released() -> None:
    users = UserConnections(2)
    users.admit("alice")
    users.admit("alice")
    users.admit("bob")
    with pytest.raises(TooManyConnections, match="at most 2"):
        users.admit("alice")
    users.release("alice")
    users.admit("alice")
    users.release("bob")
    assert dict(users.open) == {"alice": 2}
    assert users.refused == 1
