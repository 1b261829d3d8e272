"""How to reach the spoke's API server: a kubeconfig file or the in-cluster service account.

One `SpokeConnection` feeds both kopf (its ConnectionInfo) and the agent's own httpx client
(server-side apply, deletes, the state Secret), so neither needs the heavy `kubernetes`
package.
"""

from __future__ import annotations

import atexit
import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass
class SpokeConnection:
    server: str
    ca_data: str | None = None  # PEM
    ca_path: str | None = None
    insecure: bool = False
    token: str | None = None
    token_path: str | None = None  # re-read on use: projected tokens rotate
    cert_path: str | None = None
    key_path: str | None = None
    namespace: str | None = None

    def bearer(self) -> str | None:
        if self.token_path:
            return Path(self.token_path).read_text().strip()
        return self.token

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https"):
            return False
        if self.insecure:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_data or self.ca_path:
            ctx = ssl.create_default_context(cadata=self.ca_data, cafile=self.ca_path)
        else:
            ctx = ssl.create_default_context()
        if self.cert_path and self.key_path:
            ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx

    def kopf_connection_info(self) -> Any:
        import kopf

        return kopf.ConnectionInfo(
            server=self.server,
            ca_data=self.ca_data.encode() if self.ca_data else None,
            ca_path=self.ca_path,
            insecure=self.insecure,
            scheme="Bearer" if self.bearer() else None,
            token=self.bearer(),
            certificate_path=self.cert_path,
            private_key_path=self.key_path,
            default_namespace=self.namespace,
        )


def _decode(data: str) -> bytes:
    return base64.b64decode(data)


def _tempfile(content: bytes) -> str:
    fd, path = tempfile.mkstemp(prefix="fleetplane-agent-")
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    os.chmod(path, 0o600)

    def cleanup() -> None:
        if os.path.exists(path):
            os.unlink(path)

    atexit.register(cleanup)
    return path


def from_kubeconfig(path: str | os.PathLike[str], context: str | None = None) -> SpokeConnection:
    """Read the current (or named) context of a kubeconfig file."""
    base = Path(path).parent
    cfg: dict[str, Any] = yaml.safe_load(Path(path).read_text()) or {}
    ctx_name = context or cfg.get("current-context")
    contexts = {c["name"]: c.get("context") or {} for c in cfg.get("contexts") or []}
    if ctx_name not in contexts:
        if len(contexts) == 1:
            ctx_name = next(iter(contexts))
        else:
            raise ValueError(f"kubeconfig {path}: context {ctx_name!r} not found; pass one that exists")
    ctx = contexts[ctx_name]
    cluster = next(c["cluster"] for c in cfg.get("clusters") or [] if c["name"] == ctx.get("cluster"))
    user = next((u.get("user") or {} for u in cfg.get("users") or [] if u["name"] == ctx.get("user")), {})

    def rel(p: str | None) -> str | None:
        return str(base / p) if p and not os.path.isabs(p) else p

    conn = SpokeConnection(server=cluster["server"].rstrip("/"), namespace=ctx.get("namespace"))
    if cluster.get("certificate-authority-data"):
        conn.ca_data = _decode(cluster["certificate-authority-data"]).decode()
    conn.ca_path = rel(cluster.get("certificate-authority"))
    conn.insecure = bool(cluster.get("insecure-skip-tls-verify"))
    conn.token = user.get("token")
    conn.token_path = rel(user.get("tokenFile"))
    if user.get("client-certificate-data"):
        conn.cert_path = _tempfile(_decode(user["client-certificate-data"]))
    else:
        conn.cert_path = rel(user.get("client-certificate"))
    if user.get("client-key-data"):
        conn.key_path = _tempfile(_decode(user["client-key-data"]))
    else:
        conn.key_path = rel(user.get("client-key"))
    return conn


def in_cluster() -> SpokeConnection:
    """The pod's service account (KUBERNETES_SERVICE_HOST/PORT and the projected token)."""
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if ":" in host:
        host = f"[{host}]"
    ns_file = SA_DIR / "namespace"
    return SpokeConnection(
        server=f"https://{host}:{port}",
        ca_path=str(SA_DIR / "ca.crt"),
        token_path=str(SA_DIR / "token"),
        namespace=ns_file.read_text().strip() if ns_file.exists() else None,
    )


def resolve(kubeconfig: str | None) -> SpokeConnection:
    """--kubeconfig, else $KUBECONFIG, else in-cluster, else ~/.kube/config."""
    if kubeconfig:
        return from_kubeconfig(kubeconfig)
    env = os.environ.get("KUBECONFIG")
    if env:
        return from_kubeconfig(env.split(os.pathsep)[0])
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster()
    return from_kubeconfig(Path.home() / ".kube" / "config")
