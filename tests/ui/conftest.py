"""Browser tests of the dashboard: one real hub on real Postgres with the demo fleet's SIMULATED
clusters, and one real headless Chromium (Debian's `chromium`, driven by Playwright for Python;
`make browser` installs it, no browser is ever downloaded) for the whole module.

The demo fleet is `fleetplane.demo`'s: its three cluster profiles and its sample objects. Its
agents run here in threads (spoke_agent.agent.AgentThread, the agent's simulated backend)
rather than inside the hub process as `fleetplane up --demo` runs them, so a test can stop one
agent, and with a short heartbeat and lease, so the hub notices within seconds. A fourth,
small SIMULATED cluster ("sim-canary") is the one the live test stops.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from fleetplane import demo
from fleetplane_testing.browser import CHROMIUM, CHROMIUM_ARGS
from fleetplane_testing.waiting import wait_until
from spoke_agent.agent import AgentOptions, AgentThread
from spoke_agent.settings import AgentConfig, LeaseSettings
from tests.conftest import start_hub
from tests.hubtest import HubProcess

API = "/apis/fleetplane.io/v1alpha1"
CANARY = "sim-canary"
HEARTBEAT_SECONDS = 0.5
LEASE_SECONDS = 2.0
HUB_TIMEOUT_SECONDS = "4"  # ≥ lease + one heartbeat (spoke_agent.lease.timing_problem)

CANARY_PROFILE: dict[str, Any] = {
    "cluster": {"region": "ap-south-1", "zone": "ap-south-1a"},
    "pools": [
        {
            "name": "l4-spot",
            "model": "L4",
            "memoryGiB": 24,
            "capacityType": "spot",
            "nodes": 1,
            "gpusPerNode": 4,
            "pricePerGpuHour": 0.40,
        }
    ],
    "jobs": {"durationSeconds": 600, "startDelaySeconds": 0.1},
}


@dataclass
class DemoFleet:
    """The hub, its SIMULATED agents (by cluster name) and an admin client."""

    hub: HubProcess
    agents: dict[str, AgentThread] = field(default_factory=dict)

    def client(self, token: str | None = None) -> httpx.Client:
        return self.hub.client(token)

    @property
    def ui(self) -> str:
        return self.hub.http_url + "/ui/"


def _agent(hub: HubProcess, tmp: Path, name: str, profile: dict[str, Any]) -> AgentThread:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    token = hub.cli("cluster", "join-token", "create", name, "--data-dir", str(hub.data_dir)).splitlines()[-1]
    options = AgentOptions(
        hub=hub.url,
        hub_verify=str(hub.ca),
        cluster_name=name,
        join_token=token,
        backend="simulated",
        profile=str(path),
        state_file=str(tmp / f"{name}.state.json"),
        heartbeat_seconds=HEARTBEAT_SECONDS,
        config=AgentConfig(lease=LeaseSettings(duration_seconds=LEASE_SECONDS)),
    )
    return AgentThread(options).start()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, fresh_database: Callable[[], str]) -> Iterator[DemoFleet]:
    tmp = tmp_path_factory.mktemp("ui")
    hub = start_hub(tmp / "hub", fresh_database(), FLEETPLANE_CLUSTER_TIMEOUT_SECONDS=HUB_TIMEOUT_SECONDS)
    f = DemoFleet(hub)
    try:
        profiles = {**demo.CLUSTERS, CANARY: CANARY_PROFILE}
        for name, profile in profiles.items():
            f.agents[name] = _agent(hub, tmp, name, profile)
        with f.client() as c:
            for path, body in demo.OBJECTS:
                r = c.post(path, json=body)
                assert r.status_code == 201, r.text

            def decided() -> bool:
                items = c.get(f"{API}/namespaces/demo/workloads").json()["items"]
                return len(items) == 4 and all((w.get("status") or {}).get("message") for w in items)

            wait_until("the demo workloads decided", decided, 60)
        yield f
    finally:
        for a in f.agents.values():
            a.stop()
        hub.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Tab:
    """One browser page with what it logged: page errors and console messages (CSP violations
    are console errors), and every request it made."""

    page: Any
    errors: list[str]
    requests: list[str]


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    """A fresh browser context per test (its own sessionStorage: nobody is signed in)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    t = Tab(page, [], [])
    page.on("pageerror", lambda e: t.errors.append(f"page error: {e}"))
    page.on("console", lambda m: t.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("request", lambda r: t.requests.append(r.url))
    yield t
    context.close()
