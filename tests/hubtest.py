"""Test helpers: a real hub process on a real (embedded) Postgres, and the real kubectl.

Helper names say what they do or assert (Kueue habit).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
FLEETPLANE = [sys.executable, "-m", "hub.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class HubProcess:
    data_dir: Path
    database_url: str
    port: int
    http_port: int
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir / "hub.log"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "admin.kubeconfig"

    @property
    def ca(self) -> Path:
        return self.data_dir / "hub-cert.pem"

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    def start(self, timeout: float = 60) -> "HubProcess":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, FLEETPLANE_DATABASE_URL=self.database_url, PYTHONWARNINGS="ignore")
        env.update(getattr(self, "extra_env", {}))
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [*FLEETPLANE, "up", "--data-dir", str(self.data_dir), "--port", str(self.port), "--http-port", str(self.http_port)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.http_url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"hub not ready in {timeout}s:\n{self.log_tail()}")

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "<no log>"

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client for the kube and REST APIs (plain HTTP port, bearer token)."""
        tok = self.admin_token if token is None else token
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        return httpx.Client(base_url=self.http_url, headers=headers, timeout=30)

    def cli(self, *args: str) -> str:
        env = dict(os.environ, FLEETPLANE_DATABASE_URL=self.database_url, PYTHONWARNINGS="ignore")
        out = subprocess.run([*FLEETPLANE, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"fleetplane {' '.join(args)} failed: {out.stderr}")
        return out.stdout.strip()

    def team(self, name: str, *namespaces: str) -> tuple[str, Path]:
        """Create a team token; returns (token, kubeconfig path)."""
        kc = self.data_dir / f"team-{name}.kubeconfig"
        ns_args = [a for ns in namespaces for a in ("--namespace", ns)]
        tok = self.cli("token", "create", "--team", name, *ns_args, "--data-dir", str(self.data_dir),
                       "--kubeconfig", str(kc), "--server", self.url)
        return tok.splitlines()[-1], kc


@dataclass
class Kubectl:
    kubeconfig: Path
    cache_dir: Path

    def run(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig), KUBECACHEDIR=str(self.cache_dir))
        out = subprocess.run(["kubectl", *args], input=input, env=env, capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({out.returncode}):\nstdout: {out.stdout}\nstderr: {out.stderr}")
        return out

    def __call__(self, *args: str, input: str | None = None) -> str:
        return self.run(*args, input=input).stdout

    def fails(self, *args: str, input: str | None = None) -> str:
        """Run kubectl expecting failure; returns stderr."""
        out = self.run(*args, input=input, check=False)
        assert out.returncode != 0, f"kubectl {' '.join(args)} unexpectedly succeeded: {out.stdout}"
        return out.stderr

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json"))


def manifest(obj: dict[str, Any]) -> str:
    return yaml.safe_dump(obj, sort_keys=False)


def workload(name: str, namespace: str = "team-a", *, gpus: int = 1, replicas: int = 1, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "gpu": {"count": gpus},
            "manifests": [{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
                           "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}}}],
            **spec,
        },
    }
    return body
