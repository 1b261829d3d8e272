"""The real-cluster backend: kopf watches Nodes, Pods and the workloads the agent applied;
writes go through the agent's small httpx client (server-side apply).

kopf runs embedded in the agent's event loop with its own registry (several agents can
share a process in tests), event handlers only (kopf writes nothing to the objects it
watches), standalone peering, no k8s Event posting, and the spoke credentials the agent
resolved. No `kubernetes` package: kopf is imported as if it were not installed
(spoke_agent.lean), since kopf would import it by itself (~14 MiB of RSS) and the agent needs none of it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..capacity import (
    Capacity,
    capacity_type,
    compute_capacity,
    pod_gpu_request,
    pod_holds_resources,
    slim_node,
    slim_pod,
)
from ..errors import PermanentError
from ..kubeapi import KubeAPI, KubeAPIError
from ..kubeconfig import SpokeConnection
from ..labels import ASSIGNMENT_LABEL
from ..lean import KOPF_EXTRAS, without
from ..manifests import ObjectRef
from ..phase import AssignmentPhase, Interruption, assignment_phase, object_phase
from ..settings import AgentConfig

with without(*KOPF_EXTRAS):  # kopf would import the kubernetes client (~14 MiB): spoke_agent.lean
    import kopf

log = logging.getLogger("fleetplane.agent.kubernetes")

# Workload kinds whose status the agent follows (server-side filtered to its own objects).
WATCHED = (
    ("batch", "v1", "jobs", "Job"),
    ("apps", "v1", "deployments", "Deployment"),
    ("apps", "v1", "statefulsets", "StatefulSet"),
)
CORE_VERSIONS = {"": "v1", "batch": "batch/v1", "apps": "apps/v1"}


def _slim_workload(body: Mapping[str, Any]) -> dict[str, Any]:
    spec = body.get("spec") or {}
    return {
        "kind": body.get("kind"),
        "spec": {"replicas": spec.get("replicas"), "suspend": spec.get("suspend")},
        "status": dict(body.get("status") or {}),
    }


def _slim_labelled_pod(body: Mapping[str, Any]) -> dict[str, Any]:
    status = body.get("status") or {}
    return {
        "metadata": {"name": (body.get("metadata") or {}).get("name")},
        "spec": {"nodeName": (body.get("spec") or {}).get("nodeName")},
        "status": {
            "phase": status.get("phase"),
            "reason": status.get("reason"),
            "conditions": [
                {k: c.get(k) for k in ("type", "status", "reason", "message")} for c in status.get("conditions") or []
            ],
            "containerStatuses": [
                {"state": {"waiting": (cs.get("state") or {}).get("waiting")}}
                for cs in status.get("containerStatuses") or []
            ],
        },
    }


class KubernetesBackend:
    name = "kubernetes"

    def __init__(self, conn: SpokeConnection, config: AgentConfig, state_secret: str | None = None) -> None:
        self.conn = conn
        self.config = config
        self.api = KubeAPI(conn, field_manager=config.delivery.field_manager)
        ns, _, name = (state_secret or config.state.secret).partition("/")
        self.state_ref = (ns, name)
        self._resources = list(config.capacity.gpu_resources)
        self.nodes: dict[str, dict[str, Any]] = {}
        self.gpu_pods: dict[str, dict[str, Any]] = {}  # uid → slim pod (GPU requesters only)
        self.workloads: dict[tuple[str, str, str, str], dict[str, Any]] = {}  # (group, kind, ns, name)
        self.pods_by_assignment: dict[str, dict[str, dict[str, Any]]] = {}  # label → uid → slim pod
        self.interruptions: dict[str, list[Interruption]] = {}
        self.gone_nodes: dict[str, str] = {}  # node name → capacity type, for pods that lose it
        self._on_capacity: Callable[[], None] = lambda: None
        self._on_assignment: Callable[[str], None] = lambda label: None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self, on_capacity_change: Callable[[], None], on_assignment_change: Callable[[str], None]) -> None:
        self._on_capacity = on_capacity_change
        self._on_assignment = on_assignment_change
        await self._prime()
        registry = kopf.OperatorRegistry()
        self._register(registry)
        settings = kopf.OperatorSettings()
        settings.posting.enabled = False  # no Events on the spoke: nothing to grant, nothing to leak
        settings.scanning.disabled = True  # no CRD/namespace scanning: fewer permissions and watches
        settings.peering.standalone = True
        settings.peering.clusterwide = True
        settings.queueing.idle_timeout = 1.0  # s; per-object workers exit sooner (1,000 Jobs = 1,000 workers)
        settings.watching.inactivity_timeout = 70.0  # kopf's default, justified by kube's 60 s bookmarks
        settings.watching.server_timeout = 300  # renew watches every 5 min so a silent break heals
        for group, _version, plural, _kind in WATCHED:
            settings.watching.label_selectors[group, plural] = ASSIGNMENT_LABEL
        self._stop.clear()
        self._task = asyncio.create_task(
            kopf.operator(
                registry=registry, settings=settings, clusterwide=True, standalone=True, stop_flag=self._stop
            ),
            name="kopf",
        )

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=10)
            except (TimeoutError, asyncio.CancelledError, Exception):
                self._task.cancel()
        await self.api.aclose()

    @property
    def operator_task(self) -> asyncio.Task[None] | None:
        return self._task

    async def _prime(self) -> None:
        """List Nodes and Pods once so the first report is complete; kopf keeps it current."""
        for node in await self.api.list("v1", "Node", ""):
            self._node_event("ADDED", node)
        for pod in await self.api.list("v1", "Pod", ""):
            self._pod_event("ADDED", pod)

    def _register(self, registry: kopf.OperatorRegistry) -> None:
        conn = self.conn

        @kopf.on.login(registry=registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            return conn.kopf_connection_info()

        # Handlers are coroutines on purpose: kopf runs plain functions in a thread pool, which
        # would mutate the caches and asyncio events from other threads (and cost RSS per thread).
        @kopf.on.event("", "v1", "nodes", registry=registry)
        async def node_event(event: Mapping[str, Any], body: Mapping[str, Any], **_: Any) -> None:
            self._node_event(event.get("type"), body)

        @kopf.on.event("", "v1", "pods", registry=registry)
        async def pod_event(event: Mapping[str, Any], body: Mapping[str, Any], **_: Any) -> None:
            self._pod_event(event.get("type"), body)

        for group, version, plural, _kind in WATCHED:

            @kopf.on.event(group, version, plural, registry=registry, id=f"{plural}-event")
            async def workload_event(event: Mapping[str, Any], body: Mapping[str, Any], **_: Any) -> None:
                self._workload_event(event.get("type"), body)

    # ------------------------------------------------------------ caches (called from kopf handlers)

    def _node_event(self, etype: str | None, body: Mapping[str, Any]) -> None:
        name = (body.get("metadata") or {}).get("name")
        if not name:
            return
        if etype == "DELETED":
            gone = self.nodes.pop(name, None)
            labels = ((gone or {}).get("metadata") or {}).get("labels") or {}
            ctype = capacity_type(labels)
            self.gone_nodes[name] = ctype
            if len(self.gone_nodes) > 1000:
                self.gone_nodes.pop(next(iter(self.gone_nodes)))
            for label, pods in self.pods_by_assignment.items():
                if any((p.get("spec") or {}).get("nodeName") == name for p in pods.values()):
                    self._interrupted(label, name, ctype)
        else:
            slim = slim_node(body)
            if self.nodes.get(name) == slim:
                return
            self.nodes[name] = slim
        self._on_capacity()

    def _interrupted(self, label: str, node: str, ctype: str) -> None:
        reason = "Preempted" if ctype == "spot" else "NodeLost"
        what = "spot capacity reclaimed" if ctype == "spot" else "node disappeared"
        entry = Interruption(reason, f"node {node} ({ctype}) went away while running a pod: {what}")
        lst = self.interruptions.setdefault(label, [])
        if entry not in lst:
            lst.append(entry)
            del lst[:-5]
        self._on_assignment(label)

    def _pod_event(self, etype: str | None, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        uid = meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}"
        label = (meta.get("labels") or {}).get(ASSIGNMENT_LABEL)
        changed = False
        if etype == "DELETED":
            changed = self.gpu_pods.pop(uid, None) is not None
        else:
            slim = slim_pod(body, self._resources)
            if slim is not None:
                changed = self.gpu_pods.get(uid) != slim
                self.gpu_pods[uid] = slim
            else:
                changed = self.gpu_pods.pop(uid, None) is not None
        if changed:
            self._on_capacity()
        if label:
            pods = self.pods_by_assignment.setdefault(label, {})
            if etype == "DELETED":
                old = pods.pop(uid, None)
                node = ((old or {}).get("spec") or {}).get("nodeName")
                disrupted = any(
                    c.get("type") == "DisruptionTarget" and c.get("status") == "True"
                    for c in ((body.get("status") or {}).get("conditions") or [])
                )
                if node and (node in self.gone_nodes or node not in self.nodes or disrupted):
                    ctype = self.gone_nodes.get(node) or capacity_type(
                        ((self.nodes.get(node) or {}).get("metadata") or {}).get("labels") or {}
                    )
                    if (body.get("status") or {}).get("phase") not in ("Succeeded",):
                        self._interrupted(label, node, ctype)
                if not pods:
                    self.pods_by_assignment.pop(label, None)
            else:
                pods[uid] = _slim_labelled_pod(body)
            self._on_assignment(label)

    def _workload_event(self, etype: str | None, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        api_version = body.get("apiVersion", "")
        group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
        key = (group, body.get("kind", ""), meta.get("namespace") or "", meta.get("name") or "")
        if etype == "DELETED":
            self.workloads.pop(key, None)
        else:
            self.workloads[key] = _slim_workload(body)
        label = (meta.get("labels") or {}).get(ASSIGNMENT_LABEL)
        if label:
            self._on_assignment(label)

    # ------------------------------------------------------------ protocol

    def capacity(self, held: Mapping[tuple[str, str], int] | None = None) -> Capacity:
        return compute_capacity(self.nodes.values(), self.gpu_pods.values(), self._resources, held=held)

    def bound_gpus(self, assignment_label: str) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for uid in self.pods_by_assignment.get(assignment_label) or {}:
            pod = self.gpu_pods.get(uid)  # the same uid key; GPU requesters only
            if pod is None or not pod_holds_resources(pod):
                continue
            node = pod["spec"]["nodeName"]
            for resource in self._resources:
                if n := pod_gpu_request(pod, resource):
                    out[(node, resource)] = out.get((node, resource), 0) + n
        return out

    async def kubernetes_version(self) -> str | None:
        return await self.api.version()

    async def namespaced(self, api_version: str, kind: str) -> bool | None:
        found = await self.api.resource(api_version, kind)
        return None if found is None else found[1]

    async def ensure_namespace(self, name: str) -> None:
        try:
            await self.api.ensure_namespace(name)
        except KubeAPIError as e:
            raise e.classify() from e

    async def apply(self, obj: Mapping[str, Any]) -> None:
        try:
            await self.api.apply(obj)
        except KubeAPIError as e:
            if e.code == 422 and "immutable" in e.message:
                # Another Assignment (an older epoch) created this object with a different pod
                # template: replace it rather than fail.
                ref = ObjectRef.of(obj)
                log.info("replacing %s: %s", ref, e.message)
                await self.api.delete(ref)
                try:
                    await self.api.apply(obj)
                    return
                except KubeAPIError as e2:
                    raise e2.classify() from e2
            raise e.classify() from e

    async def delete(self, ref: ObjectRef, foreground: bool = False) -> bool:
        try:
            return await self.api.delete(ref, foreground=foreground)
        except KubeAPIError as e:
            raise e.classify() from e

    async def exists(self, ref: ObjectRef) -> bool:
        try:
            return await self.api.exists(ref)
        except KubeAPIError as e:
            raise e.classify() from e

    async def _version_of(self, group: str) -> str | None:
        if group in CORE_VERSIONS:
            return CORE_VERSIONS[group]
        try:
            resp = await self.api._request("GET", f"/apis/{group}")
        except KubeAPIError:
            return None
        preferred = (resp.json().get("preferredVersion") or {}).get("groupVersion")
        return str(preferred) if preferred else None

    def _listing_namespaces(self) -> list[str] | None:
        """The namespaces to look for managed objects in, when delivery.allowedNamespaces names
        them exactly (no glob): the agent can have put objects nowhere else, and its RBAC may
        allow listing only there (the chart's rbac.scope=namespaces). None: every namespace."""
        delivery = self.config.delivery
        names = delivery.allowed_namespaces
        if not names or any(c in n for n in names for c in "*?["):
            return None
        return sorted({n for n in names if delivery.namespace_allowed(n)})

    async def list_managed(self, allowed: list[tuple[str, str]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        namespaces = self._listing_namespaces()
        scopes: list[str | None] = [None] if namespaces is None else list(namespaces)  # None: every namespace
        for group, kind in allowed:
            api_version = await self._version_of(group)
            if api_version is None:
                continue
            try:
                items = [i for ns in scopes for i in await self.api.list(api_version, kind, ASSIGNMENT_LABEL, ns)]
            except KubeAPIError as e:
                if e.code in (403, 404):
                    continue
                raise e.classify() from e
            out.extend({"apiVersion": i["apiVersion"], "kind": i["kind"], "metadata": i["metadata"]} for i in items)
        return out

    def observe(self, assignment_label: str, refs: list[ObjectRef]) -> AssignmentPhase:
        pods = list((self.pods_by_assignment.get(assignment_label) or {}).values())
        objects = []
        for ref in refs:
            key = (ref.group, ref.kind, ref.namespace or "", ref.name)
            watched = any(ref.group == g and ref.kind == k for g, _v, _p, k in WATCHED)
            if watched:
                body = self.workloads.get(key)
            elif ref.group == "" and ref.kind == "Pod":
                body = next((p for p in pods if (p.get("metadata") or {}).get("name") == ref.name), None)
            else:
                body = {}  # applied successfully and not followed: it exists
            objects.append(object_phase(ref.api_version, ref.kind, ref.name, ref.namespace, body, pods))
        result = assignment_phase(objects, self.interruptions.get(assignment_label, ()))
        if result.phase in ("Running", "Succeeded"):
            self.interruptions.pop(assignment_label, None)
        return result

    def forget(self, assignment_label: str) -> None:
        self.interruptions.pop(assignment_label, None)

    async def load_state(self) -> dict[str, str] | None:
        try:
            return await self.api.read_secret(*self.state_ref)
        except KubeAPIError as e:
            raise e.classify() from e

    async def save_state(self, data: Mapping[str, str]) -> None:
        try:
            await self.api.write_secret(*self.state_ref, data)
        except KubeAPIError as e:
            raise PermanentError(
                f"cannot store the agent credential in Secret {'/'.join(self.state_ref)}: {e.message}"
            ) from e
