"""Pure helpers on Kubernetes-shaped objects: metadata the server owns, generation, kind checks.

No I/O. The lifecycle (hub.registry.lifecycle) composes these; nothing else should need to.
"""

from __future__ import annotations

import copy
from typing import Any

from hub.errors import ApiError, bad_request
from hub.registry.resources import Resource

Obj = dict[str, Any]

SERVER_META = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "managedFields",
)
"""Metadata only the server sets: dropped from what clients send on create and apply."""

CARRIED_META = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
)
"""Metadata an update keeps from the stored object, whatever the client sent."""


def meta(obj: Obj) -> dict[str, Any]:
    """obj["metadata"], created empty when missing or not an object."""
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = {}
        obj["metadata"] = m
    return m


def strip_server_meta(obj: Obj) -> None:
    m = meta(obj)
    for k in SERVER_META:
        m.pop(k, None)


def carry_server_meta(old: Obj, new: Obj) -> None:
    """Keep the stored object's identity and server-owned metadata on its next version."""
    om, nm = meta(old), meta(new)
    for k in CARRIED_META:
        if k in om:
            nm[k] = om[k]
        else:
            nm.pop(k, None)
    nm["name"] = om["name"]
    if om.get("namespace"):
        nm["namespace"] = om["namespace"]
    else:
        nm.pop("namespace", None)


def spec_changed(old: Obj, new: Obj) -> bool:
    """Did anything but metadata and status change (what generation counts)?"""

    def body(o: Obj) -> Obj:
        return {k: v for k, v in o.items() if k not in ("metadata", "status", "apiVersion", "kind")}

    return body(old) != body(new)


def bump_generation(old: Obj, new: Obj) -> None:
    if spec_changed(old, new):
        meta(new)["generation"] = int(meta(old).get("generation") or 1) + 1


def check_kind(res: Resource, obj: Any) -> Obj:
    """The body is an object of this kind (kind/apiVersion filled in when absent)."""
    if not isinstance(obj, dict):
        raise bad_request(f"{res.kind}: request body must be a JSON object")
    kind, av = obj.get("kind"), obj.get("apiVersion")
    if kind is not None and kind != res.kind:
        raise bad_request(f'kind "{kind}" does not match the resource {res.qualified} (expected kind "{res.kind}")')
    if av is not None and av != res.api_version:
        raise bad_request(f'apiVersion "{av}" is not served for {res.qualified} (expected "{res.api_version}")')
    obj["kind"], obj["apiVersion"] = res.kind, res.api_version
    if obj.get("metadata") is not None and not isinstance(obj.get("metadata"), dict):
        raise ApiError(
            422,
            "Invalid",
            f"{res.kind}: metadata must be an object",
            causes=[{"reason": "FieldValueInvalid", "field": "metadata", "message": "must be an object"}],
        )
    return obj


def place_in_namespace(res: Resource, obj: Obj, namespace: str | None) -> None:
    """Set metadata.namespace from the request (namespaced kinds) or drop it (cluster-scoped)."""
    m = meta(obj)
    if res.namespaced:
        ns = m.get("namespace")
        if ns and namespace and ns != namespace:
            raise bad_request(
                f"the namespace of the provided object ({ns}) does not match the namespace sent on the request ({namespace})"
            )
        m["namespace"] = namespace
    else:
        m.pop("namespace", None)


def without_volatile(o: Obj) -> Obj:
    """The object minus what changes on every write (managedFields times): for no-op detection."""
    c = copy.deepcopy(o)
    for e in (c.get("metadata") or {}).get("managedFields") or []:
        e.pop("time", None)
    return c
