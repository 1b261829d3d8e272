"""Queues on a real hub with SIMULATED clusters: admission before placement, quota caps, who is
queued, head-of-line blocking, quota released by finished workloads (issue 11).

Every cluster here is SIMULATED (tests/api/queue_fleet.py): the agent's in-memory backend,
in threads, applies Assignments, runs Jobs for a simulated time and reports capacity like a
real spoke's agent. Preemption is in test_queue_preemption_hub.py, fair share in
test_queue_fair_share_hub.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetplane_types.names import ADMITTED_CONDITION, EVICTED_CONDITION, FINISHED_REASON, INADMISSIBLE_REASON
from tests.api.queue_fleet import API, Fleet, job_workload, queue, running_fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with running_fleet(tmp_path, ("research", "prod")) as f:
        yield f


def test_a_queue_admits_up_to_its_quota_and_the_rest_waits_with_the_numbers(fleet: Fleet) -> None:
    fleet.cluster("sim-a", h100_nodes=4)  # 32 H100: the fleet has room, the quota does not
    fleet.add_queue(queue("research", 16, namespaces=["research"]))
    # A Queue nobody has used yet already says what it holds.
    fresh = fleet.wait_until_queue("research", 0)["flavorsUsage"][0]
    assert (fresh["nominal"], fresh["available"]) == (16, 16)
    for i in range(3):
        fleet.submit(job_workload(f"train-{i}", "research", 8, queue="research"))
    fleet.wait_until_placed("research", "train-0")
    fleet.wait_until_placed("research", "train-1")
    waiting = fleet.wait_until_condition("research", "train-2", ADMITTED_CONDITION, "False", "Pending")
    assert "queue research: H100 on-demand 16/16 used" in waiting["message"]
    assert fleet.placed("research", "train-2") == []
    assert fleet.assignments("research", "train-2") == []
    admitted = fleet.workload("research", "train-0")["status"]["admission"]
    assert (admitted["queue"], admitted["gpus"], admitted["flavor"]["gpuModel"]) == ("research", 8, "H100")
    st = fleet.wait_until_queue("research", 16, pending=1, admitted=2)
    usage = st["flavorsUsage"][0]
    assert (usage["used"], usage["nominal"], usage["borrowed"], usage["available"]) == (16, 16, 0, 0)
    # Deleting an admitted workload gives its quota back: the one that waited is admitted.
    fleet.delete_workload("research", "train-0")
    fleet.wait_until_placed("research", "train-2")
    fleet.wait_until_condition("research", "train-2", ADMITTED_CONDITION, "True")
    fleet.wait_until_queue("research", 16, pending=0, admitted=2)


def test_a_missing_queue_is_inadmissible_and_workloads_without_a_queue_are_placed_as_before(fleet: Fleet) -> None:
    fleet.cluster("sim-a", h100_nodes=2)
    fleet.add_queue(queue("research", 8, namespaces=["research"], defaultFor=["research"]))
    fleet.submit(job_workload("typo", "research", 4, queue="reseach"))
    inadmissible = fleet.wait_until_condition("research", "typo", ADMITTED_CONDITION, "False", INADMISSIBLE_REASON)
    assert 'Queue "reseach" does not exist' in inadmissible["message"], inadmissible
    # prod has no default queue and the workload names none: placed as before queues existed,
    # with no quota and no Admitted condition, although a Queue exists.
    fleet.submit(job_workload("serve", "prod", 8))
    fleet.wait_until_placed("prod", "serve")
    serve = fleet.workload("prod", "serve")["status"]
    assert "admission" not in serve
    assert all(c["type"] != ADMITTED_CONDITION for c in serve.get("conditions") or [])
    # A workload of research without spec.queue lands in research's default queue.
    fleet.submit(job_workload("defaulted", "research", 4))
    fleet.wait_until_placed("research", "defaulted")
    assert fleet.workload("research", "defaulted")["status"]["admission"]["queue"] == "research"
    # The passes that placed those two decided the typo again: still waiting, never placed.
    again = fleet.condition("research", "typo", ADMITTED_CONDITION)
    assert again is not None and again["reason"] == INADMISSIBLE_REASON
    assert fleet.placed("research", "typo") == []
    assert fleet.assignments("research", "typo") == []
    assert fleet.watch.first("research/typo", "ADDED") is None
    # The Queue it names is created: it is admitted on the next pass.
    fleet.add_queue(queue("reseach", 4, namespaces=["research"]))
    fleet.wait_until_placed("research", "typo")
    assert fleet.workload("research", "typo")["status"]["admission"]["queue"] == "reseach"
    # Deleting a Queue: what it admitted keeps running, what waits in it is inadmissible again.
    fleet.submit(job_workload("late", "research", 4, queue="reseach"))
    fleet.wait_until_condition("research", "late", ADMITTED_CONDITION, "False", "Pending")
    r = fleet.c.delete(f"{API}/queues/reseach")
    assert r.status_code in (200, 202), r.text
    gone = fleet.wait_until_condition("research", "late", ADMITTED_CONDITION, "False", INADMISSIBLE_REASON)
    assert 'Queue "reseach" does not exist' in gone["message"], gone
    assert fleet.placed("research", "typo") == ["sim-a"]
    assert fleet.condition("research", "typo", EVICTED_CONDITION) is None


def test_strict_fifo_blocks_behind_a_head_that_cannot_be_admitted_and_best_effort_fifo_does_not(
    fleet: Fleet,
) -> None:
    fleet.cluster("sim-a", h100_nodes=4)  # 32 H100: only the quotas hold anything back
    fleet.add_queue(queue("strict", 8, namespaces=["research"], queueingStrategy="StrictFIFO"))
    fleet.add_queue(queue("besteffort", 8, namespaces=["prod"], queueingStrategy="BestEffortFIFO"))
    for ns, q in (("research", "strict"), ("prod", "besteffort")):
        fleet.submit(job_workload("filler", ns, 4, queue=q))
        fleet.wait_until_placed(ns, "filler")
    # In each queue: a head of 8 GPUs (4 left in the quota), then a tail of 2 that would fit.
    for ns, q in (("research", "strict"), ("prod", "besteffort")):
        fleet.submit(job_workload("head", ns, 8, queue=q))
        fleet.submit(job_workload("tail", ns, 2, queue=q))
    fleet.wait_until_placed("prod", "tail")
    blocked = fleet.wait_until_condition("research", "tail", ADMITTED_CONDITION, "False", "Pending")
    assert "StrictFIFO: behind the queue's head research/head" in blocked["message"], blocked
    assert fleet.placed("research", "tail") == []
    for ns, q in (("research", "strict"), ("prod", "besteffort")):
        head = fleet.wait_until_condition(ns, "head", ADMITTED_CONDITION, "False", "Pending")
        # The numbers of the pass that last tried it: 4/8 used, or 6/8 in besteffort if a later
        # pass tried it again after the tail was admitted.
        assert re.search(rf"queue {q}: H100 on-demand [46]/8 used.*needs 8", head["message"]), head
        assert fleet.placed(ns, "head") == []


def test_a_finished_workload_releases_its_quota_and_the_next_one_is_admitted(fleet: Fleet) -> None:
    fleet.cluster("sim-a", h100_nodes=2)  # 16 H100: the quota (8) is what makes "second" wait
    fleet.add_queue(queue("research", 8, namespaces=["research"]))
    fleet.submit(job_workload("first", "research", 8, queue="research", job_seconds=2))
    fleet.wait_until_placed("research", "first")
    fleet.submit(job_workload("second", "research", 8, queue="research", job_seconds=2))
    waiting = fleet.wait_until_condition("research", "second", ADMITTED_CONDITION, "False", "Pending")
    assert "8/8 used" in waiting["message"], waiting
    finished = fleet.wait_until_condition("research", "first", ADMITTED_CONDITION, "False", FINISHED_REASON)
    assert fleet.workload("research", "first")["status"]["phase"] == "Succeeded"
    assert finished["reason"] == FINISHED_REASON
    fleet.wait_until_placed("research", "second")
    assert fleet.workload("research", "second")["status"]["admission"]["queue"] == "research"
    fleet.wait_until_queue("research", 8, pending=0, admitted=1)
    # Once the last one finishes too, nothing waits and nothing is admitted: the Queue says so.
    fleet.wait_until_condition("research", "second", ADMITTED_CONDITION, "False", FINISHED_REASON)
    fleet.wait_until_queue("research", 0, pending=0, admitted=0)
