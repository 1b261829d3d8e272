"""Per-client-address token buckets: failed authentication and the unauthenticated join endpoint.

A bucket holds up to `burst` tries and refills at `per_second`; a try on an empty bucket is
refused with the seconds until the next one (the 429's Retry-After). The client address is the
TCP peer: forwarded headers are not trusted (hub.cli starts uvicorn with proxy_headers off).
Memory is bounded: at most `max_addresses` buckets, full ones are dropped first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(
        self,
        burst: int,
        per_second: float,
        *,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.per_second = per_second
        self.max_addresses = max_addresses
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def _bucket(self, address: str) -> _Bucket:
        now = self.clock()
        b = self._buckets.get(address)
        if b is None:
            if len(self._buckets) >= self.max_addresses:
                self._prune(now)
            b = self._buckets[address] = _Bucket(float(self.burst), now)
        else:
            b.tokens = min(float(self.burst), b.tokens + (now - b.at) * self.per_second)
            b.at = now
        return b

    def retry_after(self, address: str) -> int | None:
        """Seconds until `address` may try again, or None when it may try now (nothing is spent)."""
        b = self._bucket(address)
        if b.tokens >= 1.0:
            return None
        return max(1, math.ceil((1.0 - b.tokens) / self.per_second))

    def spend(self, address: str) -> int | None:
        """Spend one try: None when allowed, else the seconds until the next one."""
        wait = self.retry_after(address)
        if wait is None:
            self._buckets[address].tokens -= 1.0
        return wait

    def _prune(self, now: float) -> None:
        full = [a for a, b in self._buckets.items() if b.tokens + (now - b.at) * self.per_second >= self.burst]
        for a in full:
            del self._buckets[a]
        if len(self._buckets) >= self.max_addresses:  # all busy: forget the oldest half
            for a in sorted(self._buckets, key=lambda a: self._buckets[a].at)[: self.max_addresses // 2]:
                del self._buckets[a]
