"""The deploy manifests: RBAC grants exactly what the default config needs, each rule says why."""

from __future__ import annotations

from pathlib import Path

import yaml

from spoke_agent.settings import DeliverySettings

ROOT = Path(__file__).resolve().parents[2]
RBAC = ROOT / "deploy" / "agent" / "rbac.yaml"
PLURALS = {
    "Job": "jobs",
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "Pod": "pods",
    "Service": "services",
    "ConfigMap": "configmaps",
    "PyTorchJob": "pytorchjobs",
    "RayJob": "rayjobs",
    "JobSet": "jobsets",
}


def cluster_role_rules() -> list[dict]:
    docs = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    return next(d for d in docs if d["kind"] == "ClusterRole")["rules"]


def test_every_allowed_kind_can_be_applied_listed_and_deleted_and_nothing_else_is_writable() -> None:
    rules = cluster_role_rules()
    writable = {
        (g, r)
        for rule in rules
        if {"create", "patch"} <= set(rule["verbs"])
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }
    allowed = {(k.group, PLURALS[k.kind]) for k in DeliverySettings().allowed_kinds}
    assert allowed <= writable
    assert writable - allowed == {("", "namespaces")} or writable - allowed == set()
    for rule in rules:
        if set(rule["verbs"]) & {"create", "patch"} and rule["resources"] != ["namespaces"]:
            assert {"list", "delete"} <= set(rule["verbs"]), rule
    assert not any("*" in rule["verbs"] or "*" in rule["resources"] for rule in rules)


def test_every_rbac_rule_is_commented_with_why() -> None:
    lines = RBAC.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("- apiGroups:"):
            assert lines[i - 1].strip().startswith("#"), f"rule at line {i + 1} has no comment"


def test_no_secret_access_outside_the_agents_own_secret() -> None:
    docs = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    assert not any("secrets" in r["resources"] for r in cluster_role_rules())
    role = next(d for d in docs if d["kind"] == "Role")
    named = [r for r in role["rules"] if set(r["verbs"]) & {"get", "patch"}]
    assert all(r.get("resourceNames") == ["fleetplane-agent"] for r in named)
