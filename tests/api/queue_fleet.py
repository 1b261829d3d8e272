"""A real hub and SIMULATED clusters for the queue tests (tests/api/test_queue_*_hub.py, issue 11).

Every cluster here is SIMULATED: the agent's in-memory backend (spoke_agent backend
"simulated", run in a thread) schedules replicas on simulated GPU nodes, runs Jobs for the
profile's `jobs.durationSeconds` (or a manifest's simulated-duration annotation), reports
capacity and removes copies like a real spoke's agent; the hub cannot tell the difference except
by the `simulated` label. The lab suite (tests/e2e) runs the preemption story on real spokes.

`AssignmentWatch` records every Assignment event of the hub from a `?watch=1` stream, in the
store's commit order (resourceVersion), so ordering claims ("the victim's copy was gone before
the preemptor's existed") are checked on what the hub committed, not on samples.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fleetplane_testing.agenthub import Hub, start_hub, stop_hub
from fleetplane_testing.waiting import wait_until
from fleetplane_types.names import PRIORITY_CLASS_LABEL, SIMULATED_DURATION_ANNOTATION
from spoke_agent.agent import AgentOptions, AgentThread

API = "/apis/fleetplane.io/v1alpha1"
Obj = dict[str, Any]


# ---------------------------------------------------------------- objects


def profile(h100_nodes: int, *, job_seconds: float = 600, region: str = "us-east-1") -> Obj:
    """A SIMULATED cluster: `h100_nodes` × 8 on-demand H100; Jobs run `job_seconds`."""
    return {
        "cluster": {"region": region, "zone": f"{region}a"},
        "pools": [
            {
                "name": "h100",
                "model": "H100",
                "memoryGiB": 80,
                "capacityType": "on-demand",
                "nodes": h100_nodes,
                "gpusPerNode": 8,
            }
        ],
        "jobs": {"durationSeconds": job_seconds, "startDelaySeconds": 0.05},
    }


def job_workload(
    name: str,
    ns: str,
    gpus: int,
    *,
    priority: int | None = None,
    priority_class: str | None = None,
    job_seconds: float | None = None,
    **spec: Any,
) -> Obj:
    """A one-replica Job asking for `gpus` H100. `priority_class` sets the
    fleetplane.io/priority-class label; `job_seconds` the SIMULATED run time of this Job."""
    job_meta: Obj = {"name": name}
    if job_seconds is not None:
        job_meta["annotations"] = {SIMULATED_DURATION_ANNOTATION: str(job_seconds)}
    body: Obj = {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "gpu": {"count": gpus, "models": ["H100"]},
            "manifests": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "metadata": job_meta,
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [
                                    {"name": "main", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}
                                ],
                            }
                        }
                    },
                }
            ],
            **spec,
        },
    }
    if priority is not None:
        body["spec"]["priority"] = priority
    if priority_class is not None:
        body["metadata"]["labels"] = {PRIORITY_CLASS_LABEL: priority_class}
    return body


def queue(
    name: str,
    nominal: int,
    *,
    namespaces: list[str] | None = None,
    borrowing_limit: int | None = None,
    **spec: Any,
) -> Obj:
    """A Queue with one flavor, H100 on-demand, of `nominal` GPUs."""
    flavor: Obj = {"gpuModel": "H100", "capacityType": "on-demand", "nominalQuota": nominal}
    if borrowing_limit is not None:
        flavor["borrowingLimit"] = borrowing_limit
    body: Obj = {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Queue",
        "metadata": {"name": name},
        "spec": {"resourceGroups": [{"flavors": [flavor]}], **spec},
    }
    if namespaces is not None:
        body["spec"]["namespaces"] = namespaces
    return body


def priority_class(name: str, value: int) -> Obj:
    return {"apiVersion": "fleetplane.io/v1alpha1", "kind": "PriorityClass", "metadata": {"name": name}, "value": value}


def parse_time(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------- the assignment watch


@dataclass(frozen=True)
class Seen:
    """One Assignment event as the hub committed it."""

    type: str  # ADDED, MODIFIED, DELETED
    rv: int
    namespace: str
    name: str
    workload: str
    cluster: str
    deletion: str | None  # metadata.deletionTimestamp

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.workload}"


class AssignmentWatch:
    """Records every Assignment event of the hub (all namespaces) from a watch stream, resumed
    from the last resourceVersion each time the server ends it (timeoutSeconds), so nothing
    between two streams is missed."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.events: list[Seen] = []
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, name="assignment-watch", daemon=True)

    def start(self) -> AssignmentWatch:
        self._thread.start()
        assert self._started.wait(20), "the assignment watch did not start"
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _main(self) -> None:
        rv: str | None = None
        try:
            with self.hub.client() as c:
                while not self._stop.is_set():
                    params = {"watch": "1", "timeoutSeconds": "2", "allowWatchBookmarks": "true"}
                    if rv is not None:
                        params["resourceVersion"] = rv
                    with c.stream("GET", f"{API}/assignments", params=params) as r:
                        assert r.status_code == 200, r.read()
                        self._started.set()
                        for line in r.iter_lines():
                            if not line.strip():
                                continue
                            ev = json.loads(line)
                            obj = ev["object"]
                            meta = obj.get("metadata") or {}
                            rv = str(meta.get("resourceVersion") or rv)
                            if ev["type"] in ("ADDED", "MODIFIED", "DELETED"):
                                spec = obj.get("spec") or {}
                                seen = Seen(
                                    ev["type"],
                                    int(meta["resourceVersion"]),
                                    str(meta.get("namespace")),
                                    str(meta.get("name")),
                                    str((spec.get("workloadRef") or {}).get("name")),
                                    str(spec.get("clusterName")),
                                    meta.get("deletionTimestamp"),
                                )
                                with self._lock:
                                    self.events.append(seen)
        except BaseException as exc:  # reported by the test through `recorded()`
            self.error = exc
            self._started.set()

    def recorded(self) -> list[Seen]:
        assert self.error is None, f"the assignment watch failed: {self.error!r}"
        with self._lock:
            return list(self.events)

    def first(self, key: str, type_: str, cluster: str | None = None) -> Seen | None:
        return next(
            (
                e
                for e in self.recorded()
                if e.key == key and e.type == type_ and (cluster is None or e.cluster == cluster)
            ),
            None,
        )

    def wait_for(self, key: str, type_: str, timeout: float = 30) -> Seen:
        return wait_until(f"the watch saw {type_} of an Assignment of {key}", lambda: self.first(key, type_), timeout)

    def expect_victims_gone_before_preemptors(self, victims: list[str], preemptors: list[str]) -> int:
        """On every cluster, each Assignment of a preemptor was committed only after every
        Assignment a victim had there before it was gone (DELETED: its copy removed and the
        agent's finalizer released). Returns how many (victim copy, preemptor copy) pairs on a
        shared cluster were checked, so a caller can insist the check was not vacuous."""
        events = sorted(self.recorded(), key=lambda e: e.rv)
        pairs = 0
        for p in preemptors:
            for added in [e for e in events if e.key == p and e.type == "ADDED"]:
                cluster = added.cluster
                for v in victims:
                    before = {e.name for e in events if e.key == v and e.cluster == cluster and e.rv < added.rv}
                    for name in sorted(before):
                        gone = next((e for e in events if e.name == name and e.type == "DELETED"), None)
                        assert gone is not None and gone.rv < added.rv, (
                            f"{p}'s Assignment {added.name} on {cluster} (rv {added.rv}) was created while "
                            f"{v}'s Assignment {name} was still there (deleted at rv {gone.rv if gone else 'never'})"
                        )
                        pairs += 1
        return pairs


