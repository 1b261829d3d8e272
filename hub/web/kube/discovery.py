"""Discovery and OpenAPI: what kubectl reads before it does anything (/version, /api, /apis,
/openapi/v3, /openapi/v2). Built from the resource table (hub.registry.resources)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from fleetplane_types.names import GROUP, VERSION
from fleetplane_types.version import fleetplane_version
from hub.errors import ApiError
from hub.registry.resources import RESOURCES
from hub.web.kube import authz
from hub.web.kube.openapi import (
    V2_PROTOBUF,
    group_version_document,
    group_versions,
    root_document,
    swagger_document,
    swagger_protobuf,
)

router = APIRouter()


def _build_metadata(version: str) -> str:
    """A PEP 440 version as SemVer build metadata: dot-separated [0-9A-Za-z-] identifiers."""
    return ".".join(p for p in re.split(r"[^0-9A-Za-z-]+", version) if p) or "unknown"


# kubectl parses gitVersion as SemVer (its version-skew warning): the Kubernetes API level we
# serve, with Fleetplane's own version as build metadata (like k3s's "v1.32.0+k3s1"), so
# `kubectl version` shows "Server Version: v1.32.0+fleetplane.0.1.0".
HUB_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": f"v1.32.0+fleetplane.{_build_metadata(fleetplane_version())}",
    "gitCommit": "",
    "gitTreeState": "clean",
    "buildDate": "2026-11-23T00:00:00Z",
    "goVersion": "python",
    "compiler": "cpython",
    "platform": "linux/amd64",
}


@router.get("/version")
async def version() -> dict[str, str]:
    return HUB_VERSION


@router.get("/api")
async def api_versions() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    }


def api_resource_list(group: str, version: str) -> dict[str, Any]:
    items = []
    for r in RESOURCES:
        if r.group != group or r.version != version:
            continue
        verbs = list(r.verbs)
        items.append(
            {
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": verbs,
                "shortNames": list(r.short_names),
                "categories": list(r.categories),
            }
        )
        if r.has_status:
            items.append(
                {
                    "name": f"{r.plural}/status",
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": items,
    }


@router.get("/api/v1")
async def core_resources() -> dict[str, Any]:
    return api_resource_list("", "v1")


def _group_doc() -> dict[str, Any]:
    gv = {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": GROUP, "versions": [gv], "preferredVersion": gv}


@router.get("/apis")
async def api_groups() -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group_doc(), *authz.api_groups()]}


@router.get(f"/apis/{GROUP}")
async def api_group() -> dict[str, Any]:
    return _group_doc()


@router.get(f"/apis/{GROUP}/{VERSION}")
async def group_resources() -> dict[str, Any]:
    return api_resource_list(GROUP, VERSION)


@router.get("/openapi/v3")
async def openapi_root() -> dict[str, Any]:
    return root_document()


@router.get("/openapi/v3/{rest:path}")
async def openapi_gv(rest: str) -> Response:
    for g, v in group_versions():
        key = f"apis/{g}/{v}" if g else f"api/{v}"
        if rest.strip("/") == key:
            body, h = group_version_document(g, v)
            return Response(
                body, media_type="application/json", headers={"Cache-Control": "public, immutable", "Etag": f'"{h}"'}
            )
    err = ApiError(404, "NotFound", f"no OpenAPI document for {rest}")
    return JSONResponse(err.status(), status_code=err.code)


@router.get("/openapi/v2")
async def openapi_v2(request: Request) -> Response:
    """Swagger 2.0 models: protobuf for kubectl (it validates a `kind: List` against them),
    JSON for everyone else."""
    body, h = swagger_protobuf()
    headers = {"Cache-Control": "no-cache", "Etag": f'"{h}"'}
    if "proto-openapi.spec.v2" in request.headers.get("accept", ""):
        return Response(body, media_type=V2_PROTOBUF, headers=headers)
    return JSONResponse(swagger_document(), headers=headers)
