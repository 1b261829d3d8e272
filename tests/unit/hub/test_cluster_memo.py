"""The controller's fleet snapshot reuses each Cluster version's validation and conversion
(hub.controllers.snapshot.ClusterMemo): a snapshot built with the memo is the snapshot built
without it, a Cluster whose version changed is converted again, and an invalid one is still
reported every time."""

from __future__ import annotations

import copy

from hub.controllers.snapshot import ClusterMemo, build_snapshot
from tests.unit.hub.test_controller_snapshot import a_cluster, a_topology, pool


def versioned(name: str, rv: int, free: list[int] | None = None, **kw: object) -> dict[str, object]:
    c = a_cluster(name, pools=[pool("H100", "on-demand", 2, 8, free=free)], **kw)  # type: ignore[arg-type]
    c["metadata"].update({"uid": f"uid-{name}", "resourceVersion": str(rv)})  # type: ignore[attr-defined]
    return c


def test_a_snapshot_built_with_the_memo_is_the_snapshot_built_without_it_as_clusters_change() -> None:
    memo = ClusterMemo()
    fleet = [versioned(f"c{i}", 10 + i) for i in range(5)]
    first, problems = build_snapshot(fleet, [], [], memo)
    assert problems == [] and first == build_snapshot(copy.deepcopy(fleet), [], [])[0]

    # One cluster reports new capacity (a new version); the others are unchanged.
    fleet[2] = versioned("c2", 99, free=[3, 8])
    second, _ = build_snapshot(fleet, [], [], memo)
    assert second == build_snapshot(copy.deepcopy(fleet), [], [])[0]
    by_name = {c.name: c for c in second.clusters}
    assert sum(n.free for p in by_name["c2"].pools for n in p.nodes) == 11, "the new version was converted"
    # The unchanged clusters' conversions are the very objects of the first snapshot.
    before = {c.name: c for c in first.clusters}
    assert all(by_name[n] is before[n] for n in ("c0", "c1", "c3", "c4"))
    assert by_name["c2"] is not before["c2"]


def test_an_invalid_cluster_is_reported_at_every_snapshot_and_a_removed_one_is_forgotten() -> None:
    memo = ClusterMemo()
    bad = versioned("bad", 5)
    bad["spec"] = {"region": 7}  # not a string
    fleet = [versioned("ok", 1), bad]
    for _ in range(2):
        snap, problems = build_snapshot(fleet, [], [], memo)
        assert [c.name for c in snap.clusters] == ["ok"]
        assert len(problems) == 1 and '"bad"' in problems[0]
    snap, _ = build_snapshot([], [], [], memo)
    assert snap.clusters == ()


def test_a_cluster_left_out_for_an_unknown_site_is_left_out_with_the_memo_too() -> None:
    memo = ClusterMemo()
    fleet = [versioned("east", 1, site="us-east"), versioned("moon", 2, site="moon")]
    with_memo, problems = build_snapshot(fleet, [], [a_topology("us-east")], memo)
    without, problems_without = build_snapshot(copy.deepcopy(fleet), [], [a_topology("us-east")])
    assert with_memo == without and problems == problems_without
    assert [c.name for c in with_memo.clusters] == ["east"]
