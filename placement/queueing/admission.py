"""Admission: which pending workloads start now, on which flavor and cluster, and whom they evict.

``Admission(queues).decide(snapshot, pending, admitted)`` is one pass, pure and deterministic:

1. Each pending workload goes to its queue (``spec.queue``, else the queue whose
   ``defaultFor`` lists its namespace); a missing queue or a namespace the queue does not
   allow makes it inadmissible, with the reason.
2. Within a queue: priority (highest first), then creation order, then namespace/name.
3. Between queues: dominant-resource fair share with weights (Armada): the queue whose
   ``max over flavors (usage / fleet GPUs of that flavor) / weight`` is lowest offers its
   next workload; after each attempt its share is recomputed (a heap keyed by share).
4. A workload is tried on the queue's flavors in order (fungibility), skipping flavors it
   does not accept: admitted on the first where the quota (own + borrowable, see
   :mod:`placement.queueing.quota`) covers ALL its GPUs and the engine places ALL of it
   (gangs whole or not at all) restricted to that flavor's model, capacity type and region.
5. If no flavor works, preemption is tried per flavor in the same order, per the queue's
   policy (:mod:`placement.queueing.preemption`); victims are evicted only when, without
   them, the quota fits AND the engine places the workload.
6. StrictFIFO: a queue whose head cannot be admitted admits nothing behind it this pass.
   BestEffortFIFO: the head waits and the next workload is tried.

Everything the pass decides books capacity in ONE placement session, so the admitted
workloads never use more than the fleet's free GPUs (plus what victims free). Cost: each
pending workload is tried at most once per flavor — one vectorised engine call when its
quota fits — and the quota checks are O(1); the per-queue heap adds O(log queues).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from placement.decision import ClusterAssignment, Decision
from placement.engine import Engine, PlacementSession
from placement.errors import PlacementInputError
from placement.fleet import FleetArrays
from placement.model import FleetSnapshot, Reservation
from placement.plugins import default_plugins
from placement.plugins.base import Plugin
from placement.profiles import Profile, get_profile
from placement.queueing.capacity import flavor_capacity
from placement.queueing.model import AdmittedWorkload, Flavor, FlavorQuota, Queue, QueuedWorkload
from placement.queueing.preemption import Eviction, Preemptor
from placement.queueing.quota import QuotaBook, QuotaStatus
from placement.queueing.region import FlavorRegion

Phase = Literal["Admitted", "Waiting", "Inadmissible"]
Outcome = Literal["admitted", "no-quota", "no-fit", "no-preemption"]


@dataclass(frozen=True)
class FlavorAttempt:
    """What happened on one flavor: the quota numbers seen, the outcome and why."""

    flavor: Flavor
    quota: QuotaStatus | None
    outcome: Outcome
    text: str
    decision: Decision | None = field(default=None, repr=False, compare=False)
    """The engine's decision when the quota fitted but the placement did not (no-fit)."""

    @property
    def reason(self) -> str:
        """Built on demand: the engine's "0/N clusters: …" reason is costly at 1,000 clusters."""
        if self.decision is not None and not self.decision.placed:
            return f"{self.text} but {self.decision.reason}"
        return self.text

    def to_dict(self) -> dict[str, Any]:
        q = self.quota
        return {
            "flavor": str(self.flavor),
            "outcome": self.outcome,
            "reason": self.reason,
            "used": q.used if q else None,
            "nominal": q.nominal if q else None,
            "available": q.available if q else None,
        }


