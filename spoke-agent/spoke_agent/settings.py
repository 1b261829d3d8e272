"""Typed settings of the spoke agent, grouped by concern.

The agent reads one YAML file (`--config`) whose top-level keys are these groups
(camelCase or snake_case). Every knob says its unit and why its default is what it is.
Command-line options (hub URL, tokens, kubeconfig) are not here: they are per process,
while this file is the policy an operator reviews (what the agent may apply, and how
chatty it is towards the hub).
"""

from __future__ import annotations

import copy
import fnmatch
import typing
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Self

import yaml

from .errors import PermanentError


class ConfigError(PermanentError):
    """A setting the agent cannot use; names it as written in the file (`delivery.workers`)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"agent config: {path}: {problem}" if path else f"agent config: {problem}", reason="Invalid")

    def under(self, prefix: str) -> ConfigError:
        return ConfigError(f"{prefix}.{self.path}" if self.path else prefix, self.problem)


def about(*, description: str, gt: float | None = None, ge: float | None = None) -> dict[str, Any]:
    """A setting's metadata: what it means (the JSON schema's description) and its bounds."""
    return {"description": description, "gt": gt, "ge": ge}


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(w.capitalize() for w in rest)


_JSON_TYPES: dict[Any, str] = {bool: "boolean", int: "integer", float: "number", str: "string"}
_WANTED: dict[Any, str] = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


class _Group:
    """Base of the settings groups: stdlib dataclasses (keyword-only) that check their values.

    Not pydantic, deliberately: the agent's only pydantic models were these, and building them
    at import cost about 14 MiB of the agent's RSS (docs/agent.md, "Footprint"). The methods keep
    the names of pydantic's (`model_validate`, `model_json_schema`, `model_copy`), which callers
    and tests use. Keys are accepted in snake_case or camelCase; unknown keys are refused.
    """

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in fields(self):
            value = _coerce(hints[f.name], getattr(self, f.name), _camel(f.name))
            gt, ge = f.metadata.get("gt"), f.metadata.get("ge")
            if gt is not None and not value > gt:
                raise ConfigError(_camel(f.name), f"must be greater than {gt:g} (got {value!r})")
            if ge is not None and not value >= ge:
                raise ConfigError(_camel(f.name), f"must be at least {ge:g} (got {value!r})")
            object.__setattr__(self, f.name, value)

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        if not isinstance(data, Mapping):
            raise ConfigError("", f"must be a mapping of settings, got {type(data).__name__}")
        names = {}
        for f in fields(cls):
            names[f.name] = names[_camel(f.name)] = f.name
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in names:
                known = ", ".join(_camel(f.name) for f in fields(cls))
                raise ConfigError(str(key), f"unknown setting (known here: {known})")
            kwargs[names[key]] = value
        for f in fields(cls):
            if f.name not in kwargs and f.default is MISSING and f.default_factory is MISSING:
                raise ConfigError(_camel(f.name), "is required")
        return cls(**kwargs)

    def model_copy(self, *, deep: bool = False) -> Self:
        return copy.deepcopy(self) if deep else copy.copy(self)

    @classmethod
    def model_json_schema(cls, by_alias: bool = True) -> dict[str, Any]:
        """The settings as JSON Schema (draft 2020-12, the layout pydantic writes: groups in `$defs`)."""
        defs: dict[str, Any] = {}
        schema = cls._object_schema(defs, by_alias)
        if defs:
            schema["$defs"] = defs
        return schema

    @classmethod
    def _object_schema(cls, defs: dict[str, Any], by_alias: bool) -> dict[str, Any]:
        hints = _hints(cls)
        props: dict[str, Any] = {}
        required = []
        for f in fields(cls):
            key = _camel(f.name) if by_alias else f.name
            prop = _type_schema(hints[f.name], defs, by_alias)
            if f.default is not MISSING:
                prop["default"] = f.default
            elif f.default_factory is not MISSING:
                default = f.default_factory()
                if not isinstance(default, _Group):
                    prop["default"] = [d.model_dump(by_alias) if isinstance(d, _Group) else d for d in default]
            else:
                required.append(key)
            if f.metadata.get("description"):
                prop["description"] = f.metadata["description"]
            if f.metadata.get("gt") is not None:
                prop["exclusiveMinimum"] = f.metadata["gt"]
            if f.metadata.get("ge") is not None:
                prop["minimum"] = f.metadata["ge"]
            props[key] = prop
        schema: dict[str, Any] = {"title": cls.__name__, "type": "object", "properties": props}
        schema["additionalProperties"] = False
        if cls.__doc__:
            schema["description"] = " ".join(cls.__doc__.split())
        if required:
            schema["required"] = required
        return schema

    def model_dump(self, by_alias: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, _Group):
                value = value.model_dump(by_alias)
            elif isinstance(value, list):
                value = [v.model_dump(by_alias) if isinstance(v, _Group) else v for v in value]
            out[_camel(f.name) if by_alias else f.name] = value
        return out


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _type_schema(tp: Any, defs: dict[str, Any], by_alias: bool) -> dict[str, Any]:
    if typing.get_origin(tp) is list:
        return {"type": "array", "items": _type_schema(typing.get_args(tp)[0], defs, by_alias)}
    if isinstance(tp, type) and issubclass(tp, _Group):
        defs[tp.__name__] = tp._object_schema(defs, by_alias)
        return {"$ref": f"#/$defs/{tp.__name__}"}
    return {"type": _JSON_TYPES[tp]}


def _coerce(tp: Any, value: Any, path: str) -> Any:
    """`value` as type `tp` (a number for a float, a mapping for a group), or ConfigError."""
    if typing.get_origin(tp) is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(path, f"must be a list, got {type(value).__name__} {value!r}")
        item = typing.get_args(tp)[0]
        return [_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(tp, type) and issubclass(tp, _Group):
        if isinstance(value, tp):
            return value
        try:
            return tp.model_validate(value)
        except ConfigError as e:
            raise e.under(path) from None
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if isinstance(value, float) and value.is_integer():
            value, ok = int(value), True
    elif tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, tp)
    if not ok:
        raise ConfigError(path, f"must be {_WANTED.get(tp, tp)}, got {type(value).__name__} {value!r}")
    return value


@dataclass(kw_only=True)
class HubSettings(_Group):
    """How the agent talks to the hub."""

    request_timeout_seconds: float = field(
        default=10.0,
        metadata=about(
            description="Seconds. Timeout of one non-watch request (join, status patch, list). Hub requests "
            "are small; 10 s rides out a busy hub without hiding a dead one for long.",
        ),
    )
    watch_inactivity_timeout_seconds: float = field(
        default=150.0,
        metadata=about(
            description="Seconds. A watch that delivers nothing (not even a BOOKMARK) for this long is "
            "considered dead and reopened from the last resourceVersion. Kubernetes-style servers send a "
            "bookmark about every 60 s; 150 s tolerates two lost bookmarks before reconnecting.",
        ),
    )
    reconnect_backoff_initial_seconds: float = field(
        default=0.5,
        metadata=about(
            description="Seconds. First pause before reconnecting a failed watch; doubles per failure "
            "(with jitter). Short, because most disconnects are a hub restart that is over in a second.",
        ),
    )
    reconnect_backoff_max_seconds: float = field(
        default=30.0,
        metadata=about(
            description="Seconds. Cap of the reconnect backoff: with 1,000+ agents, a hub outage must not "
            "end in a thundering herd, yet agents should be back within half a minute.",
        ),
    )
    keep_alive_seconds: float = field(
        default=60.0,
        metadata=about(
            gt=0,
            description="Seconds. How long an idle connection to the hub is kept for the next request. Longer "
            "than the heartbeat, so each lease renewal reuses one open TLS connection instead of a new TCP and TLS "
            "handshake (which cost the hub about a fifth of its idle CPU at 1,000 clusters); shorter than the hub's "
            "own keep-alive (FLEETPLANE_KEEP_ALIVE_SECONDS, 90 s), so the hub is not the one closing a connection "
            "the agent is about to use.",
        ),
    )
    unreachable_retry_seconds: float = field(
        default=1.0,
        metadata=about(
            gt=0,
            description="Seconds. When the hub refuses the connection (nothing listens: a restart in progress), "
            "retry the watch and a failed lease renewal after this long (with jitter), without growing the backoff "
            "or waiting for the next heartbeat. A refused connection costs the hub nothing, and this brings every "
            "agent back about a second after a restarted hub listens (bench/bench_recovery.py); errors the hub "
            "answers still back off exponentially.",
        ),
    )


@dataclass(kw_only=True)
class CapacitySettings(_Group):
    """What counts as a GPU and how often capacity is reported."""

    gpu_resources: list[str] = field(
        default_factory=lambda: ["nvidia.com/gpu"],
        metadata=about(
            description="Extended resource names counted as GPUs (e.g. add amd.com/gpu). nvidia.com/gpu is "
            "what the NVIDIA device plugin advertises, so it is the only default.",
        ),
    )
    debounce_seconds: float = field(
        default=1.0,
        metadata=about(
            description="Seconds. After a Node or Pod change, wait this long for more changes before "
            "reporting, so a Job starting 8 pods makes one report, not 8. One second keeps the hub's view "
            "within 'seconds' of the truth.",
        ),
    )
    heartbeat_seconds: float = field(
        default=15.0,
        metadata=about(
            description="Seconds. Renew the cluster's lease this often (one tiny PUT that rewrites no object and "
            "wakes no watcher), and look at capacity this often even without a change event: the Cluster's "
            "status is PATCHed only when what it reports (capacity, conditions, versions) changed. The hub "
            "marks a cluster NotReady after a few missed renewals; 15 s keeps a lost cluster detectable within "
            "about a minute.",
        ),
    )
    report_nodes: bool = field(
        default=True,
        metadata=about(
            description="Include the per-node free list in each pool (placement needs it to know whether one "
            "node can host a whole replica). Turn off only for clusters with thousands of GPU nodes.",
        ),
    )


@dataclass(kw_only=True)
class LeaseSettings(_Group):
    """The cluster's lease on the hub, and self-fencing when it cannot be renewed.

    The rule that makes "never two copies" hold: the hub's cluster timeout
    (FLEETPLANE_CLUSTER_TIMEOUT_SECONDS, default 45 s) must be at least durationSeconds plus a
    grace of one heartbeat (the time the agent needs to stop its copies). The defaults give
    30 + 15 = 45. The agent learns the hub's timeout from each renewal and warns when the rule
    does not hold."""

    duration_seconds: float = field(
        default=30.0,
        metadata=about(
            gt=0,
            description="Seconds (T). An agent that could not renew its lease for this long stops its "
            "failover: Replace workloads (scales them to zero, suspends Jobs), because the hub is about to "
            "re-place them elsewhere. Two heartbeats at the default 15 s: one lost renewal never fences, and "
            "T + one heartbeat of grace fits the hub's default 45 s timeout.",
        ),
    )
    self_fencing: bool = field(
        default=True,
        metadata=about(
            description="Stop failover: Replace workloads when the lease is lost. Turning it off brings back "
            "two copies during a network partition (the hub re-places, this cluster keeps running).",
        ),
    )
    restore_hold_seconds: float = field(
        default=120.0,
        metadata=about(
            gt=0,
            description="Seconds. A copy stopped while fenced keeps its GPUs counted as allocated in the capacity "
            "report until its restored pods are bound again (else the hub books them for another workload first). "
            "This caps how long after the fence lifts: a copy whose pods cannot all bind again (its spec shrank, a "
            "node is gone) must not hide free GPUs for good. Two minutes leaves a busy spoke's controllers and "
            "scheduler ample time to recreate and bind pods, which takes seconds.",
        ),
    )


@dataclass(kw_only=True)
class AllowedKind(_Group):
    """One kind the agent may apply: `group` is empty for the core API group."""

    group: str = ""
    kind: str

    def matches(self, api_version: str, kind: str) -> bool:
        group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
        return group == self.group and kind == self.kind


def _default_kinds() -> list[AllowedKind]:
    # Workload kinds AI teams ship, plus the namespaced helpers they come with. Nothing
    # cluster-scoped and nothing granting permissions (Roles, bindings): a hub credential
    # must never be a way to escalate privileges on a member cluster.
    return [
        AllowedKind(group="batch", kind="Job"),
        AllowedKind(group="apps", kind="Deployment"),
        AllowedKind(group="apps", kind="StatefulSet"),
        AllowedKind(group="", kind="Pod"),
        AllowedKind(group="", kind="Service"),
        AllowedKind(group="", kind="ConfigMap"),
        AllowedKind(group="kubeflow.org", kind="PyTorchJob"),
        AllowedKind(group="ray.io", kind="RayJob"),
        AllowedKind(group="jobset.x-k8s.io", kind="JobSet"),
    ]


@dataclass(kw_only=True)
class DeliverySettings(_Group):
    """What the agent may apply for the hub, and how."""

    field_manager: str = field(
        default="fleetplane-agent",
        metadata=about(
            description="Server-side apply field manager; lets people see which fields the agent owns.",
        ),
    )
    allowed_kinds: list[AllowedKind] = field(
        default_factory=_default_kinds,
        metadata=about(
            description="Kinds the agent applies; any other kind rejects the whole Assignment. The Helm "
            "chart's RBAC grants exactly these.",
        ),
    )
    allowed_namespaces: list[str] = field(
        default_factory=lambda: ["*"],
        metadata=about(
            description="Glob patterns of namespaces manifests may target.",
        ),
    )
    denied_namespaces: list[str] = field(
        default_factory=lambda: ["kube-*", "fleetplane-system"],
        metadata=about(
            description="Glob patterns refused even if allowed: the system namespaces and the agent's own, "
            "so a hub user cannot read the agent's credential or disturb the cluster's plumbing.",
        ),
    )
    create_namespaces: bool = field(
        default=True,
        metadata=about(
            description="Create an allowed target namespace if it is missing (hub team namespaces are "
            "mirrored on the spoke). Needs the namespaces/create RBAC rule.",
        ),
    )
    workers: int = field(
        default=4,
        metadata=about(
            ge=1,
            description="Assignments reconciled concurrently. Each reconcile is a few API calls; 4 keeps a "
            "small apiserver comfortable while a resync of 1,000 Assignments takes seconds.",
        ),
    )
    retry_backoff_max_seconds: float = field(
        default=60.0,
        metadata=about(
            description="Seconds. Cap of the per-Assignment retry backoff after a temporary failure.",
        ),
    )

    def kind_allowed(self, api_version: str, kind: str) -> bool:
        return any(k.matches(api_version, kind) for k in self.allowed_kinds)

    def namespace_allowed(self, namespace: str) -> bool:
        if any(fnmatch.fnmatchcase(namespace, p) for p in self.denied_namespaces):
            return False
        return any(fnmatch.fnmatchcase(namespace, p) for p in self.allowed_namespaces)


@dataclass(kw_only=True)
class StateSettings(_Group):
    """Where the agent keeps its cluster credential."""

    secret: str = field(
        default="fleetplane-system/fleetplane-agent",
        metadata=about(
            description="namespace/name of the spoke Secret holding the hub credential (and, before the "
            "first join, the join token). The Helm chart creates it in the release namespace.",
        ),
    )


@dataclass(kw_only=True)
class AgentConfig(_Group):
    """The whole `--config` file."""

    hub: HubSettings = field(default_factory=HubSettings)
    capacity: CapacitySettings = field(default_factory=CapacitySettings)
    lease: LeaseSettings = field(default_factory=LeaseSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    state: StateSettings = field(default_factory=StateSettings)

    @classmethod
    def load(cls, path: str | Path | None) -> AgentConfig:
        if path is None:
            return cls()
        data: Any = yaml.safe_load(Path(path).read_text()) or {}
        try:
            return cls.model_validate(data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e.path}" if e.path else str(path), e.problem) from None
