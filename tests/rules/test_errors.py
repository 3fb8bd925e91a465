"""raid/errors.py: error codes, wire replies and the exception tree."""

from __future__ import annotations

import pytest

from raid.errors import ConfigError, ErrorCode, ProtocolError, RaidError, Rejection, Unavailable


@pytest.mark.parametrize(
    ("code", "client_fault"),
    [
        (ErrorCode.BAD_REQUEST, True),
        (ErrorCode.UNKNOWN_RAID, True),
        (ErrorCode.ON_COOLDOWN, True),
        (ErrorCode.NOT_ELIGIBLE, True),
        (ErrorCode.RATE_LIMITED, True),
        (ErrorCode.UNAVAILABLE, False),
        (ErrorCode.INTERNAL, False),
    ],
)
def test_client_fault(code: ErrorCode, client_fault: bool) -> None:
    assert code.is_client_fault is client_fault


def test_rejection_reply_carries_extra_fields() -> None:
    error = Rejection(ErrorCode.ON_COOLDOWN, "wait", retry_after=1.5)
    assert isinstance(error, RaidError)
    assert error.to_reply("r7") == {
        "op": "error",
        "rid": "r7",
        "code": "on_cooldown",
        "message": "wait",
        "retry_after": 1.5,
    }
    assert repr(error) == "Rejection('on_cooldown', 'wait')"
    assert str(error) == "wait"


def test_unavailable_and_protocol_error() -> None:
    down = Unavailable("journal write failed")
    assert down.code is ErrorCode.UNAVAILABLE
    assert not down.code.is_client_fault
    assert down.to_reply(None) == {
        "op": "error",
        "rid": None,
        "code": "unavailable",
        "message": "journal write failed",
    }
    bad = ProtocolError(ErrorCode.UNKNOWN_OP, "no such op")
    assert repr(bad) == "ProtocolError('unknown_op', 'no such op')"


def test_config_error_fields() -> None:
    error = ConfigError("c.toml", "raid.curse_limit", "must be an integer, not str")
    assert (error.file, error.key, error.problem) == (
        "c.toml",
        "raid.curse_limit",
        "must be an integer, not str",
    )
    assert str(error) == "c.toml: raid.curse_limit: must be an integer, not str"
    assert not isinstance(error, RaidError)
