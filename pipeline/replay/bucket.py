"""A token bucket for `--rate`: the caller asks how long to wait, so tests drive it with a fake
clock and the runner sleeps only when the debt is worth a sleep."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; taking more than is there runs a debt
    that `take` returns as seconds to wait, so the long-run rate is exact without busy waiting."""

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.capacity = float(burst) if burst is not None else max(1.0, self.rate / 20)
        self.tokens = self.capacity
        self.clock = clock
        self.last = clock()

    def take(self, n: float = 1.0) -> float:
        """Take `n` tokens now; returns how long to wait before acting on them (0 when covered)."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        self.tokens -= n
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate
