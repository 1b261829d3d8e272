"""The agent's side of the hub protocol (httpx): join, Cluster status, the cluster's lease,
Assignment list/watch, Assignment status and the cleanup finalizer.

Every error the hub returns is a Kubernetes Status; it becomes a TemporaryError (retry),
a PermanentError (report and wait), JoinRefused (401) or Expired (410, relist).
"""

from __future__ import annotations

import functools
import json
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

from fleetplane_types.names import API_VERSION

from .errors import Expired, HubUnreachable, JoinRefused, PermanentError, TemporaryError
from .lean import HTTPX_EXTRAS, without
from .settings import HubSettings

with without(*HTTPX_EXTRAS):  # httpx's CLI (click, rich, pygments): ~6 MiB of RSS the agent never uses
    import httpx

BASE = f"/apis/{API_VERSION}"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


def _status_message(resp: httpx.Response) -> tuple[str, str]:
    try:
        body = resp.json()
    except ValueError:
        return "", resp.text[:300]
    if isinstance(body, dict):
        return body.get("reason") or "", body.get("message") or json.dumps(body)[:300]
    return "", str(body)[:300]


def raise_for(resp: httpx.Response, what: str) -> None:
    if resp.status_code < 400:
        return
    reason, message = _status_message(resp)
    text = f"{what}: hub answered {resp.status_code} {reason}: {message}"
    if resp.status_code == 401:
        raise JoinRefused(text, reason="Unauthorized")
    if resp.status_code == 410:
        raise Expired(text)
    if resp.status_code in (409, 429) or resp.status_code >= 500:
        raise TemporaryError(text)
    raise PermanentError(text, reason=reason or str(resp.status_code))


@functools.lru_cache(maxsize=16)
def tls_context(cafile: str | None) -> ssl.SSLContext:
    """One verifying TLS context per CA file (None: the system's) for every HubClient of the
    process: building one loads and parses the CA bundle (tens of ms of CPU), and an agent makes
    a new HTTP client at each credential change; a process running many SIMULATED agents (the
    benchmarks) made thousands."""
    return ssl.create_default_context(cafile=cafile)


