"""The cluster-health rules of the federation controller (hub/controllers/health.py).

Pure functions over stored Cluster objects as plain dicts: no database, no hub process.
Times are RFC 3339 strings in objects and epoch seconds for `now`, as the controller uses them.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from fleetplane_types.names import HEARTBEAT_TIMEOUT_REASON, READY_CONDITION
from hub.controllers.health import (
    MAX_TIMER_SECONDS,
    cluster_digest,
    heartbeat_expired,
    not_ready_status,
    seconds_to_next_expiry,
)

Obj = dict[str, Any]

T0 = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC).timestamp()
"""The reference instant; heartbeats below are given as seconds before or after it."""


def at(offset: float) -> str:
    """RFC 3339 of T0 + offset seconds (whole seconds, as agents write it)."""
    return datetime.fromtimestamp(T0 + offset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def a_cluster(
    name: str = "east",
    *,
    ready: bool | None = True,
    heartbeat: str | None = at(0),
    free: int = 8,
    extra_conditions: list[Obj] | None = None,
) -> Obj:
    """A Cluster as its agent reports it; ready=None means no Ready condition at all."""
    conditions = list(extra_conditions or [])
    if ready is not None:
        conditions.append(
            {
                "type": READY_CONDITION,
                "status": "True" if ready else "False",
                "reason": "AgentReporting",
                "lastTransitionTime": at(-3600),
            }
        )
    status: Obj = {
        "conditions": conditions,
        "region": "us-east-1",
        "freeGpus": free,
        "totalGpus": 8,
        "gpuPools": [
            {
                "name": "h100-on-demand",
                "model": "H100",
                "capacityType": "on-demand",
                "total": 8,
                "allocatable": 8,
                "free": free,
            }
        ],
    }
    if heartbeat is not None:
        status["heartbeatTime"] = heartbeat
    return {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": name, "resourceVersion": "10", "labels": {"tier": "gold"}},
        "spec": {"region": "us-east-1"},
        "status": status,
    }


# ---------------------------------------------------------------- heartbeat_expired

TIMEOUT = 10.0


@pytest.mark.parametrize(
    "cluster,seconds_since_heartbeat,expired",
    [
        # Ready: expired once the heartbeat is strictly older than the timeout (10 s).
        (a_cluster(), 11, True),
        (a_cluster(), 10.5, True),
        (a_cluster(), 10, False),  # exactly the timeout: not yet
        (a_cluster(), 9, False),
        (a_cluster(), 0, False),
        # Already NotReady: nothing to mark, however old the heartbeat.
        (a_cluster(ready=False), 1000, False),
        # Never reported (no Ready condition): it is not Ready, so it cannot expire.
        (a_cluster(ready=None), 1000, False),
        # Ready but no heartbeat time, or one that is not a time: no evidence of silence.
        (a_cluster(heartbeat=None), 1000, False),
        (a_cluster(heartbeat="yesterday"), 1000, False),
    ],
)
def test_heartbeat_expired_only_for_a_ready_cluster_silent_longer_than_the_timeout(
    cluster: Obj,
    seconds_since_heartbeat: float,
    expired: bool,
) -> None:
    # The cluster heartbeat is at T0; "now" is that many seconds later.
    assert heartbeat_expired(cluster, T0 + seconds_since_heartbeat, TIMEOUT) is expired


@pytest.mark.parametrize(
    "heartbeat,renewed,now,expired",
    [
        # Times are seconds after T0; timeout 10 s. Alive while max(heartbeat, renewal) is
        # within the timeout.
        # Status heartbeat 30 s old, lease renewed 3 s ago: alive (max = renewal, 3 < 10).
        (at(0), T0 + 27, T0 + 30, False),
        # Lease renewed 11 s ago, status heartbeat 30 s old: expired (max = renewal, 11 > 10).
        (at(0), T0 + 19, T0 + 30, True),
        # Lease older than the status heartbeat (a report after the last renewal): the
        # heartbeat counts (max = heartbeat 5 s ago).
        (at(25), T0 + 0, T0 + 30, False),
        # A lease but no heartbeat time at all: the lease alone decides (12 s > 10 s).
        (None, T0 + 18, T0 + 30, True),
        (None, T0 + 25, T0 + 30, False),
        # Neither: no evidence of silence, as before leases.
        (None, None, T0 + 1000, False),
    ],
)
def test_a_cluster_is_alive_while_its_latest_lease_renewal_or_heartbeat_is_within_the_timeout(
    heartbeat: str | None, renewed: float | None, now: float, expired: bool
) -> None:
    assert heartbeat_expired(a_cluster(heartbeat=heartbeat), now, TIMEOUT, renewed) is expired


def test_a_lease_renewal_does_not_revive_a_cluster_already_marked_not_ready() -> None:
    # NotReady is left to the agent's next status report (Ready=True), not to the lease.
    assert not heartbeat_expired(a_cluster(ready=False), T0 + 100, TIMEOUT, T0 + 99)


# ---------------------------------------------------------------- not_ready_status


def test_not_ready_status_replaces_the_ready_condition_and_keeps_the_others() -> None:
    disk = {"type": "DiskPressure", "status": "False", "reason": "Fine"}
    c = a_cluster(extra_conditions=[disk])
    before = copy.deepcopy(c)
    st = not_ready_status(c, 45, at(60))
    assert st["conditions"] == [
        disk,
        {
            "type": READY_CONDITION,
            "status": "False",
            "reason": HEARTBEAT_TIMEOUT_REASON,
            "message": "no heartbeat for more than 45s",
            "lastTransitionTime": at(60),
        },
    ]
    assert [x["type"] for x in st["conditions"]].count(READY_CONDITION) == 1
    # The capacity report and the heartbeat time are kept: only Ready changes.
    assert {k: v for k, v in st.items() if k != "conditions"} == {
        k: v for k, v in before["status"].items() if k != "conditions"
    }
    assert c == before, "the listed object is not mutated"


def test_not_ready_status_of_a_cluster_that_never_reported_adds_a_ready_condition() -> None:
    st = not_ready_status({"metadata": {"name": "east"}}, 4.5, at(0))
    assert st == {
        "conditions": [
            {
                "type": READY_CONDITION,
                "status": "False",
                "reason": HEARTBEAT_TIMEOUT_REASON,
                "message": "no heartbeat for more than 4.5s",
                "lastTransitionTime": at(0),
            }
        ]
    }


# ---------------------------------------------------------------- seconds_to_next_expiry


@pytest.mark.parametrize(
    "clusters,timeout,expected",
    [
        # Nobody to watch: wake at the cap.
        ([], 10, MAX_TIMER_SECONDS),
        # Heartbeat 4 s ago, timeout 10: expires in 10 - 4 = 6 s, plus 0.05 s so the pass
        # sees it strictly older than the timeout → 6.05.
        ([a_cluster(heartbeat=at(-4))], 10, 6.05),
        # The soonest of several: east in 10 - 4 = 6, west in 10 - 7 = 3 → 3.05.
        ([a_cluster("east", heartbeat=at(-4)), a_cluster("west", heartbeat=at(-7))], 10, 3.05),
        # NotReady and never-reported clusters are not waited for, however old.
        (
            [
                a_cluster("east", ready=False, heartbeat=at(-9)),
                a_cluster("west", ready=None, heartbeat=at(-9)),
                a_cluster("north", heartbeat=at(-2)),
            ],
            10,
            8.05,
        ),
        # Ready without a heartbeat time: nothing to wait for.
        ([a_cluster(heartbeat=None)], 10, MAX_TIMER_SECONDS),
        # Heartbeat 2 s ago at the default 45 s timeout: 43.05 s away, capped at 30.
        ([a_cluster(heartbeat=at(-2))], 45, MAX_TIMER_SECONDS),
        # Already overdue (100 s ago, timeout 10): the floor, never 0 or negative.
        ([a_cluster(heartbeat=at(-100))], 10, 0.05),
    ],
)
def test_seconds_to_next_expiry_is_the_soonest_ready_heartbeat_expiry_within_bounds(
    clusters: list[Obj],
    timeout: float,
    expected: float,
) -> None:
    assert seconds_to_next_expiry(clusters, T0, timeout) == pytest.approx(expected)


@pytest.mark.parametrize(
    "clusters,renewals,expected",
    [
        # Heartbeat 9 s ago but lease renewed 2 s ago: expires in 10 - 2 = 8 s → 8.05.
        ([a_cluster("east", heartbeat=at(-9))], {"east": T0 - 2}, 8.05),
        # A renewal older than the heartbeat changes nothing: 10 - 4 = 6 → 6.05.
        ([a_cluster("east", heartbeat=at(-4))], {"east": T0 - 9}, 6.05),
        # Renewals of other (deleted) clusters are ignored.
        ([a_cluster("east", heartbeat=at(-4))], {"gone": T0 - 9.9}, 6.05),
        # No heartbeat time, only a lease 7 s old: 10 - 7 = 3 → 3.05.
        ([a_cluster("east", heartbeat=None)], {"east": T0 - 7}, 3.05),
        # The soonest over clusters judged each by its own latest: east 8, west 10 - 6 = 4 → 4.05.
        (
            [a_cluster("east", heartbeat=at(-20)), a_cluster("west", heartbeat=at(-6))],
            {"east": T0 - 2},
            4.05,
        ),
    ],
)
def test_the_expiry_timer_counts_lease_renewals(
    clusters: list[Obj], renewals: dict[str, float], expected: float
) -> None:
    assert seconds_to_next_expiry(clusters, T0, TIMEOUT, renewals) == pytest.approx(expected)


def test_the_timer_never_fires_before_the_heartbeat_has_expired() -> None:
    c = a_cluster(heartbeat=at(-4))
    wait = seconds_to_next_expiry([c], T0, TIMEOUT)
    assert not heartbeat_expired(c, T0 + wait - 0.1, TIMEOUT)
    assert heartbeat_expired(c, T0 + wait, TIMEOUT)


# ---------------------------------------------------------------- cluster_digest


def changed(c: Obj, path: tuple[str | int, ...], value: Any) -> Obj:
    """A copy of c with the value at path set."""
    out = copy.deepcopy(c)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


BASE = a_cluster()
READY_AT = len(BASE["status"]["conditions"]) - 1


@pytest.mark.parametrize(
    "what,other",
    [
        ("a new heartbeat", changed(BASE, ("status", "heartbeatTime"), at(15))),
        (
            "a new condition transition time",
            changed(BASE, ("status", "conditions", READY_AT, "lastTransitionTime"), at(15)),
        ),
        ("a new resourceVersion", changed(BASE, ("metadata", "resourceVersion"), "11")),
        ("managedFields", changed(BASE, ("metadata", "managedFields"), [{"manager": "agent"}])),
    ],
)
def test_cluster_digest_ignores_what_placement_does_not_read(what: str, other: Obj) -> None:
    assert cluster_digest(other) == cluster_digest(BASE), what


def test_a_heartbeat_and_transition_time_change_together_give_the_same_digest() -> None:
    other = changed(BASE, ("status", "heartbeatTime"), at(30))
    other["status"]["conditions"][READY_AT]["lastTransitionTime"] = at(30)
    assert cluster_digest(other) == cluster_digest(BASE)


@pytest.mark.parametrize(
    "what,other",
    [
        ("free GPUs", changed(BASE, ("status", "freeGpus"), 0)),
        ("a pool's free GPUs", changed(BASE, ("status", "gpuPools", 0, "free"), 0)),
        ("Ready", changed(BASE, ("status", "conditions", READY_AT, "status"), "False")),
        ("the Ready reason", changed(BASE, ("status", "conditions", READY_AT, "reason"), HEARTBEAT_TIMEOUT_REASON)),
        ("the region", changed(BASE, ("spec", "region"), "eu-west-1")),
        ("labels", changed(BASE, ("metadata", "labels"), {"tier": "silver"})),
        ("deletion", changed(BASE, ("metadata", "deletionTimestamp"), at(15))),
    ],
)
def test_cluster_digest_changes_with_what_placement_reads(what: str, other: Obj) -> None:
    assert cluster_digest(other) != cluster_digest(BASE), what
