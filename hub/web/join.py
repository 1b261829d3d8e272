"""POST /v1/clusters/join: a spoke agent exchanges its single-use join token for the cluster's
own credential, and the Cluster object is registered if new. Served without a bearer token.

A join rotates the cluster's credential: the earlier agent tokens of that cluster are revoked
in the same transaction (hub.store.tokens.exchange_join_token_in). Being unauthenticated, the
endpoint is limited per client address (requests, and failed joins with the failed-auth
budget) and reads at most `join_max_body_bytes`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fleetplane_types.names import API_VERSION, JOINED_AT_ANNOTATION
from hub.errors import ApiError, bad_request, too_many_requests
from hub.registry.lifecycle import RegistryTx
from hub.registry.resources import BY_KIND
from hub.store.store import now_rfc3339
from hub.store.tokens import JoinOutcome, JoinRefusal, exchange_join_token_in
from hub.web.authn import client_address
from hub.web.context import hub_of
from hub.web.inputs import check_text, decode, read_body
from hub.web.rest.views import error_responses

router = APIRouter()
CLUSTER = BY_KIND["Cluster"]


def _answer(err: ApiError) -> JSONResponse:
    return JSONResponse(err.status(), status_code=err.code, headers=err.headers())


async def _join_body(request: Request, limit: int) -> tuple[str, str]:
    body: Any = decode(await read_body(request, limit), "application/json", "join")
    if not isinstance(body, dict):
        raise bad_request("join: body must be a JSON object {joinToken, clusterName}")
    token, cluster = body.get("joinToken"), body.get("clusterName")
    if not isinstance(token, str) or not token:
        raise bad_request("join: joinToken is required and must be a string")
    if not isinstance(cluster, str) or not cluster:
        raise bad_request("join: clusterName is required and must be a string")
    return check_text(token, "join: joinToken", max_len=256), check_text(cluster, "join: clusterName", max_len=253)


_JOIN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["joinToken", "clusterName"],
                    "properties": {
                        "joinToken": {"type": "string", "description": "The single-use join token."},
                        "clusterName": {"type": "string", "description": "The Cluster to join as."},
                    },
                }
            }
        },
    }
}


@router.post("/v1/clusters/join", tags=["clusters"], responses=error_responses(413), openapi_extra=_JOIN_BODY)
async def join(request: Request) -> JSONResponse:
    """Exchange a single-use join token for the cluster's own credential; registers the Cluster."""
    hub = hub_of(request)
    auth, address = hub.authenticator, client_address(request)
    wait = auth.joins.spend(address)
    if wait is not None:
        return _answer(too_many_requests(f"too many join requests from {address}; retry in {wait}s", wait))
    try:
        auth.check_failures(request)
        token, cluster = await _join_body(request, hub.settings.join_max_body_bytes)
    except ApiError as err:
        return _answer(err)

    async def exchange(rtx: RegistryTx) -> JoinOutcome:
        """Redeem the token, rotate the credential and register the Cluster in ONE transaction:
        a failure anywhere leaves the join token unspent and the old credential valid."""
        outcome = await exchange_join_token_in(rtx.tx.conn, token, cluster)
        if outcome.credential is not None and await rtx.get(CLUSTER, None, cluster) is None:
            await rtx.create(
                CLUSTER,
                {
                    "apiVersion": API_VERSION,
                    "kind": "Cluster",
                    "metadata": {"name": cluster, "annotations": {JOINED_AT_ANNOTATION: now_rfc3339()}},
                    "spec": {"backend": "kubernetes"},
                },
            )
        return outcome

    try:
        outcome = await hub.registry.transact(exchange)
    except ApiError as err:
        return _answer(err)
    if outcome.credential is None:
        auth.failed(request)
        why = (outcome.refusal or JoinRefusal.UNKNOWN).value
        return _answer(
            ApiError(
                401,
                "Unauthorized",
                f'join token for cluster "{cluster}" {why}; create a new one with '
                f"`fleetplane cluster join-token create {cluster}`",
            )
        )
    credential = outcome.credential
    if outcome.rotated:
        auth.forget("agent", cluster)  # its previous credential was revoked: refuse it here at once

    return JSONResponse({"clusterName": cluster, "token": credential})
