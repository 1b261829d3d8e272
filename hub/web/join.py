"""POST /v1/clusters/join: a spoke agent exchanges its single-use join token for the cluster's
own credential, and the Cluster object is registered if new. Served without a bearer token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fleetplane_types.names import API_VERSION, JOINED_AT_ANNOTATION
from hub.errors import ApiError, bad_request
from hub.registry.lifecycle import RegistryTx
from hub.registry.resources import BY_KIND
from hub.store.store import now_rfc3339
from hub.store.tokens import create_token, redeem_join_token
from hub.web.context import hub_of

router = APIRouter()
CLUSTER = BY_KIND["Cluster"]


@router.post("/v1/clusters/join", tags=["clusters"])
async def join(request: Request) -> JSONResponse:
    """Exchange a single-use join token for the cluster's own credential; registers the Cluster."""
    hub = hub_of(request)
    try:
        body = await request.json()
    except Exception:
        return JSONResponse(bad_request("join: body must be JSON {joinToken, clusterName}").status(), status_code=400)
    if not isinstance(body, dict):
        body = {}
    token, cluster = body.get("joinToken"), body.get("clusterName")
    if not isinstance(token, str) or not isinstance(cluster, str) or not cluster:
        return JSONResponse(
            bad_request("join: joinToken and clusterName are required strings").status(), status_code=400
        )
    if not await redeem_join_token(hub.store, token, cluster):
        err = ApiError(401, "Unauthorized", f'join token for cluster "{cluster}" is invalid or already used')
        return JSONResponse(err.status(), status_code=401)
    credential = await create_token(hub.store, "agent", cluster)

    async def ensure_cluster(rtx: RegistryTx) -> None:
        if await rtx.get(CLUSTER, None, cluster) is None:
            await rtx.create(
                CLUSTER,
                {
                    "apiVersion": API_VERSION,
                    "kind": "Cluster",
                    "metadata": {"name": cluster, "annotations": {JOINED_AT_ANNOTATION: now_rfc3339()}},
                    "spec": {"backend": "kubernetes"},
                },
            )

    await hub.registry.transact(ensure_cluster)
    return JSONResponse({"clusterName": cluster, "token": credential})
