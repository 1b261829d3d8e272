"""Field ownership for server-side apply (a simplified structured-merge-diff).

No Python port of Kubernetes' structured-merge-diff exists, so this module keeps, per field
manager, the set of leaf field paths it owns, stored in `metadata.managedFields` in the
real FieldsV1 shape (`{"f:spec": {"f:replicas": {}}}`).

Simplifications (documented in docs/api.md): maps merge key by key; every list is atomic (owned
and replaced as a whole, like `x-kubernetes-list-type: atomic`), so two managers cannot share a
list by keys; status is tracked only for the status subresource.

Rules, as in Kubernetes:
- Apply by M: conflicts are fields M sets to a different value than the live one while another
  manager owns them. Without force → 409 with FieldManagerConflict causes. With force, M takes
  them. Fields M applied before but omits now are removed unless another manager owns them.
- Update (create, PUT, PATCH) by M: M takes every field it changed, without conflicts.
"""

from __future__ import annotations

import copy
from typing import Any

from hub.errors import ApiError
from hub.store.store import now_rfc3339

Obj = dict[str, Any]
Path = tuple[str, ...]

# Server-owned metadata never belongs to a manager.
_SKIP_META = {
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
}


def leaf_paths(obj: Obj, *, status: bool = False) -> dict[Path, Any]:
    """Leaf field paths → values of an object (or of its status when status=True)."""
    out: dict[Path, Any] = {}

    def walk(prefix: Path, value: Any) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk((*prefix, k), v)
        else:
            out[prefix] = value

    if status:
        if "status" in obj:
            walk(("status",), obj["status"])
        return out
    for k, v in obj.items():
        if k in ("apiVersion", "kind", "status"):
            continue
        if k == "metadata" and isinstance(v, dict):
            for mk, mv in v.items():
                if mk not in _SKIP_META:
                    walk(("metadata", mk), mv)
            continue
        walk((k,), v)
    return out


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for p in sorted(paths):
        cur = root
        for part in p:
            cur = cur.setdefault(f"f:{part}", {})
    return root


def from_fields_v1(fields: dict[str, Any] | None) -> set[Path]:
    out: set[Path] = set()

    def walk(prefix: Path, node: dict[str, Any]) -> None:
        keys = [k for k in node if k.startswith("f:")]
        if not keys:
            if prefix:
                out.add(prefix)
            return
        for k in keys:
            walk((*prefix, k[2:]), node[k] or {})

    walk((), fields or {})
    return out


def _get_path(obj: Any, path: Path) -> tuple[bool, Any]:
    cur = obj
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return False, None
        cur = cur[p]
    return True, cur


def _del_path(obj: Obj, path: Path) -> None:
    parents: list[tuple[dict[str, Any], str]] = []
    cur: Any = obj
    for p in path[:-1]:
        if not isinstance(cur, dict) or p not in cur:
            return
        parents.append((cur, p))
        cur = cur[p]
    if isinstance(cur, dict):
        cur.pop(path[-1], None)
    # Drop maps emptied by the removal, like SMD does for fields nobody owns any more.
    for parent, key in reversed(parents):
        if parent[key] == {}:
            del parent[key]
        else:
            break


def deep_merge(base: Obj, patch: Obj) -> Obj:
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


