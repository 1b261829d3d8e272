"""Access: subjects, and the ONE place tenant scope is decided (reads and writes).

Subjects:
- admin: everything.
- team (name, namespaces): Workloads, Datasets, Assignments in its namespaces; may read
  Clusters and Topologies (to see capacity); may read its own Namespaces.
- agent (cluster name): its own Cluster (read, patch, status) and the Assignments whose
  spec.clusterName is its cluster (read, watch, status, finalizer removal). Nothing else.

Reads outside the scope answer 404 / empty lists, so existence does not leak. Writes outside
it answer 404 for objects the subject cannot see and 403 where it can see but not write.
Tokens (hub.store.tokens) map bearer tokens to subjects; `SYSTEM` is the hub's own controllers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.errors import forbidden
from hub.registry.resources import Resource

Obj = dict[str, Any]


@dataclass(frozen=True)
class Subject:
    kind: str  # admin | team | agent
    name: str
    namespaces: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"


SYSTEM = Subject("admin", "system:fleetplane-hub")
"""The hub's own controllers: every object, through the same lifecycle rules as kubectl."""


@dataclass(frozen=True)
class ReadScope:
    """What a subject may see of one resource: namespaces (None = any) plus a predicate."""

    visible: bool
    namespaces: tuple[str, ...] | None = None
    predicate: Callable[[Obj], bool] | None = None

    def allows(self, obj: Obj) -> bool:
        if not self.visible:
            return False
        if (
            self.namespaces is not None
            and (obj.get("metadata") or {}).get("namespace", "") not in self.namespaces
            and not (obj.get("kind") == "Namespace" and obj["metadata"].get("name") in self.namespaces)
        ):
            return False
        return self.predicate is None or self.predicate(obj)


def read_scope(subject: Subject, res: Resource) -> ReadScope:
    """The one function that builds every tenant-scoped read (lists, gets, watches)."""
    if subject.is_admin:
        return ReadScope(True)
    if subject.kind == "team":
        if res.kind == "Namespace":
            nss = subject.namespaces
            return ReadScope(True, None, lambda o: o["metadata"].get("name") in nss)
        if res.namespaced:
            return ReadScope(True, subject.namespaces)
        if res.kind in ("Cluster", "Topology"):
            return ReadScope(True)
        return ReadScope(False)
    if subject.kind == "agent":
        cluster = subject.name
        if res.kind == "Cluster":
            return ReadScope(True, None, lambda o: o["metadata"].get("name") == cluster)
        if res.kind == "Assignment":
            return ReadScope(True, None, lambda o: (o.get("spec") or {}).get("clusterName") == cluster)
        return ReadScope(False)
    return ReadScope(False)


def check_write(subject: Subject, res: Resource, verb: str, namespace: str, obj: Obj | None, subresource: str) -> None:
    """Raise 403 for writes the subject may not make. Visibility (404) is checked by the caller."""
    if subject.is_admin:
        return
    what = f'{res.qualified} "{(obj or {}).get("metadata", {}).get("name", "")}"'
    if subject.kind == "team":
        if res.namespaced and res.kind != "Assignment" and namespace in subject.namespaces:
            return
        if res.kind == "Assignment" and namespace in subject.namespaces and verb == "delete":
            return
        raise forbidden(f'{what} is forbidden: team "{subject.name}" cannot {verb} {res.plural} here')
    if subject.kind == "agent":
        if (
            res.kind == "Cluster"
            and verb in ("update", "patch")
            and obj is not None
            and obj["metadata"].get("name") == subject.name
        ):
            return
        if res.kind == "Assignment" and verb in ("update", "patch"):
            return  # visibility already limits it to its own cluster's Assignments
        raise forbidden(f'{what} is forbidden: cluster agent "{subject.name}" cannot {verb} {res.plural}')
    raise forbidden(f"{what} is forbidden")


def check_change(subject: Subject, res: Resource, old: Obj, new: Obj, subresource: str) -> None:
    """Agents may write status; on an Assignment's main resource they may only drop finalizers.

    Their own Cluster's spec and labels are theirs to describe (region, backend: simulated …);
    visibility already limits them to that one Cluster."""
    if subject.kind != "agent" or subresource == "status" or res.kind == "Cluster":
        return

    def essence(o: Obj) -> Obj:
        meta = {
            k: v
            for k, v in (o.get("metadata") or {}).items()
            if k not in ("finalizers", "managedFields", "resourceVersion", "generation")
        }
        return {**{k: v for k, v in o.items() if k not in ("metadata", "status")}, "metadata": meta}

    if essence(old) != essence(new):
        raise forbidden(
            f'{res.qualified} "{old["metadata"]["name"]}": cluster agent "{subject.name}" may only '
            "update status and remove finalizers"
        )
    added = set(new["metadata"].get("finalizers") or []) - set(old["metadata"].get("finalizers") or [])
    if added:
        raise forbidden(f'{res.qualified} "{old["metadata"]["name"]}": cluster agents cannot add finalizers')
