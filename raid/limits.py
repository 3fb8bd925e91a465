"""The one definition of every input limit, shared by each path that takes input.

The wire (server/requests.py), the operator CLI (server/cli.py), the config loader
(raid/config.py) and the roster validator (actors/raids.py) all take their bounds and their
time parser from here, so a value one path accepts is never refused — or worse, accepted and
then fatal — on another.

Why these numbers:

- ``MAX_POINTS`` (2**53 - 1) bounds every integer the rules produce or the config feeds them:
  hp, scores, damage, analysis points and their running totals, thresholds, reward amounts.
  It fits SQLite's INTEGER, MessagePack's int64 and a JavaScript number exactly, so nothing
  the rules accept can fail later in the journal, a snapshot or a client.
- ``MAX_STAT`` (10**9) bounds a character's stat. With the config's own bounds (team of at
  most 64, factors of at most 10, at most 64 active curses) the rules then never leave exact
  integers and floats, and they saturate at ``MAX_POINTS`` (see raid/scoring.py).
- Times are unix seconds from 1970 to the end of year 9999, the range ``datetime`` can show.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

MAX_ID_LEN = 64
"""Ids, names, keys and string ``rid``s: 1 to 64 characters."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
"""Integers on the wire (MessagePack's signed range)."""

MAX_STAT = 10**9
"""The largest value of one character stat."""

MAX_POINTS = 2**53 - 1
"""The largest hp, score, point total, threshold or reward amount (exact as a double)."""

MAX_TIME_LEN = 64
"""Characters in an ISO-8601 time."""

MIN_TIME = 0.0
MAX_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
"""Times are unix seconds in [MIN_TIME, MAX_TIME]."""


def saturating_add(total: int, amount: int) -> int:
    """``total + amount``, held at ``MAX_POINTS``: a running total never overflows storage."""
    return min(total + amount, MAX_POINTS)


def parse_time(value: object) -> float:
    """Unix seconds from a number or an ISO-8601 string (no zone means UTC).

    Raises ``ValueError`` with a one-line problem for anything else, for numbers that are
    not finite and for times outside [1970, 9999]; never ``OverflowError``.
    """
    if isinstance(value, bool):
        raise ValueError("must be unix seconds or an ISO-8601 string")
    if isinstance(value, int | float):
        # Compare before converting: float() of a 400-digit integer raises OverflowError.
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        if not MIN_TIME <= value <= MAX_TIME:
            raise ValueError(f"must be between {MIN_TIME:.0f} and {MAX_TIME:.0f} unix seconds")
        return float(value)
    if isinstance(value, str) and len(value) <= MAX_TIME_LEN:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            try:
                seconds = moment.timestamp()
            except (OverflowError, ValueError):
                seconds = math.inf
            if not MIN_TIME <= seconds <= MAX_TIME:
                raise ValueError("must be a time between 1970 and 9999")
            return seconds
    raise ValueError("must be unix seconds or an ISO-8601 string")
