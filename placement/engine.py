"""The placement engine: filter, score, choose, book — one workload at a time, fast.

``Engine(profile).place_batch(snapshot, workloads, reservations)`` is what the hub's
placement controller calls. A batch is placed in priority order (highest first, then by
namespace/name) against ONE snapshot whose free capacity is first reduced by the in-flight
reservations and then by every decision the batch makes, so nothing is double-booked.

Per workload the engine runs cluster-level filters (a boolean per cluster), then pool-level
filters (a boolean per GPU pool), scores the surviving (cluster, pool) options with every
plugin of non-zero weight, and picks:

- Gang: the single best option; all replicas go to that one pool.
- Divisible: options best first, one pool per cluster, as many replicas as each can host,
  up to ``max_clusters`` clusters. If the best-scored clusters cannot hold all replicas
  within ``max_clusters`` but the roomiest ones can, the roomiest are used instead.

Ties break by cluster name, then by pool order, so the same input gives the same output.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from placement.catalogue import canonical_model, known_models
from placement.decision import ClusterAssignment, Decision, Trace, best_option
from placement.errors import PlacementInputError
from placement.fleet import CAP_CODE, FleetArrays, FleetState, IntArray, compile_snapshot
from placement.model import CAPACITY_TYPES, FleetSnapshot, Reservation, WorkloadRequest
from placement.plugins import default_plugins
from placement.plugins.base import ExplainView, Options, Plugin, Query
from placement.profiles import Profile, get_profile

_EMPTY = np.zeros(0, dtype=np.int64)


def _ids(mapping: dict[str, int], names: Iterable[str]) -> IntArray:
    return np.array(sorted({mapping[n] for n in names if n in mapping}), dtype=np.int64)


class Engine:
    """Places workloads on a fleet with one scoring profile and a list of plugins."""

    def __init__(self, profile: Profile | str = "default", plugins: Sequence[Plugin] | None = None) -> None:
        self.profile = get_profile(profile)
        self.plugins: list[Plugin] = list(plugins) if plugins is not None else default_plugins()
        names = [p.name for p in self.plugins]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate plugin names in {names}")
        self.cluster_filters = [p for p in self.plugins if p.stage == "cluster"]
        self.pool_filters = [p for p in self.plugins if p.stage == "pool"]
        # Weight 0 disables a plugin: it is not even called.
        self.scorers = [(p, self.profile.weight(p.name)) for p in self.plugins if self.profile.weight(p.name) != 0]
        self._compiled: tuple[FleetSnapshot, FleetArrays] | None = None

    def compile(self, snapshot: FleetSnapshot) -> FleetArrays:
        """Compile a snapshot (memoised for the last snapshot seen)."""
        if self._compiled is None or self._compiled[0] is not snapshot:
            self._compiled = (snapshot, compile_snapshot(snapshot))
        return self._compiled[1]

    def session(self, snapshot: FleetSnapshot, reservations: Iterable[Reservation] = ()) -> PlacementSession:
        """A batch in progress: its own copy of free capacity, reservations already booked."""
        return PlacementSession(self, self.compile(snapshot), reservations)

    def place_batch(
        self,
        snapshot: FleetSnapshot,
        workloads: Iterable[WorkloadRequest],
        reservations: Iterable[Reservation] = (),
    ) -> list[Decision]:
        """Decide every workload, highest priority first; returns decisions in that order."""
        session = self.session(snapshot, reservations)
        ordered = sorted(workloads, key=lambda w: (-w.priority, w.namespace, w.name))
        return [session.place(w) for w in ordered]


class PlacementSession:
    """Free capacity of one batch; each :meth:`place` books what it decides."""

    def __init__(self, engine: Engine, arrays: FleetArrays, reservations: Iterable[Reservation] = ()) -> None:
        self.engine = engine
        self.arrays = arrays
        self.state = FleetState(arrays)
        self._known_models = known_models(set(arrays.model_names))
        self.ignored_reservations: list[Reservation] = []
        for r in reservations:
            self.reserve(r)

    # ------------------------------------------------------------ reservations

    def _pool_index(self, cluster: str, pool: str) -> int | None:
        a = self.arrays
        index = a.cache.get("pool-index")
        if index is None:
            index = {
                (a.cluster_names[int(c)], n): i
                for i, (c, n) in enumerate(zip(a.pool_cluster, a.pool_names, strict=False))
            }
            a.cache["pool-index"] = index
        assert isinstance(index, dict)
        return index.get((cluster, pool))

    def reserve(self, r: Reservation) -> None:
        """Book an in-flight placement. One on a cluster or pool that no longer exists holds
        nothing and is kept in ``ignored_reservations`` for the caller to release."""
        pool = self._pool_index(r.cluster, r.pool)
        if pool is None or r.gpus_per_replica == 0 or r.replicas == 0:
            if pool is None:
                self.ignored_reservations.append(r)
            return
        a = self.arrays
        start, end = int(a.pool_node_start[pool]), int(a.pool_node_end[pool])
        if r.nodes:
            by_name = {a.node_names[i]: i for i in range(start, end)}
            known = [by_name[n] for n in r.nodes if n in by_name]
            self.state.book_nodes(pool, known, r.gpus_per_replica)
            # Replicas on nodes that vanished still hold GPUs somewhere in the pool.
            missing = len(r.nodes) - len(known)
            if missing:
                self.state.allocate(pool, r.gpus_per_replica, missing)
        else:
            self.state.allocate(pool, r.gpus_per_replica, r.replicas)

    # ------------------------------------------------------------ placing

    def query(self, w: WorkloadRequest) -> Query:
        a = self.arrays
        snap = a.snapshot
        for attr, wire in (("models", "spec.gpu.models"), ("preferred_models", "spec.gpu.preferredModels")):
            for m in getattr(w, attr):
                if canonical_model(m) not in self._known_models:
                    raise PlacementInputError("Workload", w.name, wire, f'unknown GPU model "{m}"')
        for i, ds in enumerate(w.datasets):
            if snap.dataset_for(w.namespace, ds) is None:
                raise PlacementInputError("Workload", w.name, f"spec.datasets[{i}]", f'unknown Dataset "{ds}"')
        return Query(
            workload=w,
            profile=self.engine.profile,
            k=w.gpus_per_replica,
            need=w.replicas if w.mode == "Gang" else 1,
            model_ids=_ids(a.model_ids, (canonical_model(m) for m in w.models)) if w.models else None,
            preferred_model_ids=_ids(a.model_ids, (canonical_model(m) for m in w.preferred_models)),
            allowed_caps=np.array(sorted(CAP_CODE[c] for c in w.allowed), dtype=np.int64),
            preferred_caps=np.array(sorted(CAP_CODE[c] for c in w.preferred), dtype=np.int64),
        )

    def place(self, w: WorkloadRequest) -> Decision:
        """Decide one workload and book its GPUs in this session."""
        eng = self.engine
        a = self.arrays
        st = self.state
        q = self.query(w)

        cmasks: list[np.ndarray] = []
        cluster_filters: list[Plugin] = []
        cmask = np.ones(a.n_clusters, dtype=np.bool_)
        for p in eng.cluster_filters:
            m = p.filter(q, st)
            if m is not None:
                cmask = cmask & m
                cmasks.append(m)
                cluster_filters.append(p)

        pool_filters: list[Plugin] = []
        if q.gpu_less:
            clusters = np.flatnonzero(cmask)
            opts = Options(clusters, np.full(len(clusters), -1, dtype=np.int64), np.full(len(clusters), w.replicas))
            capacity = opts.replicas
            pmasks_kept: list[np.ndarray] | None = None
            view = ExplainView(a, _EMPTY, _EMPTY, _EMPTY, opts)
        else:
            pmask = cmask[a.pool_cluster]
            pmasks: list[np.ndarray] = []
            fit_pools = _EMPTY
            for p in eng.pool_filters:
                if p.name == "gpu-fit":
                    # Keep what the fit filter saw: the live state moves on as the batch does.
                    fit_pools = np.flatnonzero(pmask)
                m = p.filter(q, st)
                if m is not None:
                    pmask = pmask & m
                    pmasks.append(m)
                    pool_filters.append(p)
            pmasks_kept = pmasks
            pools = np.flatnonzero(pmask)
            capcol = st.capacity_for(q.k)
            capacity = capcol[pools]
            opts = Options(a.pool_cluster[pools], pools, np.minimum(capacity, w.replicas))
            view = ExplainView(a, fit_pools, capcol[fit_pools], st.pool_free[fit_pools], opts)

        total = np.zeros(len(opts))
        scores: list[np.ndarray] = []
        for p, weight in eng.scorers:
            raw = p.score(q, st, opts)
            assert raw is not None, f"plugin {p.name} has a weight but does not score"
            scores.append(raw)
            total += weight * raw

        chosen, shortfall = self._choose(q, opts, capacity, total)
        assignments = tuple(self._book(q, opts, i, r) for i, r in chosen)
        trace = Trace(
            query=q,
            cluster_filters=cluster_filters,
            pool_filters=pool_filters,
            scorers=eng.scorers,
            cluster_masks=cmasks,
            pool_masks=pmasks_kept,
            view=view,
            scores=scores,
            total=total,
            chosen=[i for i, _ in chosen],
            shortfall=shortfall,
        )
        return Decision(w, eng.profile.name, bool(chosen), assignments, trace)

    def _choose(
        self, q: Query, opts: Options, capacity: IntArray, total: np.ndarray
    ) -> tuple[list[tuple[int, int]], str | None]:
        """Option indices and replicas for each; empty (plus a reason) if it does not fit."""
        w = q.workload
        if len(opts) == 0:
            return [], None
        rank = self.arrays.name_rank[opts.cluster]
        best = best_option(total, rank, opts.pool)
        if w.mode == "Gang" or capacity[best] >= w.replicas or q.gpu_less:
            return [(best, w.replicas)], None
        limit = w.max_clusters or len(opts)
        # Divisible and the best option is not enough: walk clusters best first. A few picks
        # by repeated arg-max beat sorting every option; many picks fall back to one sort
        # (same order, same tie-break, so the same answer).
        picks = self._fill_by_argmax(opts, capacity, total, rank, w.replicas, limit)
        if picks is None:
            order = np.lexsort((opts.pool, rank, -total))
            picks = self._fill(order, opts, capacity, w.replicas, limit)
        if picks:
            return picks, None
        # Within max_clusters the best-scored clusters lack room; try the roomiest ones.
        order = np.lexsort((opts.pool, rank, -total, -capacity))
        picks = self._fill(order, opts, capacity, w.replicas, limit)
        if picks:
            return picks, None
        firsts = self._one_per_cluster(order, opts)
        room = int(capacity[firsts[:limit]].sum())
        within = f" within maxClusters {w.max_clusters}" if w.max_clusters else ""
        return [], f"together they have room for {room} of {w.replicas} replicas{within}"

    #: Picks a divisible workload makes by repeated arg-max before sorting all options instead.
    ARGMAX_PICKS = 8

    def _fill_by_argmax(
        self, opts: Options, capacity: IntArray, total: np.ndarray, rank: IntArray, replicas: int, limit: int
    ) -> list[tuple[int, int]] | None:
        """Greedy best-first fill; [] if it cannot fit within ``limit``, None if it needs
        more than ARGMAX_PICKS picks (the caller then sorts)."""
        alive = total.copy()
        picks: list[tuple[int, int]] = []
        remaining = replicas
        while remaining > 0 and len(picks) < limit:
            if len(picks) == self.ARGMAX_PICKS:
                return None
            if not np.isfinite(alive.max()):
                break
            i = best_option(alive, rank, opts.pool)
            r = min(int(capacity[i]), remaining)
            picks.append((i, r))
            remaining -= r
            alive[opts.cluster == opts.cluster[i]] = -np.inf
        return picks if remaining == 0 else []

    @staticmethod
    def _one_per_cluster(order: IntArray, opts: Options) -> IntArray:
        clusters = opts.cluster[order]
        _, first = np.unique(clusters, return_index=True)
        return order[np.sort(first)]

    def _fill(
        self, order: IntArray, opts: Options, capacity: IntArray, replicas: int, limit: int
    ) -> list[tuple[int, int]]:
        picks: list[tuple[int, int]] = []
        remaining = replicas
        for i in self._one_per_cluster(order, opts):
            if remaining == 0 or len(picks) == limit:
                break
            r = min(int(capacity[i]), remaining)
            if r > 0:
                picks.append((int(i), r))
                remaining -= r
        return picks if remaining == 0 else []

    def _book(self, q: Query, opts: Options, i: int, replicas: int) -> ClusterAssignment:
        a = self.arrays
        cluster = a.cluster_names[int(opts.cluster[i])]
        p = int(opts.pool[i])
        if p < 0:
            return ClusterAssignment(cluster, replicas, None, None, None, 0, None)
        nodes = self.state.allocate(p, q.k, replicas)
        assert len(nodes) == replicas, "capacity said it fits; the allocator disagrees"
        price = float(a.pool_price[p])
        return ClusterAssignment(
            cluster=cluster,
            replicas=replicas,
            capacity_type=CAPACITY_TYPES[int(a.pool_cap[p])],
            pool=a.pool_names[p],
            gpu_model=a.model_names[int(a.pool_model[p])],
            gpus_per_replica=q.k,
            price_per_gpu_hour=None if np.isnan(price) else price,
            nodes=tuple(a.node_names[n] for n in nodes),
        )