class Managed:
    """The managedFields of one object, as {(manager, operation, subresource): paths}."""

    def __init__(self, entries: list[dict[str, Any]] | None) -> None:
        self.entries: dict[tuple[str, str, str], tuple[set[Path], str, str]] = {}
        for e in entries or []:
            key = (e.get("manager") or "", e.get("operation") or "Update", e.get("subresource") or "")
            self.entries[key] = (from_fields_v1(e.get("fieldsV1")), e.get("apiVersion") or "", e.get("time") or "")

    def owners(self, path: Path, *, exclude: tuple[str, str, str] | None = None) -> list[tuple[str, str, str]]:
        return [k for k, (paths, _, _) in self.entries.items() if k != exclude and path in paths]

    def take(self, key: tuple[str, str, str], paths: set[Path], api_version: str) -> None:
        """Give `paths` to manager `key` and remove them from every other manager."""
        for k, (owned, _av, _t) in list(self.entries.items()):
            if k != key:
                owned -= paths
        prev = self.entries.get(key, (set(), api_version, ""))[0]
        self.entries[key] = (prev | paths, api_version, now_rfc3339())

    def set(self, key: tuple[str, str, str], paths: set[Path], api_version: str) -> None:
        self.entries[key] = (set(paths), api_version, now_rfc3339())

    def dump(self) -> list[dict[str, Any]]:
        out = []
        for (manager, op, sub), (paths, av, t) in self.entries.items():
            if not paths:
                continue
            e: dict[str, Any] = {
                "manager": manager,
                "operation": op,
                "apiVersion": av,
                "time": t,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(paths),
            }
            if sub:
                e["subresource"] = sub
            out.append(e)
        return out


def record_update(old: Obj | None, new: Obj, manager: str, api_version: str, *, subresource: str = "") -> None:
    """An Update-type write by `manager`: it takes ownership of every field it changed."""
    status = subresource == "status"
    before = leaf_paths(old, status=status) if old else {}
    after = leaf_paths(new, status=status)
    changed = {p for p, v in after.items() if p not in before or before[p] != v}
    managed = Managed((old or {}).get("metadata", {}).get("managedFields"))
    # Fields that disappeared are no longer owned by anyone.
    gone = {p for p in before if p not in after}
    for _k, (owned, _, _) in managed.entries.items():
        owned -= gone
    if changed:
        managed.take((manager, "Update", subresource), changed, api_version)
    new.setdefault("metadata", {})["managedFields"] = managed.dump()


def apply(live: Obj | None, applied: Obj, manager: str, api_version: str, *, force: bool, resource: str) -> Obj:
    """Server-side apply of `applied` by `manager` onto `live` (None: create). Returns the new object."""
    key = (manager, "Apply", "")
    managed = Managed((live or {}).get("metadata", {}).get("managedFields"))
    applied_paths = leaf_paths(applied)
    live_obj = live or {}
    conflicts: list[tuple[Path, str]] = []
    for p, v in applied_paths.items():
        found, cur = _get_path(live_obj, p)
        if not found or cur == v:
            continue
        for owner in managed.owners(p, exclude=key):
            conflicts.append((p, owner[0]))
    if conflicts and not force:
        causes = [
            {"type": "FieldManagerConflict", "message": f'conflict with "{m}"', "field": "." + ".".join(p)}
            for p, m in conflicts
        ]
        if len(conflicts) == 1:
            listing = f'conflict with "{conflicts[0][1]}": .{".".join(conflicts[0][0])}'
        else:
            listing = "\n" + "\n".join(f'- conflict with "{m}": .{".".join(p)}' for p, m in conflicts)
        raise ApiError(
            409,
            "Conflict",
            f"Apply failed with {len(conflicts)} conflict{'s' if len(conflicts) > 1 else ''}: {listing}",
            details={"name": (applied.get("metadata") or {}).get("name", ""), "kind": resource, "causes": causes},
        )
    previously = managed.entries.get(key, (set(), "", ""))[0]
    result = copy.deepcopy(live_obj)
    for p in previously - set(applied_paths):
        if not managed.owners(p, exclude=key):
            _del_path(result, p)
    merged = deep_merge(result, {k: v for k, v in applied.items() if k not in ("status",)})
    # Forced conflicts move to this manager; fields applied with the value already live stay
    # shared with their other owners (co-ownership, as in Kubernetes).
    forced = {p for p, _ in conflicts}
    for k, (owned, _, _) in managed.entries.items():
        if k != key:
            owned -= forced
    managed.set(key, set(applied_paths), api_version)
    merged.setdefault("metadata", {})["managedFields"] = managed.dump()
    return merged
