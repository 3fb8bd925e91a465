"""Exponential back-off with full jitter, for reconnecting and retrying."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Delays ``uniform(0, min(maximum, initial * factor**n))`` for the n-th retry.

    Full jitter spreads the reconnects of many clients that lost the same server, so a
    restarted server is not hit by all of them in the same millisecond.
    """

    initial: float = 0.05  # seconds, the cap of the first delay
    maximum: float = 5.0  # seconds, the cap of any delay
    factor: float = 2.0  # growth of the cap per attempt
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0  # retries so far since the last success

    def next_delay(self) -> float:
        cap = min(self.maximum, self.initial * self.factor**self.attempt)
        self.attempt += 1
        return self.rng.uniform(0, cap)

    def reset(self) -> None:
        self.attempt = 0
