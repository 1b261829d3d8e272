"""Pure functions from stored objects to the placement engine's inputs: the fleet snapshot and
the in-flight reservations. No I/O: table-tested without a database (tests/unit/hub)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from fleetplane_types import v1alpha1 as v1
from fleetplane_types.names import ASSIGNMENT_TERMINAL_PHASES, RESERVATION_ANNOTATION
from placement import FleetSnapshot, PlacementInputError, Reservation
from placement.manifests import cluster_from_api, snapshot_from_api
from placement.model import ClusterInfo

log = logging.getLogger(__name__)

Obj = dict[str, Any]
M = TypeVar("M", bound=BaseModel)


def parse_time(ts: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 UTC timestamp ("2026-12-01T10:00:00Z"), or None."""
    if not ts or not isinstance(ts, str):
        return None
    return _parse_time(ts[:19])


@lru_cache(maxsize=1 << 16)
def _parse_time(ts: str) -> float | None:
    """Cached: every pass with pending work reads each Assignment's status time and its
    cluster's heartbeat (`reservations`), and strptime is ~10 µs: 0.2 s a pass at 10,000
    Assignments, for times that rarely change."""
    try:
        return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _meta(o: Obj) -> dict[str, Any]:
    m = o.get("metadata")
    return m if isinstance(m, dict) else {}


def reservations(assignments: list[Obj], clusters: Mapping[str, Obj]) -> list[Reservation]:
    """In-flight placements the clusters' capacity reports do not show yet.

    An Assignment holds its GPUs (the pool and nodes in its reservation annotation) until it
    ends (deleted, or a terminal phase), or until its cluster's capacity report reflects it:
    the Assignment is Running and the cluster's heartbeat is newer than that status."""
    out = []
    for a in assignments:
        st = a.get("status") or {}
        if _meta(a).get("deletionTimestamp") or st.get("phase") in ASSIGNMENT_TERMINAL_PHASES:
            continue
        raw = (_meta(a).get("annotations") or {}).get(RESERVATION_ANNOTATION)
        if not raw:
            continue
        if st.get("phase") == "Running":
            c = clusters.get(a["spec"]["clusterName"])
            reported = parse_time(((c or {}).get("status") or {}).get("heartbeatTime"))
            running_since = parse_time(st.get("updatedAt"))
            if reported and running_since and reported > running_since:
                continue  # the capacity report already counts these GPUs
        try:
            r = json.loads(raw)
            out.append(
                Reservation(
                    workload=f"{_meta(a).get('namespace')}/{a['spec']['workloadRef']['name']}",
                    cluster=a["spec"]["clusterName"],
                    pool=r["pool"],
                    gpus_per_replica=int(r["gpusPerReplica"]),
                    replicas=int(r["replicas"]),
                    nodes=tuple(r.get("nodes") or ()),
                )
            )
        except (KeyError, ValueError, TypeError):
            log.warning("ignoring malformed reservation on assignment %s", _meta(a).get("name"))
    return out


def reservation_annotation(r: Reservation) -> str:
    """The annotation value `reservations` reads back."""
    return json.dumps(
        {"pool": r.pool, "gpusPerReplica": r.gpus_per_replica, "replicas": r.replicas, "nodes": list(r.nodes)}
    )


