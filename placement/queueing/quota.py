"""Quota arithmetic per flavor: usage, cohort borrowing and lending (Kueue's semantics).

For a queue q on a flavor f, with nominal N, borrowing limit B (None = unlimited) and
lending limit L (None = all of N):

- q lends ``lendable = min(L, N)`` to its cohort and keeps ``guaranteed = N - lendable``;
- the cohort's shared pool on f is Σ lendable over its queues, and the pool is used by
  Σ max(0, usage - guaranteed) (what each queue uses beyond what it keeps for itself);
- q may admit ``available = min(N + B - usage, max(0, guaranteed - usage) + pool free)``
  more GPUs: its own unused nominal plus what the cohort lends and nobody uses, never more
  than nominal + borrowing limit. A queue without a cohort is a cohort of one, so this is
  just ``N - usage``.

Every number is kept as a running sum, so each check is O(1) however many queues and
workloads there are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from placement.queueing.model import Flavor, FlavorQuota, Queue


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """One queue's numbers on one flavor at one instant (what explanations print)."""

    queue: str
    flavor: Flavor
    used: int
    nominal: int
    borrowing_limit: int | None
    available: int
    borrowable: int
    """What the cohort would still lend beyond the queue's own unused nominal."""
    lent: int
    """Unused nominal of this queue that other queues of the cohort are using now."""

    @property
    def borrowed(self) -> int:
        return max(0, self.used - self.nominal)

    @property
    def limit(self) -> int | None:
        """The most the queue may ever hold on this flavor (None: bounded only by the cohort)."""
        return None if self.borrowing_limit is None else self.nominal + self.borrowing_limit

    def describe(self, need: int | None = None) -> str:
        """``queue team-a: H100 on-demand 16/16 used, cohort has 0 to lend`` (+ what is needed)."""
        text = f"queue {self.queue}: {self.flavor} {self.used}/{self.nominal} used"
        if self.borrowed:
            limit = "no limit" if self.borrowing_limit is None else f"limit {self.borrowing_limit}"
            text += f" (borrowing {self.borrowed}, {limit})"
        if self.lent:
            text += f", {self.lent} of its quota lent to the cohort"
        text += f", cohort has {self.borrowable} to lend"
        if need is not None:
            text += f"; needs {need}, {self.available} available"
        return text


class QuotaBook:
    """Usage per (queue, flavor) and the per-(cohort, flavor) sums borrowing is checked against."""

    def __init__(self, queues: Iterable[Queue]) -> None:
        self.queues: dict[str, Queue] = {q.name: q for q in queues}
        self.usage: dict[tuple[str, Flavor], int] = defaultdict(int)
        self._quota: dict[tuple[str, Flavor], FlavorQuota] = {}
        self.pool: dict[tuple[str, Flavor], int] = defaultdict(int)  # Σ lendable
        self.pool_used: dict[tuple[str, Flavor], int] = defaultdict(int)  # Σ max(0, usage - guaranteed)
        self.members: dict[tuple[str, Flavor], list[str]] = defaultdict(list)
        for q in self.queues.values():
            for fq in q.flavors:
                self._quota[(q.name, fq.flavor)] = fq
                cohort = self.cohort_key(q.name, fq.flavor)
                self.pool[cohort] += fq.lendable
                self.members[cohort].append(q.name)

    def cohort_key(self, queue: str, flavor: Flavor) -> tuple[str, Flavor]:
        """The shared pool a queue's flavor belongs to; a queue without a cohort is alone."""
        q = self.queues.get(queue)
        return (f"cohort/{q.cohort}" if q is not None and q.cohort else f"queue/{queue}", flavor)

    def quota(self, queue: str, flavor: Flavor) -> FlavorQuota | None:
        return self._quota.get((queue, flavor))

    def _beyond(self, fq: FlavorQuota | None, usage: int) -> int:
        return max(0, usage - (fq.guaranteed if fq is not None else 0))

    def add(self, queue: str, flavor: Flavor | None, gpus: int) -> None:
        self._move(queue, flavor, gpus)

    def remove(self, queue: str, flavor: Flavor | None, gpus: int) -> None:
        self._move(queue, flavor, -gpus)

    def _move(self, queue: str, flavor: Flavor | None, delta: int) -> None:
        if flavor is None or delta == 0:
            return
        key = (queue, flavor)
        fq = self._quota.get(key)
        before = self.usage[key]
        after = before + delta
        self.usage[key] = after
        if fq is not None:
            # Usage on a flavor the queue has no quota for (its quota was removed) holds
            # nothing of the cohort's: it is outside every pool.
            cohort = self.cohort_key(queue, flavor)
            self.pool_used[cohort] += self._beyond(fq, after) - self._beyond(fq, before)

    def available(self, queue: str, flavor: Flavor) -> int:
        """GPUs the queue may still admit on the flavor now (see the module docstring)."""
        fq = self._quota.get((queue, flavor))
        if fq is None:
            return 0
        used = self.usage.get((queue, flavor), 0)
        cohort = self.cohort_key(queue, flavor)
        shared = self.pool[cohort] - self.pool_used[cohort]
        room = max(0, fq.guaranteed - used) + max(0, shared)
        if fq.borrowing_limit is not None:
            room = min(room, fq.nominal + fq.borrowing_limit - used)
        return max(0, room)

    def status(self, queue: str, flavor: Flavor) -> QuotaStatus:
        fq = self._quota.get((queue, flavor))
        used = self.usage.get((queue, flavor), 0)
        available = self.available(queue, flavor)
        nominal = fq.nominal if fq is not None else 0
        own_unused = max(0, nominal - used)
        return QuotaStatus(
            queue=queue,
            flavor=flavor,
            used=used,
            nominal=nominal,
            borrowing_limit=fq.borrowing_limit if fq is not None else 0,
            available=available,
            borrowable=max(0, available - own_unused),
            # Own unused nominal is always within nominal + borrowing limit, so having less than
            # it available means the cohort is using it (lent), never that the limit binds.
            lent=max(0, own_unused - available),
        )

    def borrowing(self, queue: str, flavor: Flavor) -> int:
        """GPUs the queue uses beyond its nominal quota on the flavor (0 if none)."""
        fq = self._quota.get((queue, flavor))
        return max(0, self.usage.get((queue, flavor), 0) - (fq.nominal if fq is not None else 0))

    def cohort_members(self, queue: str, flavor: Flavor) -> list[str]:
        """Other queues sharing the queue's pool on the flavor."""
        return [m for m in self.members.get(self.cohort_key(queue, flavor), []) if m != queue]

    def most_ever(self, queue: str, flavor: Flavor) -> int:
        """The most the queue could hold on the flavor with the whole cohort idle."""
        fq = self._quota.get((queue, flavor))
        if fq is None:
            return 0
        most = fq.guaranteed + self.pool[self.cohort_key(queue, flavor)]
        if fq.borrowing_limit is not None:
            most = min(most, fq.nominal + fq.borrowing_limit)
        return most
