"""The gateway <-> raid host link over NATS: subjects, message encoding, errors as data.

Both sides of the ``RaidApi`` seam (actors/api.py) when it crosses processes: gateway
processes (server/remote_raids.py) send requests, raid hosts (server/raid_host.py) answer
them with the real ``RaidService``. Subjects::

    <prefix>.api.<op>            ops that name no raid (hello, create_raid, grant_roster, ...)
    <prefix>.raid.<raid>.<op>    ops on one raid; ``strikes`` carries a BATCH of strikes
    <prefix>.raid.<raid>.events  the raid's events, published once by its host
    <prefix>.hosts.alive         each host's heartbeat (its instance id), every 0.5 s

Hosts subscribe to the request subjects in the queue group ``raid-hosts``: one host answers
each request. Payloads are MessagePack maps. A reply is ``{"ok": value}`` or ``{"error":
{"kind", "code", "message", "extra"}}``; ``error_from_data`` re-raises it as the same
``RaidError`` subclass the host raised, with its extra fields (``retry_after``).

Raid ids are checked before they become a subject token: NATS splits subjects on ``.`` and
treats ``*``, ``>`` and whitespace specially, so such ids are refused as ``unknown_raid``
(they could not name a raid this link can serve).
"""

from __future__ import annotations

import re
from typing import Any

import msgpack

from raid.errors import ErrorCode, FieldError, ProtocolError, RaidError, Rejection, Unavailable

QUEUE_GROUP = "raid-hosts"
"""The queue group of the raid hosts: each request is answered by one host."""

DEFAULT_PREFIX = "wtr"
"""Subject prefix, so one NATS server can carry several deployments (``--subject-prefix``)."""

REQUEST_TIMEOUT_S = 35.0
"""How long a gateway waits for a host's answer. Longer than the host's own deadline (a raid
that does not answer within 30 s is answered ``unavailable`` by the host, which then means
"nothing changed"), so while the host lives its answer is always the one that counts; a host
that died is noticed by its missing heartbeats instead (``HOST_SILENT_S``)."""

HEARTBEAT_S = 0.5
"""How often a raid host publishes ``<prefix>.hosts.alive``."""

HOST_SILENT_S = 3.0
"""A host unheard of for this long is lost: the requests it was answering end ``unavailable``
at once (in doubt: a strike among them may have been committed; its retry with the same
``strike_id`` tells)."""

LEASE_TTL_S = 10.0
"""How long a raid host's lease lasts unless renewed (persistence/leases.py)."""

RETRY_AFTER_S = 1.0
"""``retry_after`` of the ``unavailable`` answer when no host answered in time."""

_TOKEN = re.compile(r"[A-Za-z0-9_\-:]+")


def heartbeat_subject(prefix: str) -> str:
    return f"{prefix}.hosts.alive"


def api_subject(prefix: str, op: str) -> str:
    return f"{prefix}.api.{op}"


def raid_subject(prefix: str, raid_id: str, op: str) -> str:
    """The subject of ``op`` on one raid; an id NATS cannot carry is ``unknown_raid``."""
    if not _TOKEN.fullmatch(raid_id):
        raise Rejection(ErrorCode.UNKNOWN_RAID, f"no raid {raid_id!r}")
    return f"{prefix}.raid.{raid_id}.{op}"


def events_subject(prefix: str, raid_id: str) -> str:
    return raid_subject(prefix, raid_id, "events")


def raid_of_subject(subject: str) -> str:
    """``<prefix>.raid.<raid>.<op>`` -> ``<raid>``."""
    return subject.split(".")[-2]


def pack(value: Any) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def ok(value: Any) -> bytes:
    return pack({"ok": value})


def error_to_data(exc: RaidError) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": type(exc).__name__,
        "code": exc.code.value,
        "message": exc.message,
        "extra": dict(exc.extra),
    }
    if isinstance(exc, FieldError):
        data["path"], data["problem"] = exc.path, exc.problem
    return data


def error_from_data(data: dict[str, Any]) -> RaidError:
    """The ``RaidError`` the host raised, rebuilt (same class, code, message and extras)."""
    kind = data.get("kind")
    code = ErrorCode(data["code"])
    message = str(data["message"])
    extra: dict[str, Any] = dict(data.get("extra") or {})
    error: RaidError
    if kind == "FieldError":
        error = FieldError(str(data["path"]), str(data["problem"]))
    elif kind == "Unavailable":
        error = Unavailable(message)
    elif kind == "Rejection":
        error = Rejection(code, message)
    elif kind == "ProtocolError":
        error = ProtocolError(code, message)
    else:
        error = RaidError(code, message)
    error.extra = extra
    return error


def unavailable(message: str, retry_after: float = RETRY_AFTER_S) -> Unavailable:
    """``unavailable`` with ``retry_after``: the host or the link cannot answer now."""
    error = Unavailable(message)
    error.extra = {"retry_after": retry_after}
    return error


def answer_of(data: bytes) -> Any:
    """The ``ok`` value of a reply, or its error raised."""
    reply = unpack(data)
    if "error" in reply:
        raise error_from_data(reply["error"])
    return reply["ok"]
