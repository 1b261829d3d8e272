"""Test helpers: a real hub process on a real (embedded) Postgres, and the real kubectl.

Helper names say what they do or assert (Kueue habit).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from fleetplane_testing import FLEETPLANE, REPO, HubProcess, free_port
from fleetplane_testing import wait_until as lab_wait_until

__all__ = ["FLEETPLANE", "REPO", "HubProcess", "Kubectl", "free_port", "manifest", "wait_until", "workload"]


@dataclass
class Kubectl:
    kubeconfig: Path
    cache_dir: Path

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig), KUBECACHEDIR=str(self.cache_dir))
        out = subprocess.run(["kubectl", *args], input=input, env=env, capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({out.returncode}):\nstdout: {out.stdout}\nstderr: {out.stderr}"
            )
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
            "manifests": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "metadata": {"name": name},
                    "spec": {
                        "template": {
                            "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}
                        }
                    },
                }
            ],
            **spec,
        },
    }
    return body


def expect_status(r: httpx.Response, code: int, reason: str, field: str | None = None) -> dict[str, Any]:
    """The answer is a Status with this code and reason (and a cause naming `field`)."""
    assert r.status_code == code, r.text
    body = r.json()
    assert body["kind"] == "Status" and body["reason"] == reason, body
    if field is not None:
        fields = [c.get("field") for c in body.get("details", {}).get("causes", [])]
        assert field in fields, f"no cause names {field}: {body}"
    return dict(body)


def wait_until(fn: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    """Poll fn until it returns something truthy; fail naming what was awaited."""
    return lab_wait_until(what, fn, timeout, interval=0.1)
