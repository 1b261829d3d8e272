"""Pure pieces of the hub API: selectors and server-side-apply field ownership."""

from __future__ import annotations

import pytest

from hub.errors import ApiError
from hub.registry import fieldmanager
from hub.registry.selectors import parse_field_selector, parse_label_selector

OBJ = {
    "metadata": {"name": "w", "namespace": "ns", "labels": {"app": "llm", "tier": "gold"}},
    "spec": {"clusterName": "east"},
}


@pytest.mark.parametrize(
    "expr,matches",
    [
        ("app=llm", True),
        ("app==llm", True),
        ("app!=llm", False),
        ("app in (llm,cv)", True),
        ("app notin (llm)", False),
        ("tier", True),
        ("!tier", False),
        ("missing", False),
        ("!missing", True),
        ("app=llm,tier in (gold)", True),
        ("app=llm,tier=silver", False),
    ],
)
def test_label_selectors_follow_kubernetes_semantics(expr: str, matches: bool) -> None:
    pred = parse_label_selector(expr)
    assert pred is not None and pred(OBJ) is matches


def test_field_selectors_allow_only_declared_paths() -> None:
    pred = parse_field_selector(
        "spec.clusterName=east,metadata.name!=x", ("metadata.name", "spec.clusterName"), "Assignment"
    )
    assert pred is not None and pred(OBJ)
    with pytest.raises(ApiError) as err:
        parse_field_selector("spec.gpu=1", ("metadata.name",), "Workload")
    assert err.value.code == 400 and "field label not supported" in err.value.message


def test_apply_by_a_second_manager_conflicts_only_on_differing_values() -> None:
    live = fieldmanager.apply(
        None, {"metadata": {"name": "w"}, "spec": {"a": 1, "b": 2}}, "one", "v1", force=False, resource="x"
    )
    # Same value: co-ownership, no conflict.
    shared = fieldmanager.apply(
        live, {"metadata": {"name": "w"}, "spec": {"a": 1}}, "two", "v1", force=False, resource="x"
    )
    owners = fieldmanager.Managed(shared["metadata"]["managedFields"])
    assert len(owners.owners(("spec", "a"))) == 2
    with pytest.raises(ApiError) as err:
        fieldmanager.apply(
            shared, {"metadata": {"name": "w"}, "spec": {"b": 3}}, "two", "v1", force=False, resource="x"
        )
    assert err.value.code == 409
    assert err.value.details["causes"] == [
        {"type": "FieldManagerConflict", "message": 'conflict with "one"', "field": ".spec.b"}
    ]
    forced = fieldmanager.apply(
        shared, {"metadata": {"name": "w"}, "spec": {"b": 3}}, "two", "v1", force=True, resource="x"
    )
    assert forced["spec"] == {"a": 1, "b": 3}
    assert fieldmanager.Managed(forced["metadata"]["managedFields"]).owners(("spec", "b")) == [("two", "Apply", "")]


def test_fields_a_manager_stops_applying_are_removed_unless_someone_else_owns_them() -> None:
    live = fieldmanager.apply(
        None, {"metadata": {"name": "w"}, "spec": {"a": 1, "b": 2, "c": 3}}, "one", "v1", force=False, resource="x"
    )
    live = fieldmanager.apply(
        live, {"metadata": {"name": "w"}, "spec": {"c": 3}}, "two", "v1", force=False, resource="x"
    )
    after = fieldmanager.apply(
        live, {"metadata": {"name": "w"}, "spec": {"a": 1}}, "one", "v1", force=False, resource="x"
    )
    assert after["spec"] == {"a": 1, "c": 3}, "b was only one's; c is still two's"


def test_fields_v1_round_trips() -> None:
    paths = {("spec", "gpu", "count"), ("spec", "replicas"), ("metadata", "labels", "app")}
    assert fieldmanager.from_fields_v1(fieldmanager.to_fields_v1(paths)) == paths
