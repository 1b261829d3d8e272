"""Access: subjects, and the ONE place tenant scope and permissions are decided.

Every verb of the registry (hub.registry.lifecycle) and the review APIs kubectl asks
(`kubectl auth can-i`, hub.web.kube.authz) call the functions here; nothing else decides who
may do what.

Subjects (bearer tokens, hub.store.tokens, map to them; `SYSTEM` is the hub's own controllers):

- admin: every object, every verb — except writing a Workload's status, which only the hub's
  controllers do (an admin who could would re-place workloads by hand, bypassing fencing).
- team (name, namespaces): reads its Namespaces; reads and writes spec and metadata of the
  Workloads and Datasets in them (never a status subresource, never a Dataset's
  `spec.sharedWith`, which only an admin grants); reads and deletes their Assignments; reads
  Clusters and Topologies (to see capacity) and Queues and PriorityClasses (quotas and
  priorities), never writes them. Which Queue a team's Workload may name is a submission rule
  of the lifecycle (hub.registry.queues: 403 when the Queue's spec.namespaces leaves out the
  workload's namespace).
- agent (cluster name): reads its own Cluster and writes its status (the capacity report) and,
  on the main resource, only `spec.backend` and the `fleetplane.io/backend` label (what the spoke
  agent sends when it starts); reads the Assignments whose spec.clusterName is its cluster,
  writes their status and may remove their finalizers; renews its own cluster's lease
  (`check_lease`, which admins may read). Nothing else.
- any other kind of subject (a metrics token): no object at all.

Two answers for a refusal, decided in this order:

1. **404 NotFound** for anything outside the subject's read scope, on every verb (create and
   server-side apply included), decided before the store is asked whether the object exists:
   the answer is the same for an existing and a missing object, so existence never leaks.
2. **403 Forbidden** for objects the subject can see but may not change this way; the message
   names the verb, the subresource or the field.

Lists and watches outside the scope are empty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fleetplane_types.names import BACKEND_LABEL
from hub.errors import ApiError, forbidden, not_found
from hub.registry.resources import RESOURCES, Resource

Obj = dict[str, Any]

READ_VERBS = ("get", "list", "watch")
WRITE_VERBS = ("create", "update", "patch", "delete")
VERBS = READ_VERBS + WRITE_VERBS
"""The verbs the hub serves (deletecollection is not served)."""


@dataclass(frozen=True)
class Subject:
    kind: str  # system | admin | team | agent
    name: str
    namespaces: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        return self.kind in ("admin", "system")

    @property
    def username(self) -> str:
        """The user name `kubectl auth whoami` shows (Kubernetes style: system:node:<name>)."""
        return self.name if self.kind == "system" else f"fleetplane:{self.kind}:{self.name}"

    @property
    def groups(self) -> list[str]:
        kind = self.kind if self.kind.endswith("s") else f"{self.kind}s"
        return [f"fleetplane:{kind}", "system:authenticated"]


SYSTEM = Subject("system", "system:fleetplane-hub")
"""The hub's own controllers: every object, through the same lifecycle rules as kubectl.
Its kind is one no token is minted with, so no bearer token can act as the controllers."""


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _meta(o: Obj) -> dict[str, Any]:
    return _dict(o.get("metadata"))


# ------------------------------------------------------------------ scope (404)


@dataclass(frozen=True)
class ReadScope:
    """What a subject may see of one resource.

    `namespaces` (namespaced kinds) and `names` restrict by address, so they can be decided
    before the store is read; `content` restricts by what the object says (an agent's
    Assignments are those naming its cluster)."""

    visible: bool
    namespaces: tuple[str, ...] | None = None
    names: tuple[str, ...] | None = None
    content: Callable[[Obj], bool] | None = None

    def covers(self, namespace: str | None, name: str | None) -> bool | None:
        """Whether an object at this address is in scope: True, False, or None when that
        depends on the object's content (then only a visible stored object counts)."""
        if not self.visible:
            return False
        if self.namespaces is not None and (namespace or "") not in self.namespaces:
            return False
        if self.names is not None and name not in self.names:
            return False
        return None if self.content is not None else True

    def allows(self, obj: Obj) -> bool:
        m = _meta(obj)
        if self.covers(m.get("namespace"), m.get("name")) is False:
            return False
        return self.content is None or self.content(obj)

    @property
    def predicate(self) -> Callable[[Obj], bool] | None:
        """The filter of lists and watches (namespaces are filtered by the store query)."""
        names, content = self.names, self.content
        if names is None:
            return content
        return lambda o: _meta(o).get("name") in names and (content is None or content(o))


def read_scope(subject: Subject, res: Resource) -> ReadScope:
    """The one function that builds every tenant-scoped read (lists, gets, watches) and the
    scope every write is checked against first."""
    if subject.is_admin:
        return ReadScope(True)
    if subject.kind == "team":
        if res.kind == "Namespace":
            return ReadScope(True, names=subject.namespaces)
        if res.namespaced:
            return ReadScope(True, namespaces=subject.namespaces)
        if res.kind in ("Cluster", "Topology", "Queue", "PriorityClass"):
            return ReadScope(True)  # capacity, quotas and priorities are every team's to see
        return ReadScope(False)
    if subject.kind == "agent":
        cluster = subject.name
        if res.kind == "Cluster":
            return ReadScope(True, names=(cluster,))
        if res.kind == "Assignment":
            return ReadScope(True, content=lambda o: _dict(o.get("spec")).get("clusterName") == cluster)
        return ReadScope(False)
    return ReadScope(False)


