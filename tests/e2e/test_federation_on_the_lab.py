"""Federation end to end on the lab: the hub, three real spokes (real kube-apiserver,
controller-manager, scheduler; kwok GPU nodes) and a real agent process per spoke.

Shows, in order (one fleet for the module; each test also runs alone with -k):
1. workloads submitted by kubectl and by REST land where the documented scoring says, their
   pods run on those spokes on nodes of the requested GPU, and status comes back to the hub;
2. killing an agent moves its workload to another cluster within the heartbeat timeout, and
   when the agent returns it deletes the stale copy: from the moment the old epoch's
   Assignment is released, no two copies run (pods on every spoke sampled throughout);
3. `kubectl delete wl` removes the Job from the spoke before the Workload leaves the hub.

Also: the agent's pinning of pods to the chosen pool is accepted by a real kube-apiserver.

Run: .venv/bin/pytest -m lab tests/e2e -q   (needs `make k8s-binaries`; about a minute)
FLEETPLANE_E2E_KEEP=1 keeps the run dir (hub, spoke and agent logs) after the lab is down.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml

from .fleet import (
    CLUSTER_TIMEOUT,
    HEARTBEAT,
    NS,
    Fleet,
    PodSampler,
    assignments_of,
    cluster_ready,
    describe,
    expect_explained,
    expect_no_second_copy,
    expect_pods_on_gpu_product,
    gpu_deployment,
    gpu_job,
    job_pods,
    jobs_on,
    plugin_scores,
    wait_until,
    wait_until_phase,
    wait_until_placed,
    wait_until_pods_run_on,
    wl_row,
    workload,
)

pytestmark = pytest.mark.lab


def test_a_job_pinned_to_a_pool_of_several_nodes_is_accepted_by_a_real_kube_apiserver(fleet: Fleet) -> None:
    # The agent pins an Assignment's pods to the nodes of the pool placement chose
    # (spec.nodeNames). A real apiserver must accept the result for a pool of more than one
    # node, or no workload on such a pool can run (every lab pool has 2-3 nodes).
    from spoke_agent.manifests import decorate

    spoke = fleet.spoke("h100-east")
    pool = sorted(n for n in spoke.nodes if "-h100-reserved-" in n)
    assert len(pool) == 2, pool
    job = decorate(
        gpu_job("pinned", 8),
        assignment_namespace="default",
        assignment_name="pinned-h100-east-e1",
        workload="pinned",
        epoch=1,
        node_names=pool,
    )
    out = subprocess.run(
        ["kubectl", "--kubeconfig", spoke.kubeconfig, "apply", "--dry-run=server", "-f", "-"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, (
        f"the apiserver rejects the pinned Job: {out.stderr.strip()}\naffinity sent: "
        f"{json.dumps(job['spec']['template']['spec']['affinity'])}"
    )


def test_workloads_from_kubectl_and_rest_land_where_the_scoring_says_run_there_and_report_back(fleet: Fleet) -> None:
    # The dataset lives in us-east-1, where the reserved H100s are.
    topology = {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Topology",
        "metadata": {"name": "e2e-net"},
        "spec": {
            "sites": [{"name": r, "type": "region"} for r in ("us-east-1", "us-west-2", "eu-west-1")],
            "links": [
                {"from": "us-east-1", "to": "us-west-2", "bandwidthGbps": 10, "egressCostPerGB": 0.02},
                {"from": "us-east-1", "to": "eu-west-1", "bandwidthGbps": 10, "egressCostPerGB": 0.05},
                {"from": "us-west-2", "to": "eu-west-1", "bandwidthGbps": 5, "egressCostPerGB": 0.05},
            ],
        },
    }
    dataset = {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "corpus", "namespace": NS},
        "spec": {"sizeGiB": 20000, "locations": [{"site": "us-east-1", "uri": "s3://corpus-east/"}]},
    }
    fleet.hub_kubectl("apply", "-f", "-", input=yaml.safe_dump_all([topology, dataset]))

    # (a) kubectl: non-preemptible (default: on-demand and reserved only) 8-GPU training that
    # reads the dataset and accepts H100 or A100.
    pretrain = workload(
        "pretrain", 8, gpu_job("pretrain", 8, delay="6s"), models=["H100", "A100"], datasets=[{"name": "corpus"}]
    )
    fleet.hub_kubectl("apply", "-f", "-", input=yaml.safe_dump(pretrain))
    # (b) REST: spot-allowed A100 fine-tuning.
    finetune = workload(
        "finetune",
        8,
        gpu_job("finetune", 8, delay="6s"),
        models=["A100"],
        capacityTypes={"allowed": ["spot", "on-demand"]},
    )
    with fleet.rest() as c:
        r = c.post(f"/v1/namespaces/{NS}/workloads", json=finetune, params={"fieldValidation": "Strict"})
        assert r.status_code == 201, r.text
    # (c) kubectl: a one-GPU L4 inference service.
    fleet.hub_kubectl(
        "apply", "-f", "-", input=yaml.safe_dump(workload("chat", 1, gpu_deployment("chat", 1), models=["L4"]))
    )

    # Placement, as the REST view and its stored explanation show it.
    a = wait_until_placed(fleet, "pretrain")
    assert [x["name"] for x in a["placement"]["clusters"]] == ["h100-east"]
    assert a["placement"]["clusters"][0]["capacityType"] == "reserved"
    east = expect_explained(a, "h100-east", removed={"a100-west": "capacity-type", "l4-eu": "gpu-model"})
    # cost: reserved and idle = already paid = 100; locality: the dataset is on the same site = 100.
    assert plugin_scores(east)["cost"] == 100 and plugin_scores(east)["locality"] == 100, east

    b = wait_until_placed(fleet, "finetune")
    assert [(x["name"], x["capacityType"]) for x in b["placement"]["clusters"]] == [("a100-west", "spot")]
    west = expect_explained(b, "a100-west", removed={"h100-east": "gpu-model", "l4-eu": "gpu-model"})
    # cost: 100 x (1 - $1.10 / $10) = 89; spot-risk: one spot replica = 100 x 0.95 = 95.
    assert plugin_scores(west)["cost"] == pytest.approx(89) and plugin_scores(west)["spot-risk"] == pytest.approx(95), (
        west
    )

    c_ = wait_until_placed(fleet, "chat")
    assert [x["name"] for x in c_["placement"]["clusters"]] == ["l4-eu"]

    # kubectl get wl shows the same placements.
    assert wl_row(fleet, "pretrain")["CLUSTER"] == "h100-east"
    assert wl_row(fleet, "finetune")["CLUSTER"] == "a100-west"
    assert wl_row(fleet, "chat")["CLUSTER"] == "l4-eu"

    # The agents report the pods running (a rejected or failed apply fails here at once).
    wait_until_phase(fleet, "pretrain", "Running")
    wait_until_phase(fleet, "chat", "Running")

    # The pods run on THOSE spokes, on nodes of the requested GPU, and nowhere else.
    wait_until_pods_run_on(fleet.spoke("h100-east"), "job-name=pretrain")
    expect_pods_on_gpu_product(fleet.spoke("h100-east"), "job-name=pretrain", "H100")
    wait_until("finetune's pod is on a100-west", lambda: job_pods(fleet.spoke("a100-west"), "finetune"), 60)
    expect_pods_on_gpu_product(fleet.spoke("a100-west"), "job-name=finetune", "A100")
    wait_until_pods_run_on(fleet.spoke("l4-eu"), "app=chat")
    expect_pods_on_gpu_product(fleet.spoke("l4-eu"), "app=chat", "L4")
    for job, home in (("pretrain", "h100-east"), ("finetune", "a100-west")):
        for name, spoke in fleet.lab.spokes.items():
            if name != home:
                assert not jobs_on(spoke, job), f"Job {job} also exists on {name}"

    # Status returns to the hub: Running while kwok keeps the pods up, then Succeeded.
    done, seen = wait_until_phase(fleet, "pretrain", "Succeeded", timeout=90)
    assert "Running" in seen, f"the hub never showed pretrain Running (phases seen: {seen})"
    assert done["clusters"] == [{"name": "h100-east", "phase": "Succeeded", "epoch": 1}], done["clusters"]
    wait_until_phase(fleet, "finetune", "Succeeded", timeout=90)
    assert wl_row(fleet, "pretrain")["PHASE"] == "Succeeded"


def test_killing_an_agent_moves_its_workload_and_the_returning_agent_deletes_the_stale_copy_with_never_two_running(
    fleet: Fleet,
) -> None:
    # Either H100 (reserved) or A100 (spot) may host it; reserved wins while it is healthy:
    # cost 3 x 100 + spot-risk 2 x 100 = 500 against 3 x 89 + 2 x 95 = 457. Its pod takes 3 s
    # to terminate once deleted, as a real container with a grace period would.
    probe = workload(
        "probe",
        4,
        gpu_job("probe", 4, delay="600s", grace_seconds=3),
        models=["H100", "A100"],
        capacityTypes={"allowed": ["reserved", "on-demand", "spot"]},
    )
    fleet.hub_kubectl("apply", "-f", "-", input=yaml.safe_dump(probe))
    first = wait_until_placed(fleet, "probe")
    assert [x["name"] for x in first["placement"]["clusters"]] == ["h100-east"]
    east, west = fleet.spoke("h100-east"), fleet.spoke("a100-west")
    wait_until_phase(fleet, "probe", "Running")
    wait_until_pods_run_on(east, "job-name=probe")
    [old] = assignments_of(fleet, "probe")
    old_name = old["metadata"]["name"]

    with PodSampler(fleet, "probe", old_name) as sampler:
        t_kill = time.monotonic()
        fleet.agents["h100-east"].kill()  # SIGKILL: no goodbye

        # The hub notices the silence and re-places with epoch 2 on the only other host.
        second = wait_until_placed(fleet, "probe", epoch=2, timeout=CLUSTER_TIMEOUT + 30)
        t_replaced = time.monotonic() - t_kill
        assert [x["name"] for x in second["placement"]["clusters"]] == ["a100-west"]
        assert cluster_ready(fleet, "h100-east")["reason"] == "HeartbeatTimeout"
        expect_explained(second, "a100-west", removed={"h100-east": "health", "l4-eu": "gpu-model"})
        wait_until_pods_run_on(west, "job-name=probe")
        t_new_copy = time.monotonic() - t_kill

        # Between re-placement and fencing the old copy still runs on the unreachable spoke:
        # nothing there can stop it while its agent is down (docs/federation.md, "Limit").
        # Seeing it here also proves the sampler would catch a second copy.
        wait_until(
            "the sampler has seen both copies running",
            lambda: any(s.spokes_running() == ["a100-west", "h100-east"] for s in sampler.samples),
            10,
        )
        fenced = next(a for a in assignments_of(fleet, "probe") if a["metadata"]["name"] == old_name)
        assert fenced["metadata"].get("deletionTimestamp"), "the old epoch is marked for deletion"
        assert "fleetplane.io/agent-cleanup" in fenced["metadata"]["finalizers"], "kept until its agent cleans up"

        # The agent comes back with its stored credential (the join token was single-use).
        t_restart = time.monotonic()
        fleet.agents["h100-east"].start().wait_until_ready(timeout=90)
        wait_until(
            f"the fenced Assignment {old_name} is released",
            lambda: old_name not in [a["metadata"]["name"] for a in assignments_of(fleet, "probe")],
            60,
        )
        wait_until("the stale copy is gone from h100-east", lambda: not job_pods(east, "probe"), 60)
        t_clean = time.monotonic() - t_restart
        time.sleep(2)  # a few more samples after cleanup

    history = "\n".join(describe(sampler.samples, t_kill))
    print(
        f"\nkill -> epoch 2 placed {t_replaced:.1f}s, -> new copy running {t_new_copy:.1f}s; "
        f"restart -> stale copy gone {t_clean:.1f}s\n{history}"
    )
    assert not sampler.errors, sampler.errors
    assert t_replaced <= CLUSTER_TIMEOUT + HEARTBEAT + 10, f"failover took {t_replaced:.1f}s"
    checked = expect_no_second_copy(sampler.samples, since=sampler.fence_moment(), old_spoke="h100-east")
    assert checked >= 3, f"only {checked} samples after the fence moment:\n{history}"
    assert not jobs_on(east, "probe"), "the stale Job is deleted on h100-east"
    assert job_pods(west, "probe"), "the epoch 2 copy keeps running on a100-west"
    assert [a["spec"]["epoch"] for a in assignments_of(fleet, "probe")] == [2]
    assert cluster_ready(fleet, "h100-east")["status"] == "True", "the returning agent makes its cluster Ready again"
    view = wait_until_placed(fleet, "probe", epoch=2)
    assert view["phase"] == "Running" and [x["name"] for x in view["placement"]["clusters"]] == ["a100-west"]


def test_deleting_a_workload_with_kubectl_removes_its_job_from_the_spoke_before_the_workload_leaves_the_hub(
    fleet: Fleet,
) -> None:
    fleet.hub_kubectl(
        "apply",
        "-f",
        "-",
        input=yaml.safe_dump(workload("evaluate", 1, gpu_job("evaluate", 1, delay="600s"), models=["L4"])),
    )
    assert [x["name"] for x in wait_until_placed(fleet, "evaluate")["placement"]["clusters"]] == ["l4-eu"]
    spoke = fleet.spoke("l4-eu")
    wait_until_phase(fleet, "evaluate", "Running")
    wait_until_pods_run_on(spoke, "job-name=evaluate")

    # `kubectl delete` waits until the Workload is gone; watch both sides meanwhile.
    deleting = subprocess.Popen(
        ["kubectl", "--kubeconfig", fleet.hub_kubeconfig, "delete", "wl", "evaluate", "-n", NS, "--timeout=90s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    order: list[tuple[bool, bool]] = []  # (job on spoke, workload on hub), in time order
    job_gone_at = wl_gone_at = None
    t0 = time.monotonic()
    while deleting.poll() is None or not order or order[-1] != (False, False):
        # Hub first, spoke second: a Job seen after the Workload was seen gone really outlived it.
        wl_there = (
            fleet.hub_kubectl("get", "wl", "evaluate", "-n", NS, "--ignore-not-found", "-o", "name").stdout.strip()
            != ""
        )
        job_there = bool(jobs_on(spoke, "evaluate"))
        order.append((job_there, wl_there))
        now = time.monotonic() - t0
        job_gone_at = now if not job_there and job_gone_at is None else job_gone_at
        wl_gone_at = now if not wl_there and wl_gone_at is None else wl_gone_at
        assert not (wl_there is False and job_there), (
            "the Workload left the hub while its Job still exists on the spoke"
        )
        assert now < 120, f"deletion did not finish: {order[-5:]}"
        time.sleep(0.2)
    _out, err = deleting.communicate()
    assert deleting.returncode == 0, err
    print(f"\njob gone from l4-eu after {job_gone_at:.1f}s, workload gone from the hub after {wl_gone_at:.1f}s")
    assert job_gone_at is not None and wl_gone_at is not None and job_gone_at <= wl_gone_at
    assert not assignments_of(fleet, "evaluate"), "its Assignment was released by the agent"
    wait_until("evaluate's pods are gone from l4-eu", lambda: not job_pods(spoke, "evaluate"), 60)
