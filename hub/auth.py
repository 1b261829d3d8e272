"""Identity and access: bearer tokens → subjects, and the ONE place tenant scope is decided.

Subjects:
- admin: everything.
- team (name, namespaces): Workloads, Datasets, Assignments in its namespaces; may read
  Clusters and Topologies (to see capacity); may read its own Namespaces.
- agent (cluster name): its own Cluster (read, patch, status) and the Assignments whose
  spec.clusterName is its cluster (read, watch, status, finalizer removal). Nothing else.

Reads outside the scope answer 404 / empty lists, so existence does not leak. Writes outside
it answer 404 for objects the subject cannot see and 403 where it can see but not write.
Tokens are stored as SHA-256 hashes; the plain token is shown once when created.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import text

from hub.api.resources import Resource
from hub.errors import forbidden
from hub.store.store import Store

Obj = dict[str, Any]


@dataclass(frozen=True)
class Subject:
    kind: str  # admin | team | agent
    name: str
    namespaces: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"


@dataclass(frozen=True)
class ReadScope:
    """What a subject may see of one resource: namespaces (None = any) plus a predicate."""

    visible: bool
    namespaces: tuple[str, ...] | None = None
    predicate: Callable[[Obj], bool] | None = None

    def allows(self, obj: Obj) -> bool:
        if not self.visible:
            return False
        if self.namespaces is not None and (obj.get("metadata") or {}).get("namespace", "") not in self.namespaces:
            if not (obj.get("kind") == "Namespace" and obj["metadata"].get("name") in self.namespaces):
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


def check_write(
    subject: Subject, res: Resource, verb: str, namespace: str, obj: Obj | None, subresource: str
) -> None:
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
        if res.kind == "Cluster" and verb in ("update", "patch") and obj is not None:
            if obj["metadata"].get("name") == subject.name:
                return
        if res.kind == "Assignment" and verb in ("update", "patch"):
            return  # visibility already limits it to its own cluster's Assignments
        raise forbidden(f'{what} is forbidden: cluster agent "{subject.name}" cannot {verb} {res.plural}')
    raise forbidden(f"{what} is forbidden")


# ---------------------------------------------------------------- tokens


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str) -> str:
    return f"{prefix}-{secrets.token_urlsafe(24)}"


async def create_token(store: Store, kind: str, subject: str, namespaces: list[str] | None = None) -> str:
    prefix = {"admin": "fpa", "team": "fpt", "agent": "fpc", "join": "fpj"}[kind]
    token = new_token(prefix)
    async with store.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO tokens (token_sha256, kind, subject, namespaces) "
                "VALUES (:h, :k, :s, CAST(:n AS jsonb))"
            ),
            {"h": _hash(token), "k": kind, "s": subject, "n": None if namespaces is None else json.dumps(namespaces)},
        )
    return token


async def redeem_join_token(store: Store, token: str, cluster: str) -> bool:
    """Mark a join token used if it is valid, unused and for this cluster. Single use."""
    async with store.engine.begin() as conn:
        row = (
            await conn.execute(
                text(
                    "UPDATE tokens SET used = true WHERE token_sha256 = :h AND kind = 'join' "
                    "AND subject = :s AND NOT used RETURNING subject"
                ),
                {"h": _hash(token), "s": cluster},
            )
        ).first()
    return row is not None


class Authenticator:
    """Looks tokens up with a short cache so every request does not hit the database."""

    def __init__(self, store: Store, ttl_seconds: float = 5.0) -> None:
        self.store = store
        self.ttl = ttl_seconds
        self._cache: dict[str, tuple[float, Subject | None]] = {}

    async def subject(self, token: str) -> Subject | None:
        h = _hash(token)
        hit = self._cache.get(h)
        now = time.monotonic()
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        async with self.store.engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT kind, subject, namespaces FROM tokens WHERE token_sha256 = :h AND kind <> 'join'"),
                    {"h": h},
                )
            ).first()
        subj = None
        if row:
            subj = Subject(row[0], row[1], tuple(row[2] or ()))
        self._cache[h] = (now, subj)
        return subj


def check_change(subject: Subject, res: Any, old: Obj, new: Obj, subresource: str) -> None:
    """Agents may write status; on an Assignment's main resource they may only drop finalizers.

    Their own Cluster's spec and labels are theirs to describe (region, backend: simulated …);
    visibility already limits them to that one Cluster."""
    if subject.kind != "agent" or subresource == "status" or getattr(res, "kind", "") == "Cluster":
        return

    def essence(o: Obj) -> Obj:
        meta = {k: v for k, v in (o.get("metadata") or {}).items()
                if k not in ("finalizers", "managedFields", "resourceVersion", "generation")}
        return {**{k: v for k, v in o.items() if k not in ("metadata", "status")}, "metadata": meta}

    if essence(old) != essence(new):
        raise forbidden(f'{res.qualified} "{old["metadata"]["name"]}": cluster agent "{subject.name}" may only '
                        "update status and remove finalizers")
    added = set(new["metadata"].get("finalizers") or []) - set(old["metadata"].get("finalizers") or [])
    if added:
        raise forbidden(f'{res.qualified} "{old["metadata"]["name"]}": cluster agents cannot add finalizers')
