"""Helpers for tests that run against lab spokes (or any kubeconfigs): a spoke handle with
ready kubernetes clients, and the env-var contract the lab suites share.

Env vars (so any test directory can use them without registering a pytest plugin):
- FLEETPLANE_LAB_KUBECONFIGS=a.kubeconfig,b.kubeconfig or name=path,...: use these clusters.
- FLEETPLANE_LAB_BACKEND=local|kind: what to start when no kubeconfigs are given.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


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
    import pytest

    from hub.lab.binaries import BinariesMissing, require_binaries

    if lab_backend() != "local" or external_kubeconfigs() is not None:
        return
    try:
        require_binaries()
    except BinariesMissing as e:
        pytest.fail(str(e), pytrace=False)


def lab_backend() -> str:
    return os.environ.get("FLEETPLANE_LAB_BACKEND", "local")


def wait_until(
    what: str,
    probe: Callable[[], T | None],
    timeout: float = 60.0,
    interval: float = 0.25,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll `probe` until it returns something truthy; fail saying what never happened.

    Exceptions of the `retry_on` types count as "not yet" (the last one is reported on
    timeout); any other exception, an AssertionError from the probe included, fails at once.
    The one polling helper of the project's tests and benches."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            got = probe()
        except retry_on as e:
            got, last = None, e
        if got:
            return got
        if time.monotonic() > deadline:
            tail = f" (last error: {last!r})" if last is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting until {what}{tail}")
        time.sleep(interval)
