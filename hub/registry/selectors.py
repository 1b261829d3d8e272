"""Label and field selectors (Kubernetes syntax) compiled to predicates over objects.

Label selector grammar: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, comma-joined.
Field selectors: `path=value`, `path==value`, `path!=value` on the paths a resource allows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from hub.errors import bad_request
from hub.store.watch import field_value

Obj = dict[str, Any]
Pred = Callable[[Obj], bool]

_SET = re.compile(r"^\s*(!?)([A-Za-z0-9./_-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_KEY = r"[A-Za-z0-9][A-Za-z0-9./_-]*"


def _split_top(expr: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in expr:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(expr: str | None) -> Pred | None:
    if not expr:
        return None
    reqs: list[Callable[[dict[str, str]], bool]] = []

    def in_set(k: str, vs: set[str], negate: bool) -> Callable[[dict[str, str]], bool]:
        return lambda labels: (labels.get(k) in vs) != negate

    def equals(k: str, v: str, negate: bool) -> Callable[[dict[str, str]], bool]:
        return lambda labels: (labels.get(k) == v) != negate

    def exists(k: str, negate: bool) -> Callable[[dict[str, str]], bool]:
        return lambda labels: (k in labels) != negate

    for part in _split_top(expr):
        m = _SET.match(part)
        if m:
            key, op = m.group(2), m.group(3)
            values = {v.strip() for v in m.group(4).split(",") if v.strip()}
            reqs.append(in_set(key, values, op == "notin"))
            continue
        m2 = re.match(rf"^({_KEY})\s*(==|=|!=)\s*([A-Za-z0-9._-]*)$", part)
        if m2:
            key, op, val = m2.groups()
            reqs.append(equals(key, val, op == "!="))
            continue
        m3 = re.match(rf"^(!?)({_KEY})$", part)
        if m3:
            neg, key = m3.groups()
            reqs.append(exists(key, bool(neg)))
            continue
        raise bad_request(f'unable to parse requirement: invalid label selector "{part}"')

    def pred(obj: Obj) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(r(labels) for r in reqs)

    return pred


def _field_checks(expr: str, allowed: tuple[str, ...], kind: str) -> list[tuple[str, bool, str]]:
    """(path, equal?, value) per requirement of a field selector; 400 on anything else."""
    checks: list[tuple[str, bool, str]] = []
    for part in _split_top(expr):
        m = re.match(r"^([A-Za-z0-9.]+)\s*(==|=|!=)\s*(.*)$", part)
        if not m:
            raise bad_request(f'invalid field selector "{part}"')
        path, op, val = m.groups()
        if path not in allowed:
            raise bad_request(f'field label not supported: "{path}" (for {kind}, supported: {", ".join(allowed)})')
        checks.append((path, op != "!=", val))
    return checks


def field_equality(expr: str | None, allowed: tuple[str, ...], kind: str) -> tuple[str, str] | None:
    """The first `path=value` requirement of a field selector (what every match has), for
    indexing watchers (hub.store.watch.Watcher.index); None when it has none."""
    if not expr:
        return None
    return next(((path, val) for path, eq, val in _field_checks(expr, allowed, kind) if eq), None)


def parse_field_selector(expr: str | None, allowed: tuple[str, ...], kind: str) -> Pred | None:
    if not expr:
        return None
    checks = _field_checks(expr, allowed, kind)

    def pred(obj: Obj) -> bool:
        # field_value is also what the watch index keys on: one definition of the compared value.
        return all((field_value(obj, path) == val) == eq for path, eq, val in checks)

    return pred


def both(*preds: Pred | None) -> Pred | None:
    ps = [p for p in preds if p is not None]
    if not ps:
        return None
    if len(ps) == 1:
        return ps[0]
    return lambda o: all(p(o) for p in ps)


# Fields read-scope predicates look at besides the selectable ones (hub.registry.access: an
# agent sees the Assignments whose spec.clusterName is its cluster).
_SCOPE_FIELDS = ("spec.clusterName",)


def selectable_projection(field_selectors: dict[str, tuple[str, ...]]) -> Callable[[str, Obj], Obj]:
    """What the event log keeps of an object's previous version (Store.prev_projection): name,
    namespace, labels and every field a selector or a read scope may test, so a watch can tell
    "stopped matching" (DELETED to that watcher) and "started matching" (ADDED)."""

    def project(resource: str, obj: Obj) -> Obj:
        m = obj.get("metadata") or {}
        meta: Obj = {k: m[k] for k in ("name", "namespace") if k in m}
        if isinstance(m.get("labels"), dict):
            meta["labels"] = dict(m["labels"])
        out: Obj = {"metadata": meta}
        for path in (*field_selectors.get(resource, ()), *_SCOPE_FIELDS):
            parts = path.split(".")
            cur: Any = obj
            for p in parts:
                cur = cur.get(p) if isinstance(cur, dict) else None
            if cur is None or isinstance(cur, (dict, list)):
                continue
            node = out
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = cur
        return out

    return project
