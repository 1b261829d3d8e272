"""Preemption: which admitted workloads to evict so a pending one can be admitted, if any.

Candidates on the flavor being tried, per the preemptor's queue policy:

- ``withinQueue: LowerPriority``: workloads of the same queue with a LOWER priority;
- ``reclaimWithinCohort``: workloads of other queues of the cohort while their queue uses
  more than its nominal quota on the flavor (it borrowed), with a priority not above the
  preemptor's (``Any``) or below it (``LowerPriority``).

A higher-priority workload is never a candidate. Candidates are taken lowest priority first,
then most recently admitted first, until the quota covers the preemptor AND the engine
places it with the victims' GPUs given back (a trial placement in a forked session); then
each victim is put back, most recent addition first, when the preemptor still fits without
it. If even every candidate would not make room, nobody is evicted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from placement.decision import Decision
from placement.engine import PlacementSession
from placement.queueing.capacity import fork, release
from placement.queueing.model import AdmittedWorkload, Flavor, FlavorQuota, PreemptionPolicy, Queue, QueuedWorkload
from placement.queueing.quota import QuotaBook

if TYPE_CHECKING:
    from placement.queueing.admission import Admission


@dataclass(frozen=True)
class Eviction:
    """An admitted workload to evict: the hub withdraws its Assignments (epoch fencing) and
    returns it to its queue with an ``Evicted`` condition carrying ``reason``."""

    workload: AdmittedWorkload
    preemptor: str
    reason: str

    @property
    def key(self) -> str:
        return self.workload.key

    def to_dict(self) -> dict[str, Any]:
        w = self.workload
        return {
            "workload": w.key,
            "queue": w.queue,
            "flavor": str(w.flavor) if w.flavor else None,
            "gpus": w.gpus,
            "priority": w.priority,
            "preemptor": self.preemptor,
            "reason": self.reason,
        }


@dataclass(eq=False)
class Plan:
    """A preemption that works (``decision`` set) or why there is none (``note``)."""

    decision: Decision | None = None
    trial: PlacementSession | None = None
    victims: list[AdmittedWorkload] = field(default_factory=list)
    note: str = ""


class Preemptor:
    """The admitted workloads that may be evicted during one pass, indexed by (queue, flavor)."""

    def __init__(self, admission: Admission, book: QuotaBook, running: Sequence[AdmittedWorkload]) -> None:
        self.admission = admission
        self.book = book
        #: Position in admission order: higher = more recent, evicted first among equals.
        self.recency = {w.key: i for i, w in enumerate(running)}
        self.by_slot: dict[tuple[str, Flavor], list[AdmittedWorkload]] = defaultdict(list)
        for w in running:
            if w.flavor is not None:
                self.by_slot[(w.queue, w.flavor)].append(w)
        for slot in self.by_slot.values():
            slot.sort(key=self._victim_order)
        self.evictions: list[Eviction] = []

    def _victim_order(self, w: AdmittedWorkload) -> tuple[int, int]:
        return (w.priority, -self.recency[w.key])

    def candidates(self, w: QueuedWorkload, q: Queue, flavor: Flavor) -> list[AdmittedWorkload]:
        out: list[AdmittedWorkload] = []
        if q.preemption.within_queue == "LowerPriority":
            for v in self.by_slot.get((q.name, flavor), ()):
                if v.priority >= w.priority:
                    break  # sorted by priority: the rest are not lower either
                out.append(v)
        reclaim = q.preemption.reclaim_within_cohort
        if q.cohort and reclaim != "Never":
            for other in self.book.cohort_members(q.name, flavor):
                if self.book.borrowing(other, flavor) <= 0:
                    continue
                for v in self.by_slot.get((other, flavor), ()):
                    if v.priority > w.priority or (reclaim == "LowerPriority" and v.priority == w.priority):
                        break
                    out.append(v)
        out.sort(key=self._victim_order)
        return out

    def _policy(self, q: Queue) -> str:
        p = q.preemption
        return f"withinQueue {p.within_queue}, reclaimWithinCohort {p.reclaim_within_cohort}"

    def _fits(
        self, w: QueuedWorkload, q: Queue, fq: FlavorQuota, session: PlacementSession, victims: list[AdmittedWorkload]
    ) -> tuple[PlacementSession, Decision] | None:
        if self.book.available(q.name, fq.flavor) < w.gpus:
            return None
        trial = fork(session)
        release(trial.state, [a for v in victims for a in v.assignments])
        d = self.admission.place_on(trial, w, fq)
        return (trial, d) if d.placed else None

    def plan(self, w: QueuedWorkload, q: Queue, fq: FlavorQuota, session: PlacementSession) -> Plan:
        """Victims that let ``w`` be admitted on ``fq``, or a note saying why there are none.
        Leaves the quota book as it found it."""
        book, flavor = self.book, fq.flavor
        most = book.most_ever(q.name, flavor)
        if w.gpus > most:
            return Plan(note=f"{flavor}: needs {w.gpus} GPUs, more than queue {q.name} can ever hold ({most})")
        if q.preemption == PreemptionPolicy():
            return Plan()  # the queue never preempts: nothing to explain beyond the quota
        candidates = self.candidates(w, q, flavor)
        if not candidates:
            return Plan(note=f"{flavor}: no workload it may preempt ({self._policy(q)})")
        removed: list[AdmittedWorkload] = []
        try:
            # Take candidates in order; note how many the quota alone needs.
            quota_at = 0
            for v in candidates:
                if v.queue != q.name and book.borrowing(v.queue, flavor) <= 0:
                    continue  # that queue is back within its nominal quota: nothing left to reclaim
                book.remove(v.queue, flavor, v.gpus)
                removed.append(v)
                if not quota_at and book.available(q.name, flavor) >= w.gpus:
                    quota_at = len(removed)
            freed = sum(v.gpus for v in removed)
            if not quota_at:
                have = book.available(q.name, flavor)
                why = f"quota would still have only {have} of {w.gpus} available"
                return Plan(
                    note=f"{flavor}: evicting all {len(removed)} candidates ({freed} GPUs) would not help: {why}"
                )
            # More free GPUs never make a placement infeasible, so one trial with every
            # candidate gone says whether any set of them can make room.
            everything = fork(session)
            release(everything.state, [a for v in removed for a in v.assignments])
            last = self.admission.place_on(everything, w, fq)
            if not last.placed:
                why = "no cluster would fit it on the freed capacity"
                return Plan(
                    note=f"{flavor}: evicting all {len(removed)} candidates ({freed} GPUs) would not help: {why}"
                )
            # The shortest prefix of candidates that makes room: one trial session, victims'
            # GPUs given back one more at a time (a failed placement books nothing).
            n = quota_at
            trial = fork(session)
            release(trial.state, [a for v in removed[:n] for a in v.assignments])
            while True:
                d = self.admission.place_on(trial, w, fq)
                if d.placed:
                    break
                if n == len(removed):
                    trial, d = everything, last
                    break
                release(trial.state, removed[n].assignments)
                n += 1
            for v in removed[n:]:
                book.add(v.queue, flavor, v.gpus)
            removed = removed[:n]
            found: tuple[PlacementSession, Decision] = (trial, d)

            # Keep only the victims that are needed, trying the last added first. A victim with
            # no replica in the pools the placement uses only matters for the quota; the others
            # need a trial placement without them.
            def pools_of(d: Decision) -> set[tuple[str, str | None]]:
                return {(x.cluster, x.pool) for x in d.assignments}

            used = pools_of(found[1])
            untested = False
            tested = list(removed)  # the victims ``found`` was placed without
            for v in reversed(list(removed)):
                if len(removed) == 1:
                    break
                book.add(v.queue, flavor, v.gpus)
                keep = [x for x in removed if x is not v]
                if book.available(q.name, flavor) < w.gpus:
                    book.remove(v.queue, flavor, v.gpus)
                elif not any((x.cluster, x.pool) in used for x in v.assignments):
                    removed, untested = keep, True
                elif (again := self._fits(w, q, fq, session, keep)) is not None:
                    removed, found, used, untested, tested = keep, again, pools_of(again[1]), False, keep
                else:
                    book.remove(v.queue, flavor, v.gpus)
            if untested:
                # The trial gave back GPUs of victims now kept: redo it with the final set. The
                # pools it used have the same room, so it places; if the engine ever disagreed,
                # fall back to the last set that was tried.
                final = self._fits(w, q, fq, session, removed)
                if final is not None:
                    found = final
                else:
                    for v in tested:
                        if v not in removed:
                            book.remove(v.queue, flavor, v.gpus)
                    removed = tested
            trial, decision = found
            names = ", ".join(v.key for v in removed)
            return Plan(decision, trial, removed, f"evicts {names} ({sum(v.gpus for v in removed)} GPUs)")
        finally:
            for v in removed:
                book.add(v.queue, flavor, v.gpus)

    def commit(
        self, plan: Plan, w: QueuedWorkload, q: Queue, fq: FlavorQuota, session: PlacementSession
    ) -> tuple[Eviction, ...]:
        """Evict the plan's victims and admit ``w``: quota moves, the session takes the
        trial's capacity (victims' GPUs back, ``w`` booked)."""
        assert plan.trial is not None
        out = []
        for v in plan.victims:
            if v.queue == q.name:
                reason = f"preempted by {w.key} (priority {w.priority} > {v.priority}) in queue {q.name}"
            else:
                borrowed = self.book.borrowing(v.queue, fq.flavor)
                reason = (
                    f"reclaimed by queue {q.name} for {w.key}: queue {v.queue} was borrowing {borrowed} "
                    f"{fq.flavor} GPUs beyond its nominal quota"
                )
            self.book.remove(v.queue, fq.flavor, v.gpus)
            self.by_slot[(v.queue, fq.flavor)].remove(v)
            out.append(Eviction(v, w.key, reason))
        self.book.add(q.name, fq.flavor, w.gpus)
        session.state = plan.trial.state
        self.evictions.extend(out)
        return tuple(out)
