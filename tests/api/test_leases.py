"""Cluster leases: agent liveness outside the object path (hub.store.leases, hub.web.rest.leases).

A real hub process on real Postgres. Agents renew with their own credential; the lease never
rewrites the Cluster object, so it wakes no watcher. The fleet-scale test runs the spoke agent's
own liveness loops (`Agent.report_forever` + `Agent.renew_forever`, the code a real agent runs)
for 1,000 SIMULATED clusters on one event loop; their join and delivery are skipped (agent
credentials are minted directly, as `fleetplane token` would), because 1,000 joins plus 1,000
Assignment watches would measure those, not heartbeats.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from hub.store import schema
from hub.store.store import Store
from hub.store.tokens import create_token
from spoke_agent.agent import Agent, AgentOptions
from spoke_agent.backends.simulated import Profile, SimulatedBackend
from spoke_agent.errors import TemporaryError
from spoke_agent.settings import AgentConfig
from tests.conftest import start_hub
from tests.hubtest import HubProcess, wait_until

API = "/apis/fleetplane.io/v1alpha1"
MERGE = {"Content-Type": "application/merge-patch+json"}
RENEWAL = {"holderIdentity": "agent-east/1", "leaseDurationSeconds": 30}


def mint(hub: HubProcess, kind: str, *subjects: str, namespaces: list[str] | None = None) -> list[str]:
    """Tokens minted by the store function the CLI uses, on the hub's database."""

    async def go() -> list[str]:
        store = Store(hub.database_url or "", pool_size=4)
        sem = asyncio.Semaphore(4)

        async def one(subject: str) -> str:
            async with sem:
                return await create_token(store, kind, subject, namespaces)

        try:
            return list(await asyncio.gather(*(one(s) for s in subjects)))
        finally:
            await store.close()

    return asyncio.run(go())


def create_clusters(hub: HubProcess, names: list[str]) -> None:
    async def go() -> None:
        headers = {"Authorization": f"Bearer {hub.admin_token}"}
        async with httpx.AsyncClient(base_url=hub.http_url, headers=headers, timeout=60) as c:
            sem = asyncio.Semaphore(16)

            async def one(name: str) -> None:
                async with sem:
                    r = await c.post(f"{API}/clusters", json={"metadata": {"name": name}, "spec": {"region": "r1"}})
                    assert r.status_code in (201, 409), r.text

            await asyncio.gather(*(one(n) for n in names))

    asyncio.run(go())


@pytest.fixture(scope="module")
def tokens(hub: HubProcess) -> dict[str, str]:
    create_clusters(hub, ["east", "west"])
    east, west = mint(hub, "agent", "east", "west")
    with hub.client() as c:
        assert c.post("/api/v1/namespaces", json={"metadata": {"name": "team-a"}}).status_code == 201
    [team] = mint(hub, "team", "alpha", namespaces=["team-a"])
    return {"admin": hub.admin_token, "east": east, "west": west, "team": team}