@dataclass(eq=False)
class AdmissionDecision:
    """The outcome for one pending workload."""

    workload: QueuedWorkload
    queue: str | None
    phase: Phase
    why: str | None
    """The reason; None for a waiting workload, whose reason is its flavor attempts'."""
    flavor: FlavorQuota | None = None
    placement: Decision | None = None
    victims: tuple[Eviction, ...] = ()
    attempts: tuple[FlavorAttempt, ...] = ()
    position: int | None = None
    """1-based place among the workloads still waiting in its queue after this pass."""
    ahead_higher: int = 0
    """Waiting workloads ahead of it in its queue with a higher priority."""
    ahead: int = 0

    @property
    def admitted(self) -> bool:
        return self.phase == "Admitted"

    @property
    def key(self) -> str:
        return self.workload.key

    @property
    def assignments(self) -> tuple[ClusterAssignment, ...]:
        return self.placement.assignments if self.placement is not None and self.admitted else ()

    @property
    def reason(self) -> str:
        if self.why is not None:
            return self.why
        return "; ".join(a.reason for a in self.attempts)

    @property
    def message(self) -> str:
        """The one line a user reads: the reason, prefixed by the position when waiting."""
        if self.phase != "Waiting" or self.position is None:
            return self.reason
        where = f"position {self.position} in queue {self.queue}"
        if self.ahead_higher:
            n = self.ahead_higher
            where += f", behind {n} higher-priority workload{'s' if n != 1 else ''}"
        return f"{where}: {self.reason}"

    def to_dict(self, explain_limit: int | None = 0) -> dict[str, Any]:
        """JSON shape of docs/queues.md; ``explain_limit`` > 0 adds the engine's per-cluster
        explanation of the placement (best N clusters), None adds all of it."""
        out: dict[str, Any] = {
            "workload": self.key,
            "queue": self.queue,
            "priority": self.workload.priority,
            "gpus": self.workload.gpus,
            "phase": self.phase,
            "admitted": self.admitted,
            "flavor": str(self.flavor.flavor) if self.flavor else None,
            "flavorName": self.flavor.label if self.flavor else None,
            "position": self.position,
            "aheadHigherPriority": self.ahead_higher,
            "reason": self.message,
            "placements": [a.to_dict() for a in self.assignments],
            "victims": [v.key for v in self.victims],
            "attempts": [a.to_dict() for a in self.attempts],
        }
        if self.placement is not None and explain_limit != 0:
            out["explanation"] = self.placement.to_dict(explain_limit)
        return out


