"""Priorities, preemption and reclaim on a real hub with SIMULATED clusters (issue 11).

Every cluster here is SIMULATED (tests/api/queue_fleet.py). In every preemption test the
hub's Assignment events are recorded from a watch, and the ordering invariant is checked on
them: on each cluster, the preemptor's Assignment is created only after the victim's
Assignment there is gone (its copy removed by the agent, its finalizer released).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetplane_testing.waiting import wait_until
from fleetplane_types.names import (
    ADMITTED_CONDITION,
    EVICTED_CONDITION,
    PREEMPTED_BY_PRIORITY_REASON,
    PREEMPTING_REASON,
    READMITTED_REASON,
    RECLAIMED_REASON,
)
from tests.api.queue_fleet import API, Fleet, job_workload, parse_time, priority_class, queue, running_fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with running_fleet(tmp_path, ("research", "team-a", "team-b")) as f:
        yield f


def test_a_higher_priority_workload_preempts_inside_its_queue_and_the_victim_goes_back_to_it(fleet: Fleet) -> None:
    fleet.cluster("sim-a", h100_nodes=1)  # 8 H100: one 8-GPU job at a time
    fleet.add_queue(queue("research", 8, namespaces=["research"], preemption={"withinQueue": "LowerPriority"}))
    fleet.submit(job_workload("sweep", "research", 8, priority=10, queue="research"))
    fleet.wait_until_placed("research", "sweep")
    fleet.submit(job_workload("hotfix", "research", 8, priority=1000, queue="research", job_seconds=6))
    evicted = fleet.wait_until_condition("research", "sweep", EVICTED_CONDITION, "True")
    assert evicted["reason"] == PREEMPTED_BY_PRIORITY_REASON
    assert "research/hotfix" in evicted["message"]
    fleet.wait_until_placed("research", "hotfix", timeout=40)
    fleet.watch.wait_for("research/hotfix", "ADDED")
    assert fleet.watch.expect_victims_gone_before_preemptors(["research/sweep"], ["research/hotfix"]) == 1
    # Only hotfix has an Assignment now, and sweep waits in its queue again, not lost and not failed.
    assert fleet.assignments("research", "sweep") == []
    back = fleet.wait_until_condition("research", "sweep", ADMITTED_CONDITION, "False")
    sweep = fleet.workload("research", "sweep")
    assert "back in queue research" in back["message"] or "8/8 used" in back["message"], back
    assert "admission" not in sweep["status"]
    assert sweep["status"]["phase"] != "Failed"
    # Once hotfix has finished (a 6 s SIMULATED job), sweep is admitted again in a new epoch.
    readmitted = fleet.wait_until_condition("research", "sweep", EVICTED_CONDITION, "False", READMITTED_REASON)
    assert "admitted again" in readmitted["message"]
    fleet.wait_until_placed("research", "sweep")
    again = fleet.workload("research", "sweep")["status"]
    assert again["placement"]["epoch"] > sweep["status"]["placement"].get("epoch", 1)
    assert "eviction" not in again


def test_a_priority_class_label_gives_the_priority_and_spec_priority_overrides_it(fleet: Fleet) -> None:
    fleet.cluster("sim-a", h100_nodes=2)  # room for all three: nothing waits, nothing is evicted
    fleet.create(f"{API}/priorityclasses", priority_class("urgent", 1000))
    fleet.create(f"{API}/priorityclasses", priority_class("batch", 10))
    fleet.add_queue(queue("research", 16, namespaces=["research"]))
    fleet.submit(job_workload("by-class", "research", 4, priority_class="urgent", queue="research"))
    fleet.submit(job_workload("overridden", "research", 4, priority_class="urgent", priority=5, queue="research"))
    fleet.submit(job_workload("classless", "research", 4, queue="research"))
    priorities = {}
    for name in ("by-class", "overridden", "classless"):
        fleet.wait_until_placed("research", name)
        priorities[name] = fleet.workload("research", name)["status"]["admission"]["priority"]
    # No class is globalDefault, so a workload with neither label nor spec.priority has 0.
    assert priorities == {"by-class": 1000, "overridden": 5, "classless": 0}


def test_a_higher_priority_workload_is_never_evicted_for_a_lower_one(fleet: Fleet) -> None:
    fleet.cluster("sim-a", h100_nodes=1)
    fleet.create(f"{API}/priorityclasses", priority_class("urgent", 1000))
    fleet.create(f"{API}/priorityclasses", priority_class("batch", 10))
    fleet.add_queue(queue("research", 8, namespaces=["research"], preemption={"withinQueue": "LowerPriority"}))
    # The higher priority first; then a lower one by class, and one whose spec.priority (5)
    # overrides the urgent class it names: neither may evict it.
    fleet.submit(job_workload("hotfix", "research", 8, priority_class="urgent", queue="research"))
    fleet.wait_until_placed("research", "hotfix")
    fleet.submit(job_workload("sweep", "research", 8, priority_class="batch", queue="research"))
    fleet.submit(job_workload("pinned-low", "research", 8, priority_class="urgent", priority=5, queue="research"))
    for name in ("sweep", "pinned-low"):
        waiting = fleet.wait_until_condition("research", name, ADMITTED_CONDITION, "False", "Pending")
        assert "8/8 used" in waiting["message"], waiting
        assert "no workload it may preempt" in waiting["message"], waiting
    # The pass that wrote those reasons is the one that would have evicted: it did not.
    assert fleet.condition("research", "hotfix", EVICTED_CONDITION) is None
    assert fleet.placed("research", "hotfix") == ["sim-a"]
    # Its Assignment was never marked for deletion nor deleted.
    hotfix = [e for e in fleet.watch.recorded() if e.key == "research/hotfix"]
    assert hotfix and all(e.type != "DELETED" and e.deletion is None for e in hotfix), hotfix


def _borrowing_fleet(fleet: Fleet, reclaim: str) -> list[str]:
    """Queues a and b, 16 H100 each, one cohort; 32 H100 in the fleet (2 SIMULATED clusters).
    a submits 4 × 8 — two, then two more a second later, so the admission times order them —
    and gets 16 own + 16 borrowed from idle b. Returns a's workloads, most recently admitted last."""
    fleet.cluster("sim-a", h100_nodes=2)
    fleet.cluster("sim-b", h100_nodes=2)
    fleet.add_queue(queue("a", 16, namespaces=["team-a"], cohort="shared"))
    fleet.add_queue(queue("b", 16, namespaces=["team-b"], cohort="shared", preemption={"reclaimWithinCohort": reclaim}))
    names = [f"a{i}" for i in range(4)]
    for n in names[:2]:
        fleet.submit(job_workload(n, "team-a", 8, queue="a"))
    for n in names[:2]:
        fleet.wait_until_placed("team-a", n)
    first = max(parse_time(fleet.workload("team-a", n)["status"]["admission"]["admittedAt"]) for n in names[:2])
    wait_until("a second has passed", lambda: time.time() >= first + 1.05, 5, interval=0.05)
    for n in names[2:]:
        fleet.submit(job_workload(n, "team-a", 8, queue="a"))
    for n in names[2:]:
        fleet.wait_until_placed("team-a", n)
    st = fleet.wait_until_queue("a", 32)
    usage = st["flavorsUsage"][0]
    assert (usage["used"], usage["nominal"], usage["borrowed"]) == (32, 16, 16)
    admitted = {n: fleet.workload("team-a", n)["status"]["admission"]["admittedAt"] for n in names}
    return sorted(names, key=lambda n: (admitted[n], n))


