"""Queue preemption end to end on the lab (issue 11): the hub, three real spokes (real
kube-apiserver, controller-manager, scheduler; kwok GPU nodes) and a real agent per spoke.

The full spoke is l4-eu: its 8 L4s (2 nodes x 4) are the only L4s of the fleet, and a Queue
whose one flavor is "L4 on-demand, 8 GPUs" sends every workload there. A low-priority gang of
2 x 4 L4 fills it; a high-priority one of the same shape arrives. Shows, in order (one lab for
the module; the second test also runs alone with -k):

1. the victim is evicted (`Evicted=True`, PreemptedByPriority, and a Warning Event), its pods
   are deleted on the spoke before any of the preemptor's exist there (the preemptor waits as
   `Preempting` for it), the preemptor runs, the victim waits in its queue again
   (`Admitted=False`, no admission record, not Failed), and at no sample of the spoke's pods
   is any pod Unschedulable;
2. once the preemptor is deleted the victim is admitted again (`Evicted=False` Readmitted, a
   new epoch) and runs on the room it left: again after the preemptor's pods are gone, and
   again without any Unschedulable pod.

Every pod of the spoke (all namespaces: what `kubectl get pods -A -o json` returns) is listed
every 0.25 s in a thread, straight from its apiserver with the spoke's admin token: the same
request kubectl makes, without a process per sample on a 2-core machine.

Run: .venv/bin/pytest -m lab tests/e2e/test_queue_preemption_on_the_lab.py -q -s
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from fleetplane_lab.spoke import SpokeInfo
from fleetplane_types.names import (
    ADMITTED_CONDITION,
    ADMITTED_REASON,
    ASSIGNMENT_LABEL,
    EVICTED_CONDITION,
    PREEMPTED_BY_PRIORITY_REASON,
    PREEMPTING_REASON,
    PRIORITY_CLASS_LABEL,
    READMITTED_REASON,
)
from spoke_agent.labels import assignment_label

from .fleet import (
    API,
    NS,
    Fleet,
    assignments_of,
    gpu_job,
    jobs_on,
    wait_until,
    wait_until_phase,
    wait_until_placed,
    workload,
    workload_view,
)

pytestmark = pytest.mark.lab

SPOKE = "l4-eu"
QUEUE = "inference-team"
VICTIM, PREEMPTOR = "sweep", "hotfix"
REPLICAS, GPUS = 2, 4
"""Each workload: a gang of 2 replicas x 4 L4 = the whole of l4-eu (2 nodes x 4 L4)."""
TERMINATION_GRACE = 2
"""Seconds a deleted pod keeps running (kwok's pod-delete delay, as a kubelet honours the
grace period): the preemptor must wait for it, and the sampler sees the victim terminating."""
SAMPLE_EVERY = 0.25


# ---------------------------------------------------------------- objects


def priority_classes_and_queue() -> list[dict[str, Any]]:
    def priority_class(name: str, value: int) -> dict[str, Any]:
        return {
            "apiVersion": "fleetplane.io/v1alpha1",
            "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": value,
        }

    queue = {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Queue",
        "metadata": {"name": QUEUE},
        "spec": {
            "namespaces": [NS],
            "preemption": {"withinQueue": "LowerPriority"},
            "resourceGroups": [{"flavors": [{"gpuModel": "L4", "capacityType": "on-demand", "nominalQuota": 8}]}],
        },
    }
    return [priority_class("batch", 10), priority_class("urgent", 1000), queue]


def l4_gang(name: str, priority_class: str) -> dict[str, Any]:
    """A queued Workload: one Job of REPLICAS pods x GPUS L4 that keeps running (the hub sets
    the Job's parallelism and completions to the replicas a cluster gets)."""
    w = workload(
        name, GPUS, gpu_job(name, GPUS, delay="900s", grace_seconds=TERMINATION_GRACE), models=["L4"], queue=QUEUE
    )
    w["spec"]["replicas"] = REPLICAS
    w["metadata"]["labels"] = {PRIORITY_CLASS_LABEL: priority_class}
    return w


# ---------------------------------------------------------------- reads


def stored_workload(fleet: Fleet, name: str) -> dict[str, Any]:
    """The Workload object as kubectl gets it (status with conditions, admission, eviction)."""
    with fleet.rest() as c:
        r = c.get(f"{API}/namespaces/{NS}/workloads/{name}")
        r.raise_for_status()
        return dict(r.json())


def condition(w: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next((c for c in (w.get("status") or {}).get("conditions") or [] if c["type"] == ctype), {})


def wait_until_condition(
    fleet: Fleet, name: str, ctype: str, status: str, reason: str | None = None, timeout: float = 60
) -> dict[str, Any]:
    """Wait until the Workload's condition `ctype` has this status (and reason); returns the Workload."""

    def reached() -> dict[str, Any] | None:
        w = stored_workload(fleet, name)
        c = condition(w, ctype)
        return w if c.get("status") == status and (reason is None or c.get("reason") == reason) else None

    return wait_until(f"workload {NS}/{name} has {ctype}={status} {reason or ''}", reached, timeout, interval=0.2)


def running_job_pods(spoke: SpokeInfo, job: str, count: int, timeout: float = 60) -> None:
    def running() -> bool:
        pods = [p for p in all_pods(spoke) if (p["metadata"].get("labels") or {}).get("job-name") == job]
        return (
            sum(1 for p in pods if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp"))
            == count
        )

    wait_until(f"{count} pods of Job {job} run on {spoke.name}", running, timeout)


def spoke_api(spoke: SpokeInfo, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    """One call to the spoke's apiserver as its admin (light enough to poll every 0.25 s)."""
    return httpx.request(
        method,
        f"{spoke.server}{path}",
        json=body,
        headers={"Authorization": f"Bearer {spoke.token}"},
        verify=ssl.create_default_context(cafile=spoke.ca_file),
        timeout=5,
    )


def all_pods(spoke: SpokeInfo) -> list[dict[str, Any]]:
    """GET /api/v1/pods on the spoke: every namespace, as `kubectl get pods -A -o json`."""
    r = spoke_api(spoke, "GET", "/api/v1/pods")
    r.raise_for_status()
    return list(r.json()["items"])


# ---------------------------------------------------------------- the spoke's pods, sampled


@dataclass(frozen=True)
class PodSeen:
    namespace: str
    name: str
    job: str | None
    assignment: str | None  # the agent's fleetplane.io/assignment label: which epoch's copy
    phase: str
    deleting: bool
    node: str | None
    unschedulable: str | None  # the PodScheduled=False reason and message, if the scheduler gave up

    @classmethod
    def of(cls, pod: dict[str, Any]) -> PodSeen:
        meta, status = pod["metadata"], pod.get("status") or {}
        labels = meta.get("labels") or {}
        unsched = next(
            (
                f"{c.get('reason')}: {c.get('message')}"
                for c in status.get("conditions") or []
                if c.get("type") == "PodScheduled" and c.get("status") == "False"
            ),
            None,
        )
        return cls(
            meta.get("namespace", ""),
            meta["name"],
            labels.get("job-name"),
            labels.get(ASSIGNMENT_LABEL),
            status.get("phase") or "?",
            bool(meta.get("deletionTimestamp")),
            (pod.get("spec") or {}).get("nodeName"),
            unsched if status.get("phase") == "Pending" else None,
        )

    def short(self) -> str:
        return f"{self.name}({self.phase}{', terminating' if self.deleting else ''}{', UNSCHEDULABLE' if self.unschedulable else ''})"


@dataclass(frozen=True)
class Sample:
    t: float
    pods: tuple[PodSeen, ...]

    def of_job(self, job: str) -> list[PodSeen]:
        return [p for p in self.pods if p.job == job]

    def unschedulable(self) -> list[PodSeen]:
        return [p for p in self.pods if p.unschedulable]


class SpokePodSampler:
    """Lists every pod of one spoke every `interval` s in a background thread."""

    def __init__(self, spoke: SpokeInfo, interval: float = SAMPLE_EVERY) -> None:
        self.spoke, self.interval = spoke, interval
        self.samples: list[Sample] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spoke-pod-sampler", daemon=True)

    def __enter__(self) -> SpokePodSampler:
        self._thread.start()
        wait_until("the sampler has a first sample", lambda: self.samples, 10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                self.samples.append(Sample(t, tuple(PodSeen.of(p) for p in all_pods(self.spoke))))
            except (httpx.HTTPError, KeyError) as e:  # a gap is reported, never hidden
                self.errors.append(f"{t:.1f}: {e!r}")
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - t)))

    def describe(self, t0: float, jobs: tuple[str, ...]) -> Iterator[str]:
        """The history compactly: one line whenever the jobs' pods or the unschedulable ones change."""
        last = None
        for s in self.samples:
            per_job = [tuple(p.short() for p in s.of_job(j)) for j in jobs]
            cur = (*per_job, tuple(p.short() for p in s.unschedulable()))
            if cur != last:
                parts = [f"{j}=[{', '.join(c)}]" for j, c in zip(jobs, cur, strict=False)]
                yield f"t={s.t - t0:6.2f}s {' '.join(parts)} unschedulable=[{', '.join(cur[-1])}]"
                last = cur


def expect_gone_before_any_new(sampler: SpokePodSampler, gone: str, new: str, t0: float) -> tuple[float, float]:
    """Every pod of Job `gone` has disappeared from the spoke before any pod of Job `new`
    exists there, and the sampler saw `gone`'s pods terminating on the way (so it would have
    seen an overlap). Returns (when `gone` was last seen, when `new` was first seen) after t0."""
    samples = sampler.samples
    history = "\n".join(sampler.describe(t0, (gone, new)))
    with_gone = [i for i, s in enumerate(samples) if s.of_job(gone)]
    with_new = [i for i, s in enumerate(samples) if s.of_job(new)]
    assert with_gone, f"the sampler never saw {gone}'s pods (they were running when it started):\n{history}"
    assert with_new, f"the sampler never saw {new}'s pods:\n{history}"
    assert any(p.deleting for i in with_gone for p in samples[i].of_job(gone)), (
        f"the sampler never saw {gone}'s pods terminating (they should take {TERMINATION_GRACE}s):\n{history}"
    )
    assert with_gone[-1] < with_new[0], (
        f"{new}'s pods existed on {sampler.spoke.name} while {gone}'s were still there "
        f"(t={samples[with_new[0]].t - t0:.2f}s):\n{history}"
    )
    return samples[with_gone[-1]].t - t0, samples[with_new[0]].t - t0


def expect_no_unschedulable_pod(sampler: SpokePodSampler, t0: float, jobs: tuple[str, ...]) -> None:
    history = "\n".join(sampler.describe(t0, jobs))
    for s in sampler.samples:
        bad = s.unschedulable()
        assert not bad, (
            f"Unschedulable pods on {sampler.spoke.name} at t={s.t - t0:.2f}s: "
            f"{[(p.namespace, p.name, p.unschedulable) for p in bad]}\n{history}"
        )


# ---------------------------------------------------------------- the story


def test_a_high_priority_job_preempts_a_low_priority_one_on_a_full_spoke_without_any_unschedulable_pod(
    fleet: Fleet,
) -> None:
    spoke = fleet.spoke(SPOKE)
    fleet.hub_kubectl("apply", "-f", "-", input=yaml.safe_dump_all(priority_classes_and_queue()))

    # The low-priority gang fills l4-eu.
    fleet.hub_kubectl("apply", "-f", "-", input=yaml.safe_dump(l4_gang(VICTIM, "batch")))
    placed = wait_until_placed(fleet, VICTIM)
    assert [(x["name"], x["replicas"]) for x in placed["placement"]["clusters"]] == [(SPOKE, REPLICAS)]
    admitted = wait_until_condition(fleet, VICTIM, ADMITTED_CONDITION, "True", ADMITTED_REASON)
    adm = admitted["status"]["admission"]
    assert (adm["queue"], adm["gpus"], adm["priority"], adm["flavor"]["gpuModel"]) == (QUEUE, 8, 10, "L4"), adm
    running_job_pods(spoke, VICTIM, REPLICAS)
    wait_until_phase(fleet, VICTIM, "Running")
    [first] = assignments_of(fleet, VICTIM)
    first_epoch = first["spec"]["epoch"]

    preemptor_states: list[tuple[str | None, tuple[str, ...]]] = []  # (Admitted reason, waitingFor), as seen

    def preemptor_placed() -> dict[str, Any] | None:
        w = stored_workload(fleet, PREEMPTOR)
        state = (condition(w, ADMITTED_CONDITION).get("reason"), tuple((w.get("status") or {}).get("waitingFor") or ()))
        if not preemptor_states or preemptor_states[-1] != state:
            preemptor_states.append(state)
        return w if ((w.get("status") or {}).get("placement") or {}).get("clusters") else None

    with SpokePodSampler(spoke) as sampler:
        t0 = time.monotonic()
        fleet.hub_kubectl("apply", "-f", "-", input=yaml.safe_dump(l4_gang(PREEMPTOR, "urgent")))
        evicted = wait_until_condition(fleet, VICTIM, EVICTED_CONDITION, "True", timeout=30)
        t_evicted = time.monotonic() - t0
        hotfix = wait_until(f"{PREEMPTOR} is placed", preemptor_placed, 90, interval=0.2)
        t_placed = time.monotonic() - t0
        running_job_pods(spoke, PREEMPTOR, REPLICAS)
        t_running = time.monotonic() - t0
        time.sleep(1)  # a few more samples with the preemptor running

    history = "\n".join(sampler.describe(t0, (VICTIM, PREEMPTOR)))
    print(
        f"\n{PREEMPTOR} submitted -> {VICTIM} Evicted {t_evicted:.1f}s, -> {PREEMPTOR} placed {t_placed:.1f}s, "
        f"-> its pods Running {t_running:.1f}s; {len(sampler.samples)} samples of {SPOKE}\n"
        f"{PREEMPTOR}'s Admitted reason/waitingFor as seen: {preemptor_states}\n{history}"
    )
    assert not sampler.errors, sampler.errors
    assert len(sampler.samples) >= 10, f"only {len(sampler.samples)} samples"

    # On the spoke: the victim's pods went (terminating for their grace period) before any of
    # the preemptor's existed, and the scheduler never had a pod it could not place.
    expect_no_unschedulable_pod(sampler, t0, (VICTIM, PREEMPTOR))
    expect_gone_before_any_new(sampler, VICTIM, PREEMPTOR, t0)
    assert not jobs_on(spoke, VICTIM), f"{VICTIM}'s Job is deleted on {SPOKE}"

    # On the hub: the victim's eviction, and the preemptor waiting for it.
    ev = condition(evicted, EVICTED_CONDITION)
    assert ev["reason"] == PREEMPTED_BY_PRIORITY_REASON, ev
    assert f"{NS}/{PREEMPTOR}" in ev["message"], ev
    record = evicted["status"]["eviction"]
    assert (record["reason"], record["preemptor"]) == (PREEMPTED_BY_PRIORITY_REASON, f"{NS}/{PREEMPTOR}"), record
    assert (PREEMPTING_REASON, (f"{NS}/{VICTIM}",)) in preemptor_states, (
        f"{PREEMPTOR} was never seen waiting as {PREEMPTING_REASON} for {NS}/{VICTIM}: {preemptor_states}"
    )
    assert [(x["name"], x["replicas"]) for x in hotfix["status"]["placement"]["clusters"]] == [(SPOKE, REPLICAS)]
    assert hotfix["status"]["admission"]["priority"] == 1000
    wait_until_phase(fleet, PREEMPTOR, "Running")
    events = fleet.hub_kubectl("get", "events", "-n", NS, "-o", "json").stdout
    warnings = [
        e
        for e in yaml.safe_load(events)["items"]
        if e["involvedObject"].get("name") == VICTIM and e.get("reason") == PREEMPTED_BY_PRIORITY_REASON
    ]
    assert warnings and warnings[0]["type"] == "Warning", (
        f"no Warning Event {PREEMPTED_BY_PRIORITY_REASON} for {VICTIM}"
    )

    # The victim is back in its queue: no copy, no quota, not failed.
    back = wait_until_condition(fleet, VICTIM, ADMITTED_CONDITION, "False", timeout=30)
    assert assignments_of(fleet, VICTIM) == [], "the victim's Assignment was released by the agent"
    assert "admission" not in back["status"], back["status"].get("admission")
    assert back["status"]["phase"] not in ("Failed", "Succeeded"), back["status"]
    assert "8/8 used" in condition(back, ADMITTED_CONDITION).get("message", ""), condition(back, ADMITTED_CONDITION)
    view = workload_view(fleet, VICTIM)
    assert view is not None and view["placement"]["epoch"] == first_epoch and not view["placement"].get("clusters"), (
        f"{VICTIM} must not be placed again while {PREEMPTOR} holds the room: {view and view['placement']}"
    )


def test_the_evicted_job_is_admitted_again_with_a_new_epoch_once_the_preemptor_is_deleted(fleet: Fleet) -> None:
    spoke = fleet.spoke(SPOKE)
    if workload_view(fleet, PREEMPTOR) is None:  # also runs alone (-k)
        test_a_high_priority_job_preempts_a_low_priority_one_on_a_full_spoke_without_any_unschedulable_pod(fleet)
    first_epoch = stored_workload(fleet, VICTIM)["status"]["placement"]["epoch"]

    with SpokePodSampler(spoke) as sampler:
        t0 = time.monotonic()
        fleet.hub_kubectl("delete", "wl", PREEMPTOR, "-n", NS, "--wait=false")
        again = wait_until_placed(fleet, VICTIM, epoch=first_epoch + 1, timeout=90)
        t_placed = time.monotonic() - t0
        running_job_pods(spoke, VICTIM, REPLICAS)
        t_running = time.monotonic() - t0
        wait_until(f"{PREEMPTOR} has left the hub", lambda: workload_view(fleet, PREEMPTOR) is None, 60)
        time.sleep(1)

    history = "\n".join(sampler.describe(t0, (PREEMPTOR, VICTIM)))
    print(
        f"\n{PREEMPTOR} deleted -> {VICTIM} placed again (epoch {first_epoch + 1}) {t_placed:.1f}s, "
        f"-> its pods Running {t_running:.1f}s; {len(sampler.samples)} samples of {SPOKE}\n{history}"
    )
    assert not sampler.errors, sampler.errors
    expect_no_unschedulable_pod(sampler, t0, (PREEMPTOR, VICTIM))
    expect_gone_before_any_new(sampler, PREEMPTOR, VICTIM, t0)

    assert [(x["name"], x["replicas"]) for x in again["placement"]["clusters"]] == [(SPOKE, REPLICAS)]
    w = wait_until_condition(fleet, VICTIM, ADMITTED_CONDITION, "True", ADMITTED_REASON)
    assert condition(w, EVICTED_CONDITION).get("status") == "False", condition(w, EVICTED_CONDITION)
    assert condition(w, EVICTED_CONDITION).get("reason") == READMITTED_REASON, condition(w, EVICTED_CONDITION)
    assert w["status"]["admission"]["queue"] == QUEUE
    assert [a["spec"]["epoch"] for a in assignments_of(fleet, VICTIM)] == [first_epoch + 1]
    # The new copy's pods carry the new epoch's Assignment; the old epoch's are long gone.
    new_assignment = assignments_of(fleet, VICTIM)[0]["metadata"]["name"]
    last = sampler.samples[-1].of_job(VICTIM)
    assert last and all(p.assignment == assignment_label(NS, new_assignment) for p in last), last
    wait_until(
        f"the hub shows {VICTIM} running on {SPOKE} with epoch {first_epoch + 1}",
        lambda: (
            (workload_view(fleet, VICTIM) or {}).get("clusters")
            == [{"name": SPOKE, "phase": "Running", "epoch": first_epoch + 1}]
        ),
        60,
    )
    assert not jobs_on(spoke, PREEMPTOR), f"{PREEMPTOR}'s Job is deleted on {SPOKE}"

    # The control: on this full spoke the sampler does flag a pod the scheduler cannot place
    # (so the "no Unschedulable pod" checks above could fail).
    does_not_fit = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "does-not-fit", "namespace": "default"},
        "spec": {
            "containers": [{"name": "main", "image": "probe:1.0", "resources": {"limits": {"nvidia.com/gpu": "4"}}}]
        },
    }
    with SpokePodSampler(spoke) as control:
        r = spoke_api(spoke, "POST", "/api/v1/namespaces/default/pods", does_not_fit)
        assert r.status_code == 201, r.text
        try:
            seen = wait_until(
                "the sampler flags the pod that does not fit",
                lambda: next((p for s in control.samples for p in s.unschedulable()), None),
                30,
            )
        finally:
            spoke_api(spoke, "DELETE", "/api/v1/namespaces/default/pods/does-not-fit")
    assert (seen.namespace, seen.name) == ("default", "does-not-fit"), seen
    assert seen.unschedulable is not None and seen.unschedulable.startswith("Unschedulable"), seen
