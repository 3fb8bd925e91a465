"""A token bucket per connection: ``rate`` messages per second with bursts of ``burst``.

Pure: the caller passes the (monotonic) time, so tests need no clock.
"""

from __future__ import annotations

import math


class TokenBucket:
    """Allows ``burst`` messages at once, refilled at ``rate`` tokens per second."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate  # tokens added per second
        self.burst = burst  # bucket capacity: the largest allowed burst
        self._tokens = burst  # starts full: a fresh connection may burst at once
        self._updated = now  # time of the last refill

    def take(self, now: float) -> float | None:
        """Take one token: None if allowed, else the seconds until one is available.

        The wait is rounded up to the millisecond, so it is never 0: a client that waits as
        told is then allowed.
        """
        self._refill(now)
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        return math.ceil((1 - self._tokens) / self.rate * 1000) / 1000

    def charge(self, tokens: float, now: float) -> None:
        """Take ``tokens`` more for work already done (a large reply), into debt if need be:
        later messages wait until the bucket is positive again. The debt is capped at one
        burst, so no single charge shuts a connection out for longer than ``burst / rate``."""
        self._refill(now)
        self._tokens = max(-self.burst, self._tokens - tokens)

    def _refill(self, now: float) -> None:
        # A clock that steps backwards must not mint tokens nor make anyone wait forever.
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._updated = max(self._updated, now)
