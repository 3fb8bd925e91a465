"""Every exception the client raises, one class per wire error code.

::

    Exception
     +-- RaidClientError              anything this library raises
          +-- ServerError             the server answered {"op": "error", ...}; .code, .message
          |    +-- BadRequest             bad_request
          |    +-- Unauthenticated        unauthenticated
          |    +-- Forbidden              forbidden
          |    +-- UnknownOp              unknown_op
          |    +-- UnknownRaid            unknown_raid
          |    +-- RaidNotActive          raid_not_active
          |    +-- InvalidTeam            invalid_team
          |    +-- OnCooldown             on_cooldown          (.retry_after)
          |    +-- CharacterNotOwned      character_not_owned  (.character_ids)
          |    +-- CharacterExhausted     character_exhausted  (.character_ids)
          |    +-- AlreadyClaimed         already_claimed
          |    +-- NotEligible            not_eligible
          |    +-- RateLimited            rate_limited         (.retry_after)
          |    +-- Unavailable            unavailable
          |    +-- Internal               internal
          +-- ConnectionLost          the connection dropped and the request could not be
          |                           (or must not be) sent again
          +-- RequestTimeout          no reply within the request timeout (also a TimeoutError)
          +-- ProtocolViolation       the server sent something the protocol does not allow

A code this version does not know raises ``ServerError`` itself, with ``.code`` set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class RaidClientError(Exception):
    """Base of every exception of this library."""


class ServerError(RaidClientError):
    """The server refused a request; ``code`` is the wire error code."""

    code: ClassVar[str] = ""  # the wire code of the subclass; instances may override

    def __init__(self, code: str, message: str, reply: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code  # type: ignore[misc]  # the wire code, also for unknown codes
        self.message = message  # the server's human-readable message
        self.reply: Mapping[str, Any] = reply or {}  # the whole error reply, extra fields too
        retry = self.reply.get("retry_after")
        # Seconds to wait before trying again, where the protocol gives it.
        self.retry_after: float | None = float(retry) if isinstance(retry, int | float) else None
        ids = self.reply.get("character_ids")
        # The characters named by character_not_owned / character_exhausted.
        self.character_ids: list[str] = [str(i) for i in ids] if isinstance(ids, list) else []


class BadRequest(ServerError):
    code = "bad_request"


class Unauthenticated(ServerError):
    code = "unauthenticated"


class Forbidden(ServerError):
    code = "forbidden"


class UnknownOp(ServerError):
    code = "unknown_op"


class UnknownRaid(ServerError):
    code = "unknown_raid"


class RaidNotActive(ServerError):
    code = "raid_not_active"


class InvalidTeam(ServerError):
    code = "invalid_team"


class OnCooldown(ServerError):
    code = "on_cooldown"


class CharacterNotOwned(ServerError):
    code = "character_not_owned"


class CharacterExhausted(ServerError):
    code = "character_exhausted"


class AlreadyClaimed(ServerError):
    code = "already_claimed"


class NotEligible(ServerError):
    code = "not_eligible"


class RateLimited(ServerError):
    code = "rate_limited"


class Unavailable(ServerError):
    code = "unavailable"


class Internal(ServerError):
    code = "internal"


class ConnectionLost(RaidClientError):
    """The connection is gone and the request was not (or could not be) sent again."""


class RequestTimeout(RaidClientError, TimeoutError):
    """No reply arrived within the request timeout."""


class ProtocolViolation(RaidClientError):
    """The server sent a frame or a reply the protocol does not allow."""


ERRORS_BY_CODE: Mapping[str, type[ServerError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        Unauthenticated,
        Forbidden,
        UnknownOp,
        UnknownRaid,
        RaidNotActive,
        InvalidTeam,
        OnCooldown,
        CharacterNotOwned,
        CharacterExhausted,
        AlreadyClaimed,
        NotEligible,
        RateLimited,
        Unavailable,
        Internal,
    )
}


def error_from_reply(reply: Mapping[str, Any]) -> ServerError:
    """The exception for an ``{"op": "error"}`` reply."""
    code = str(reply.get("code", ""))
    message = str(reply.get("message", ""))
    cls = ERRORS_BY_CODE.get(code, ServerError)
    return cls(code, message, reply)
