"""The fleetplane-hub chart's token bootstrap (run by its post-install/post-upgrade Job).

Mints an admin token (and a /metrics-only token) in the hub's database and stores them in the
release's tokens Secret, which the chart creates empty. Idempotent: a token already in the
Secret that the database still accepts is kept, so upgrades do not pile up tokens; a revoked
or missing one is replaced. The Job's ServiceAccount may only get and patch that one Secret.

Environment: FLEETPLANE_DATABASE_URL; TOKENS_SECRET ("namespace/name"); METRICS_TOKEN
("true"/"false"). The Kubernetes API is found as every in-cluster client finds it
(KUBERNETES_SERVICE_HOST/PORT and the mounted ServiceAccount token and CA); SA_DIR and
KUBE_API override those, for running it outside a pod.
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
from hub.store.tokens import create_token, lookup_token, token_id

SA_DIR = os.environ.get("SA_DIR", "/var/run/secrets/kubernetes.io/serviceaccount")


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
        status = json.loads(e.read() or b"{}")
        sys.exit(f"{method} {path}: {e.code} {status.get('message') or e.reason}")


async def main() -> None:
    namespace, _, name = os.environ["TOKENS_SECRET"].partition("/")
    path = f"/api/v1/namespaces/{namespace}/secrets/{name}"
    data = kube("GET", path).get("data") or {}
    assert isinstance(data, dict)
    stored = {k: base64.b64decode(v).decode() for k, v in data.items()}
    wanted = {"admin-token": ("admin", "admin")}
    if os.environ.get("METRICS_TOKEN", "true") == "true":
        wanted["metrics-token"] = ("metrics", "prometheus")
    store = Store(sqlalchemy_url(os.environ["FLEETPLANE_DATABASE_URL"]), pool_size=1)
    new: dict[str, str] = {}
    try:
        for key, (kind, subject) in wanted.items():
            old = stored.get(key, "")
            record = await lookup_token(store, old) if old else None
            if record is not None and record.kind == kind:
                print(f"{key}: kept (token id {token_id(old)})")
                continue
            new[key] = await create_token(store, kind, subject)
            print(
                f"{key}: minted {kind} token {token_id(new[key])}"
                + (" (the stored one no longer works)" if old else "")
            )
    finally:
        await store.close()
    if new:
        patch = {"data": {k: base64.b64encode(v.encode()).decode() for k, v in new.items()}}
        kube("PATCH", path, patch)
        print(f"stored in Secret {namespace}/{name}: {', '.join(sorted(new))}")


if __name__ == "__main__":
    asyncio.run(main())
