"""A small async client for the spoke's API server (httpx): discovery, server-side apply,
delete, label-selected lists, and Secrets. Watches are kopf's job; this is for writes.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from typing import Any

from .errors import PermanentError, TemporaryError
from .kubeconfig import SpokeConnection
from .lean import HTTPX_EXTRAS, without
from .manifests import ObjectRef, group_of

with without(*HTTPX_EXTRAS):  # see spoke_agent.lean
    import httpx


class KubeAPIError(Exception):
    def __init__(self, code: int, status: Mapping[str, Any] | None, text: str) -> None:
        self.code = code
        self.status = dict(status or {})
        self.reason = self.status.get("reason") or ""
        self.message = self.status.get("message") or text[:500]
        super().__init__(f"{code} {self.reason}: {self.message}")

    def classify(self) -> Exception:
        """TemporaryError for what may pass (throttling, server trouble, conflicts), else PermanentError."""
        if self.code in (409, 429) or self.code >= 500:
            return TemporaryError(self.message)
        return PermanentError(self.message, reason=self.reason or str(self.code))


class _Auth(httpx.Auth):
    def __init__(self, conn: SpokeConnection) -> None:
        self.conn = conn

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.conn.bearer()
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request


class KubeAPI:
    def __init__(self, conn: SpokeConnection, field_manager: str = "fleetplane-agent", timeout: float = 30.0) -> None:
        self.conn = conn
        self.field_manager = field_manager
        self._client = httpx.AsyncClient(
            base_url=conn.server, verify=conn.ssl_context(), auth=_Auth(conn), timeout=timeout
        )
        # (apiVersion, kind) → (plural, namespaced); filled lazily from discovery.
        self._resources: dict[tuple[str, str], tuple[str, bool]] = {}
        self._discovered: set[str] = set()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        try:
            resp = await self._client.request(method, url, **kw)
        except httpx.HTTPError as e:
            raise TemporaryError(f"spoke API {self.conn.server} unreachable: {e}") from e
        if resp.status_code >= 400:
            try:
                status = resp.json()
            except ValueError:
                status = None
            raise KubeAPIError(resp.status_code, status if isinstance(status, dict) else None, resp.text)
        return resp

    # ------------------------------------------------------------ discovery

    async def resource(self, api_version: str, kind: str) -> tuple[str, bool] | None:
        """(plural, namespaced) of a kind, or None if the cluster does not serve it."""
        key = (api_version, kind)
        if key not in self._resources and api_version not in self._discovered:
            await self._discover(api_version)
        if key not in self._resources:
            # A CRD may have been installed since: look again once per miss.
            await self._discover(api_version)
        return self._resources.get(key)

    async def _discover(self, api_version: str) -> None:
        url = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        try:
            resp = await self._request("GET", url)
        except KubeAPIError as e:
            if e.code == 404:
                self._discovered.add(api_version)
                return
            raise e.classify() from e
        self._discovered.add(api_version)
        for r in resp.json().get("resources") or []:
            if "/" in r["name"]:
                continue
            self._resources[(api_version, r["kind"])] = (r["name"], bool(r.get("namespaced")))

    async def url(self, ref: ObjectRef, *, collection: bool = False, all_namespaces: bool = False) -> str:
        found = await self.resource(ref.api_version, ref.kind)
        if found is None:
            raise PermanentError(
                f"{ref.kind} ({ref.api_version}) is not served by this cluster; install its CRD first",
                reason="KindNotFound",
            )
        plural, namespaced = found
        base = f"/api/{ref.api_version}" if not group_of(ref.api_version) else f"/apis/{ref.api_version}"
        if namespaced and not all_namespaces:
            base += f"/namespaces/{ref.namespace or 'default'}"
        base += f"/{plural}"
        return base if collection else f"{base}/{ref.name}"

    # ------------------------------------------------------------ objects

    async def version(self) -> str | None:
        try:
            return (await self._request("GET", "/version")).json().get("gitVersion")
        except (KubeAPIError, TemporaryError):
            return None

    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply (force: the agent owns what the hub assigns)."""
        url = await self.url(ObjectRef.of(obj))
        resp = await self._request(
            "PATCH",
            url,
            params={"fieldManager": self.field_manager, "force": "true"},
            content=json.dumps(obj),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        return resp.json()

    async def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        try:
            return (await self._request("GET", await self.url(ref))).json()
        except KubeAPIError as e:
            if e.code == 404:
                return None
            raise

    async def delete(self, ref: ObjectRef, foreground: bool = False) -> bool:
        """Delete; False if already gone. Background propagation by default (a Job's pods go
        too); foreground keeps the object until its dependents (pods) have really terminated,
        which is what fencing needs: the object existing means a copy may still run."""
        try:
            await self._request(
                "DELETE",
                await self.url(ref),
                content=json.dumps(
                    {
                        "kind": "DeleteOptions",
                        "apiVersion": "v1",
                        "propagationPolicy": "Foreground" if foreground else "Background",
                    }
                ),
                headers={"Content-Type": "application/json"},
            )
            return True
        except KubeAPIError as e:
            if e.code == 404:
                return False
            raise

    async def exists(self, ref: ObjectRef) -> bool:
        try:
            await self._request("GET", await self.url(ref))
            return True
        except KubeAPIError as e:
            if e.code == 404:
                return False
            raise

    async def list(
        self, api_version: str, kind: str, label_selector: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """The objects of a kind matching a label selector (paged), in every namespace or in
        `namespace` only; [] if the kind is not served, or is cluster-scoped and a namespace is given."""
        found = await self.resource(api_version, kind)
        if found is None or (namespace is not None and not found[1]):
            return []
        ref = ObjectRef(api_version, kind, namespace, "")
        url = await self.url(ref, collection=True, all_namespaces=namespace is None)
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"labelSelector": label_selector, "limit": 500}
        while True:
            body = (await self._request("GET", url, params=params)).json()
            for item in body.get("items") or []:
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                items.append(item)
            cont = (body.get("metadata") or {}).get("continue")
            if not cont:
                return items
            params["continue"] = cont

    async def ensure_namespace(self, name: str) -> None:
        try:
            await self._request("GET", f"/api/v1/namespaces/{name}")
            return
        except KubeAPIError as e:
            if e.code != 404:
                raise
        try:
            await self._request(
                "POST",
                "/api/v1/namespaces",
                json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            )
        except KubeAPIError as e:
            if e.code != 409:
                raise

    # ------------------------------------------------------------ secrets (agent state)

    async def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        import base64

        try:
            body = (await self._request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")).json()
        except KubeAPIError as e:
            if e.code == 404:
                return None
            raise
        return {k: base64.b64decode(v).decode() for k, v in (body.get("data") or {}).items()}

    async def write_secret(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        """Merge `data` into the Secret (server-side apply; creates it if missing)."""
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/name": "fleetplane-agent"},
            },
            "type": "Opaque",
            "stringData": dict(data),
        }
        try:
            await self._request(
                "PATCH",
                f"/api/v1/namespaces/{namespace}/secrets/{name}",
                params={"fieldManager": self.field_manager, "force": "true"},
                content=json.dumps(body),
                headers={"Content-Type": "application/apply-patch+yaml"},
            )
        except KubeAPIError as e:
            if e.code == 404 and "namespaces" in e.message:
                await self.ensure_namespace(namespace)
                await self.write_secret(namespace, name, data)
                return
            raise
