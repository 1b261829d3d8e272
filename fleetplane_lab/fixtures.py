"""Helpers for test suites and benchmarks that run against lab spokes (or any kubeconfigs): a spoke handle with
ready kubernetes clients, and the env-var contract the lab suites share.

Env vars (so any test directory can use them without registering a pytest plugin):
- FLEETPLANE_LAB_KUBECONFIGS=a.kubeconfig,b.kubeconfig or name=path,...: use these clusters.
- FLEETPLANE_LAB_BACKEND=local|kind: what to start when no kubeconfigs are given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from fleetplane_lab.binaries import BinariesMissing, require_binaries


@dataclass
class SpokeHandle:
    """A spoke under test: its name, kubeconfig and, when the lab started it, its node names."""

    name: str
    kubeconfig: str
    expected_nodes: list[str] | None = None  # None for external clusters

    def api_client(self):  # type: ignore[no-untyped-def]  # kubernetes has no type hints
        from kubernetes import config

        return config.new_client_from_config(config_file=self.kubeconfig)

    def core(self):  # type: ignore[no-untyped-def]
        from kubernetes import client

        return client.CoreV1Api(self.api_client())

    def batch(self):  # type: ignore[no-untyped-def]
        from kubernetes import client

        return client.BatchV1Api(self.api_client())


def external_kubeconfigs() -> list[SpokeHandle] | None:
    """The clusters named by FLEETPLANE_LAB_KUBECONFIGS, or None when unset."""
    raw = os.environ.get("FLEETPLANE_LAB_KUBECONFIGS", "").strip()
    if not raw:
        return None
    out = []
    for i, item in enumerate(x.strip() for x in raw.split(",") if x.strip()):
        name, _, path = item.rpartition("=")
        out.append(SpokeHandle(name=name or f"cluster-{i + 1}", kubeconfig=path))
    return out


def require_lab_binaries() -> None:
    """pytest.fail (never skip) when the local backend's binaries are missing: a silently
    skipped lab suite looks green while testing nothing."""
    if lab_backend() != "local" or external_kubeconfigs() is not None:
        return
    try:
        require_binaries()
    except BinariesMissing as e:
        pytest.fail(str(e), pytrace=False)


HELM_VERSION = "3.22.0"  # must match deploy/local/build-helm.sh


def helm_binary() -> Path:
    """Where deploy/local/build-helm.sh puts helm: FLEETPLANE_HELM wins; otherwise the cache
    (FLEETPLANE_CACHE, default ~/.cache/fleetplane), keyed by version like the k8s binaries."""
    explicit = os.environ.get("FLEETPLANE_HELM")
    if explicit:
        return Path(explicit).expanduser()
    cache = Path(os.environ.get("FLEETPLANE_CACHE", "~/.cache/fleetplane")).expanduser()
    return cache / f"helm-v{HELM_VERSION}" / "bin" / "helm"


def require_helm() -> Path:
    """The helm binary, or pytest.fail (never skip) saying how to build it."""
    helm = helm_binary()
    if not os.access(helm, os.X_OK):
        pytest.fail(
            f"helm v{HELM_VERSION} not found at {helm}. Run `make helm` (builds it from its Go module, "
            "a few minutes cold) or point FLEETPLANE_HELM at a helm v3 binary.",
            pytrace=False,
        )
    return helm


def lab_backend() -> str:
    return os.environ.get("FLEETPLANE_LAB_BACKEND", "local")