class ClusterMemo:
    """Each Cluster version validated and converted for the engine once, not at every snapshot.

    The controller rebuilds its fleet snapshot whenever any Cluster changes, which during a
    burst is several times a second (agents report capacity as workloads start); validating and
    converting all 1,000 Clusters each time was ~15 % of the controller's CPU (py-spy). A version
    is (uid, resourceVersion): every write gives a new one. Both results are immutable (a
    pydantic model nobody mutates, a frozen ClusterInfo), so they are shared between snapshots.
    Only the versions of the last snapshot are kept."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], tuple[v1.Cluster, ClusterInfo | None]] = {}

    def validated(self, clusters: list[Obj], problems: list[str]) -> tuple[list[v1.Cluster], dict[int, ClusterInfo]]:
        """The Clusters that validate (as `_valid`), and the conversions already known, by id."""
        out: list[v1.Cluster] = []
        known: dict[int, ClusterInfo] = {}
        fresh: dict[tuple[str, str], tuple[v1.Cluster, ClusterInfo | None]] = {}
        for o in clusters:
            meta = _meta(o)
            key = (str(meta.get("uid") or ""), str(meta.get("resourceVersion") or ""))
            hit = self._seen.get(key) if all(key) else None
            if hit is None:
                valid = _valid(v1.Cluster, [o], problems)
                if not valid:
                    continue
                hit = (valid[0], None)
            if all(key):
                fresh[key] = hit
            out.append(hit[0])
            if hit[1] is not None:
                known[id(hit[0])] = hit[1]
        self._seen = fresh
        return out, known

    def remember(self, clusters: list[v1.Cluster], snapshot: FleetSnapshot) -> None:
        """Keep the conversions of a snapshot built from `clusters` (in its order)."""
        by_id = {id(c): info for c, info in zip(clusters, snapshot.clusters, strict=True)}
        for key, (c, info) in list(self._seen.items()):
            if info is None and id(c) in by_id:
                self._seen[key] = (c, by_id[id(c)])


def build_snapshot(
    clusters: list[Obj], datasets: list[Obj], topologies: list[Obj], memo: ClusterMemo | None = None
) -> tuple[FleetSnapshot, list[str]]:
    """The engine's snapshot of the stored fleet, and the problems that kept objects out of it.

    One team's bad Dataset (or a Cluster naming an unknown site) must not stop placement for
    everyone: invalid objects are left out one by one, workloads that need them then get a
    precise "unknown Dataset" reason, and the problems are logged. With `memo`, a Cluster version
    seen before is not validated or converted again.
    """
    problems: list[str] = []
    if memo is None:
        cs, known = _valid(v1.Cluster, clusters, problems), dict[int, ClusterInfo]()
    else:
        cs, known = memo.validated(clusters, problems)
    ds = _valid(v1.Dataset, datasets, problems)
    ts = _valid(v1.Topology, topologies, problems)

    def convert(c: v1.Cluster) -> ClusterInfo:
        found = known.get(id(c))
        return found if found is not None else cluster_from_api(c)

    try:
        snapshot = snapshot_from_api(cs, ds, ts, convert=convert)
    except PlacementInputError:
        pass
    else:
        if memo is not None:
            memo.remember(cs, snapshot)
        return snapshot, problems
    try:
        snapshot_from_api([], [], ts)
    except PlacementInputError as exc:
        problems.append(str(exc))
        ts = []
    good_c, good_d = [], []
    for c in cs:
        try:
            snapshot_from_api([c], [], ts)
            good_c.append(c)
        except PlacementInputError as exc:
            problems.append(str(exc))
    for d in ds:
        try:
            snapshot_from_api([], [d], ts)
            good_d.append(d)
        except PlacementInputError as exc:
            problems.append(str(exc))
    return snapshot_from_api(good_c, good_d, ts), problems


def _valid(model: type[M], objs: list[Obj], problems: list[str]) -> list[M]:
    """The objects that still validate as `model` (a stored object from an older schema may not)."""
    out = []
    for o in objs:
        try:
            out.append(model.model_validate(o))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            problems.append(f'{model.__name__} "{_meta(o).get("name")}" is invalid: {where}: {first["msg"]}')
    return out


def pool_node_names(cluster: Obj | None, pool: str) -> list[str] | None:
    """Names of the nodes of a reported pool, named the way placement.manifests names pools."""
    used: set[str] = set()
    for i, p in enumerate(((cluster or {}).get("status") or {}).get("gpuPools") or []):
        name = p.get("name") or f"{str(p.get('model', '')).lower()}-{p.get('capacityType')}"
        if name in used:
            name = f"{name}-{i}"
        used.add(name)
        if name == pool:
            nodes = [n["name"] for n in p.get("nodes") or [] if n.get("name")]
            return sorted(nodes) if nodes else None
    return None