# ---------------------------------------------------------------- the fleet


class Fleet:
    """A hub with SIMULATED clusters, driven as an admin over the kube-style API."""

    def __init__(self, hub: Hub, tmp: Path) -> None:
        self.hub, self.tmp = hub, tmp
        self.agents: list[AgentThread] = []
        self.c = hub.client()
        self.watch = AssignmentWatch(hub).start()

    def cluster(self, name: str, h100_nodes: int, *, job_seconds: float = 600) -> None:
        """Join a SIMULATED cluster and wait until the hub has its capacity."""
        path = self.tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(profile(h100_nodes, job_seconds=job_seconds)))
        options = AgentOptions(
            hub=self.hub.url,
            hub_verify=str(self.hub.ca),
            cluster_name=name,
            join_token=self.hub.join_token(name),
            backend="simulated",
            profile=str(path),
            state_file=str(self.tmp / f"{name}.state.json"),
        )
        self.agents.append(AgentThread(options).start())

    def stop(self) -> None:
        self.watch.stop()
        for a in self.agents:
            a.stop()
        self.c.close()

    # ---- writes
    def create(self, path: str, body: Obj) -> Obj:
        r = self.c.post(path, json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def submit(self, body: Obj) -> Obj:
        ns = body["metadata"]["namespace"]
        return self.create(f"{API}/namespaces/{ns}/workloads", body)

    def add_queue(self, body: Obj) -> Obj:
        return self.create(f"{API}/queues", body)

    def delete_workload(self, ns: str, name: str) -> None:
        r = self.c.delete(f"{API}/namespaces/{ns}/workloads/{name}")
        assert r.status_code in (200, 202), r.text

    # ---- reads
    def workload(self, ns: str, name: str) -> Obj:
        r = self.c.get(f"{API}/namespaces/{ns}/workloads/{name}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def condition(self, ns: str, name: str, cond: str) -> Obj | None:
        for c in (self.workload(ns, name).get("status") or {}).get("conditions") or []:
            if c["type"] == cond:
                return dict(c)
        return None

    def placed(self, ns: str, name: str) -> list[str]:
        st = self.workload(ns, name).get("status") or {}
        return [c["name"] for c in (st.get("placement") or {}).get("clusters") or []]

    def assignments(self, ns: str, name: str) -> list[Obj]:
        r = self.c.get(f"{API}/namespaces/{ns}/assignments", params={"fieldSelector": f"spec.workloadRef.name={name}"})
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    def queue_status(self, name: str) -> Obj:
        r = self.c.get(f"{API}/queues/{name}")
        assert r.status_code == 200, r.text
        return dict(r.json().get("status") or {})

    # ---- waits, named after what they assert
    def wait_until_placed(self, ns: str, name: str, timeout: float = 30) -> list[str]:
        return wait_until(f"{ns}/{name} is placed", lambda: self.placed(ns, name), timeout)

    def wait_until_condition(
        self, ns: str, name: str, cond: str, value: str, reason: str | None = None, timeout: float = 30
    ) -> Obj:
        def probe() -> Obj | None:
            c = self.condition(ns, name, cond)
            return c if c and c["status"] == value and (reason is None or c["reason"] == reason) else None

        what = f"{ns}/{name} has {cond}={value}" + (f" ({reason})" if reason else "")
        return wait_until(what, probe, timeout)

    def wait_until_queue(
        self, name: str, used: int, *, pending: int | None = None, admitted: int | None = None, timeout: float = 30
    ) -> Obj:
        """The Queue's status says `used` GPUs of its (one) flavor are in use (and, when given,
        that many workloads wait and are admitted): all of it in one written status."""

        last: list[Obj] = [{}]

        def probe() -> Obj | None:
            st = last[0] = self.queue_status(name)
            usage = st.get("flavorsUsage") or []
            if not usage or usage[0]["used"] != used:
                return None
            if pending is not None and st.get("pendingWorkloads") != pending:
                return None
            if admitted is not None and st.get("admittedWorkloads") != admitted:
                return None
            return st

        what = f"queue {name} uses {used} GPUs" + (f", {pending} waiting" if pending is not None else "")
        what += f", {admitted} admitted" if admitted is not None else ""
        try:
            return wait_until(what, probe, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; its last status: {last[0]}") from None

    def wait_until_gone(self, ns: str, name: str, timeout: float = 30) -> None:
        """Every Assignment of the workload is gone from the hub (its copies removed)."""
        wait_until(f"{ns}/{name} has no Assignment left", lambda: self.assignments(ns, name) == [], timeout)


@contextmanager
def running_fleet(tmp: Path, namespaces: tuple[str, ...]) -> Iterator[Fleet]:
    """A fresh hub (its own embedded Postgres) with `namespaces`; the caller adds clusters."""
    hub = start_hub()
    fleet: Fleet | None = None
    try:
        for ns in namespaces:
            hub.create_namespace(ns)
        fleet = Fleet(hub, tmp)
        yield fleet
    finally:
        if fleet is not None:
            fleet.stop()
        stop_hub(hub)
