"""At most ``[server] max_connections_per_user`` authenticated connections per user.

Rate limits are per connection, so without this one token could open any number of
connections and multiply its share of the server. A ``hello`` that would pass the cap answers
``unavailable`` (``TooManyConnections``) and the connection is then closed with 1008, so a
client opening 1,000 connections holds at most the cap for longer than one round trip.
Unauthenticated connections are bounded in time instead (``hello_timeout_s``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from raid.errors import Unavailable


class TooManyConnections(Unavailable):
    """A hello refused because its user already holds the most connections allowed."""


class UserConnections:
    """Authenticated connections per user (loop thread only)."""

    def __init__(self, max_per_user: int, on_refused: Callable[[], None] = lambda: None) -> None:
        self.max_per_user = max_per_user
        self.on_refused = on_refused  # metrics
        self.open: Counter[str] = Counter()  # user_id -> connections (no zero entries)
        self.refused = 0  # hellos refused so far (tests, logs)

    def admit(self, user_id: str) -> None:
        """Count one more connection for ``user_id`` or raise ``TooManyConnections``."""
        if self.open[user_id] >= self.max_per_user:
            self.refused += 1
            self.on_refused()
            raise TooManyConnections(
                f"user {user_id} already has {self.open[user_id]} connections open "
                f"(at most {self.max_per_user}); close one and try again"
            )
        self.open[user_id] += 1

    def release(self, user_id: str) -> None:
        left = self.open[user_id] - 1
        if left > 0:
            self.open[user_id] = left
        else:
            del self.open[user_id]
