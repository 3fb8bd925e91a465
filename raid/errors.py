"""The one exception tree of the project.

::

    Exception
     +-- RaidError                 a request the server refuses; carries an ErrorCode
     |    +-- Rejection            the game rules refuse it (client's fault, state unchanged)
     |    +-- ProtocolError        the frame or its fields are malformed (bad_request, unknown_op)
     |         +-- FieldError      bad_request naming one field: ``path: problem``
     |    +-- Unavailable          the server cannot serve it right now (server's fault)
     |         +-- Overloaded      shed before it was queued: too much work; has retry_after
     +-- ConfigError               invalid config: names the file, the key path and the problem

Client faults (``ErrorCode.is_client_fault``) are answered and logged at info; server faults
(``unavailable``, ``internal``) are logged at error. Every ``RaidError`` maps to one wire error
reply ``{"op": "error", "code": ..., "message": ..., **extra}``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import Any


class ErrorCode(enum.StrEnum):
    """Wire error codes (PROTOCOL.md, "Error codes")."""

    BAD_REQUEST = "bad_request"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    UNKNOWN_OP = "unknown_op"
    UNKNOWN_RAID = "unknown_raid"
    RAID_NOT_ACTIVE = "raid_not_active"
    INVALID_TEAM = "invalid_team"
    ON_COOLDOWN = "on_cooldown"
    CHARACTER_NOT_OWNED = "character_not_owned"
    CHARACTER_EXHAUSTED = "character_exhausted"
    ALREADY_CLAIMED = "already_claimed"
    NOT_ELIGIBLE = "not_eligible"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"

    @property
    def is_client_fault(self) -> bool:
        return self not in (ErrorCode.UNAVAILABLE, ErrorCode.INTERNAL)


class RaidError(Exception):
    """A refused request: an error code, a human message and extra reply fields."""

    def __init__(self, code: ErrorCode, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code  # the wire error code
        self.message = message  # human-readable, safe to show to the client
        self.extra: Mapping[str, Any] = extra  # extra reply fields (retry_after, character_ids)

    def to_reply(self, rid: object) -> dict[str, Any]:
        """The wire error reply for request id ``rid``."""
        return {
            "op": "error",
            "rid": rid,
            "code": self.code.value,
            "message": self.message,
            **self.extra,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.value!r}, {self.message!r})"


class Rejection(RaidError):
    """The rules refuse the command; nothing was changed."""


class ProtocolError(RaidError):
    """The peer broke the protocol: malformed frame, wrong field types, unknown op."""


class FieldError(ProtocolError):
    """One field of a request or input file is wrong: ``path: problem``.

    The path and the problem are kept apart so that other front ends (the CLI reading a
    roster file) can say where the field came from in their own terms.
    """

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(ErrorCode.BAD_REQUEST, f"{path}: {problem}" if path else problem)
        self.path = path  # dotted field path inside the request, "" for the request itself
        self.problem = problem  # what is wrong with it


class Unavailable(RaidError):
    """The server cannot serve the request now (journal write failed, raid restarting)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.UNAVAILABLE, message)


class Overloaded(Unavailable):
    """Refused before it was queued because too much work is waiting (admission limits,
    full inboxes); ``retry_after`` says when to try again. Nothing was changed."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds, rounded up to the ms on the wire
        self.extra = {"retry_after": math.ceil(retry_after * 1000) / 1000}


class ConfigError(Exception):
    """An invalid configuration: ``file: key.path: problem``."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        super().__init__(f"{file}: {key}: {problem}")
        self.file = file  # the config file the value came from
        self.key = key  # dotted key path, e.g. "bosses.leviathan.analysis_thresholds"
        self.problem = problem  # what is wrong with it