def test_a_queue_borrows_idle_quota_and_the_lender_reclaims_it_by_evicting_the_most_recent(fleet: Fleet) -> None:
    by_admission = _borrowing_fleet(fleet, "Any")
    fleet.submit(job_workload("b0", "team-b", 8, queue="b"))
    fleet.submit(job_workload("b1", "team-b", 8, queue="b"))
    victims = by_admission[2:]  # a's two most recently admitted
    for v in victims:
        ev = fleet.wait_until_condition("team-a", v, EVICTED_CONDITION, "True")
        assert ev["reason"] == RECLAIMED_REASON
        assert "queue a was borrowing" in ev["message"], ev
    # Each victim got a Warning Event saying so (what `kubectl describe` shows its owner).
    events = fleet.c.get("/api/v1/namespaces/team-a/events").json()["items"]
    warned = {e["involvedObject"]["name"] for e in events if e["reason"] == RECLAIMED_REASON and e["type"] == "Warning"}
    assert warned == set(victims), events
    for kept in by_admission[:2]:
        assert fleet.condition("team-a", kept, EVICTED_CONDITION) is None
    for b in ("b0", "b1"):
        fleet.wait_until_placed("team-b", b, timeout=40)
        fleet.watch.wait_for(f"team-b/{b}", "ADDED")
    checked = fleet.watch.expect_victims_gone_before_preemptors(
        [f"team-a/{v}" for v in victims], ["team-b/b0", "team-b/b1"]
    )
    assert checked >= 2  # each of b's copies replaced a victim's on its cluster
    for name in ("a", "b"):
        usage = fleet.wait_until_queue(name, 16, admitted=2)["flavorsUsage"][0]
        assert (usage["used"], usage["borrowed"]) == (16, 0), (name, usage)
    for v in victims:
        back = fleet.wait_until_condition("team-a", v, ADMITTED_CONDITION, "False")
        assert "16/16 used" in back["message"] or "back in queue a" in back["message"], back


