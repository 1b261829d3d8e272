"""Turning an Assignment's manifests into the objects the agent applies (pure functions).

Owns the allow-list check (kinds and namespaces from DeliverySettings) and the decoration
of each object: target namespace, the fleetplane.io labels, and the assignment label on pod
templates so the agent can find the pods a Job or Deployment creates.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .labels import ASSIGNMENT_ANNOTATION, ASSIGNMENT_LABEL, EPOCH_LABEL, WORKLOAD_LABEL, assignment_label, label_value
from .settings import DeliverySettings

# Kinds whose pod template lives at spec.template (and JobSet/Ray/PyTorch templates deeper:
# those keep their own labels; the agent finds their pods through the objects they own).
_TEMPLATE_KINDS = {
    ("batch", "Job"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"),
}


@dataclass(frozen=True)
class ObjectRef:
    """Identity of an object on the spoke."""

    api_version: str
    kind: str
    namespace: str | None
    name: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectRef:
        meta = obj.get("metadata") or {}
        return cls(obj["apiVersion"], obj["kind"], meta.get("namespace") or None, meta["name"])

    @property
    def group(self) -> str:
        return self.api_version.rsplit("/", 1)[0] if "/" in self.api_version else ""

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


def group_of(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def target_namespace(manifest: Mapping[str, Any], assignment_namespace: str) -> str:
    """A manifest's own namespace, else the Assignment's (hub namespaces mirror spoke ones)."""
    return (manifest.get("metadata") or {}).get("namespace") or assignment_namespace


def policy_violations(
    manifests: Sequence[Mapping[str, Any]],
    assignment_namespace: str,
    settings: DeliverySettings,
    namespaced: Mapping[tuple[str, str], bool] | None = None,
) -> list[str]:
    """Messages for every manifest the agent's config forbids (empty: all allowed).

    `namespaced` maps (apiVersion, kind) to whether the kind is namespaced on this cluster;
    kinds missing from it are treated as namespaced (the kind check runs first anyway).
    """
    problems = []
    for i, m in enumerate(manifests):
        api_version, kind = m.get("apiVersion", ""), m.get("kind", "")
        name = (m.get("metadata") or {}).get("name", f"manifests[{i}]")
        if not settings.kind_allowed(api_version, kind):
            group = group_of(api_version) or "core"
            problems.append(
                f"{kind} {name}: kind {kind} (group {group}) is not in this agent's allowedKinds; "
                "ask the cluster's operator to allow it in the agent config, or remove it from the workload"
            )
            continue
        if namespaced is not None and not namespaced.get((api_version, kind), True):
            continue  # allowed cluster-scoped kind: no namespace to check
        ns = target_namespace(m, assignment_namespace)
        if not settings.namespace_allowed(ns):
            problems.append(f"{kind} {name}: namespace {ns} is not allowed by this agent's config")
    return problems


def pin_to_nodes(template_spec: dict[str, Any], nodes: list[str]) -> None:
    """Require the pods of a template to run on `nodes` (the pool placement chose).

    Node-affinity matchFields on metadata.name take exactly ONE value, so this makes one term
    per node (terms are ORed) and keeps each existing term's own conditions in every copy
    (conditions inside a term are ANDed): the workload's affinity still applies, whatever GPU
    or capacity-type labels the cluster's nodes carry.
    """
    affinity = template_spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
    required = affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    terms = required.get("nodeSelectorTerms") or [{}]
    required["nodeSelectorTerms"] = [
        {
            **term,
            "matchFields": [
                *[f for f in term.get("matchFields") or [] if f.get("key") != "metadata.name"],
                {"key": "metadata.name", "operator": "In", "values": [node]},
            ],
        }
        for term in terms
        for node in nodes
    ]


def pinned_nodes(template_spec: Mapping[str, Any]) -> set[str] | None:
    """The node names a template is pinned to by pin_to_nodes (None: not pinned)."""
    terms = (
        ((template_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        or {}
    ).get("nodeSelectorTerms") or []
    allowed: set[str] | None = None
    for term in terms:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In":
                allowed = (allowed or set()) | set(f.get("values") or [])
    return allowed


def decorate(
    manifest: Mapping[str, Any],
    *,
    assignment_namespace: str,
    assignment_name: str,
    workload: str,
    epoch: int,
    namespaced: bool = True,
    node_names: list[str] | None = None,
) -> dict[str, Any]:
    """A copy of `manifest` ready for server-side apply, labelled as the agent's."""
    obj = copy.deepcopy(dict(manifest))
    meta = obj.setdefault("metadata", {})
    for server_field in ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation", "selfLink"):
        meta.pop(server_field, None)
    obj.pop("status", None)
    if namespaced:
        meta["namespace"] = target_namespace(manifest, assignment_namespace)
    else:
        meta.pop("namespace", None)
    a_label = assignment_label(assignment_namespace, assignment_name)
    labels = meta.setdefault("labels", {})
    labels[ASSIGNMENT_LABEL] = a_label
    labels[WORKLOAD_LABEL] = label_value(workload)
    labels[EPOCH_LABEL] = str(epoch)
    meta.setdefault("annotations", {})[ASSIGNMENT_ANNOTATION] = f"{assignment_namespace}/{assignment_name}"
    if (group_of(obj.get("apiVersion", "")), obj.get("kind")) in _TEMPLATE_KINDS:
        template = obj.setdefault("spec", {}).setdefault("template", {})
        # Only the assignment label: a Job's template is immutable, and the epoch changes.
        template.setdefault("metadata", {}).setdefault("labels", {})[ASSIGNMENT_LABEL] = a_label
        if node_names is not None:
            pin_to_nodes(template.setdefault("spec", {}), node_names)
    return obj