def status_of(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert body["kind"] == "Status" and body["code"] == r.status_code, body
    return dict(body)


def stored_lease(hub: HubProcess, cluster: str) -> dict[str, Any] | None:
    with hub.client() as c:
        r = c.get(f"/v1/clusters/{cluster}/lease")
        return None if r.status_code == 404 else dict(r.json())


# ---------------------------------------------------------------- the table


def test_the_migrated_lease_table_is_the_one_the_schema_declares(hub: HubProcess) -> None:
    async def columns() -> dict[str, tuple[str, bool]]:
        store = Store(hub.database_url or "", pool_size=1)
        try:
            async with store.connect() as conn:

                def read(sync_conn: Any) -> Any:
                    insp = sa.inspect(sync_conn)
                    return insp.get_columns("cluster_leases"), insp.get_pk_constraint("cluster_leases")

                cols, pk = await conn.run_sync(read)
        finally:
            await store.close()
        assert pk["constrained_columns"] == [c.name for c in schema.cluster_leases.primary_key]
        return {c["name"]: (c["type"].python_type.__name__, c["nullable"]) for c in cols}

    migrated = asyncio.run(columns())
    declared = {c.name: (c.type.python_type.__name__, c.nullable) for c in schema.cluster_leases.columns}
    assert migrated == declared


# ---------------------------------------------------------------- renewing and reading


def test_an_agent_renews_its_lease_without_touching_its_cluster_object(hub: HubProcess, tokens: dict[str, str]) -> None:
    with hub.client() as admin, hub.client(tokens["east"]) as agent:
        before = admin.get(f"{API}/clusters/east").json()
        first = agent.put("/v1/clusters/east/lease", json=RENEWAL)
        assert first.status_code == 200, first.text
        time.sleep(0.05)
        second = agent.put("/v1/clusters/east/lease", json=RENEWAL)
        assert second.status_code == 200, second.text
        after = admin.get(f"{API}/clusters/east").json()
        seen = admin.get("/v1/clusters/east/lease")
        mine = agent.get("/v1/clusters/east/lease")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after == before, "a renewal rewrites nothing of the Cluster"
    lease = second.json()
    assert lease["cluster"] == "east" and lease["holderIdentity"] == "agent-east/1"
    assert lease["leaseDurationSeconds"] == 30
    assert lease["renewTime"] > first.json()["renewTime"], "each renewal moves the renew time"
    assert lease["clusterTimeoutSeconds"] > 0
    assert seen.status_code == 200 and seen.json()["renewTime"] == lease["renewTime"]
    assert mine.status_code == 200 and mine.json()["holderIdentity"] == "agent-east/1"


def test_admins_list_every_lease_and_an_agent_sees_only_its_own(hub: HubProcess, tokens: dict[str, str]) -> None:
    for who in ("east", "west"):
        with hub.client(tokens[who]) as agent:
            assert agent.put(f"/v1/clusters/{who}/lease", json=RENEWAL).status_code == 200
    with hub.client() as admin, hub.client(tokens["east"]) as agent, hub.client(tokens["team"]) as team:
        assert {x["cluster"] for x in admin.get("/v1/leases").json()["items"]} >= {"east", "west"}
        assert [x["cluster"] for x in agent.get("/v1/leases").json()["items"]] == ["east"]
        assert team.get("/v1/leases").json()["items"] == []


@pytest.mark.parametrize(
    "who,verb,code",
    [
        ("west", "PUT", 404),  # another cluster's agent: as if east did not exist
        ("west", "GET", 404),
        ("team", "PUT", 404),  # a team sees Clusters, but not leases
        ("team", "GET", 404),
        ("admin", "PUT", 403),  # an admin sees the lease but does not renew it
        ("anonymous", "PUT", 401),
    ],
)
def test_only_the_clusters_own_agent_renews_its_lease_and_nothing_changes_on_a_refusal(
    hub: HubProcess, tokens: dict[str, str], who: str, verb: str, code: int
) -> None:
    with hub.client(tokens["east"]) as agent:
        assert agent.put("/v1/clusters/east/lease", json=RENEWAL).status_code == 200
    before = stored_lease(hub, "east")
    with hub.client(tokens.get(who, "")) as c:
        r = c.request(verb, "/v1/clusters/east/lease", json={**RENEWAL, "holderIdentity": "intruder"})
        missing = c.request(verb, "/v1/clusters/no-such-cluster/lease", json=RENEWAL)
    assert r.status_code == code, r.text
    body = status_of(r)
    if code == 404:
        # The same answer as for a cluster that does not exist: existence does not leak.
        assert missing.status_code == 404
        assert body["message"] == status_of(missing)["message"].replace("no-such-cluster", "east")
        assert body["message"] == 'clusters.fleetplane.io "east" not found'
    if code == 403:
        assert "east" in body["message"] and "agent" in body["message"]
    assert stored_lease(hub, "east") == before, "a refused renewal stores nothing"


@pytest.mark.parametrize(
    "body,field",
    [
        ({"leaseDurationSeconds": 30}, "holderIdentity"),
        ({"holderIdentity": "", "leaseDurationSeconds": 30}, "holderIdentity"),
        ({"holderIdentity": "has spaces", "leaseDurationSeconds": 30}, "holderIdentity"),
        ({"holderIdentity": "a" * 254, "leaseDurationSeconds": 30}, "holderIdentity"),
        ({"holderIdentity": "a"}, "leaseDurationSeconds"),
        ({"holderIdentity": "a", "leaseDurationSeconds": 0}, "leaseDurationSeconds"),
        ({"holderIdentity": "a", "leaseDurationSeconds": -5}, "leaseDurationSeconds"),
        ({"holderIdentity": "a", "leaseDurationSeconds": 86400}, "leaseDurationSeconds"),
        ({"holderIdentity": "a", "leaseDurationSeconds": "soon"}, "leaseDurationSeconds"),
        ({**RENEWAL, "renewTime": "2030-01-01T00:00:00Z"}, "renewTime"),  # the hub's clock, not the agent's
        ([RENEWAL], "body"),
    ],
)
def test_a_bad_renewal_is_422_naming_the_lease_and_the_field_and_stores_nothing(
    hub: HubProcess, tokens: dict[str, str], body: Any, field: str
) -> None:
    with hub.client(tokens["east"]) as agent:
        assert agent.put("/v1/clusters/east/lease", json=RENEWAL).status_code == 200
        before = stored_lease(hub, "east")
        r = agent.put("/v1/clusters/east/lease", json=body)
    assert r.status_code == 422, r.text
    status = status_of(r)
    assert status["reason"] == "Invalid"
    assert status["message"].startswith('Lease "east" is invalid: ')
    assert field in [c["field"] for c in status["details"]["causes"]], status
    assert stored_lease(hub, "east") == before


@pytest.mark.parametrize(
    "content,ctype",
    [
        ("{not json", "application/json"),
        ("", "application/json"),
        ('{"holderIdentity": "a\\u0000b"}', "application/json"),
    ],
)
def test_a_renewal_that_is_not_a_json_object_is_400_and_stores_nothing(
    hub: HubProcess, tokens: dict[str, str], content: str, ctype: str
) -> None:
    before = stored_lease(hub, "east")
    with hub.client(tokens["east"]) as agent:
        r = agent.put("/v1/clusters/east/lease", content=content, headers={"Content-Type": ctype})
    assert r.status_code == 400, r.text
    assert status_of(r)["reason"] == "BadRequest"
    assert stored_lease(hub, "east") == before


def test_a_renewal_tells_the_agent_when_the_hub_has_marked_its_cluster_not_ready(
    hub: HubProcess, tokens: dict[str, str]
) -> None:
    def ready(value: str) -> None:
        cond = {"type": "Ready", "status": value, "reason": "Test"}
        with hub.client() as admin:
            r = admin.patch(
                f"{API}/clusters/west/status", content=json.dumps({"status": {"conditions": [cond]}}), headers=MERGE
            )
            assert r.status_code == 200, r.text

    with hub.client(tokens["west"]) as agent:
        ready("False")
        assert agent.put("/v1/clusters/west/lease", json=RENEWAL).json()["clusterReady"] is False
        ready("True")
        assert agent.put("/v1/clusters/west/lease", json=RENEWAL).json()["clusterReady"] is True


def renewal_counts(hub: HubProcess) -> dict[str, float]:
    """fleetplane_lease_renewals_total by path, and the renewals the batch-size histogram counted."""
    counts: dict[str, float] = {}
    with hub.client() as admin:
        for line in admin.get("/metrics").text.splitlines():
            if line.startswith("fleetplane_lease_renewals_total{"):
                path = line.split('path="', 1)[1].split('"', 1)[0]
                counts[path] = float(line.rsplit(" ", 1)[1])
            elif line.startswith("fleetplane_lease_renewal_batch_size_sum "):
                counts["in batches"] = float(line.rsplit(" ", 1)[1])
            elif line.startswith("fleetplane_lease_renewal_batch_size_count "):
                counts["statements"] = float(line.rsplit(" ", 1)[1])
    return counts


def test_concurrent_renewals_of_many_agents_are_group_committed_and_each_lease_moves(hub: HubProcess) -> None:
    names = [f"herd-{i:02d}" for i in range(40)]
    create_clusters(hub, names)
    creds = mint(hub, "agent", *names)
    before = renewal_counts(hub)

    async def renew_all() -> list[httpx.Response]:
        clients = [httpx.AsyncClient(base_url=hub.http_url, headers={"Authorization": f"Bearer {t}"}) for t in creds]
        try:
            return list(
                await asyncio.gather(
                    *(c.put(f"/v1/clusters/{n}/lease", json=RENEWAL) for c, n in zip(clients, names, strict=True))
                )
            )
        finally:
            for c in clients:
                await c.aclose()

    first = asyncio.run(renew_all())
    second = asyncio.run(renew_all())
    after = renewal_counts(hub)
    for n, a, b in zip(names, first, second, strict=True):
        assert a.status_code == 200 and b.status_code == 200, (a.text, b.text)
        assert a.json()["cluster"] == n and b.json()["cluster"] == n, "each agent hears about its own lease"
        assert b.json()["renewTime"] > a.json()["renewTime"]
    assert after.get("batched", 0) - before.get("batched", 0) == 2 * len(names), (before, after)
    assert after.get("routed", 0) == before.get("routed", 0), "well-formed renewals take the batched path"
    assert after["in batches"] - before.get("in batches", 0) == 2 * len(names)
    for n in names:
        lease = stored_lease(hub, n)
        assert lease is not None and lease["renewTime"] == second[names.index(n)].json()["renewTime"]


def test_renewals_arriving_a_few_milliseconds_apart_share_one_statement(hub: HubProcess) -> None:
    """Agents' heartbeats do not arrive together: at 1,000 clusters and 10 s heartbeats they come
    ~10 ms apart, so a batch of only what arrived during the previous statement held about one
    renewal. The batcher collects for a moment (0.1 s) before it writes; every renewal is still
    answered with its own, renewed lease."""
    names = [f"drip-{i:02d}" for i in range(12)]
    create_clusters(hub, names)
    creds = mint(hub, "agent", *names)

    async def drip() -> list[httpx.Response]:
        clients = [httpx.AsyncClient(base_url=hub.http_url, headers={"Authorization": f"Bearer {t}"}) for t in creds]
        try:
            for c in clients:  # connections open first: the drip below is the renewals alone
                await c.get("/readyz")

            async def one(i: int) -> httpx.Response:
                await asyncio.sleep(0.008 * i)  # 8 ms apart: 88 ms for all, inside one batch window
                return await clients[i].put(f"/v1/clusters/{names[i]}/lease", json=RENEWAL)

            return list(await asyncio.gather(*(one(i) for i in range(len(names)))))
        finally:
            for c in clients:
                await c.aclose()

    before = renewal_counts(hub)
    answers = asyncio.run(drip())
    after = renewal_counts(hub)
    for n, a in zip(names, answers, strict=True):
        assert a.status_code == 200 and a.json()["cluster"] == n, a.text
        lease = stored_lease(hub, n)
        assert lease is not None and lease["renewTime"] == a.json()["renewTime"]
    renewals = after["in batches"] - before.get("in batches", 0)
    statements = after["statements"] - before.get("statements", 0)
    assert renewals == len(names)
    assert statements <= 3, f"{renewals:.0f} renewals 8 ms apart took {statements:.0f} statements"


def test_a_renewal_the_fast_path_refuses_is_answered_by_the_checked_path_with_the_same_status(
    hub: HubProcess, tokens: dict[str, str]
) -> None:
    """West's credential on east's lease, and a body with an unknown field, are not the fast
    path's to answer: they reach the routed path, which refuses them as before (404, 422)."""
    before = renewal_counts(hub)
    with hub.client(tokens["west"]) as west, hub.client(tokens["east"]) as east:
        wrong = west.put("/v1/clusters/east/lease", json=RENEWAL)
        odd = east.put("/v1/clusters/east/lease", json={**RENEWAL, "extra": 1})
    assert wrong.status_code == 404 and status_of(wrong)["message"] == 'clusters.fleetplane.io "east" not found'
    assert odd.status_code == 422 and "extra" in [c["field"] for c in status_of(odd)["details"]["causes"]]
    after = renewal_counts(hub)
    assert after.get("routed", 0) - before.get("routed", 0) == 2
    assert after.get("batched", 0) == before.get("batched", 0)


# ---------------------------------------------------------------- the controller reads leases


@pytest.fixture(scope="module")
def controller_hub(tmp_path_factory: pytest.TempPathFactory, fresh_database) -> Iterator[HubProcess]:  # type: ignore[no-untyped-def]
    h = start_hub(tmp_path_factory.mktemp("leases"), fresh_database(), FLEETPLANE_CLUSTER_TIMEOUT_SECONDS="3")
    yield h
    h.stop()


def test_a_cluster_stays_ready_on_lease_renewals_alone_and_goes_not_ready_when_they_stop(
    controller_hub: HubProcess,
) -> None:
    hub = controller_hub
    create_clusters(hub, ["quiet"])
    [token] = mint(hub, "agent", "quiet")
    old = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))  # a status heartbeat an hour old
    cond = {"type": "Ready", "status": "True", "reason": "AgentReporting"}
    with hub.client() as admin, hub.client(token) as agent:
        assert agent.put("/v1/clusters/quiet/lease", json=RENEWAL).status_code == 200
        r = admin.patch(
            f"{API}/clusters/quiet/status",
            content=json.dumps({"status": {"heartbeatTime": old, "conditions": [cond]}}),
            headers=MERGE,
        )
        assert r.status_code == 200, r.text

        def ready() -> str:
            conds = (admin.get(f"{API}/clusters/quiet").json().get("status") or {}).get("conditions") or []
            return next(c for c in conds if c["type"] == "Ready")["status"]

        # Renewed every second for three timeouts: never NotReady, though heartbeatTime is an hour old.
        until = time.monotonic() + 9
        while time.monotonic() < until:
            assert agent.put("/v1/clusters/quiet/lease", json=RENEWAL).status_code == 200
            assert ready() == "True"
            time.sleep(1)
        stopped = time.monotonic()
        wait_until(lambda: ready() == "False", timeout=15, what="quiet NotReady once renewals stop")
        took = time.monotonic() - stopped
    assert took >= 3 - 1.0, f"marked NotReady {took:.1f}s after the last renewal: before the 3 s timeout"