def test_a_lender_that_may_not_reclaim_waits_with_what_it_lent_to_the_cohort(fleet: Fleet) -> None:
    by_admission = _borrowing_fleet(fleet, "Never")
    fleet.submit(job_workload("b0", "team-b", 8, queue="b"))
    waiting = fleet.wait_until_condition("team-b", "b0", ADMITTED_CONDITION, "False", "Pending")
    assert (
        "queue b: H100 on-demand 0/16 used, 16 of its quota lent to the cohort, cohort has 0 to lend; "
        "needs 8, 0 available" in waiting["message"]
    ), waiting
    assert fleet.placed("team-b", "b0") == []
    for n in by_admission:
        assert fleet.condition("team-a", n, EVICTED_CONDITION) is None
        assert fleet.placed("team-a", n)


def test_a_victims_grace_period_keeps_its_copy_until_withdraw_at_and_the_preemptor_waits(fleet: Fleet) -> None:
    grace = 5
    fleet.cluster("sim-a", h100_nodes=1)
    fleet.add_queue(queue("research", 8, namespaces=["research"], preemption={"withinQueue": "LowerPriority"}))
    fleet.submit(
        job_workload("sweep", "research", 8, priority=10, queue="research", preemptionGracePeriodSeconds=grace)
    )
    fleet.wait_until_placed("research", "sweep")
    fleet.submit(job_workload("hotfix", "research", 8, priority=1000, queue="research"))
    evicted = fleet.wait_until_condition("research", "sweep", EVICTED_CONDITION, "True")
    assert evicted["reason"] == PREEMPTED_BY_PRIORITY_REASON
    assert f"withdrawn in {grace}s" in evicted["message"], evicted
    eviction = fleet.workload("research", "sweep")["status"]["eviction"]
    assert eviction["preemptor"] == "research/hotfix"
    assert parse_time(eviction["withdrawAt"]) - parse_time(eviction["evictedAt"]) in (grace, grace + 1)
    preempting = fleet.wait_until_condition("research", "hotfix", ADMITTED_CONDITION, "False", PREEMPTING_REASON)
    assert "research/sweep" in preempting["message"]
    assert fleet.workload("research", "hotfix")["status"]["waitingFor"] == ["research/sweep"]
    # Meanwhile the victim still holds the quota, and the preemptor counts as waiting.
    fleet.wait_until_queue("research", 8, pending=1, admitted=1)

    fleet.wait_until_placed("research", "hotfix", timeout=40)
    assert "waitingFor" not in fleet.workload("research", "hotfix")["status"]
    added = fleet.watch.wait_for("research/hotfix", "ADDED")
    assert fleet.watch.expect_victims_gone_before_preemptors(["research/sweep"], ["research/hotfix"]) == 1
    # The victim's Assignment was marked for deletion only once withdrawAt had come, and was not
    # touched before. The timestamps have whole seconds: evictedAt is rounded down and
    # withdrawAt up (so withdrawAt - evictedAt is grace or grace + 1, above), hence the notice
    # is never shorter than the grace period and these compare without slack.
    sweep_events = [e for e in fleet.watch.recorded() if e.key == "research/sweep"]
    marked = next(e for e in sweep_events if e.deletion is not None)
    assert marked.deletion is not None
    assert parse_time(marked.deletion) >= parse_time(eviction["withdrawAt"])
    assert parse_time(marked.deletion) >= parse_time(eviction["evictedAt"]) + grace
    deleted = next(e for e in sweep_events if e.type == "DELETED")
    assert marked.rv <= deleted.rv < added.rv
