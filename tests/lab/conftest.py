"""Fixtures for the lab tests: two real spokes, started once per module and shared.

Targets, in order of precedence (see fleetplane_lab/testing.py):
- FLEETPLANE_LAB_KUBECONFIGS=a.kubeconfig,b.kubeconfig (or name=path,...): any existing
  clusters with GPU nodes labelled like the lab's (kind spokes, a real fleet). Nothing is
  started or stopped.
- FLEETPLANE_LAB_BACKEND=kind: kind spokes via deploy/kind/lab-kind.sh (Docker hosts).
- default: the local backend, real control planes from `make k8s-binaries`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fleetplane_lab import Lab, default_spokes
from fleetplane_lab.fixtures import SpokeHandle, external_kubeconfigs, lab_backend, require_lab_binaries


@pytest.fixture(scope="module")
def spokes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[SpokeHandle]]:
    external = external_kubeconfigs()
    if external is not None:
        yield external
        return
    require_lab_binaries()
    lab = Lab(tmp_path_factory.mktemp("lab"), spokes=default_spokes(2), with_hub=False, backend=lab_backend())
    with lab:
        yield [SpokeHandle(n, s.kubeconfig, list(s.nodes)) for n, s in lab.spokes.items()]