@dataclass(frozen=True)
class QueueSummary:
    """A queue after the pass: usage per flavor, how many wait, its fair share."""

    queue: Queue
    usage: tuple[QuotaStatus, ...]
    pending: int
    """Workloads still waiting in it after the pass (inadmissible ones are not counted)."""
    admitted: int
    share: float
    """Dominant share / weight after the pass (0 = uses nothing)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.queue.name,
            "cohort": self.queue.cohort,
            "weight": self.queue.weight,
            "queueingStrategy": self.queue.strategy,
            "pending": self.pending,
            "admittedNow": self.admitted,
            "weightedShare": round(self.share, 6),
            "flavors": [
                {
                    "flavor": str(s.flavor),
                    "used": s.used,
                    "nominal": s.nominal,
                    "borrowed": s.borrowed,
                    "available": s.available,
                }
                for s in self.usage
            ],
        }


@dataclass(eq=False)
class AdmissionResult:
    """One pass: a decision per pending workload (in the order decided), the evictions, the queues."""

    decisions: list[AdmissionDecision]
    evictions: list[Eviction]
    queues: list[QueueSummary]
    session: PlacementSession = field(repr=False)
    """The placement session after the pass: its capacity has every admission booked."""

    @property
    def admitted(self) -> list[AdmissionDecision]:
        return [d for d in self.decisions if d.admitted]

    def by_key(self) -> dict[str, AdmissionDecision]:
        return {d.key: d for d in self.decisions}

    def to_dict(self, explain_limit: int | None = 0) -> dict[str, Any]:
        counts = {p: sum(d.phase == p for d in self.decisions) for p in ("Admitted", "Waiting", "Inadmissible")}
        return {
            "apiVersion": "fleetplane.io/v1alpha1",
            "kind": "AdmissionReport",
            "summary": {
                "workloads": len(self.decisions),
                "admitted": counts["Admitted"],
                "waiting": counts["Waiting"],
                "inadmissible": counts["Inadmissible"],
                "evicted": len(self.evictions),
            },
            "queues": [q.to_dict() for q in self.queues],
            "decisions": [d.to_dict(explain_limit) for d in self.decisions],
            "evictions": [e.to_dict() for e in self.evictions],
        }


def _order_key(value: str | int) -> tuple[int, int, str]:
    """Creation / admission order values may be ints or timestamps; never compare the two."""
    return (0, value, "") if isinstance(value, int) else (1, 0, value)


class Admission:
    """Admits pending workloads of several queues on one fleet; see the module docstring.

    Keep one per set of queues and call :meth:`decide` every pass (the engine memoises the
    last snapshot it compiled). Not thread-safe: one pass at a time."""

    def __init__(
        self,
        queues: Sequence[Queue],
        profile: Profile | str = "default",
        plugins: Sequence[Plugin] | None = None,
    ) -> None:
        names = [q.name for q in queues]
        for q in queues:
            if names.count(q.name) > 1:
                raise PlacementInputError("Queue", q.name, "metadata.name", "duplicate Queue name")
        self.queues: dict[str, Queue] = {q.name: q for q in queues}
        self.default_for: dict[str, str] = {}
        for q in queues:
            for ns in sorted(q.default_for):
                other = self.default_for.get(ns)
                if other is not None:
                    raise PlacementInputError(
                        "Queue", q.name, "spec.defaultFor", f'namespace "{ns}" already defaults to Queue "{other}"'
                    )
                self.default_for[ns] = q.name
        self.region_filter = FlavorRegion()
        base = list(plugins) if plugins is not None else default_plugins()
        self.engine = Engine(get_profile(profile), plugins=[*base, self.region_filter])

    # ------------------------------------------------------------ the pass

    def decide(
        self,
        snapshot: FleetSnapshot,
        pending: Iterable[QueuedWorkload],
        admitted: Iterable[AdmittedWorkload] = (),
        reservations: Iterable[Reservation] = (),
    ) -> AdmissionResult:
        """One admission pass. ``snapshot``'s free GPUs already exclude what ``admitted``
        workloads run (the clusters report them in use); ``reservations`` are placements in
        flight that the reports do not show yet."""
        session = self.engine.session(snapshot, reservations)
        book = QuotaBook(self.queues.values())
        running = sorted(admitted, key=lambda a: (_order_key(a.admitted), a.key))
        for a in running:
            book.add(a.queue, a.flavor, a.gpus)
        preemptor = Preemptor(self, book, running)

        decisions: dict[str, AdmissionDecision] = {}
        order: list[str] = []
        queued: dict[str, list[QueuedWorkload]] = defaultdict(list)
        # One order for everything (inadmissible ones are reported in it too), whatever the input's.
        for w in sorted(pending, key=lambda w: (-w.priority, _order_key(w.created), w.key)):
            name = w.queue or self.default_for.get(w.request.namespace)
            q = self.queues.get(name) if name else None
            why = None
            if name is None:
                why = (
                    f'no queue: spec.queue is empty and no Queue lists namespace "{w.request.namespace}" '
                    "in spec.defaultFor"
                )
            elif q is None:
                why = f'Queue "{name}" does not exist'
            elif not q.allows(w.request.namespace):
                allowed = ", ".join(sorted(q.namespaces or ()))
                why = f'namespace "{w.request.namespace}" may not submit to Queue "{name}" (spec.namespaces: {allowed})'
            if why is not None:
                decisions[w.key] = AdmissionDecision(w, name, "Inadmissible", why)
                order.append(w.key)
                continue
            assert name is not None
            queued[name].append(w)
        for lst in queued.values():
            lst.sort(key=lambda w: (-w.priority, _order_key(w.created), w.key))

        arrays = session.arrays
        heap = [(self._share(book, arrays, self.queues[n]), n) for n in sorted(queued)]
        heapq.heapify(heap)
        nxt = dict.fromkeys(queued, 0)
        while heap:
            _, name = heapq.heappop(heap)
            q, lst = self.queues[name], queued[name]
            w = lst[nxt[name]]
            nxt[name] += 1
            d = self._try(w, q, session, book, preemptor)
            decisions[w.key] = d
            order.append(w.key)
            # An inadmissible head (no flavor it accepts) is set aside, as Kueue does: it would
            # block the queue forever.
            if d.phase == "Waiting" and q.strategy == "StrictFIFO":
                for rest in lst[nxt[name] :]:
                    decisions[rest.key] = AdmissionDecision(
                        rest, name, "Waiting", f"StrictFIFO: behind the queue's head {w.key}, which cannot be admitted"
                    )
                    order.append(rest.key)
                nxt[name] = len(lst)
            if nxt[name] < len(lst):
                heapq.heappush(heap, (self._share(book, arrays, q), name))

        admitted_now: dict[str, int] = defaultdict(int)
        for name, lst in queued.items():
            ahead = 0
            first_of_priority = 0
            last_priority: int | None = None
            for w in lst:
                d = decisions[w.key]
                if d.admitted:
                    admitted_now[name] += 1
                if d.phase != "Waiting":
                    continue
                if w.priority != last_priority:
                    first_of_priority, last_priority = ahead, w.priority
                d.position, d.ahead, d.ahead_higher = ahead + 1, ahead, first_of_priority
                ahead += 1
        summaries = [
            QueueSummary(
                queue=q,
                usage=tuple(book.status(q.name, fq.flavor) for fq in q.flavors),
                pending=sum(1 for w in queued.get(q.name, ()) if decisions[w.key].phase == "Waiting"),
                admitted=admitted_now[q.name],
                share=self._share(book, arrays, q),
            )
            for q in sorted(self.queues.values(), key=lambda q: q.name)
        ]
        return AdmissionResult([decisions[k] for k in order], preemptor.evictions, summaries, session)

    # ------------------------------------------------------------ one workload

    def _share(self, book: QuotaBook, arrays: FleetArrays, q: Queue) -> float:
        """Dominant-resource share of a queue divided by its weight (Armada's fair share)."""
        share = 0.0
        for fq in q.flavors:
            used = book.usage.get((q.name, fq.flavor), 0)
            if used:
                total = flavor_capacity(arrays, fq.flavor) or max(fq.nominal, 1)
                share = max(share, used / total)
        return share / q.weight

    def place_on(self, session: PlacementSession, w: QueuedWorkload, fq: FlavorQuota) -> Decision:
        """The engine's decision for the workload restricted to one flavor (books if placed)."""
        self.region_filter.region = fq.flavor.region
        try:
            return session.place(fq.flavor.restrict(w.request))
        finally:
            self.region_filter.region = None

    def _try(
        self, w: QueuedWorkload, q: Queue, session: PlacementSession, book: QuotaBook, preemptor: Preemptor
    ) -> AdmissionDecision:
        if w.gpus == 0:
            d = session.place(w.request)
            if d.placed:
                return AdmissionDecision(
                    w, q.name, "Admitted", f"admitted (needs no GPUs, no quota); {d.reason}", None, d
                )
            return AdmissionDecision(w, q.name, "Waiting", f"needs no GPUs but {d.reason}", None, d)
        families = w.request.canonical_models
        accepted = [fq for fq in q.flavors if fq.flavor.accepts(w.request, families)]
        if not accepted:
            have = ", ".join(str(fq.flavor) for fq in q.flavors) or "none"
            models = "/".join(w.request.models) or "any model"
            caps = "/".join(sorted(w.request.allowed))
            return AdmissionDecision(
                w,
                q.name,
                "Inadmissible",
                f"queue {q.name} has no flavor the workload accepts ({models} on {caps}; queue flavors: {have})",
            )
        attempts: list[FlavorAttempt] = []
        never: set[Flavor] = set()
        last: Decision | None = None
        for fq in accepted:
            most = book.most_ever(q.name, fq.flavor)
            if w.gpus > most:
                never.add(fq.flavor)
                why = f"queue {q.name}: {fq.flavor}: needs {w.gpus} GPUs, more than the queue can ever hold ({most})"
                attempts.append(FlavorAttempt(fq.flavor, book.status(q.name, fq.flavor), "no-quota", why))
                continue
            if w.gpus > book.available(q.name, fq.flavor):
                status = book.status(q.name, fq.flavor)
                attempts.append(FlavorAttempt(fq.flavor, status, "no-quota", status.describe(w.gpus)))
                continue
            d = self.place_on(session, w, fq)
            if d.placed:
                book.add(q.name, fq.flavor, w.gpus)
                after = book.status(q.name, fq.flavor)
                attempts.append(FlavorAttempt(fq.flavor, after, "admitted", "admitted"))
                reason = f"admitted on {fq.flavor} ({after.describe()}); {d.reason}"
                return AdmissionDecision(w, q.name, "Admitted", reason, fq, d, (), tuple(attempts))
            status = book.status(q.name, fq.flavor)
            last = d
            attempts.append(
                FlavorAttempt(
                    fq.flavor,
                    status,
                    "no-fit",
                    f"{fq.flavor}: quota allows {w.gpus} ({status.available} available)",
                    d,
                )
            )
        for fq in accepted:
            if fq.flavor in never:
                continue
            plan = preemptor.plan(w, q, fq, session)
            if plan.decision is not None:
                victims = preemptor.commit(plan, w, q, fq, session)
                status = book.status(q.name, fq.flavor)
                attempts.append(FlavorAttempt(fq.flavor, status, "admitted", plan.note))
                names = ", ".join(v.key for v in victims)
                reason = f"admitted on {fq.flavor} by evicting {names} ({status.describe()}); {plan.decision.reason}"
                return AdmissionDecision(w, q.name, "Admitted", reason, fq, plan.decision, victims, tuple(attempts))
            if plan.note:
                attempts.append(FlavorAttempt(fq.flavor, None, "no-preemption", plan.note))
        return AdmissionDecision(w, q.name, "Waiting", None, None, last, (), tuple(attempts))