def hidden(res: Resource, namespace: str | None, name: str | None, scope: ReadScope, *, creating: bool) -> ApiError:
    """The 404 for an address outside the scope: the same whether the object exists or not.

    A create (POST) into a namespace the subject cannot see is answered as Kubernetes answers
    a create into a missing namespace; everything else as a missing object."""
    if creating and res.namespaced and scope.namespaces is not None and (namespace or "") not in scope.namespaces:
        return not_found("namespaces", "", namespace or "")
    return not_found(res.plural, res.group, name or "")


# ------------------------------------------------------------------ permissions (403)


def refusal(subject: Subject, res: Resource, verb: str, subresource: str = "") -> str | None:
    """Why `subject` may not `verb` objects of `res` it can see (None: it may).

    Decided by kind, verb and subresource only; what a subject can see is read_scope's, and
    which fields it may change is check_change's."""
    sub = f"{res.plural}/{subresource}" if subresource else res.plural
    if verb not in VERBS:
        return f'the verb "{verb}" is not served by this hub'
    if subresource not in ("", "status") or (subresource == "status" and not res.has_status):
        return f"{sub} is not served by this hub"
    if subresource == "status" and verb not in ("get", "update", "patch"):
        return f"{sub} supports only get, update and patch"
    if subject.kind == "system":
        return None  # the controllers write through the registry whatever the HTTP API serves
    if verb not in res.verbs:
        return f"{res.plural} supports only {', '.join(res.verbs)}"
    if verb in READ_VERBS:
        return None
    if res.kind in ("Workload", "Queue") and subresource == "status":
        return f"{sub} is written only by the hub's controllers"
    if subject.kind == "admin":
        return None
    if subject.kind == "team":
        if subresource == "status":
            return f'{sub}: team "{subject.name}" may write spec and metadata only; status is the hub\'s'
        if res.kind in ("Workload", "Dataset"):
            return None
        if res.kind == "Assignment" and verb == "delete":
            return None
        return f'team "{subject.name}" cannot {verb} {sub}'
    if subject.kind == "agent":
        if res.kind in ("Cluster", "Assignment") and verb in ("update", "patch"):
            return None  # the main resource only within check_change's limits
        return f'cluster agent "{subject.name}" cannot {verb} {sub}'
    return f"cannot {verb} {sub}"


def check_write(subject: Subject, res: Resource, verb: str, name: str, subresource: str) -> None:
    """403 for a write the subject may not make on an object it can see (call after the scope)."""
    why = refusal(subject, res, verb, subresource)
    if why is not None:
        raise forbidden(f'{res.qualified} "{name}" is forbidden: {why}')


def _without(o: Obj, *top: str) -> Obj:
    return {k: v for k, v in o.items() if k not in top}


def check_change(subject: Subject, res: Resource, old: Obj | None, new: Obj, subresource: str) -> None:
    """Field-level rules, on the next version `new` of `old` (None: a create).

    - Only an admin sets a Dataset's spec.sharedWith (a team could otherwise hand its
      Datasets to, or probe, other namespaces).
    - An agent's write to its Cluster's main resource changes only spec.backend and the
      backend label; to an Assignment's main resource it only removes finalizers.
    Status subresource writes change status only (RegistryTx builds them so)."""
    if subject.is_admin or subresource == "status":
        return
    name = _meta(old or new).get("name", "")
    if res.kind == "Dataset" and _shared_with(old) != _shared_with(new):
        raise forbidden(
            f'{res.qualified} "{name}" is forbidden: spec.sharedWith is granted by an admin; '
            f'{subject.kind} "{subject.name}" cannot set or change it'
        )
    if subject.kind != "agent" or old is None:
        return
    if res.kind == "Cluster":
        if _cluster_essence(old) != _cluster_essence(new):
            raise forbidden(
                f'{res.qualified} "{name}" is forbidden: cluster agent "{subject.name}" may change only '
                f"its Cluster's status, spec.backend and the {BACKEND_LABEL} label"
            )
        return
    if _essence(old) != _essence(new):
        raise forbidden(
            f'{res.qualified} "{name}" is forbidden: cluster agent "{subject.name}" may only '
            "update status and remove finalizers"
        )
    added = set(_meta(new).get("finalizers") or []) - set(_meta(old).get("finalizers") or [])
    if added:
        raise forbidden(f'{res.qualified} "{name}" is forbidden: cluster agents cannot add finalizers')


_SERVER_META = ("managedFields", "resourceVersion", "generation")


def _essence(o: Obj) -> Obj:
    """An object without status, finalizers and server-kept metadata."""
    m = {k: v for k, v in _meta(o).items() if k not in ("finalizers", *_SERVER_META)}
    return {**_without(o, "metadata", "status"), "metadata": m}


