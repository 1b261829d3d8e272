"""Pure rules for the core/v1 Events the controllers record about Workloads: one Event per
(object, reason) that counts repeats, as Kubernetes' event correlator does, and expiry of old
ones. No I/O: table-tested in tests/unit/hub; the federation controller writes what these return.

Bounded by construction: an object has at most one Event per reason (a handful of reasons),
and an Event not seen again for EVENT_TTL_SECONDS is deleted, so neither a busy workload nor
the history of deleted ones grows the store without bound.
"""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime
from typing import Any

from fleetplane_types.names import EVENT_COMPONENT

Obj = dict[str, Any]

EVENT_TTL_SECONDS = 3600.0
"""An Event not repeated for this long is deleted (kube-apiserver's --event-ttl default, 1 h)."""

COMPACT_EVERY_SECONDS = 60.0
"""How often the controller looks for expired Events: expiry is not urgent, listing is not free."""

MAX_MESSAGE = 1024
"""Longer messages are cut (events.k8s.io caps `note` at 1 kB; pending reasons can be long)."""

_NAME_MAX = 253


def event_name(involved: Obj, reason: str) -> str:
    """`<object name>.<hash of its uid and the reason>`: the same (object, reason) always
    names the same Event, which is how repeats are counted instead of stored."""
    meta = involved.get("metadata") or {}
    digest = hashlib.sha256(f"{meta.get('uid', '')}/{reason}".encode()).hexdigest()[:16]
    return f"{str(meta.get('name', ''))[: _NAME_MAX - len(digest) - 1].rstrip('.-')}.{digest}"


def _cut(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def new_event(involved: Obj, event_type: str, reason: str, message: str, now: str) -> Obj:
    """A first Event of this reason about `involved` (a stored object), in its namespace."""
    meta = involved.get("metadata") or {}
    ref = {
        "apiVersion": involved.get("apiVersion"),
        "kind": involved.get("kind"),
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name(involved, reason), "namespace": meta.get("namespace")},
        "involvedObject": {k: v for k, v in ref.items() if v is not None},
        "type": event_type,
        "reason": reason,
        "message": _cut(message),
        "source": {"component": EVENT_COMPONENT},
        "reportingComponent": EVENT_COMPONENT,
        "reportingInstance": EVENT_COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def repeated_event(existing: Obj, involved: Obj, event_type: str, message: str, now: str) -> Obj:
    """The stored Event seen again: count + 1, latest message, type and lastTimestamp."""
    ev = copy.deepcopy(existing)
    ev["count"] = int(ev.get("count") or 1) + 1
    ev["message"] = _cut(message)
    ev["type"] = event_type
    ev["lastTimestamp"] = now
    rv = (involved.get("metadata") or {}).get("resourceVersion")
    if rv is not None:
        ev.setdefault("involvedObject", {})["resourceVersion"] = rv
    return ev


def _seconds(ts: Any) -> float | None:
    if not isinstance(ts, str):
        return None
    try:
        return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def expired(events: list[Obj], now: float, ttl: float = EVENT_TTL_SECONDS) -> list[Obj]:
    """The Events last seen more than `ttl` seconds before `now` (or never: no timestamp)."""
    out = []
    for ev in events:
        seen = _seconds(ev.get("lastTimestamp")) or _seconds((ev.get("metadata") or {}).get("creationTimestamp"))
        if seen is None or now - seen > ttl:
            out.append(ev)
    return out