class HubClient:
    def __init__(
        self,
        url: str,
        token: str | None = None,
        settings: HubSettings | None = None,
        *,
        verify: bool | str | ssl.SSLContext = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        if verify is True or isinstance(verify, str):
            verify = tls_context(verify if isinstance(verify, str) else None)
        self.settings = settings or HubSettings()
        self._verify = verify
        self._transport = transport
        self._client = self._make(token)
        self.watch_opened_at: float | None = None
        """time.monotonic() when the hub last answered an Assignment watch (its 200 arrived): how
        soon after a hub restart the agent's watch is back (bench/bench_recovery.py reads it)."""

    def _make(self, token: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        kwargs: dict[str, Any] = {}
        if self._transport is not None:
            kwargs["transport"] = self._transport
        return httpx.AsyncClient(
            base_url=self.url,
            headers=headers,
            timeout=self.settings.request_timeout_seconds,
            verify=self._verify,
            # httpx's default pool sizes; an idle connection outlives a heartbeat (settings.keep_alive_seconds).
            limits=httpx.Limits(
                max_connections=100, max_keepalive_connections=20, keepalive_expiry=self.settings.keep_alive_seconds
            ),
            **kwargs,
        )

    async def set_token(self, token: str) -> None:
        old, self._client = self._client, self._make(token)
        await old.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _send(self, method: str, path: str, what: str, **kw: Any) -> dict[str, Any]:
        try:
            resp = await self._client.request(method, path, **kw)
        except httpx.ConnectError as e:
            raise HubUnreachable(f"{what}: hub {self.url} refused the connection: {e!r}") from e
        except httpx.HTTPError as e:
            raise TemporaryError(f"{what}: hub {self.url} unreachable: {e!r}") from e
        raise_for(resp, what)
        return resp.json() if resp.content else {}

    # ------------------------------------------------------------ join and Cluster

    async def join(self, join_token: str, cluster_name: str) -> str:
        """Exchange a single-use join token for this cluster's credential."""
        body = await self._send(
            "POST",
            "/v1/clusters/join",
            f"join cluster {cluster_name}",
            json={"joinToken": join_token, "clusterName": cluster_name},
            # A join token is single-use: if the hub redeems it but the answer times out, a
            # retry is refused. Wait long rather than retry (a loaded hub answered in >10 s).
            timeout=max(60.0, self.settings.request_timeout_seconds),
        )
        token = body.get("token")
        if not token:
            raise PermanentError(f"join cluster {cluster_name}: hub answered without a token")
        return str(token)

    async def get_cluster(self, name: str) -> dict[str, Any]:
        return await self._send("GET", f"{BASE}/clusters/{name}", f"read Cluster {name}")

    async def patch_cluster(self, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        return await self._send(
            "PATCH", f"{BASE}/clusters/{name}", f"patch Cluster {name}", content=json.dumps(patch), headers=MERGE_PATCH
        )

    async def patch_cluster_status(self, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        return await self._send(
            "PATCH",
            f"{BASE}/clusters/{name}/status",
            f"report status of Cluster {name}",
            content=json.dumps({"status": status}),
            headers=MERGE_PATCH,
        )

    async def renew_lease(self, name: str, holder: str, duration: float, timeout: float) -> dict[str, Any]:
        """Renew the cluster's lease (liveness without rewriting the Cluster object).

        `timeout` bounds the whole request: a renewal that would arrive after the lease ran out
        is worthless, and the agent's fencing clock must not wait on a hung connection."""
        return await self._send(
            "PUT",
            f"/v1/clusters/{quote(name, safe='')}/lease",
            f"renew the lease of Cluster {name}",
            json={"holderIdentity": holder, "leaseDurationSeconds": duration},
            timeout=timeout,
        )

    # ------------------------------------------------------------ Assignments

    def _assignments_query(self, cluster: str) -> str:
        return f"{BASE}/assignments?fieldSelector={quote(f'spec.clusterName={cluster}', safe='=')}"

    async def list_assignments(self, cluster: str) -> tuple[list[dict[str, Any]], str]:
        body = await self._send("GET", self._assignments_query(cluster), f"list Assignments of {cluster}")
        items = body.get("items") or []
        for item in items:
            item.setdefault("kind", "Assignment")
            item.setdefault("apiVersion", API_VERSION)
        return items, str((body.get("metadata") or {}).get("resourceVersion") or "")

    async def watch_assignments(self, cluster: str, resource_version: str) -> AsyncIterator[dict[str, Any]]:
        """Events after `resource_version`; ends when the hub closes the stream.

        Raises Expired on 410 (as an HTTP status or an ERROR event), TemporaryError when the
        stream breaks or stays silent longer than the inactivity timeout.
        """
        url = (
            f"{self._assignments_query(cluster)}&watch=true&allowWatchBookmarks=true&resourceVersion={resource_version}"
        )
        timeout = httpx.Timeout(
            self.settings.request_timeout_seconds, read=self.settings.watch_inactivity_timeout_seconds
        )
        try:
            async with self._client.stream("GET", url, timeout=timeout) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    raise_for(resp, f"watch Assignments of {cluster}")
                self.watch_opened_at = time.monotonic()
                async for line in resp.aiter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        if status.get("code") == 410 or status.get("reason") in ("Expired", "Gone"):
                            raise Expired(status.get("message") or "resourceVersion expired")
                        raise TemporaryError(f"watch error from hub: {status.get('message') or status}")
                    yield event
        except httpx.ConnectError as e:
            raise HubUnreachable(f"watch Assignments of {cluster}: hub {self.url} refused the connection: {e!r}") from e
        except httpx.HTTPError as e:
            raise TemporaryError(f"watch Assignments of {cluster}: stream broke: {e!r}") from e

    async def patch_assignment_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        return await self._send(
            "PATCH",
            f"{BASE}/namespaces/{namespace}/assignments/{name}/status",
            f"report status of Assignment {namespace}/{name}",
            content=json.dumps({"status": status}),
            headers=MERGE_PATCH,
        )

    async def patch_assignment(self, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        return await self._send(
            "PATCH",
            f"{BASE}/namespaces/{namespace}/assignments/{name}",
            f"patch Assignment {namespace}/{name}",
            content=json.dumps(patch),
            headers=MERGE_PATCH,
        )