def _cluster_essence(o: Obj) -> Obj:
    """A Cluster without what its agent may write."""
    m = {k: v for k, v in _meta(o).items() if k not in _SERVER_META}
    labels = {k: v for k, v in _dict(m.get("labels")).items() if k != BACKEND_LABEL}
    m["labels"] = labels or None
    spec = _without(_dict(o.get("spec")), "backend")
    return {**_without(o, "metadata", "status", "spec"), "metadata": m, "spec": spec}


def _shared_with(o: Obj | None) -> list[Any]:
    return list(_dict((o or {}).get("spec")).get("sharedWith") or [])


# ------------------------------------------------------------------ cluster leases


def check_lease(subject: Subject, cluster: str, verb: str) -> None:
    """Who may read (`get`) or renew (`update`) cluster `cluster`'s lease (hub.store.leases).

    Only that cluster's agent renews it; admins (and the controllers) read it, and so does the
    agent. Anyone else gets the 404 of a Cluster outside their scope, whether the cluster
    exists or not; an admin, who can see the Cluster, is told 403 on a renewal."""
    own_agent = subject.kind == "agent" and subject.name == cluster
    if own_agent:
        return
    if verb == "get" and subject.is_admin:
        return
    if subject.is_admin:
        raise forbidden(f'lease of cluster "{cluster}" is renewed only by that cluster\'s agent credential')
    raise not_found(_CLUSTER.plural, _CLUSTER.group, cluster)


_CLUSTER = next(r for r in RESOURCES if r.kind == "Cluster")


# ------------------------------------------------------------------ reviews (kubectl auth can-i)


@dataclass(frozen=True)
class Review:
    allowed: bool
    reason: str


def review(
    subject: Subject,
    res: Resource,
    verb: str,
    subresource: str = "",
    namespace: str | None = None,
    name: str = "",
    *,
    stored: Obj | None = None,
) -> Review:
    """May `subject` `verb` `res` (in `namespace`, named `name`)? The answer of a
    SelfSubjectAccessReview, from the same read_scope and refusal the registry enforces.

    An empty namespace means every namespace (list/watch then answer the subject's part), an
    empty name any object; field-level limits (check_change) are named in the reason. Where
    the scope depends on content (`needs_object`), a named object counts only if the caller
    passes it as `stored` and the scope allows it — as the registry's verbs decide."""
    scope = read_scope(subject, res)
    ns = (namespace or None) if res.namespaced else None
    if not scope.visible:
        return Review(False, f"{subject.username} cannot see {res.plural}")
    if ns is not None and scope.namespaces is not None and ns not in scope.namespaces:
        return Review(False, f"namespace {ns} is outside the scope of {subject.username}")
    if name and (
        (scope.names is not None and name not in scope.names)
        or (scope.content is not None and (stored is None or not scope.allows(stored)))
    ):
        return Review(False, f'{res.plural} "{name}" is outside the scope of {subject.username}')
    why = refusal(subject, res, verb, subresource)
    if why is not None:
        return Review(False, why)
    return Review(True, _limits(subject, res, verb, subresource, ns, name, scope))


def needs_object(subject: Subject, res: Resource) -> bool:
    """Whether a review of a named object of `res` needs the stored object (see `review`)."""
    return read_scope(subject, res).content is not None


def _limits(
    subject: Subject, res: Resource, verb: str, subresource: str, ns: str | None, name: str, s: ReadScope
) -> str:
    """What an allowed answer is limited to, in words (empty: nothing beyond the question)."""
    sub = f"{res.plural}/{subresource}" if subresource else res.plural
    parts = []
    if s.namespaces is not None and ns is None:
        parts.append(f"in namespaces {', '.join(s.namespaces) or '(none)'}")
    if s.names is not None and not name:
        parts.append(f"only {', '.join(s.names) or '(none)'}")
    if s.content is not None:
        parts.append(f'only those with spec.clusterName "{subject.name}"')
    if verb in ("update", "patch") and not subresource and subject.kind == "agent":
        parts.append(
            f"only spec.backend and the {BACKEND_LABEL} label" if res.kind == "Cluster" else "only removing finalizers"
        )
    if verb in ("create", "update", "patch") and res.kind == "Dataset" and not subject.is_admin:
        parts.append("not spec.sharedWith")
    if verb in ("create", "update", "patch") and res.kind == "Workload" and not subject.is_admin and not subresource:
        parts.append("spec.queue only a Queue whose spec.namespaces allows the namespace")
    return f"{sub}: {'; '.join(parts)}" if parts else ""


def rules(subject: Subject, namespace: str | None) -> list[tuple[Resource, str, list[str]]]:
    """(resource, subresource, verbs) the subject may use in `namespace` — a rules review."""
    out = []
    for res in RESOURCES:
        for sub in ("", "status") if res.has_status else ("",):
            verbs = [v for v in VERBS if review(subject, res, v, sub, namespace).allowed]
            if verbs:
                out.append((res, sub, verbs))
    return out
