"""The fleetplane-hub chart's token bootstrap (run by its post-install/post-upgrade Job).

Mints an admin token in the hub's database and stores it in the release's tokens Secret, and
a /metrics-only token into a Secret of its own (the one the ServiceMonitor names, so whoever
may read it to scrape gets no admin token); the chart creates both empty. Idempotent: a token
already in its Secret that the database still accepts is kept, so upgrades do not pile up
tokens; a revoked or missing one is replaced. When storing a new token fails, it is revoked
before the Job exits (the Job's retry mints again): no valid token is left that nobody holds.
The Job's ServiceAccount may only get and patch those two Secrets.

Environment: FLEETPLANE_DATABASE_URL; TOKENS_SECRET ("namespace/name", the admin token);
METRICS_SECRET ("namespace/name", the metrics token; empty: none is minted). The Kubernetes
API is found as every in-cluster client finds it (KUBERNETES_SERVICE_HOST/PORT and the mounted
ServiceAccount token and CA); SA_DIR and KUBE_API override those, for running it outside a pod.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import sys
import urllib.error
import urllib.request

from hub.store.database import sqlalchemy_url
from hub.store.store import Store
from hub.store.tokens import create_token, lookup_token, revoke_token, token_id

SA_DIR = os.environ.get("SA_DIR", "/var/run/secrets/kubernetes.io/serviceaccount")


class KubeError(Exception):
    pass


def kube(method: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
    api = os.environ.get("KUBE_API") or (
        f"https://{os.environ['KUBERNETES_SERVICE_HOST']}:{os.environ['KUBERNETES_SERVICE_PORT']}"
    )
    with open(os.path.join(SA_DIR, "token")) as f:
        token = f.read().strip()
    request = urllib.request.Request(
        api + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "Content-Type": "application/merge-patch+json",
        },
    )
    context = ssl.create_default_context(cafile=os.path.join(SA_DIR, "ca.crt"))
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return dict(json.load(response))
    except urllib.error.HTTPError as e:
        try:
            status = json.loads(e.read() or b"{}")
        except ValueError:
            status = {}
        raise KubeError(f"{method} {path}: {e.code} {status.get('message') or e.reason}") from None
    except OSError as e:
        raise KubeError(f"{method} {path}: {e}") from None


def secret_path(ref: str) -> str:
    namespace, _, name = ref.partition("/")
    return f"/api/v1/namespaces/{namespace}/secrets/{name}"


def read_secret(ref: str) -> dict[str, str]:
    data = kube("GET", secret_path(ref)).get("data") or {}
    assert isinstance(data, dict)
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


async def ensure(store: Store, ref: str, key: str, kind: str, subject: str) -> None:
    """The `key` of Secret `ref` holds a `kind` token the database accepts, minted if needed."""
    old = read_secret(ref).get(key, "")
    record = await lookup_token(store, old) if old else None
    if record is not None and record.kind == kind:
        print(f"{key}: kept (token id {token_id(old)})")
        return
    new = await create_token(store, kind, subject)
    print(f"{key}: minted {kind} token {token_id(new)}" + (" (the stored one no longer works)" if old else ""))
    try:
        kube("PATCH", secret_path(ref), {"data": {key: base64.b64encode(new.encode()).decode()}})
    except KubeError:
        # Nobody holds it: revoke it now, or every retry of the Job leaves one more valid token.
        await revoke_token(store, token_id(new))
        print(f"{key}: not stored, so token {token_id(new)} was revoked")
        raise
    print(f"stored in Secret {ref}: {key}")


async def main() -> None:
    store = Store(sqlalchemy_url(os.environ["FLEETPLANE_DATABASE_URL"]), pool_size=1)
    try:
        await ensure(store, os.environ["TOKENS_SECRET"], "admin-token", "admin", "admin")
        if metrics := os.environ.get("METRICS_SECRET", ""):
            await ensure(store, metrics, "metrics-token", "metrics", "prometheus")
    except KubeError as e:
        sys.exit(str(e))
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
