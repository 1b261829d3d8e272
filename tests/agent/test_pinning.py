"""Pods of an Assignment are pinned to the nodes of the pool placement chose."""

from __future__ import annotations

import asyncio

from spoke_agent.backends.simulated import Profile, SimulatedBackend
from spoke_agent.manifests import decorate, pinned_nodes

JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "train"},
    "spec": {
        "template": {
            "spec": {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {"matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]}
                            ]
                        }
                    }
                },
                "containers": [{"name": "c", "image": "x", "resources": {"limits": {"nvidia.com/gpu": 8}}}],
            }
        }
    },
}


def test_decorate_makes_one_single_valued_term_per_node_keeping_the_users_conditions() -> None:
    obj = decorate(JOB, assignment_namespace="ns", assignment_name="a", workload="w", epoch=1, node_names=["n1", "n2"])
    terms = obj["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert len(terms) == 2
    for term, node in zip(terms, ["n1", "n2"], strict=False):
        assert term["matchExpressions"] == [{"key": "team", "operator": "In", "values": ["a"]}], (
            "the user's affinity still applies"
        )
        # The apiserver accepts exactly one value for a metadata.name field selector.
        assert term["matchFields"] == [{"key": "metadata.name", "operator": "In", "values": [node]}]
    assert pinned_nodes(obj["spec"]["template"]["spec"]) == {"n1", "n2"}
    unpinned = decorate(JOB, assignment_namespace="ns", assignment_name="a", workload="w", epoch=1)
    assert pinned_nodes(unpinned["spec"]["template"]["spec"]) is None


def test_simulated_scheduler_never_binds_outside_the_pinned_pool() -> None:
    profile = Profile.from_dict(
        {
            "pools": [
                {"name": "spot", "model": "H100", "capacityType": "spot", "nodes": 2, "gpusPerNode": 8},
                {"name": "od", "model": "H100", "capacityType": "on-demand", "nodes": 1, "gpusPerNode": 8},
            ]
        }
    )

    async def run() -> list[str | None]:
        b = SimulatedBackend(profile, cluster_name="c")
        await b.start(lambda: None, lambda label: None)
        job = decorate(
            JOB, assignment_namespace="ns", assignment_name="a", workload="w", epoch=1, node_names=["c-od-0"]
        )
        job["spec"]["parallelism"] = 2  # two 8-GPU pods, but the pinned pool has one 8-GPU node
        await b.ensure_namespace("ns")
        await b.apply(job)
        nodes = [p.node for sim in b.objects.values() for p in sim.pods]
        await b.stop()
        return nodes

    nodes = asyncio.run(run())
    assert sorted(nodes, key=str) == [None, "c-od-0"], "the second pod waits rather than land on spot"
