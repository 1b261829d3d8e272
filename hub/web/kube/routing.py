"""Request paths → the resource they address (Kubernetes URL shapes).

/api/v1/namespaces[/{name}[/status]]            core Namespaces
/api/v1[/namespaces/{ns}]/events[/{name}]       core Events (read-only)
/apis/{group}/{version}/{plural}[/{name}[/status]]               cluster-scoped, or all namespaces
/apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}[/status]]
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from hub.errors import ApiError, not_found, unsupported_media
from hub.registry.resources import Resource, lookup
from hub.web.inputs import check_text


@dataclass
class Target:
    res: Resource
    namespace: str | None  # None: all namespaces (or cluster-scoped)
    name: str | None
    subresource: str


def parse_target(path: str) -> Target:
    """Resolve a request path to a resource target."""
    parts = [check_text(p, "path segment", max_len=512) for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif parts and parts[0] == "apis" and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise _no_resource(path)
    namespace = None
    if group == "" and rest[:1] == ["namespaces"] and (len(rest) < 3 or rest[2] == "status"):
        res = lookup("", "v1", "namespaces")
        assert res
        sub = rest[2] if len(rest) > 2 else ""
        if len(rest) > 3 or (sub and (sub != "status" or not res.has_status)):
            raise _no_resource(path)
        return Target(res, None, rest[1] if len(rest) > 1 else None, sub)
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    if not rest:
        raise _no_resource(path)
    res = lookup(group, version, rest[0])
    if res is None:
        raise ApiError(
            404, "NotFound", f"the server could not find the requested resource ({rest[0]}.{group or 'core'}/{version})"
        )
    if namespace is not None and not res.namespaced:
        raise not_found(res.plural, res.group, rest[1] if len(rest) > 1 else "")
    if res.namespaced and namespace is None and len(rest) > 1:
        raise ApiError(
            404, "NotFound", f"{res.qualified} is namespaced: use /namespaces/{{namespace}}/{res.plural}/{{name}}"
        )
    sub = rest[2] if len(rest) > 2 else ""
    if sub and (sub != "status" or not res.has_status or len(rest) > 3):
        raise ApiError(404, "NotFound", f"the server could not find the requested resource ({res.qualified}/{sub})")
    return Target(res, namespace, rest[1] if len(rest) > 1 else None, sub)


def _no_resource(path: str) -> ApiError:
    """404 for a path that names no resource (kube-apiserver's words for it)."""
    return ApiError(404, "NotFound", f"the server could not find the requested resource ({path[:200]})")


def wants_table(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    first = accept.split(",")[0]
    return "as=Table" in first


def require_json(request: Request) -> None:
    ct = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ct in ("application/vnd.kubernetes.protobuf", "application/cbor"):
        raise unsupported_media(
            f'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (not "{ct}")'
        )
