"""One lab for the whole e2e module: the hub + three real spokes, one real agent each."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetplane_lab.fixtures import require_lab_binaries

from .fleet import NS, Fleet, start_fleet, stop_fleet

# The agents run as processes with their own PYTHONPATH; this makes `spoke_agent` importable
# here too, for the test that applies the agent's decorated manifests directly.
_AGENT_SRC = str(Path(__file__).resolve().parents[2] / "spoke-agent")
if _AGENT_SRC not in sys.path:
    sys.path.insert(0, _AGENT_SRC)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    require_lab_binaries()
    f = start_fleet()
    try:
        f.hub_kubectl("create", "namespace", NS)
        print(f"\nlab up {f.timings['lab_up']:.1f}s, three agents ready {f.timings['agents_ready']:.1f}s later")
        yield f
    finally:
        for name, agent in f.agents.items():
            print(f"----- agent {name} (last lines)\n" + "\n".join(agent.log().splitlines()[-15:]))
        stop_fleet(f)