# ---------------------------------------------------------------- 1,000 simulated clusters

N_CLUSTERS = 1000
ROUNDS = 3
"""Heartbeat intervals to let pass: every agent sends ROUNDS heartbeats."""

PROFILE = {
    "cluster": {"region": "r1"},
    "pools": [
        {"name": "h100", "model": "H100", "memoryGiB": 80, "capacityType": "on-demand", "nodes": 1, "gpusPerNode": 8}
    ],
    "jobs": {"durationSeconds": 1},
}


class ClusterWatch:
    """A watch on Clusters from a resourceVersion, collecting events (bookmarks apart) in a thread.
    `ended` says the stream stopped: a watch that died would see no events and prove nothing."""

    def __init__(self, hub: HubProcess, rv: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.bookmarks = 0
        self.ended: str | None = None
        self._client = httpx.Client(
            base_url=hub.http_url,
            headers={"Authorization": f"Bearer {hub.admin_token}"},
            timeout=httpx.Timeout(30, read=None),
        )
        params = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true", "timeoutSeconds": "3600"}
        self._resp = self._client.send(self._client.build_request("GET", f"{API}/clusters", params=params), stream=True)
        assert self._resp.status_code == 200, self._resp.read()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self._resp.iter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "BOOKMARK":
                    self.bookmarks += 1
                else:
                    self.events.append(event)
            self.ended = "the hub ended the stream"
        except httpx.HTTPError as e:
            self.ended = repr(e)

    def close(self) -> None:
        self._resp.close()
        self._client.close()


async def simulated_agents(hub: HubProcess, names: list[str], tokens: list[str]) -> list[Agent]:
    """1,000 SIMULATED agents (the spoke agent's Agent, simulated backend), each after its
    first capacity report, as Agent.run sends it."""
    config = AgentConfig()
    sem = asyncio.Semaphore(16)

    async def start(name: str, token: str) -> Agent:
        backend = SimulatedBackend(Profile.from_dict(PROFILE), cluster_name=name)
        agent = Agent(
            AgentOptions(
                hub=hub.http_url,
                cluster_name=name,
                backend="simulated",
                config=config.model_copy(deep=True),
                hub_verify=False,  # plain HTTP; 2,000 default SSL contexts would take minutes here
            ),
            backend,
        )
        await agent.hub.set_token(token)
        await backend.start(agent.capacity_changed, lambda label: None)
        async with sem:
            await agent._retry(lambda: agent.report(agent.cluster_status()), "first report")
        return agent

    return list(await asyncio.gather(*(start(n, t) for n, t in zip(names, tokens, strict=True))))


async def heartbeat(agents: list[Agent]) -> int:
    """One heartbeat interval of every agent, through the agent's own per-heartbeat code: the
    capacity report if it changed (`report_if_changed`), and the lease renewal (`renew_once`).
    Returns how many status reports were sent."""
    sem = asyncio.Semaphore(16)

    async def one(agent: Agent) -> bool:
        async with sem:
            sent = await agent.report_if_changed()
            for attempt in range(3):  # as the agent's loop retries at its next heartbeat (a busy machine)
                try:
                    await agent.renew_once()
                    break
                except TemporaryError:
                    if attempt == 2:
                        raise
                    await asyncio.sleep(1)
            return sent

    return sum(await asyncio.gather(*(one(a) for a in agents)))


def test_heartbeats_of_1000_simulated_clusters_produce_no_cluster_watch_events_until_capacity_changes(
    tmp_path: Path,
    fresh_database,  # type: ignore[no-untyped-def]
) -> None:
    # SIMULATED clusters. The agents' heartbeats are driven round by round (one round = one
    # heartbeat interval of every agent) rather than by 2,000 timers: 1,000 agents' HTTP clients
    # in one process of a busy 2-core machine cannot keep a real 10-15 s period, and the rule
    # tested does not depend on the period.
    hub = start_hub(tmp_path / "hub", fresh_database(), FLEETPLANE_CONTROLLERS="false")
    loop = asyncio.new_event_loop()
    agents: list[Agent] = []
    watch: ClusterWatch | None = None
    try:
        names = [f"sim-{i:04d}" for i in range(N_CLUSTERS)]
        t_setup = time.monotonic()
        create_clusters(hub, names)
        tokens = mint(hub, "agent", *names)
        t_tokens = time.monotonic()
        agents = loop.run_until_complete(simulated_agents(hub, names, tokens))
        print(
            f"\nsetup: clusters + tokens {t_tokens - t_setup:.1f}s, "
            f"first reports of {N_CLUSTERS} agents {time.monotonic() - t_tokens:.1f}s"
        )
        with hub.client() as c:
            rv = c.get(f"{API}/clusters", params={"limit": 1}).json()["metadata"]["resourceVersion"]
        watch = ClusterWatch(hub, rv)
        t0 = time.monotonic()
        reports = [loop.run_until_complete(heartbeat(agents)) for _ in range(ROUNDS)]
        took = time.monotonic() - t0
        time.sleep(1)  # let any event there is reach the watch
        assert reports == [0] * ROUNDS, "an unchanged capacity report was sent again"
        assert all(a.renewals == ROUNDS for a in agents), "every agent renewed its lease every round"
        assert watch.ended is None, f"the watch stopped: {watch.ended}"
        assert watch.events == [], f"{len(watch.events)} Cluster events from heartbeats: {watch.events[:3]}"
        with hub.client() as c:
            renewed = {x["cluster"] for x in c.get("/v1/leases").json()["items"]}
        assert renewed == set(names)

        # Now one cluster's capacity changes (a node cordoned): exactly its event arrives.
        changed = agents[42]
        changed.backend.cordon("sim-0042-h100-0")  # type: ignore[attr-defined]
        assert loop.run_until_complete(heartbeat(agents)) == 1
        wait_until(lambda: watch.events, timeout=30, what="the capacity change on the watch")
        time.sleep(1)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in watch.events] == [("MODIFIED", "sim-0042")]
        assert watch.events[0]["object"]["status"]["freeGpus"] == 0
        assert watch.ended is None, f"the watch stopped: {watch.ended}"
        print(
            f"\nSIMULATED: {N_CLUSTERS} clusters x {ROUNDS} heartbeats = {N_CLUSTERS * ROUNDS} lease renewals in "
            f"{took:.1f}s, 0 Cluster events from them; one capacity change -> 1 event"
        )
    finally:
        if watch is not None:
            watch.close()
        for a in agents:
            loop.run_until_complete(a.hub.aclose())
        loop.close()
        hub.stop()
