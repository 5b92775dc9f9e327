"""Per-connection frame rate limit: a token bucket (pure; the clock is injectable for tests)."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.clock = clock
        self.updated = clock()

    def take(self) -> bool:
        """True if one frame may pass now."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class RateLimit:
    """A bucket plus the count of refusals in a row (persistent abuse closes the socket)."""

    def __init__(self, rate: float, burst: int, close_after: int) -> None:
        self.bucket = TokenBucket(rate, burst)
        self.close_after = close_after
        self.refused_in_a_row = 0

    def check(self) -> str:
        """'ok', 'refuse' (answer rate_limited) or 'close' (1008)."""
        if self.bucket.take():
            self.refused_in_a_row = 0
            return "ok"
        self.refused_in_a_row += 1
        return "close" if self.refused_in_a_row >= self.close_after else "refuse"
